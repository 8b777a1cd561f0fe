//! Quantile binning: each feature's values map to at most `max_bin` bins, so split search scans
//! bin histograms instead of sorted values (XGBoost's `hist` method).
//!
//! A feature's histogram slots are its value bins followed by one slot for missing values, so
//! a node's histogram is one flat array and every feature's slots sum to the node's totals.
//! Bins are stored as `u8` when every feature fits in 256 slots (the default `max_bin` on data
//! without missing values, or fewer bins) and as `u16` otherwise, twice: row-major for building
//! histograms (one row's bins are adjacent) and column-major for partitioning rows (one
//! feature's bins are adjacent).

use std::ops::Range;

use rayon::prelude::*;

use crate::{TrainError, error::Result};

/// Category codes must be below this (every integer up to 2^24 is exact in `f32`).
pub(crate) const MAX_CATEGORY_CODE: f32 = 16_777_216.0;
/// The most distinct categories a feature may have (its bins are indexed by `u16`).
pub(crate) const MAX_CATEGORIES: usize = 65_535;

/// Split thresholds per feature: a value `x` falls in bin `#{t : t <= x}`, so the split "bins
/// `0..=b` left" is the condition `x < thresholds[b]`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Cuts {
    pub(crate) thresholds: Vec<Vec<f32>>,
    /// Whether the feature had missing values in the data the cuts were fitted on.
    pub(crate) has_missing: Vec<bool>,
    /// Whether the feature is categorical: its "thresholds" are then the distinct category
    /// codes seen, one bin each.
    pub(crate) categorical: Vec<bool>,
    /// Whether every value of the feature was missing.
    pub(crate) all_missing: Vec<bool>,
    /// The first histogram slot of each feature, then the total (`d + 1` entries).
    pub(crate) offsets: Vec<usize>,
}

/// Features extracted from a row-major matrix at once: one pass over the rows per group keeps
/// the strided reads inside the cache lines they load, and bounds the columns held at a time.
const FEATURE_GROUP: usize = 8;

/// Runs `each(feature, column)` on every column of a row-major `rows × d` matrix, in parallel
/// over groups of features; the results come back in feature order.
fn map_columns<T: Send>(
    data: &[f32],
    rows: usize,
    d: usize,
    each: impl Fn(usize, Vec<f32>) -> T + Sync,
) -> Vec<T> {
    let groups: Vec<Range<usize>> = (0..d)
        .step_by(FEATURE_GROUP)
        .map(|s| s..(s + FEATURE_GROUP).min(d))
        .collect();
    groups
        .into_par_iter()
        .flat_map_iter(|range| {
            let mut cols: Vec<Vec<f32>> = range.clone().map(|_| Vec::with_capacity(rows)).collect();
            for row in data.chunks_exact(d.max(1)) {
                for (col, f) in cols.iter_mut().zip(range.clone()) {
                    col.push(row[f]);
                }
            }
            // Features of one group are handed out one at a time, so their work (a sort, a
            // search per value) runs on every thread.
            range
                .zip(cols)
                .collect::<Vec<_>>()
                .into_par_iter()
                .map(|(f, col)| each(f, col))
                .collect::<Vec<_>>()
        })
        .collect()
}

impl Cuts {
    /// Thresholds from the non-missing values of each column of a row-major `rows × d` matrix;
    /// the `categorical` features (sorted indices) get their distinct codes instead.
    pub(crate) fn fit(
        data: &[f32],
        rows: usize,
        d: usize,
        max_bin: usize,
        categorical: &[usize],
    ) -> Result<Self> {
        if let Some(&f) = categorical.iter().find(|f| **f >= d) {
            return Err(TrainError::InvalidConfig {
                field: "categorical_features",
                value: f.to_string(),
                expected: format!("feature indices below the data's {d} features"),
            });
        }
        let fitted: Vec<Result<(Vec<f32>, bool, bool)>> = map_columns(data, rows, d, |f, col| {
            let is_categorical = categorical.binary_search(&f).is_ok();
            if is_categorical
                && let Some((row, v)) = col.iter().enumerate().find(|(_, v)| {
                    !v.is_nan() && (**v < 0.0 || v.fract() != 0.0 || **v >= MAX_CATEGORY_CODE)
                })
            {
                return Err(TrainError::InvalidData {
                    what: "categorical feature",
                    found: format!("feature {f}, row {row}: {v}"),
                    expected: format!(
                        "category codes: integers from 0 to {}, or NaN for missing",
                        MAX_CATEGORY_CODE - 1.0
                    ),
                });
            }
            let mut keys: Vec<u32> = col
                .iter()
                .filter(|x| !x.is_nan())
                .map(|x| sort_key(*x))
                .collect();
            let has_missing = keys.len() < col.len();
            let all_missing = keys.is_empty() && !col.is_empty();
            drop(col);
            radix_sort(&mut keys);
            let v: Vec<f32> = keys.into_iter().map(from_sort_key).collect();
            if is_categorical {
                let mut codes = v;
                codes.dedup();
                if codes.len() > MAX_CATEGORIES {
                    return Err(TrainError::InvalidData {
                        what: "categorical feature",
                        found: format!("feature {f} with {} distinct categories", codes.len()),
                        expected: format!(
                            "at most {MAX_CATEGORIES} categories per feature; group rare ones \
                             or encode the feature as numbers"
                        ),
                    });
                }
                return Ok((codes, has_missing, all_missing));
            }
            Ok((feature_cuts(&v, max_bin), has_missing, all_missing))
        });
        let fitted = fitted.into_iter().collect::<Result<Vec<_>>>()?;
        let all_missing = fitted.iter().map(|f| f.2).collect();
        let (thresholds, has_missing) = fitted.into_iter().map(|f| (f.0, f.1)).unzip();
        let categorical = (0..d)
            .map(|f| categorical.binary_search(&f).is_ok())
            .collect();
        let mut cuts = Self::from_parts(thresholds, has_missing, categorical);
        cuts.all_missing = all_missing;
        Ok(cuts)
    }

    /// Refuses a feature whose every training value is missing (named by `names`, or
    /// `f{index}` when there are none): no split can use it, and it is most likely a column
    /// that was read wrongly.
    pub(crate) fn check_present(&self, names: &[String]) -> Result<()> {
        match self.all_missing.iter().position(|m| *m) {
            Some(f) => Err(TrainError::InvalidData {
                what: "feature",
                found: format!(
                    "{}: every training value is missing",
                    names.get(f).cloned().unwrap_or_else(|| format!("f{f}"))
                ),
                expected: "at least one present value per feature; drop the column or fill it"
                    .to_owned(),
            }),
            None => Ok(()),
        }
    }

    fn from_parts(
        thresholds: Vec<Vec<f32>>,
        has_missing: Vec<bool>,
        categorical: Vec<bool>,
    ) -> Self {
        let mut offsets = Vec::with_capacity(thresholds.len() + 1);
        let mut total = 0;
        for (t, cat) in thresholds.iter().zip(&categorical) {
            offsets.push(total);
            total += t.len() + if *cat { 1 } else { 2 };
        }
        offsets.push(total);
        Self {
            all_missing: vec![false; thresholds.len()],
            thresholds,
            has_missing,
            categorical,
            offsets,
        }
    }

    /// Value bins of feature `f` (its missing slot is the next index).
    pub(crate) fn bins(&self, f: usize) -> usize {
        self.thresholds[f].len() + usize::from(!self.categorical[f])
    }

    /// Histogram slots over all features.
    pub(crate) fn hist_len(&self) -> usize {
        *self.offsets.last().unwrap_or(&0)
    }

    /// The bin of value `x` of feature `f`; missing values get the slot after the last bin.
    /// (Binning goes through [`PrefixLookup`]; this is the reference it is tested against.)
    #[cfg(test)]
    fn bin(&self, f: usize, x: f32) -> usize {
        let t = &self.thresholds[f];
        if x.is_nan() {
            return t.len() + 1;
        }
        // A branch-free binary search for #{t <= x}: the loop's trip count depends only on the
        // length, so nothing mispredicts on the data.
        let mut size = t.len();
        if size == 0 {
            return 0;
        }
        let mut base = 0usize;
        while size > 1 {
            let half = size / 2;
            let mid = base + half;
            base = if t[mid] <= x { mid } else { base };
            size -= half;
        }
        base + usize::from(t[base] <= x)
    }

    /// The largest bin index any feature stores (a missing slot counts when the feature has
    /// missing values).
    fn max_index(&self) -> usize {
        (0..self.thresholds.len())
            .map(|f| self.bins(f) - 1 + usize::from(self.has_missing[f]))
            .max()
            .unwrap_or(0)
    }

    /// Bins a row-major `rows × d` matrix: the rows the cuts were fitted on, or a slice of them
    /// (so a feature has missing values here only if the cuts saw some).
    pub(crate) fn bin_matrix(&self, data: &[f32], rows: usize, d: usize) -> BinMatrix {
        if self.max_index() <= usize::from(u8::MAX) {
            BinMatrix::U8(Bins::build(self, data, rows, d))
        } else {
            BinMatrix::U16(Bins::build(self, data, rows, d))
        }
    }
}

/// A bin index type.
pub(crate) trait BinIndex: Copy + Send + Sync + Default + Into<usize> + 'static {
    fn from_usize(v: usize) -> Self;
}

impl BinIndex for u8 {
    #[inline]
    fn from_usize(v: usize) -> Self {
        debug_assert!(v <= usize::from(u8::MAX), "bin {v} does not fit u8");
        v as u8
    }
}

impl BinIndex for u16 {
    #[inline]
    fn from_usize(v: usize) -> Self {
        v as u16
    }
}

/// Binned rows in both layouts.
#[derive(Debug, Clone)]
pub(crate) struct Bins<B> {
    pub(crate) rows: usize,
    pub(crate) d: usize,
    /// `row_major[r * d + f]`.
    pub(crate) row_major: Vec<B>,
    /// `col_major[f * rows + r]`.
    pub(crate) col_major: Vec<B>,
}

const TRANSPOSE_BLOCK: usize = 4096;

impl<B: BinIndex> Bins<B> {
    pub(crate) fn build(cuts: &Cuts, data: &[f32], rows: usize, d: usize) -> Self {
        let cols: Vec<Vec<B>> = map_columns(data, rows, d, |f, col| {
            let lookup = PrefixLookup::new(&cuts.thresholds[f]);
            if cuts.categorical[f] {
                // A category's bin is its rank among the codes: #{codes <= x} - 1.
                let missing = cuts.bins(f);
                col.iter()
                    .map(|x| {
                        B::from_usize(if x.is_nan() {
                            missing
                        } else {
                            lookup.bin(*x).saturating_sub(1)
                        })
                    })
                    .collect()
            } else {
                col.iter().map(|x| B::from_usize(lookup.bin(*x))).collect()
            }
        });
        let mut row_major = vec![B::default(); rows * d];
        row_major
            .par_chunks_mut(TRANSPOSE_BLOCK * d.max(1))
            .enumerate()
            .for_each(|(block, out)| {
                let start = block * TRANSPOSE_BLOCK;
                for (f, col) in cols.iter().enumerate() {
                    for (i, b) in col[start..start + out.len() / d].iter().enumerate() {
                        out[i * d + f] = *b;
                    }
                }
            });
        Self {
            rows,
            d,
            row_major,
            col_major: cols.concat(),
        }
    }

    /// Feature `f`'s bins of every row.
    #[inline]
    pub(crate) fn column(&self, f: usize) -> &[B] {
        &self.col_major[f * self.rows..(f + 1) * self.rows]
    }
}

/// Binned rows, `u8` when every bin index fits.
#[derive(Debug, Clone)]
pub(crate) enum BinMatrix {
    U8(Bins<u8>),
    U16(Bins<u16>),
}

/// Bins a feature's values through a table indexed by the top 16 bits of each value's sort key
/// (sign, exponent and 7 mantissa bits): the table gives the thresholds whose keys share the
/// prefix, usually none or one, so a value's bin takes one lookup and a short scan instead of a
/// binary search of dependent loads.
struct PrefixLookup<'a> {
    thresholds: &'a [f32],
    /// `first[p]`: how many thresholds have a key prefix below `p` (65,537 entries).
    first: Vec<u16>,
}

impl<'a> PrefixLookup<'a> {
    fn new(thresholds: &'a [f32]) -> Self {
        let mut first = vec![0u16; (1 << 16) + 1];
        let mut t = 0usize;
        for (p, slot) in first.iter_mut().enumerate() {
            while t < thresholds.len() && ((sort_key(thresholds[t]) >> 16) as usize) < p {
                t += 1;
            }
            *slot = t as u16;
        }
        Self { thresholds, first }
    }

    /// `#{t <= x}`, or the missing slot for NaN.
    #[inline]
    fn bin(&self, x: f32) -> usize {
        if x.is_nan() {
            return self.thresholds.len() + 1;
        }
        let p = (sort_key(x) >> 16) as usize;
        let (lo, hi) = (usize::from(self.first[p]), usize::from(self.first[p + 1]));
        // Thresholds before `lo` are below x's prefix; those from `hi` on are above it.
        lo + self.thresholds[lo..hi].partition_point(|t| *t <= x)
    }
}

/// Sorts `u32` keys by their bytes, least significant first (three passes of 11 bits): linear
/// in the keys, several times faster than a comparison sort on the millions of values a
/// feature has.
fn radix_sort(keys: &mut Vec<u32>) {
    const BITS: u32 = 11;
    const BUCKETS: usize = 1 << BITS;
    if keys.len() < 4096 {
        keys.sort_unstable();
        return;
    }
    let mut scratch = vec![0u32; keys.len()];
    for pass in 0..3 {
        let shift = pass * BITS;
        let mut counts = vec![0usize; BUCKETS];
        for k in keys.iter() {
            counts[((k >> shift) as usize) & (BUCKETS - 1)] += 1;
        }
        if counts.contains(&keys.len()) {
            continue; // every key has the same digit: this pass would not move anything
        }
        let mut sum = 0;
        for c in &mut counts {
            (*c, sum) = (sum, sum + *c);
        }
        for k in keys.iter() {
            let digit = ((k >> shift) as usize) & (BUCKETS - 1);
            scratch[counts[digit]] = *k;
            counts[digit] += 1;
        }
        std::mem::swap(keys, &mut scratch);
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

    fn u8_bins(m: BinMatrix) -> Bins<u8> {
        match m {
            BinMatrix::U8(b) => b,
            BinMatrix::U16(_) => panic!("expected u8 bins"),
        }
    }

    #[test]
    fn few_distinct_values_get_one_bin_each_and_missing_is_separate() {
        let data = [3.0, 1.0, 2.0, f32::NAN, 2.0, 1.0];
        let cuts = Cuts::fit(&data, 6, 1, 256, &[]).unwrap();
        assert_eq!(cuts.thresholds[0], [2.0, 3.0]);
        assert_eq!(cuts.has_missing, [true]);
        let bins = u8_bins(cuts.bin_matrix(&data, 6, 1));
        assert_eq!(bins.row_major, [2, 0, 1, 3, 1, 0]);
        assert_eq!(bins.col_major, bins.row_major);
        assert_eq!(cuts.hist_len(), 4);
    }

    #[test]
    fn both_layouts_hold_the_same_bins() {
        let (rows, d) = (10_000, 3);
        let data: Vec<f32> = (0..rows * d)
            .map(|i| ((i * 7919) % 1000) as f32 / 10.0)
            .collect();
        let cuts = Cuts::fit(&data, rows, d, 16, &[]).unwrap();
        let bins = u8_bins(cuts.bin_matrix(&data, rows, d));
        for r in (0..rows).step_by(37) {
            for f in 0..d {
                let b = bins.row_major[r * d + f];
                assert_eq!(bins.column(f)[r], b);
                assert_eq!(usize::from(b), cuts.bin(f, data[r * d + f]));
            }
        }
    }

    #[test]
    fn the_branch_free_search_counts_thresholds_at_or_below() {
        for n in 0..20usize {
            let t: Vec<f32> = (0..n).map(|i| i as f32).collect();
            let cuts = Cuts::from_parts(vec![t.clone()], vec![false], vec![false]);
            for x in [-1.0, 0.0, 0.5, 3.0, 3.5, 19.0, 25.0] {
                let expected = t.iter().filter(|v| **v <= x).count();
                assert_eq!(cuts.bin(0, x), expected, "{n} thresholds, x {x}");
            }
        }
    }

    #[test]
    fn the_prefix_lookup_bins_as_the_search_does() {
        let data: Vec<f32> = (0..5000)
            .map(|i| (((i * 7919) % 5000) as f32).mul_add(0.37, -900.0) + (i % 7) as f32 / 1e4)
            .collect();
        let cuts = Cuts::fit(&data, data.len(), 1, 256, &[]).unwrap();
        let lookup = PrefixLookup::new(&cuts.thresholds[0]);
        for x in data.iter().copied().chain([
            f32::NAN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            -0.0,
            0.0,
            1e-30,
        ]) {
            assert_eq!(lookup.bin(x), cuts.bin(0, x), "{x}");
        }
    }

    #[test]
    fn wide_features_use_u16_bins() {
        let data: Vec<f32> = (0..1000).map(|i| i as f32).collect();
        let cuts = Cuts::fit(&data, 1000, 1, 600, &[]).unwrap();
        assert!(matches!(cuts.bin_matrix(&data, 1000, 1), BinMatrix::U16(_)));
    }

    #[test]
    fn radix_sort_sorts() {
        let mut keys: Vec<u32> = (0..100_000u32)
            .map(|i| i.wrapping_mul(2_654_435_761))
            .collect();
        let mut expected = keys.clone();
        expected.sort_unstable();
        radix_sort(&mut keys);
        assert_eq!(keys, expected);
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
        let cuts = Cuts::fit(&data, 1000, 1, 10, &[]).unwrap();
        assert_eq!(cuts.bins(0), 10);
        let bins = u8_bins(cuts.bin_matrix(&data, 1000, 1));
        // Evenly spaced ranks (XGBoost's pruning rounds each to a neighbouring entry).
        for b in 0..10u8 {
            let n = bins.row_major.iter().filter(|x| **x == b).count();
            assert!((98..=102).contains(&n), "bin {b} holds {n}");
        }
    }
}
