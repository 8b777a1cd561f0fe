//! Evaluation metrics on predictions (probabilities for the logistic and softmax objectives).

use super::params::EvalMetric;

const EPS: f64 = 1e-16;

/// `metric` of `pred` (`rows × groups`, prediction space) against labels `y`; `huber_slope`
/// is the pseudo-Huber metric's slope.
pub(crate) fn evaluate(
    metric: EvalMetric,
    pred: &[f32],
    groups: usize,
    y: &[f32],
    huber_slope: f64,
) -> f64 {
    let n = y.len().max(1) as f64;
    match metric {
        EvalMetric::Mphe => {
            let s2 = huber_slope * huber_slope;
            pred.iter()
                .zip(y)
                .map(|(p, y)| {
                    let z = f64::from(*p) - f64::from(*y);
                    s2 * ((1.0 + z * z / s2).sqrt() - 1.0)
                })
                .sum::<f64>()
                / n
        }
        EvalMetric::PoissonNloglik => {
            pred.iter()
                .zip(y)
                .map(|(p, y)| {
                    let (p, y) = (f64::from(*p).max(EPS), f64::from(*y));
                    p.ln().mul_add(-y, ln_gamma(y + 1.0) + p)
                })
                .sum::<f64>()
                / n
        }
        EvalMetric::Rmse => {
            let se: f64 = pred
                .iter()
                .zip(y)
                .map(|(p, y)| (f64::from(*p) - f64::from(*y)).powi(2))
                .sum();
            (se / n).sqrt()
        }
        EvalMetric::Mae => {
            pred.iter()
                .zip(y)
                .map(|(p, y)| (f64::from(*p) - f64::from(*y)).abs())
                .sum::<f64>()
                / n
        }
        EvalMetric::Logloss => {
            -pred
                .iter()
                .zip(y)
                .map(|(p, y)| {
                    let p = f64::from(*p).clamp(EPS, 1.0 - EPS);
                    let y = f64::from(*y);
                    y.mul_add(p.ln(), (1.0 - y) * (1.0 - p).ln())
                })
                .sum::<f64>()
                / n
        }
        EvalMetric::Error => {
            pred.iter()
                .zip(y)
                .filter(|(p, y)| (**p > 0.5) != (**y > 0.5))
                .count() as f64
                / n
        }
        EvalMetric::Auc => auc(pred, y),
        EvalMetric::Mlogloss => {
            -pred
                .chunks_exact(groups)
                .zip(y)
                .map(|(p, y)| f64::from(p[*y as usize]).clamp(EPS, 1.0 - EPS).ln())
                .sum::<f64>()
                / n
        }
        EvalMetric::Merror => {
            pred.chunks_exact(groups)
                .zip(y)
                .filter(|(p, y)| argmax(p) != **y as usize)
                .count() as f64
                / n
        }
    }
}

/// `ln Γ(x)` for `x > 0` (Lanczos, g = 7, nine terms: about 15 significant digits).
fn ln_gamma(x: f64) -> f64 {
    const G: f64 = 7.0;
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection: Γ(x)Γ(1 − x) = π / sin(πx).
        return (std::f64::consts::PI / (std::f64::consts::PI * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = C[0];
    let t = x + G + 0.5;
    for (i, c) in C.iter().enumerate().skip(1) {
        a += c / (x + i as f64);
    }
    (x + 0.5).mul_add(t.ln(), 0.5 * std::f64::consts::TAU.ln()) - t + a.ln()
}

fn argmax(p: &[f32]) -> usize {
    p.iter()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |(bi, bv), (i, v)| {
            if *v > bv { (i, *v) } else { (bi, bv) }
        })
        .0
}

/// Area under the ROC curve by ranks (tied scores share their average rank).
fn auc(pred: &[f32], y: &[f32]) -> f64 {
    let mut order: Vec<usize> = (0..pred.len()).collect();
    order.sort_by(|&a, &b| pred[a].total_cmp(&pred[b]));
    let positives = y.iter().filter(|v| **v > 0.5).count() as f64;
    let negatives = y.len() as f64 - positives;
    if positives == 0.0 || negatives == 0.0 {
        return f64::NAN;
    }
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && pred[order[j + 1]] == pred[order[i]] {
            j += 1;
        }
        let avg_rank = (i + j) as f64 / 2.0 + 1.0;
        for &k in &order[i..=j] {
            if y[k] > 0.5 {
                rank_sum += avg_rank;
            }
        }
        i = j + 1;
    }
    (rank_sum - positives * (positives + 1.0) / 2.0) / (positives * negatives)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ln_gamma_matches_factorials() {
        let mut fact = 1.0f64;
        for n in 1..30u32 {
            fact *= f64::from(n);
            let got = ln_gamma(f64::from(n) + 1.0);
            assert!(
                (got - fact.ln()).abs() < 1e-10 * fact.ln().max(1.0),
                "{n}: {got}"
            );
        }
        assert!((ln_gamma(0.5) - std::f64::consts::PI.sqrt().ln()).abs() < 1e-12);
    }

    #[test]
    fn metrics_on_small_cases() {
        assert_eq!(
            evaluate(
                EvalMetric::Auc,
                &[0.1, 0.4, 0.35, 0.8],
                1,
                &[0.0, 0.0, 1.0, 1.0],
                1.0
            ),
            0.75
        );
        assert_eq!(
            evaluate(EvalMetric::Error, &[0.2, 0.7], 1, &[0.0, 0.0], 1.0),
            0.5
        );
        assert!(
            (evaluate(EvalMetric::Rmse, &[1.0, 3.0], 1, &[0.0, 0.0], 1.0) - 5f64.sqrt()).abs()
                < 1e-12
        );
        assert_eq!(
            evaluate(
                EvalMetric::Merror,
                &[0.1, 0.9, 0.8, 0.2],
                2,
                &[1.0, 1.0],
                1.0
            ),
            0.5
        );
        let ll = evaluate(EvalMetric::Logloss, &[0.5], 1, &[1.0], 1.0);
        assert!((ll - 2f64.ln()).abs() < 1e-12);
    }
}
