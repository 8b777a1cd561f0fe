//! Reading LightGBM's text model format (`Booster.save_model("model.txt")`, format versions
//! v3 and v4), so a model trained in LightGBM predicts here.
//!
//! LightGBM's nodes become ours: its `value <= threshold` (in `f64`) becomes `value <
//! threshold'` with `threshold'` the next `f32` above the largest `f32` at or below the
//! threshold (inputs are `f32`, so both send every input the same way); missing values follow
//! its default direction (`missing_type` NaN), or go where 0 goes (`None`: LightGBM reads NaN as
//! 0); its categorical splits send the categories in their bitset left, so the children are
//! swapped to fit our rule (the set goes right, everything else left, missing included). Covers
//! are LightGBM's row counts, which its SHAP values use.

use super::model::{GBDT_FORMAT_VERSION, GbdtModel, Objective, Tree};
use crate::{TrainError, error::Result};

fn bad(reason: impl Into<String>) -> TrainError {
    TrainError::model("reading a LightGBM model", reason.into())
}

/// LightGBM's `decision_type` bits.
const CATEGORICAL: u8 = 1;
const DEFAULT_LEFT: u8 = 2;
/// `missing_type` (bits 2–3): 0 none, 1 zero, 2 NaN.
const MISSING_ZERO: u8 = 1;
const MISSING_NAN: u8 = 2;

/// The `key=value` lines of one section.
struct Section<'a> {
    name: String,
    lines: Vec<(&'a str, &'a str)>,
}

impl<'a> Section<'a> {
    fn get(&self, key: &str) -> Option<&'a str> {
        self.lines.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
    }

    fn require(&self, key: &str) -> Result<&'a str> {
        self.get(key)
            .ok_or_else(|| bad(format!("{}: missing field {key}", self.name)))
    }

    fn parse<T: std::str::FromStr>(&self, key: &str) -> Result<T> {
        let v = self.require(key)?;
        v.trim()
            .parse()
            .map_err(|_| bad(format!("{}: {key}={v:?} is not a number", self.name)))
    }

    fn list<T: std::str::FromStr>(&self, key: &str, len: usize) -> Result<Vec<T>> {
        let v = self.require(key)?;
        let out: Vec<T> = v
            .split_whitespace()
            .map(|x| {
                x.parse()
                    .map_err(|_| bad(format!("{}: {key} holds {x:?}", self.name)))
            })
            .collect::<Result<_>>()?;
        if out.len() != len {
            return Err(bad(format!(
                "{}: {key} has {} values, expected {len}",
                self.name,
                out.len()
            )));
        }
        Ok(out)
    }
}

/// The largest `f32` at or below `t`, then the next one up: `x <= t` ⟺ `x < result` for every
/// `f32` `x`.
fn strict_threshold(t: f64) -> f32 {
    if t.is_nan() {
        return f32::NAN;
    }
    let mut f = t as f32;
    if f64::from(f) > t {
        f = f.next_down();
    }
    f.next_up()
}

fn objective(text: &str, num_class: usize) -> Result<Objective> {
    let mut parts = text.split_whitespace();
    let name = parts.next().unwrap_or("");
    let param = |key: &str| -> Option<&str> {
        text.split_whitespace()
            .find_map(|p| p.strip_prefix(key).and_then(|r| r.strip_prefix(':')))
    };
    Ok(match name {
        "regression" | "regression_l2" | "l2" | "mean_squared_error" | "mse" => {
            Objective::SquaredError
        }
        "regression_l1" | "l1" | "mean_absolute_error" | "mae" => Objective::AbsoluteError,
        "binary" => {
            let sigmoid = param("sigmoid").unwrap_or("1");
            if sigmoid.parse::<f64>().ok() != Some(1.0) {
                return Err(bad(format!(
                    "objective binary with sigmoid:{sigmoid} is not supported; expected sigmoid:1"
                )));
            }
            Objective::BinaryLogistic
        }
        "cross_entropy" | "xentropy" => Objective::RegLogistic,
        "multiclass" | "softmax" if num_class >= 2 => Objective::MultiSoftprob { num_class },
        "poisson" => Objective::Poisson {
            max_delta_step: param("poisson_max_delta_step")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0.7),
        },
        other => {
            return Err(bad(format!(
                "objective {other:?} is not supported; expected regression, regression_l1, \
                 binary, cross_entropy, multiclass or poisson"
            )));
        }
    })
}

/// One `Tree=` section as our tree: nodes renumbered depth-first so children follow parents.
fn tree(s: &Section<'_>) -> Result<Tree> {
    let leaves: usize = s.parse("num_leaves")?;
    let mut t = Tree::single_leaf();
    if leaves <= 1 {
        let value: Vec<f64> = s.list("leaf_value", 1)?;
        t.leaf_value[0] = value[0] as f32;
        return Ok(t);
    }
    let inner = leaves - 1;
    let feature: Vec<u32> = s.list("split_feature", inner)?;
    let gain: Vec<f64> = s.list("split_gain", inner)?;
    let threshold: Vec<f64> = s.list("threshold", inner)?;
    let decision: Vec<u8> = s.list("decision_type", inner)?;
    let left: Vec<i64> = s.list("left_child", inner)?;
    let right: Vec<i64> = s.list("right_child", inner)?;
    let leaf_value: Vec<f64> = s.list("leaf_value", leaves)?;
    let leaf_count: Vec<f64> = s.list("leaf_count", leaves)?;
    let internal_count: Vec<f64> = s.list("internal_count", inner)?;
    let num_cat: usize = s.get("num_cat").map_or(Ok(0), |_| s.parse("num_cat"))?;
    let (boundaries, bits): (Vec<usize>, Vec<u32>) = if num_cat > 0 {
        let boundaries: Vec<usize> = s.list("cat_boundaries", num_cat + 1)?;
        let words = boundaries[num_cat];
        (boundaries, s.list("cat_threshold", words)?)
    } else {
        (Vec::new(), Vec::new())
    };
    if s.get("is_linear").is_some_and(|v| v.trim() != "0") {
        return Err(bad(format!(
            "{}: linear trees (linear_tree=true) are not supported",
            s.name
        )));
    }
    // (LightGBM child: >= 0 an inner node, < 0 the leaf !child), our node to fill.
    let mut stack: Vec<(i64, usize)> = vec![(0, 0)];
    while let Some((child, at)) = stack.pop() {
        if child < 0 {
            let leaf = usize::try_from(!child)
                .ok()
                .filter(|l| *l < leaves)
                .ok_or_else(|| bad(format!("{}: leaf {} of {leaves}", s.name, !child)))?;
            t.leaf_value[at] = leaf_value[leaf] as f32;
            t.cover[at] = leaf_count[leaf] as f32;
            continue;
        }
        let i = usize::try_from(child)
            .ok()
            .filter(|i| *i < inner)
            .ok_or_else(|| bad(format!("{}: node {child} of {inner}", s.name)))?;
        let (l, r) = (t.add_leaf(), t.add_leaf());
        t.feature[at] = feature[i];
        t.gain[at] = gain[i] as f32;
        t.cover[at] = internal_count[i] as f32;
        let kind = decision[i];
        let (mut to_left, mut to_right) = (left[i], right[i]);
        if kind & CATEGORICAL != 0 {
            let k = threshold[i] as usize;
            let words = boundaries
                .get(k..=k + 1)
                .and_then(|b| bits.get(b[0]..b[1]))
                .ok_or_else(|| bad(format!("{}: category set {k} of {num_cat}", s.name)))?;
            let set: Vec<u32> = words
                .iter()
                .enumerate()
                .flat_map(|(w, word)| {
                    (0..32u32)
                        .filter(move |b| word >> b & 1 == 1)
                        .map(move |b| w as u32 * 32 + b)
                })
                .collect();
            if t.categories.is_empty() {
                t.categories = vec![None; t.len()];
            }
            t.categories[at] = Some(set);
            // LightGBM: in the set → left; anything else (missing, negative, unseen) → right.
            // Ours: in the set → right; anything else → left, missing by `default_left`.
            (to_left, to_right) = (to_right, to_left);
            t.default_left[at] = true;
        } else {
            let missing = (kind >> 2) & 3;
            let default_left = kind & DEFAULT_LEFT != 0;
            t.threshold[at] = strict_threshold(threshold[i]);
            t.default_left[at] = match missing {
                MISSING_NAN => default_left,
                // NaN is read as 0, which goes where 0 <= threshold says.
                0 => 0.0 <= threshold[i],
                MISSING_ZERO if default_left == (0.0 <= threshold[i]) => default_left,
                _ => {
                    return Err(bad(format!(
                        "{}: node {i} treats zeros as missing (zero_as_missing) and sends them \
                         where 0 would not go; such splits are not supported",
                        s.name
                    )));
                }
            };
        }
        t.left[at] = l as i32;
        t.right[at] = r as i32;
        stack.push((to_right, r));
        stack.push((to_left, l));
    }
    Ok(t)
}

impl GbdtModel {
    /// Reads a model file saved by LightGBM (`booster.save_model("model.txt")`); see
    /// [`from_lightgbm_text`](Self::from_lightgbm_text).
    pub fn from_lightgbm_file(path: impl AsRef<std::path::Path>) -> Result<Self> {
        Self::read_file(path.as_ref(), |bytes| {
            let text = std::str::from_utf8(bytes).map_err(|e| {
                bad(format!(
                    "not UTF-8 text ({e}); expected the text file LightGBM's save_model writes"
                ))
            })?;
            Self::from_lightgbm_text(text)
        })
    }

    /// Reads LightGBM's text model format (versions v3 and v4): the gbdt booster with
    /// numerical and categorical splits, and the objectives regression (L2 and L1), binary,
    /// cross_entropy, multiclass and poisson. Anything else (linear trees, random forest mode,
    /// other objectives, `zero_as_missing` splits that 0 would not follow) is an error naming
    /// it. Categorical features are read as category codes, as LightGBM reads them.
    pub fn from_lightgbm_text(text: &str) -> Result<Self> {
        let mut sections: Vec<Section<'_>> = Vec::new();
        for line in text.lines() {
            let line = line.trim();
            if line == "end of trees" {
                break;
            }
            if line.is_empty() {
                continue;
            }
            match line.split_once('=') {
                Some(("Tree", n)) => sections.push(Section {
                    name: format!("tree {n}"),
                    lines: Vec::new(),
                }),
                Some((k, v)) => match sections.last_mut() {
                    Some(s) => s.lines.push((k, v)),
                    None => {
                        return Err(bad(format!(
                            "line {line:?} before the header; expected a file starting with \
                             \"tree\" as LightGBM's save_model writes"
                        )));
                    }
                },
                None if sections.is_empty() && line == "tree" => sections.push(Section {
                    name: "header".to_owned(),
                    lines: Vec::new(),
                }),
                None => {}
            }
        }
        let Some(header) = sections.first().filter(|s| s.name == "header") else {
            return Err(bad(
                "no \"tree\" header; expected the text file LightGBM's save_model writes",
            ));
        };
        let version = header.require("version")?;
        if !matches!(version.trim(), "v3" | "v4") {
            return Err(bad(format!(
                "format version {version:?} is not supported; expected v3 or v4"
            )));
        }
        if header.get("average_output").is_some() {
            return Err(bad(
                "random forest models (average_output) are not supported; expected gbdt",
            ));
        }
        let num_class: usize = header.parse("num_class")?;
        let per_iteration: usize = header.parse("num_tree_per_iteration")?;
        let num_feature = header.parse::<usize>("max_feature_idx")? + 1;
        let objective = objective(header.require("objective")?, num_class)?;
        if per_iteration != objective.num_groups() {
            return Err(bad(format!(
                "{per_iteration} trees per iteration for objective {}; expected {}",
                objective.xgboost_name(),
                objective.num_groups()
            )));
        }
        let feature_names: Vec<String> = header
            .get("feature_names")
            .map(|v| v.split_whitespace().map(str::to_owned).collect())
            .unwrap_or_default();
        let trees: Vec<Tree> = sections[1..].iter().map(tree).collect::<Result<_>>()?;
        let tree_group = (0..trees.len()).map(|i| i % per_iteration).collect();
        let model = Self {
            format_version: GBDT_FORMAT_VERSION,
            objective,
            num_feature,
            feature_names,
            // LightGBM folds its starting score into the first trees.
            base_margin: vec![0.0; per_iteration],
            trees,
            tree_group,
        };
        model.validate()?;
        Ok(model)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_keep_every_f32_on_its_side() {
        for t in [0.1f64, -0.10492220237580056, 1.0, 0.0, -3.5, 1e-40, 1e30] {
            let s = strict_threshold(t);
            for x in [
                t as f32,
                (t as f32).next_up(),
                (t as f32).next_down(),
                s,
                s.next_down(),
            ] {
                assert_eq!(f64::from(x) <= t, x < s, "threshold {t}, value {x}");
            }
        }
    }
}
