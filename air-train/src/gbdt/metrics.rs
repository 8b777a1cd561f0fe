//! Evaluation metrics on predictions (probabilities for the logistic and softmax objectives).

use super::params::EvalMetric;

const EPS: f64 = 1e-16;

/// `metric` of `pred` (`rows × groups`, prediction space) against labels `y`.
pub(crate) fn evaluate(metric: EvalMetric, pred: &[f32], groups: usize, y: &[f32]) -> f64 {
    let n = y.len().max(1) as f64;
    match metric {
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
    fn metrics_on_small_cases() {
        assert_eq!(
            evaluate(
                EvalMetric::Auc,
                &[0.1, 0.4, 0.35, 0.8],
                1,
                &[0.0, 0.0, 1.0, 1.0]
            ),
            0.75
        );
        assert_eq!(
            evaluate(EvalMetric::Error, &[0.2, 0.7], 1, &[0.0, 0.0]),
            0.5
        );
        assert!(
            (evaluate(EvalMetric::Rmse, &[1.0, 3.0], 1, &[0.0, 0.0]) - 5f64.sqrt()).abs() < 1e-12
        );
        assert_eq!(
            evaluate(EvalMetric::Merror, &[0.1, 0.9, 0.8, 0.2], 2, &[1.0, 1.0]),
            0.5
        );
        let ll = evaluate(EvalMetric::Logloss, &[0.5], 1, &[1.0]);
        assert!((ll - 2f64.ln()).abs() < 1e-12);
    }
}
