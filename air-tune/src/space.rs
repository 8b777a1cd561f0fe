//! Search spaces: domains (`uniform`, `randint`, `choice`, `grid_search`, `sample_from`, ...)
//! nested anywhere in a JSON-like tree of constants.

use std::{collections::BTreeMap, fmt, sync::Arc};

use rand::{Rng, RngExt, SeedableRng, rngs::StdRng};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::error::{Result, TuneError};

/// One step of a path into a param space.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, serde::Deserialize)]
#[serde(untagged)]
pub enum Key {
    /// An object field.
    Field(String),
    /// An array element.
    Index(usize),
}

/// Where a value sits in a config (`params` → `max_depth`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct ParamPath(pub Vec<Key>);

impl fmt::Display for ParamPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("<root>");
        }
        for (i, k) in self.0.iter().enumerate() {
            match k {
                Key::Field(s) if i == 0 => write!(f, "{s}")?,
                Key::Field(s) => write!(f, ".{s}")?,
                Key::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

impl ParamPath {
    /// The value at this path in `config`, if any.
    pub fn get<'a>(&self, config: &'a Value) -> Option<&'a Value> {
        self.0.iter().try_fold(config, |v, k| match k {
            Key::Field(s) => v.get(s),
            Key::Index(i) => v.get(i),
        })
    }

    /// Sets the value at this path, creating objects on the way.
    pub fn set(&self, config: &mut Value, value: Value) {
        let mut cur = config;
        for k in &self.0 {
            cur = match k {
                Key::Field(s) => {
                    if !cur.is_object() {
                        *cur = Value::Object(Map::new());
                    }
                    match cur {
                        Value::Object(m) => m.entry(s.clone()).or_insert(Value::Null),
                        _ => return,
                    }
                }
                Key::Index(i) => {
                    if !cur.is_array() {
                        *cur = Value::Array(Vec::new());
                    }
                    match cur {
                        Value::Array(a) => {
                            if a.len() <= *i {
                                a.resize(*i + 1, Value::Null);
                            }
                            &mut a[*i]
                        }
                        _ => return,
                    }
                }
            };
        }
        *cur = value;
    }

    fn child(&self, k: Key) -> Self {
        let mut p = self.0.clone();
        p.push(k);
        Self(p)
    }
}

/// A closure over the partly sampled config (Ray's `sample_from(lambda spec: ...)`).
#[derive(Clone)]
pub struct SampleFn(Arc<dyn Fn(&Value) -> Value + Send + Sync>);

impl fmt::Debug for SampleFn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SampleFn(<closure>)")
    }
}

/// A distribution to sample one hyperparameter from.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Domain {
    /// A float in `[low, high)`.
    Uniform {
        /// Lower bound.
        low: f64,
        /// Upper bound (exclusive).
        high: f64,
    },
    /// `uniform` rounded to a multiple of `q`.
    QUniform {
        /// Lower bound.
        low: f64,
        /// Upper bound.
        high: f64,
        /// The increment.
        q: f64,
    },
    /// A float whose logarithm is uniform in `[log low, log high)`.
    LogUniform {
        /// Lower bound (> 0).
        low: f64,
        /// Upper bound.
        high: f64,
        /// The logarithm's base (10 in Ray).
        base: f64,
    },
    /// `loguniform` rounded to a multiple of `q`.
    QLogUniform {
        /// Lower bound (> 0).
        low: f64,
        /// Upper bound.
        high: f64,
        /// The increment.
        q: f64,
        /// The logarithm's base.
        base: f64,
    },
    /// An integer in `[low, high)` (upper bound exclusive, as in Ray).
    RandInt {
        /// Lower bound.
        low: i64,
        /// Upper bound (exclusive).
        high: i64,
    },
    /// An integer in `[low, high]` rounded to a multiple of `q` (quantisation makes the upper
    /// bound inclusive, as in Ray).
    QRandInt {
        /// Lower bound.
        low: i64,
        /// Upper bound (inclusive).
        high: i64,
        /// The increment.
        q: i64,
    },
    /// An integer whose logarithm is uniform, in `[low, high)`.
    LogRandInt {
        /// Lower bound (≥ 1).
        low: i64,
        /// Upper bound (exclusive).
        high: i64,
        /// The logarithm's base.
        base: f64,
    },
    /// A normal float.
    RandN {
        /// The mean.
        mean: f64,
        /// The standard deviation.
        sd: f64,
    },
    /// `randn` rounded to a multiple of `q`.
    QRandN {
        /// The mean.
        mean: f64,
        /// The standard deviation.
        sd: f64,
        /// The increment.
        q: f64,
    },
    /// One of the values, uniformly.
    Choice(Vec<Value>),
    /// Every one of the values: grid axes form a cross product.
    Grid(Vec<Value>),
    /// Computed from the rest of the config once it is sampled.
    SampleFrom(SampleFn),
}

fn num(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{x:.0}")
    } else {
        format!("{x}")
    }
}

impl fmt::Display for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |v: &[Value]| {
            v.iter()
                .map(Value::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        };
        match self {
            Self::Uniform { low, high } => write!(f, "uniform({}, {})", num(*low), num(*high)),
            Self::QUniform { low, high, q } => {
                write!(f, "quniform({}, {}, {})", num(*low), num(*high), num(*q))
            }
            Self::LogUniform { low, high, base } => {
                write!(f, "loguniform({low}, {high}, base={})", num(*base))
            }
            Self::QLogUniform { low, high, q, base } => {
                write!(f, "qloguniform({low}, {high}, {q}, base={})", num(*base))
            }
            Self::RandInt { low, high } => write!(f, "randint({low}, {high})"),
            Self::QRandInt { low, high, q } => write!(f, "qrandint({low}, {high}, {q})"),
            Self::LogRandInt { low, high, base } => {
                write!(f, "lograndint({low}, {high}, base={})", num(*base))
            }
            Self::RandN { mean, sd } => write!(f, "randn({}, {})", num(*mean), num(*sd)),
            Self::QRandN { mean, sd, q } => {
                write!(f, "qrandn({}, {}, {})", num(*mean), num(*sd), num(*q))
            }
            Self::Choice(v) => write!(f, "choice([{}])", list(v)),
            Self::Grid(v) => write!(f, "grid_search([{}])", list(v)),
            Self::SampleFrom(_) => f.write_str("sample_from(<closure>)"),
        }
    }
}

/// A numeric view of a domain for model-based searchers.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Numeric {
    /// A float in `[low, high]`, searched in log space when `log`, rounded to `step` if any.
    Float {
        low: f64,
        high: f64,
        log: bool,
        step: Option<f64>,
    },
    /// An integer in `[low, high]` (inclusive), stepping by `step`.
    Int {
        low: i64,
        high: i64,
        log: bool,
        step: i64,
    },
    /// An index into `n` choices.
    Categorical { n: usize },
}

impl Domain {
    /// Checks bounds and values (called by the tuner once, before anything runs).
    pub fn validate(&self) -> std::result::Result<(), String> {
        let finite = |xs: &[f64]| xs.iter().all(|x| x.is_finite());
        match self {
            Self::Uniform { low, high } | Self::QUniform { low, high, .. }
                if !(finite(&[*low, *high]) && low < high) =>
            {
                Err("the lower bound must be finite and below the upper bound".to_owned())
            }
            Self::LogUniform { low, high, base }
            | Self::QLogUniform {
                low, high, base, ..
            } if !(finite(&[*low, *high, *base]) && *low > 0.0 && low < high && *base > 1.0) => {
                Err("log domains need 0 < lower < upper and a base above 1".to_owned())
            }
            Self::QUniform { q, .. } | Self::QLogUniform { q, .. } | Self::QRandN { q, .. }
                if !(q.is_finite() && *q > 0.0) =>
            {
                Err("the increment q must be positive".to_owned())
            }
            Self::RandInt { low, high } if low >= high => Err(
                "the lower bound must be below the (exclusive) upper bound, e.g. randint(1, 9) \
                 for 1..=8"
                    .to_owned(),
            ),
            Self::QRandInt { low, high, q } if low > high || *q <= 0 => {
                Err("qrandint needs lower ≤ upper and a positive increment".to_owned())
            }
            Self::LogRandInt { low, high, base } if !(*low >= 1 && low < high && *base > 1.0) => {
                Err("lograndint needs 1 ≤ lower < upper and a base above 1".to_owned())
            }
            Self::RandN { mean, sd } | Self::QRandN { mean, sd, .. }
                if !(finite(&[*mean, *sd]) && *sd > 0.0) =>
            {
                Err("randn needs a finite mean and a positive standard deviation".to_owned())
            }
            Self::Choice(v) if v.is_empty() => Err("choice needs at least one value".to_owned()),
            Self::Grid(v) if v.is_empty() => Err("grid_search needs at least one value".to_owned()),
            _ => Ok(()),
        }
    }

    /// Draws one value (grid and sample_from domains are resolved by the generator).
    pub fn sample(&self, rng: &mut dyn Rng) -> Value {
        let u = |rng: &mut dyn Rng| rng.random::<f64>();
        let quant = |x: f64, q: f64| (x / q).round() * q;
        match self {
            Self::Uniform { low, high } => Value::from(low + (high - low) * u(rng)),
            Self::QUniform { low, high, q } => {
                Value::from(quant(low + (high - low) * u(rng), *q).clamp(*low, *high))
            }
            Self::LogUniform { low, high, base } => {
                Value::from(log_uniform(rng, *low, *high, *base))
            }
            Self::QLogUniform { low, high, q, base } => {
                Value::from(quant(log_uniform(rng, *low, *high, *base), *q).clamp(*low, *high))
            }
            Self::RandInt { low, high } => Value::from(rng.random_range(*low..*high)),
            Self::QRandInt { low, high, q } => {
                let x = rng.random_range(*low..=*high);
                let r = ((x as f64 / *q as f64).round() as i64) * q;
                Value::from(r.clamp(*low, *high))
            }
            Self::LogRandInt { low, high, base } => {
                let x = log_uniform(rng, *low as f64, *high as f64, *base).floor() as i64;
                Value::from(x.clamp(*low, *high - 1))
            }
            Self::RandN { mean, sd } => Value::from(mean + sd * normal(rng)),
            Self::QRandN { mean, sd, q } => Value::from(quant(mean + sd * normal(rng), *q)),
            Self::Choice(v) | Self::Grid(v) => v[rng.random_range(0..v.len())].clone(),
            Self::SampleFrom(_) => Value::Null,
        }
    }

    pub(crate) fn numeric(&self) -> Option<Numeric> {
        Some(match self {
            Self::Uniform { low, high } => Numeric::Float {
                low: *low,
                high: *high,
                log: false,
                step: None,
            },
            Self::QUniform { low, high, q } => Numeric::Float {
                low: *low,
                high: *high,
                log: false,
                step: Some(*q),
            },
            Self::LogUniform { low, high, .. } => Numeric::Float {
                low: *low,
                high: *high,
                log: true,
                step: None,
            },
            Self::QLogUniform { low, high, q, .. } => Numeric::Float {
                low: *low,
                high: *high,
                log: true,
                step: Some(*q),
            },
            Self::RandInt { low, high } => Numeric::Int {
                low: *low,
                high: *high - 1,
                log: false,
                step: 1,
            },
            Self::QRandInt { low, high, q } => Numeric::Int {
                low: *low,
                high: *high,
                log: false,
                step: *q,
            },
            Self::LogRandInt { low, high, .. } => Numeric::Int {
                low: *low,
                high: *high - 1,
                log: true,
                step: 1,
            },
            Self::Choice(v) => Numeric::Categorical { n: v.len() },
            Self::RandN { .. } | Self::QRandN { .. } | Self::Grid(_) | Self::SampleFrom(_) => {
                return None;
            }
        })
    }

    /// The config value for a searcher's numeric pick (`x` in the domain's own scale, or a
    /// choice index).
    pub(crate) fn decode(&self, x: f64) -> Value {
        match (self, self.numeric()) {
            (Self::Choice(v), _) => v[(x.round().max(0.0) as usize).min(v.len() - 1)].clone(),
            (
                _,
                Some(Numeric::Float {
                    low, high, step, ..
                }),
            ) => {
                let x = match step {
                    Some(q) => (x / q).round() * q,
                    None => x,
                };
                Value::from(x.clamp(low, high))
            }
            (
                _,
                Some(Numeric::Int {
                    low, high, step, ..
                }),
            ) => {
                let k = ((x - low as f64) / step as f64).round() as i64;
                Value::from((low + k * step).clamp(low, high))
            }
            _ => Value::Null,
        }
    }

    /// The numeric coordinate of a config value (the inverse of `decode`), for observations.
    pub(crate) fn encode(&self, v: &Value) -> Option<f64> {
        match self {
            Self::Choice(vals) => vals.iter().position(|c| c == v).map(|i| i as f64),
            _ => v.as_f64(),
        }
    }
}

fn log_uniform(rng: &mut dyn Rng, low: f64, high: f64, base: f64) -> f64 {
    let (a, b) = (low.log(base), high.log(base));
    base.powf(a + (b - a) * rng.random::<f64>())
}

/// A standard normal draw (Box–Muller).
pub(crate) fn normal(rng: &mut dyn Rng) -> f64 {
    let u1 = 1.0 - rng.random::<f64>();
    let u2 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// A param space: constants, domains, and objects/arrays of them, to any depth.
///
/// Build it with [`space!`](crate::space!) or [`Space::object`] and the domain functions
/// ([`uniform`], [`randint`], [`grid_search`], ...).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Space {
    /// A value every trial gets as is.
    Const(Value),
    /// A value drawn per trial.
    Domain(Domain),
    /// Named sub-spaces.
    Object(BTreeMap<String, Space>),
    /// Positional sub-spaces.
    Array(Vec<Space>),
}

impl Default for Space {
    fn default() -> Self {
        Self::Object(BTreeMap::new())
    }
}

impl Space {
    /// An object of sub-spaces.
    pub fn object<K: Into<String>, S: Into<Space>>(
        items: impl IntoIterator<Item = (K, S)>,
    ) -> Self {
        Self::Object(
            items
                .into_iter()
                .map(|(k, s)| (k.into(), s.into()))
                .collect(),
        )
    }

    /// An array of sub-spaces.
    pub fn array<S: Into<Space>>(items: impl IntoIterator<Item = S>) -> Self {
        Self::Array(items.into_iter().map(Into::into).collect())
    }

    /// Adds (or replaces) field `key` of an object space.
    pub fn with(mut self, key: &str, value: impl Into<Space>) -> Self {
        if !matches!(self, Self::Object(_)) {
            self = Self::Object(BTreeMap::new());
        }
        if let Self::Object(m) = &mut self {
            m.insert(key.to_owned(), value.into());
        }
        self
    }

    /// Every domain with its path, in a fixed order (fields sorted, arrays by index).
    pub fn domains(&self) -> Vec<(ParamPath, &Domain)> {
        let mut out = Vec::new();
        self.walk(&ParamPath::default(), &mut out);
        out
    }

    fn walk<'a>(&'a self, path: &ParamPath, out: &mut Vec<(ParamPath, &'a Domain)>) {
        match self {
            Self::Const(_) => {}
            Self::Domain(d) => out.push((path.clone(), d)),
            Self::Object(m) => {
                for (k, s) in m {
                    s.walk(&path.child(Key::Field(k.clone())), out);
                }
            }
            Self::Array(a) => {
                for (i, s) in a.iter().enumerate() {
                    s.walk(&path.child(Key::Index(i)), out);
                }
            }
        }
    }

    /// Checks every domain, naming the first invalid one.
    pub fn validate(&self) -> Result<()> {
        for (path, d) in self.domains() {
            d.validate().map_err(|reason| TuneError::InvalidSpace {
                path: path.to_string(),
                domain: d.to_string(),
                reason,
            })?;
        }
        Ok(())
    }

    /// The constants, with `null` where domains sit.
    pub fn skeleton(&self) -> Value {
        match self {
            Self::Const(v) => v.clone(),
            Self::Domain(_) => Value::Null,
            Self::Object(m) => {
                Value::Object(m.iter().map(|(k, s)| (k.clone(), s.skeleton())).collect())
            }
            Self::Array(a) => Value::Array(a.iter().map(Space::skeleton).collect()),
        }
    }

    /// The grid axes in order, and how many grid points their cross product has.
    pub fn grid(&self) -> (Vec<(ParamPath, &[Value])>, usize) {
        let axes: Vec<(ParamPath, &[Value])> = self
            .domains()
            .into_iter()
            .filter_map(|(p, d)| match d {
                Domain::Grid(v) => Some((p, v.as_slice())),
                _ => None,
            })
            .collect();
        let n = axes.iter().map(|(_, v)| v.len()).product();
        (axes, n)
    }

    /// A config: the constants, `pick` for every domain other than `sample_from`, then each
    /// `sample_from` closure (in path order) over the config built so far.
    pub fn build(&self, pick: &mut dyn FnMut(&ParamPath, &Domain) -> Value) -> Value {
        let mut config = self.skeleton();
        let domains = self.domains();
        for (path, d) in &domains {
            if !matches!(d, Domain::SampleFrom(_)) {
                path.set(&mut config, pick(path, d));
            }
        }
        for (path, d) in &domains {
            if let Domain::SampleFrom(SampleFn(f)) = d {
                let v = f(&config);
                path.set(&mut config, v);
            }
        }
        config
    }

    /// Grid point `g` (of [`Space::grid`]'s count) with every other domain drawn from `rng`;
    /// the first grid axis varies slowest.
    pub fn variant(&self, g: usize, rng: &mut dyn Rng) -> Value {
        let (axes, _) = self.grid();
        let mut picks: BTreeMap<ParamPath, Value> = BTreeMap::new();
        let mut rest = g;
        for (path, values) in axes.iter().rev() {
            picks.insert(path.clone(), values[rest % values.len()].clone());
            rest /= values.len();
        }
        self.build(&mut |path, d| match picks.get(path) {
            Some(v) => v.clone(),
            None => d.sample(rng),
        })
    }

    /// A JSON description (domains written as `{"$domain": "uniform(0, 1)"}`).
    pub fn describe(&self) -> Value {
        match self {
            Self::Const(v) => v.clone(),
            Self::Domain(d) => serde_json::json!({ "$domain": d.to_string() }),
            Self::Object(m) => {
                Value::Object(m.iter().map(|(k, s)| (k.clone(), s.describe())).collect())
            }
            Self::Array(a) => Value::Array(a.iter().map(Space::describe).collect()),
        }
    }
}

/// A deterministic RNG for variant `index` of a run seeded with `seed`: every trial's draws are
/// independent of how many trials ran before it, so a restored experiment continues exactly.
pub(crate) fn variant_rng(seed: u64, stream: u64, index: u64) -> StdRng {
    let mut z = seed
        ^ stream.wrapping_mul(0xD1B5_4A32_D192_ED03)
        ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    StdRng::seed_from_u64(z ^ (z >> 31))
}

impl From<Value> for Space {
    fn from(v: Value) -> Self {
        Self::Const(v)
    }
}

impl From<Domain> for Space {
    fn from(d: Domain) -> Self {
        Self::Domain(d)
    }
}

macro_rules! const_from {
    ($($t:ty),*) => {$(
        impl From<$t> for Space {
            fn from(v: $t) -> Self {
                Self::Const(Value::from(v))
            }
        }
    )*};
}
const_from!(f64, f32, i64, i32, u32, u64, usize, bool, &str, String);

/// Builds a [`Space`] with JSON-like syntax whose leaves are any expression convertible into a
/// `Space` (a constant or a domain):
///
/// ```
/// use air_tune::{choice, loguniform, randint, space};
/// let space = space!({
///     "params": { "max_depth": randint(1, 9), "eta": loguniform(1e-3, 0.3), "objective": "binary:logistic" },
///     "num_boost_round": choice([10, 20]),
/// });
/// assert_eq!(space.domains().len(), 3);
/// ```
#[macro_export]
macro_rules! space {
    ({ $($body:tt)* }) => { $crate::space!(@object [] $($body)*) };
    (@object [$($out:tt)*]) => { $crate::Space::object::<&str, $crate::Space>([$($out)*]) };
    (@object [$($out:tt)*] $key:literal : { $($inner:tt)* } , $($rest:tt)*) => {
        $crate::space!(@object [$($out)* ($key, $crate::space!({ $($inner)* })),] $($rest)*)
    };
    (@object [$($out:tt)*] $key:literal : { $($inner:tt)* }) => {
        $crate::space!(@object [$($out)* ($key, $crate::space!({ $($inner)* })),])
    };
    (@object [$($out:tt)*] $key:literal : $value:expr , $($rest:tt)*) => {
        $crate::space!(@object [$($out)* ($key, $crate::Space::from($value)),] $($rest)*)
    };
    (@object [$($out:tt)*] $key:literal : $value:expr) => {
        $crate::space!(@object [$($out)* ($key, $crate::Space::from($value)),])
    };
    ($value:expr) => { $crate::Space::from($value) };
}

/// A float uniform in `[low, high)`.
pub fn uniform(low: f64, high: f64) -> Domain {
    Domain::Uniform { low, high }
}

/// `uniform(low, high)` rounded to a multiple of `q`.
pub fn quniform(low: f64, high: f64, q: f64) -> Domain {
    Domain::QUniform { low, high, q }
}

/// A float whose base-10 logarithm is uniform (use [`Domain::LogUniform`] for another base).
pub fn loguniform(low: f64, high: f64) -> Domain {
    Domain::LogUniform {
        low,
        high,
        base: 10.0,
    }
}

/// `loguniform(low, high)` rounded to a multiple of `q`.
pub fn qloguniform(low: f64, high: f64, q: f64) -> Domain {
    Domain::QLogUniform {
        low,
        high,
        q,
        base: 10.0,
    }
}

/// An integer in `[low, high)`: `randint(1, 9)` draws 1..=8, as in Ray.
pub fn randint(low: i64, high: i64) -> Domain {
    Domain::RandInt { low, high }
}

/// An integer in `[low, high]` rounded to a multiple of `q` (upper bound inclusive, as in Ray).
pub fn qrandint(low: i64, high: i64, q: i64) -> Domain {
    Domain::QRandInt { low, high, q }
}

/// An integer in `[low, high)` whose base-10 logarithm is uniform.
pub fn lograndint(low: i64, high: i64) -> Domain {
    Domain::LogRandInt {
        low,
        high,
        base: 10.0,
    }
}

/// A normal float with `mean` and standard deviation `sd`.
pub fn randn(mean: f64, sd: f64) -> Domain {
    Domain::RandN { mean, sd }
}

/// `randn(mean, sd)` rounded to a multiple of `q`.
pub fn qrandn(mean: f64, sd: f64, q: f64) -> Domain {
    Domain::QRandN { mean, sd, q }
}

/// One of `values`, uniformly.
pub fn choice<V: Into<Value>>(values: impl IntoIterator<Item = V>) -> Domain {
    Domain::Choice(values.into_iter().map(Into::into).collect())
}

/// Every one of `values`; several grid axes form their cross product, repeated `num_samples`
/// times.
pub fn grid_search<V: Into<Value>>(values: impl IntoIterator<Item = V>) -> Domain {
    Domain::Grid(values.into_iter().map(Into::into).collect())
}

/// A value computed from the config once every other domain is sampled.
pub fn sample_from(f: impl Fn(&Value) -> Value + Send + Sync + 'static) -> Domain {
    Domain::SampleFrom(SampleFn(Arc::new(f)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_display_and_set() {
        let p = ParamPath(vec![
            Key::Field("a".into()),
            Key::Index(2),
            Key::Field("b".into()),
        ]);
        assert_eq!(p.to_string(), "a[2].b");
        let mut v = json!({});
        p.set(&mut v, json!(5));
        assert_eq!(v, json!({"a": [null, null, {"b": 5}]}));
        assert_eq!(p.get(&v), Some(&json!(5)));
    }

    #[test]
    fn domains_sample_within_bounds() {
        let mut rng = variant_rng(1, 0, 0);
        for _ in 0..2000 {
            let x = uniform(-1.0, 2.0).sample(&mut rng).as_f64().unwrap();
            assert!((-1.0..2.0).contains(&x));
            let x = loguniform(1e-4, 1e-2).sample(&mut rng).as_f64().unwrap();
            assert!((1e-4..=1e-2).contains(&x));
            let x = randint(1, 9).sample(&mut rng).as_i64().unwrap();
            assert!((1..9).contains(&x));
            let x = qrandint(0, 10, 5).sample(&mut rng).as_i64().unwrap();
            assert!([0, 5, 10].contains(&x));
            let x = lograndint(1, 100).sample(&mut rng).as_i64().unwrap();
            assert!((1..100).contains(&x));
            let x = quniform(0.0, 1.0, 0.25).sample(&mut rng).as_f64().unwrap();
            assert!([0.0, 0.25, 0.5, 0.75, 1.0].contains(&x));
            let x = qrandn(0.0, 1.0, 0.5).sample(&mut rng).as_f64().unwrap();
            assert_eq!((x * 2.0).fract(), 0.0);
        }
        // randint's upper bound is exclusive, and every value below it appears.
        let seen: std::collections::BTreeSet<i64> = (0..500)
            .map(|_| randint(1, 4).sample(&mut rng).as_i64().unwrap())
            .collect();
        assert_eq!(seen.into_iter().collect::<Vec<_>>(), vec![1, 2, 3]);
    }

    #[test]
    fn normal_has_its_moments() {
        let mut rng = variant_rng(7, 0, 0);
        let xs: Vec<f64> = (0..20_000)
            .map(|_| randn(3.0, 2.0).sample(&mut rng).as_f64().unwrap())
            .collect();
        let mean = xs.iter().sum::<f64>() / xs.len() as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / xs.len() as f64;
        assert!((mean - 3.0).abs() < 0.05, "{mean}");
        assert!((var.sqrt() - 2.0).abs() < 0.05, "{var}");
    }

    #[test]
    fn invalid_domains_are_named() {
        let s = space!({"params": {"max_depth": randint(9, 1)}});
        let e = s.validate().unwrap_err().to_string();
        assert!(
            e.contains("params.max_depth") && e.contains("randint(9, 1)"),
            "{e}"
        );
        for d in [
            uniform(1.0, 1.0),
            loguniform(0.0, 1.0),
            quniform(0.0, 1.0, 0.0),
            choice(Vec::<i64>::new()),
            grid_search(Vec::<i64>::new()),
            randn(0.0, -1.0),
            lograndint(0, 10),
            qrandint(5, 1, 1),
        ] {
            assert!(d.validate().is_err(), "{d}");
        }
    }

    #[test]
    fn grid_cross_product_and_sample_from() {
        let s = space!({
            "a": grid_search([1, 2, 3]),
            "b": { "c": grid_search(["x", "y"]) },
            "d": sample_from(|c| json!(c["a"].as_i64().unwrap() * 10)),
            "e": 0.5,
        });
        let (axes, n) = s.grid();
        assert_eq!((axes.len(), n), (2, 6));
        let mut rng = variant_rng(0, 0, 0);
        let all: Vec<Value> = (0..n).map(|g| s.variant(g, &mut rng)).collect();
        assert_eq!(all[0], json!({"a": 1, "b": {"c": "x"}, "d": 10, "e": 0.5}));
        assert_eq!(all[1], json!({"a": 1, "b": {"c": "y"}, "d": 10, "e": 0.5}));
        assert_eq!(all[5], json!({"a": 3, "b": {"c": "y"}, "d": 30, "e": 0.5}));
    }

    #[test]
    fn numeric_round_trip() {
        let d = qrandint(2, 10, 2);
        assert_eq!(d.decode(5.2), json!(6));
        let d = randint(1, 9);
        assert_eq!(d.decode(100.0), json!(8));
        let d = choice(["a", "b"]);
        assert_eq!(d.decode(0.9), json!("b"));
        assert_eq!(d.encode(&json!("b")), Some(1.0));
    }
}
