//! The normal distribution's density, CDF and quantile, for TPE and the GP acquisition.

use std::f64::consts::{FRAC_1_SQRT_2, PI};

/// The complementary error function (W. J. Cody's rational approximations via the
/// Numerical Recipes `erfc` Chebyshev fit; relative error below 1.2e-7).
pub(crate) fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let r = t * poly.exp();
    if x >= 0.0 { r } else { 2.0 - r }
}

/// Φ(x), the standard normal CDF.
pub(crate) fn norm_cdf(x: f64) -> f64 {
    0.5 * erfc(-x * FRAC_1_SQRT_2)
}

/// Φ(x) with the tails beyond 8.3 σ cut to exactly 0 and 1: what is cut is below half an ulp
/// of 1 (5e-17), and it spares the far kernels of a dense Parzen estimator their `exp`.
pub(crate) fn norm_cdf_clipped(x: f64) -> f64 {
    if x > 8.3 {
        1.0
    } else if x < -8.3 {
        0.0
    } else {
        norm_cdf(x)
    }
}

/// φ(x), the standard normal density.
pub(crate) fn norm_pdf(x: f64) -> f64 {
    (-0.5 * x * x).exp() / (2.0 * PI).sqrt()
}

/// Φ⁻¹(p) (Acklam's rational approximation, relative error 1.15e-9).
pub(crate) fn norm_ppf(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    let p = p.clamp(1e-300, 1.0 - 1e-16);
    let low = 0.024_25;
    if p < low {
        let q = (-2.0 * p.ln()).sqrt();
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    } else if p <= 1.0 - low {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    } else {
        let q = (-2.0 * (1.0 - p).ln()).sqrt();
        -(((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    }
}

/// `e^x` for `x ≤ 0` (0 below −708), without branches or library calls so that loops over it
/// vectorise: a Cody–Waite reduction `x = k·ln 2 + r` (`|r| ≤ ln 2 / 2`) and the Taylor
/// polynomial of degree 12 for `e^r` (truncation error below 2e-16 relative), scaled by `2^k`
/// through the exponent bits. TPE scores every candidate against every kernel with it.
#[inline]
// `mul_add` is a library call where the target has no FMA instruction, which stops the loops
// this is for from vectorising.
#[allow(clippy::suboptimal_flops)]
pub(crate) fn exp_nonpositive(x: f64) -> f64 {
    // 1.5 · 2^52: adding it rounds to an integer held in the low mantissa bits.
    const SHIFT: f64 = 6_755_399_441_055_744.0;
    // ln 2 split as fdlibm does: the high part has its low mantissa bits clear, so k · LN2_HI
    // is exact.
    const LN2_HI: f64 = f64::from_bits(0x3fe6_2e42_fee0_0000);
    const LN2_LO: f64 = f64::from_bits(0x3dea_39ef_3579_3c76);
    const C: [f64; 13] = [
        1.0,
        1.0,
        1.0 / 2.0,
        1.0 / 6.0,
        1.0 / 24.0,
        1.0 / 120.0,
        1.0 / 720.0,
        1.0 / 5_040.0,
        1.0 / 40_320.0,
        1.0 / 362_880.0,
        1.0 / 3_628_800.0,
        1.0 / 39_916_800.0,
        1.0 / 479_001_600.0,
    ];
    let clamped = x.max(-708.0);
    let shifted = clamped * std::f64::consts::LOG2_E + SHIFT;
    let k = shifted - SHIFT;
    let r = (clamped - k * LN2_HI) - k * LN2_LO;
    let mut p = C[12];
    for c in C[..12].iter().rev() {
        p = p * r + c;
    }
    // k ∈ [−1022, 0], so k + 1023 is a normal exponent.
    let exponent = shifted
        .to_bits()
        .wrapping_sub(SHIFT.to_bits())
        .wrapping_add(1023);
    let v = p * f64::from_bits(exponent << 52);
    if x < -708.0 { 0.0 } else { v }
}

/// log Σ exp(xs), stable (the reference the TPE densities are checked against).
#[cfg(test)]
pub(crate) fn log_sum_exp(xs: impl Iterator<Item = f64> + Clone) -> f64 {
    let m = xs.clone().fold(f64::NEG_INFINITY, f64::max);
    if m == f64::NEG_INFINITY {
        return m;
    }
    m + xs.map(|x| (x - m).exp()).sum::<f64>().ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_functions() {
        // Reference values from scipy.stats.norm.
        assert!((norm_cdf(0.0) - 0.5).abs() < 1e-7);
        assert!((norm_cdf(1.959_963_984_540_054) - 0.975).abs() < 1e-7);
        assert!((norm_cdf(-3.0) - 0.001_349_898_031_630_094_6).abs() < 1e-9);
        assert!((norm_ppf(0.975) - 1.959_963_984_540_054).abs() < 1e-8);
        assert!((norm_ppf(1e-6) + 4.753_424_308_822_899).abs() < 1e-7);
        for p in [1e-9, 0.01, 0.3, 0.5, 0.8, 0.999] {
            assert!((norm_cdf(norm_ppf(p)) / p - 1.0).abs() < 1e-5, "{p}");
        }
        assert!((norm_pdf(0.0) - 0.398_942_280_401_432_7).abs() < 1e-12);
        let l = log_sum_exp([1000.0, 1000.0].into_iter());
        assert!((l - (1000.0 + 2f64.ln())).abs() < 1e-9);
    }

    #[test]
    fn the_branch_free_exp_matches_the_library_one() {
        let mut worst: f64 = 0.0;
        for i in 0..=200_000 {
            let x = -720.0 * f64::from(i) / 200_000.0;
            let (fast, exact) = (exp_nonpositive(x), x.exp());
            if x >= -708.0 {
                worst = worst.max((fast / exact - 1.0).abs());
            } else {
                assert_eq!(fast, 0.0, "{x}");
            }
        }
        assert!(worst < 1e-15, "{worst}");
        assert_eq!(exp_nonpositive(0.0), 1.0);
    }
}
