//! Reading XGBoost's JSON model format (`Booster.save_model("model.json")`, XGBoost 1.6–3.x), so
//! a model trained in Python XGBoost predicts here.

use serde_json::Value;

use super::model::{GBDT_FORMAT_VERSION, GbdtModel, Objective, Tree};
use crate::{TrainError, error::Result};

fn bad(reason: impl Into<String>) -> TrainError {
    TrainError::model("reading an XGBoost JSON model", reason.into())
}

fn at<'a>(v: &'a Value, path: &[&str]) -> Result<&'a Value> {
    let mut cur = v;
    for (i, key) in path.iter().enumerate() {
        cur = cur
            .get(key)
            .ok_or_else(|| bad(format!("missing field {}", path[..=i].join("."))))?;
    }
    Ok(cur)
}

/// XGBoost writes most scalars as strings (`"6"`, `"5E-1"`).
fn number(v: &Value, what: &str) -> Result<f64> {
    match v {
        Value::Number(n) => n
            .as_f64()
            .ok_or_else(|| bad(format!("{what}: {n} is not a number"))),
        Value::String(s) => s
            .trim()
            .parse::<f64>()
            .map_err(|_| bad(format!("{what}: {s:?} is not a number"))),
        other => Err(bad(format!("{what}: {other} is not a number"))),
    }
}

/// `"5E-1"` or, since XGBoost 2.1, a vector `"[5E-1]"` / `"[a,b,c]"`.
fn numbers(v: &Value, what: &str) -> Result<Vec<f64>> {
    let text = match v {
        Value::String(s) => s.trim(),
        other => return Ok(vec![number(other, what)?]),
    };
    let inner = text
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(text);
    inner
        .split(',')
        .map(|p| {
            p.trim()
                .parse::<f64>()
                .map_err(|_| bad(format!("{what}: {p:?} is not a number")))
        })
        .collect()
}

fn array<'a>(tree: &'a Value, key: &str, index: usize) -> Result<&'a Vec<Value>> {
    tree.get(key)
        .and_then(Value::as_array)
        .ok_or_else(|| bad(format!("tree {index}: missing array {key}")))
}

fn floats(tree: &Value, key: &str, index: usize) -> Result<Vec<f32>> {
    array(tree, key, index)?
        .iter()
        .map(|v| number(v, key).map(|x| x as f32))
        .collect()
}

fn ints(tree: &Value, key: &str, index: usize) -> Result<Vec<i64>> {
    array(tree, key, index)?
        .iter()
        .map(|v| {
            v.as_i64()
                .or_else(|| v.as_bool().map(i64::from))
                .ok_or_else(|| bad(format!("tree {index}: {key} holds {v}, expected integers")))
        })
        .collect()
}

/// A tree's categorical splits: XGBoost lists, for each categorical node, a segment of its
/// `categories` array (the codes that go right).
fn category_sets(v: &Value, index: usize, n: usize) -> Result<Vec<Option<Vec<u32>>>> {
    let types = ints(v, "split_type", index).unwrap_or_default();
    if !types.iter().any(|&t| t != 0) {
        return Ok(Vec::new());
    }
    let nodes = ints(v, "categories_nodes", index)?;
    let segments = ints(v, "categories_segments", index)?;
    let sizes = ints(v, "categories_sizes", index)?;
    let cats = ints(v, "categories", index)?;
    if nodes.len() != segments.len() || nodes.len() != sizes.len() {
        return Err(bad(format!(
            "tree {index}: {} categorical nodes with {} segments and {} sizes",
            nodes.len(),
            segments.len(),
            sizes.len()
        )));
    }
    let mut sets: Vec<Option<Vec<u32>>> = vec![None; n];
    for ((node, start), size) in nodes.iter().zip(&segments).zip(&sizes) {
        let (node, start, size) = (*node as usize, *start as usize, *size as usize);
        let set = cats.get(start..start + size).ok_or_else(|| {
            bad(format!(
                "tree {index}: node {node}'s categories {start}..{} run past the {} listed",
                start + size,
                cats.len()
            ))
        })?;
        let mut set: Vec<u32> = set
            .iter()
            .map(|c| u32::try_from(*c).map_err(|_| bad(format!("tree {index}: category {c}"))))
            .collect::<Result<_>>()?;
        set.sort_unstable();
        set.dedup();
        *sets
            .get_mut(node)
            .ok_or_else(|| bad(format!("tree {index}: categorical node {node} of {n}")))? =
            Some(set);
    }
    for (i, t) in types.iter().enumerate() {
        if *t != 0 && sets.get(i).is_none_or(Option::is_none) {
            return Err(bad(format!(
                "tree {index}: node {i} is a categorical split without categories"
            )));
        }
    }
    Ok(sets)
}

fn tree(v: &Value, index: usize) -> Result<Tree> {
    let left: Vec<i32> = ints(v, "left_children", index)?
        .into_iter()
        .map(|x| x as i32)
        .collect();
    let right: Vec<i32> = ints(v, "right_children", index)?
        .into_iter()
        .map(|x| x as i32)
        .collect();
    let feature: Vec<u32> = ints(v, "split_indices", index)?
        .into_iter()
        .map(|x| u32::try_from(x).map_err(|_| bad(format!("tree {index}: split index {x}"))))
        .collect::<Result<_>>()?;
    let conditions = floats(v, "split_conditions", index)?;
    let default_left: Vec<bool> = ints(v, "default_left", index)?
        .into_iter()
        .map(|x| x != 0)
        .collect();
    let gain = floats(v, "loss_changes", index).unwrap_or_else(|_| vec![0.0; left.len()]);
    let cover = floats(v, "sum_hessian", index).unwrap_or_else(|_| vec![0.0; left.len()]);
    // XGBoost keeps a leaf's value in its split condition slot.
    let leaf_value: Vec<f32> = left
        .iter()
        .zip(&conditions)
        .map(|(&l, &c)| if l < 0 { c } else { 0.0 })
        .collect();
    let threshold: Vec<f32> = left
        .iter()
        .zip(&conditions)
        .map(|(&l, &c)| if l < 0 { 0.0 } else { c })
        .collect();
    let gain = left
        .iter()
        .zip(gain)
        .map(|(&l, g)| if l < 0 { 0.0 } else { g })
        .collect();
    let categories = category_sets(v, index, left.len())?;
    Ok(Tree {
        categories,
        left,
        right,
        feature,
        threshold,
        default_left,
        leaf_value,
        gain,
        cover,
    })
}

impl GbdtModel {
    /// Reads a model file saved by XGBoost as JSON (`booster.save_model("model.json")`); see
    /// [`from_xgboost_json`](Self::from_xgboost_json). A model saved from a NumPy array has no
    /// feature names: name them with [`with_feature_names`](Self::with_feature_names), or its
    /// predictor reads columns `f0`, `f1`, ... (XGBoost's default names).
    pub fn from_xgboost_json_file(path: impl AsRef<std::path::Path>) -> Result<Self> {
        Self::read_file(path.as_ref(), Self::from_xgboost_json)
    }

    /// The model with its features named `names` (one per feature, in the model's order): its
    /// predictor then reads the columns of those names.
    pub fn with_feature_names<S: AsRef<str>>(
        mut self,
        names: impl IntoIterator<Item = S>,
    ) -> Result<Self> {
        let names: Vec<String> = names.into_iter().map(|n| n.as_ref().to_owned()).collect();
        if names.len() != self.num_feature {
            return Err(TrainError::InvalidConfig {
                field: "feature_names",
                value: format!("{} names", names.len()),
                expected: format!("one name per feature: the model has {}", self.num_feature),
            });
        }
        self.feature_names = names;
        Ok(self)
    }

    /// Reads a model saved by XGBoost as JSON (`booster.save_model("model.json")`).
    ///
    /// Supported: the `gbtree` booster with numeric and categorical splits (a model trained
    /// with `enable_categorical=True`: its categorical features are read as category codes,
    /// pandas' `cat.codes`) and the objectives of [`Objective`] (their parameters,
    /// `huber_slope` and Poisson's `max_delta_step`, are read too).
    /// Anything else (dart, categorical splits, other objectives) is an error naming it.
    pub fn from_xgboost_json(bytes: &[u8]) -> Result<Self> {
        let root: Value = serde_json::from_slice(bytes).map_err(|e| {
            bad(format!(
                "not JSON ({e}); expected the file XGBoost's save_model writes with a .json name"
            ))
        })?;
        let learner = at(&root, &["learner"])?;
        let params = at(learner, &["learner_model_param"])?;
        let num_feature = number(at(params, &["num_feature"])?, "num_feature")? as usize;
        let num_class = params
            .get("num_class")
            .map(|v| number(v, "num_class"))
            .transpose()?
            .unwrap_or(0.0) as usize;
        let name = at(learner, &["objective", "name"])?
            .as_str()
            .ok_or_else(|| bad("objective.name is not a string"))?;
        let objective_param = |section: &str, key: &str, default: f64| -> Result<f64> {
            match learner
                .get("objective")
                .and_then(|o| o.get(section))
                .and_then(|p| p.get(key))
            {
                Some(v) => number(v, key),
                None => Ok(default),
            }
        };
        let objective = match name {
            "reg:squarederror" | "reg:linear" => Objective::SquaredError,
            "reg:logistic" => Objective::RegLogistic,
            "binary:logistic" => Objective::BinaryLogistic,
            "binary:logitraw" => Objective::BinaryLogitRaw,
            "multi:softprob" if num_class >= 2 => Objective::MultiSoftprob { num_class },
            "multi:softmax" if num_class >= 2 => Objective::MultiSoftmax { num_class },
            "reg:absoluteerror" => Objective::AbsoluteError,
            "reg:pseudohubererror" => Objective::PseudoHuber {
                huber_slope: objective_param("pseudo_huber_param", "huber_slope", 1.0)?,
            },
            "count:poisson" => Objective::Poisson {
                max_delta_step: objective_param("poisson_regression_param", "max_delta_step", 0.7)?,
            },
            other => {
                return Err(bad(format!(
                    "objective {other:?} is not supported; expected one of reg:squarederror, \
                     reg:logistic, reg:absoluteerror, reg:pseudohubererror, count:poisson, \
                     binary:logistic, binary:logitraw, multi:softprob or multi:softmax (with \
                     num_class ≥ 2)"
                )));
            }
        };
        let booster = at(learner, &["gradient_booster"])?;
        let kind = booster
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("gbtree");
        if kind != "gbtree" {
            return Err(bad(format!(
                "booster {kind:?} is not supported; expected gbtree"
            )));
        }
        let model = at(booster, &["model"])?;
        let trees: Vec<Tree> = at(model, &["trees"])?
            .as_array()
            .ok_or_else(|| bad("model.trees is not an array"))?
            .iter()
            .enumerate()
            .map(|(i, t)| tree(t, i))
            .collect::<Result<_>>()?;
        let tree_group: Vec<usize> = at(model, &["tree_info"])?
            .as_array()
            .ok_or_else(|| bad("model.tree_info is not an array"))?
            .iter()
            .map(|v| {
                v.as_u64()
                    .map(|g| g as usize)
                    .ok_or_else(|| bad(format!("tree_info holds {v}")))
            })
            .collect::<Result<_>>()?;
        let groups = objective.num_groups();
        let mut base: Vec<f64> = numbers(at(params, &["base_score"])?, "base_score")?;
        if base.len() == 1 && groups > 1 {
            base = vec![base[0]; groups];
        }
        let base_margin = base
            .into_iter()
            .map(|b| objective.prob_to_margin(b as f32))
            .collect();
        let feature_names = learner
            .get("feature_names")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        let model = Self {
            format_version: GBDT_FORMAT_VERSION,
            objective,
            num_feature,
            feature_names,
            base_margin,
            trees,
            tree_group,
        };
        model.validate()?;
        Ok(model)
    }
}
