//! Quantile binning: each feature's values map to at most `max_bin` bins, so split search scans
//! bin histograms instead of sorted values (XGBoost's `hist` method).

use rayon::prelude::*;

/// The bin of a missing value.
pub(crate) const MISSING: u16 = u16::MAX;

/// Split thresholds per feature: a value `x` falls in bin `#{t : t <= x}`, so the split "bins
/// `0..=b` left" is the condition `x < cuts[b]`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Cuts {
    pub(crate) thresholds: Vec<Vec<f32>>,
    /// The first global bin index of each feature.
    pub(crate) offsets: Vec<usize>,
}

impl Cuts {
    /// Thresholds from the non-missing values of each column of a row-major `rows × d` matrix.
    pub(crate) fn fit(data: &[f32], rows: usize, d: usize, max_bin: usize) -> Self {
        let thresholds: Vec<Vec<f32>> = (0..d)
            .into_par_iter()
            .map(|f| {
                // Sorting order-preserving integer keys is about twice as fast as comparing
                // floats, and this sort is most of the booster's fixed cost.
                let mut keys: Vec<u32> = (0..rows)
                    .map(|r| data[r * d + f])
                    .filter(|x| !x.is_nan())
                    .map(sort_key)
                    .collect();
                keys.sort_unstable();
                let v: Vec<f32> = keys.into_iter().map(from_sort_key).collect();
                feature_cuts(&v, max_bin)
            })
            .collect();
        let mut offsets = Vec::with_capacity(d + 1);
        let mut total = 0;
        for t in &thresholds {
            offsets.push(total);
            total += t.len() + 1;
        }
        offsets.push(total);
        Self {
            thresholds,
            offsets,
        }
    }

    /// Bins per feature.
    pub(crate) fn bins(&self, f: usize) -> usize {
        self.thresholds[f].len() + 1
    }

    /// Total bins over all features.
    pub(crate) fn total_bins(&self) -> usize {
        *self.offsets.last().unwrap_or(&0)
    }

    /// The bin of value `x` of feature `f`.
    #[inline]
    pub(crate) fn bin(&self, f: usize, x: f32) -> u16 {
        if x.is_nan() {
            MISSING
        } else {
            self.thresholds[f].partition_point(|t| *t <= x) as u16
        }
    }

    /// Bins a row-major matrix (row-major output).
    pub(crate) fn apply(&self, data: &[f32], d: usize) -> Vec<u16> {
        let mut out = vec![0u16; data.len()];
        out.par_chunks_mut(4096 * d.max(1))
            .zip(data.par_chunks(4096 * d.max(1)))
            .for_each(|(o, x)| {
                for (i, v) in x.iter().enumerate() {
                    o[i] = self.bin(i % d, *v);
                }
            });
        out
    }
}

/// An integer whose order is the float's order (negative floats have their bits flipped).
fn sort_key(x: f32) -> u32 {
    let b = x.to_bits();
    if b >> 31 == 1 { !b } else { b | 0x8000_0000 }
}

fn from_sort_key(k: u32) -> f32 {
    f32::from_bits(if k >> 31 == 1 { k & 0x7fff_ffff } else { !k })
}

/// Thresholds of one feature from its sorted non-missing values, chosen as XGBoost's `hist`
/// method chooses them: a rank summary of the distinct values (each weighted by its count),
/// pruned to `max_bin + 1` entries at evenly spaced ranks (`WQSummary::SetPrune`); the entries
/// after the first, up to `max_bin`, are the thresholds.
fn feature_cuts(sorted: &[f32], max_bin: usize) -> Vec<f32> {
    // (value, rmin, rmax, wmin) of each distinct value.
    let mut entries: Vec<(f32, f32, f32, f32)> = Vec::new();
    let mut rank = 0.0f32;
    let mut i = 0;
    while i < sorted.len() {
        let mut j = i;
        while j < sorted.len() && sorted[j] == sorted[i] {
            j += 1;
        }
        let w = (j - i) as f32;
        entries.push((sorted[i], rank, rank + w, w));
        rank += w;
        i = j;
    }
    let maxsize = max_bin + 1;
    let summary = if entries.len() <= maxsize {
        entries
    } else {
        let begin = entries[0].2;
        let range = entries[entries.len() - 1].1 - entries[0].2;
        let n = maxsize - 1;
        let mut out = vec![entries[0]];
        let (mut i, mut last) = (1usize, 0usize);
        for k in 1..n {
            let dx2 = 2.0 * ((k as f32 * range) / n as f32 + begin);
            while i < entries.len() - 1 && dx2 >= entries[i + 1].2 + entries[i + 1].1 {
                i += 1;
            }
            if i == entries.len() - 1 {
                break;
            }
            // RMinNext of i + RMaxPrev of i + 1.
            let pick =
                if dx2 < (entries[i].1 + entries[i].3) + (entries[i + 1].2 - entries[i + 1].3) {
                    i
                } else {
                    i + 1
                };
            if pick != last {
                out.push(entries[pick]);
                last = pick;
            }
        }
        if last != entries.len() - 1 {
            out.push(entries[entries.len() - 1]);
        }
        out
    };
    let required = summary.len().min(max_bin);
    let mut cuts: Vec<f32> = Vec::with_capacity(required);
    for e in summary.iter().take(required).skip(1) {
        if cuts.last().is_none_or(|c| e.0 > *c) {
            cuts.push(e.0);
        }
    }
    cuts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn few_distinct_values_get_one_bin_each_and_missing_is_separate() {
        let data = [3.0, 1.0, 2.0, f32::NAN, 2.0, 1.0];
        let cuts = Cuts::fit(&data, 6, 1, 256);
        assert_eq!(cuts.thresholds[0], [2.0, 3.0]);
        assert_eq!(cuts.apply(&data, 1), [2, 0, 1, MISSING, 1, 0]);
        assert_eq!(cuts.total_bins(), 3);
    }

    #[test]
    fn sort_keys_preserve_float_order() {
        let v = [-3.5f32, -0.0, 0.0, 1e-30, 2.0, f32::MAX, f32::MIN];
        for a in v {
            assert_eq!(from_sort_key(sort_key(a)).to_bits(), a.to_bits());
            for b in v {
                assert_eq!(
                    sort_key(a) < sort_key(b),
                    a.total_cmp(&b).is_lt(),
                    "{a} {b}"
                );
            }
        }
    }

    #[test]
    fn many_values_are_cut_at_quantiles() {
        let data: Vec<f32> = (0..1000).map(|i| i as f32).collect();
        let cuts = Cuts::fit(&data, 1000, 1, 10);
        assert_eq!(cuts.bins(0), 10);
        let bins = cuts.apply(&data, 1);
        // Evenly spaced ranks (XGBoost's pruning rounds each to a neighbouring entry).
        for b in 0..10u16 {
            let n = bins.iter().filter(|x| **x == b).count();
            assert!((98..=102).contains(&n), "bin {b} holds {n}");
        }
    }
}
