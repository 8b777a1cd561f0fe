//! [`Resources`]: what a worker, a trial or a tuner's pool holds.

use std::{
    collections::BTreeMap,
    fmt,
    ops::{AddAssign, SubAssign},
};

use serde::{Deserialize, Serialize};

use crate::TrainError;

/// CPUs, GPUs and named custom resources (Ray's resource dicts; serialised in their form,
/// `{"CPU": 1.0, "GPU": 0.0, "memory": ...}`, so trial configs written for Ray read the same).
///
/// ```
/// use air_train::Resources;
///
/// let worker = Resources::cpu(2.0).with_gpu(1.0);
/// let pool = Resources::cpu(4.0).with_gpu(1.0);
/// assert!(worker.fits_within(&Resources::new(), &pool));
/// assert!(!worker.fits_within(&worker, &pool)); // a second one finds no GPU
/// assert_eq!(serde_json::to_value(&worker)?, serde_json::json!({"CPU": 2.0, "GPU": 1.0}));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Resources {
    /// CPUs (fractions allowed).
    #[serde(rename = "CPU", default)]
    pub cpu: f64,
    /// GPUs (fractions allowed).
    #[serde(rename = "GPU", default)]
    pub gpu: f64,
    /// Any other named resource.
    #[serde(flatten)]
    pub custom: BTreeMap<String, f64>,
}

impl Resources {
    /// Nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// `n` CPUs.
    pub fn cpu(n: f64) -> Self {
        Self {
            cpu: n,
            ..Self::default()
        }
    }

    /// With `n` CPUs.
    pub fn with_cpu(mut self, n: f64) -> Self {
        self.cpu = n;
        self
    }

    /// With `n` GPUs.
    pub fn with_gpu(mut self, n: f64) -> Self {
        self.gpu = n;
        self
    }

    /// With `amount` of the custom resource `name`.
    pub fn with_custom(mut self, name: &str, amount: f64) -> Self {
        self.custom.insert(name.to_owned(), amount);
        self
    }

    /// Every amount as (name, amount): `CPU`, `GPU`, then the custom ones.
    pub fn amounts(&self) -> impl Iterator<Item = (&str, f64)> {
        [("CPU", self.cpu), ("GPU", self.gpu)]
            .into_iter()
            .chain(self.custom.iter().map(|(k, v)| (k.as_str(), *v)))
    }

    /// Checks that every amount is finite and non-negative; `field` names the setting in the
    /// error.
    pub fn validate(&self, field: &'static str) -> Result<(), TrainError> {
        match self.amounts().find(|(_, v)| !(v.is_finite() && *v >= 0.0)) {
            Some((name, v)) => Err(TrainError::InvalidConfig {
                field,
                value: format!("{name}={v}"),
                expected: "finite, non-negative amounts".to_owned(),
            }),
            None => Ok(()),
        }
    }

    /// Every amount times `n`.
    pub fn times(&self, n: f64) -> Self {
        Self {
            cpu: self.cpu * n,
            gpu: self.gpu * n,
            custom: self
                .custom
                .iter()
                .map(|(k, v)| (k.clone(), v * n))
                .collect(),
        }
    }

    /// Whether these fit in `pool` next to `used` (a custom resource the pool lacks has 0).
    pub fn fits_within(&self, used: &Self, pool: &Self) -> bool {
        // A tolerance for sums of fractions (0.1 + 0.2 of a GPU).
        const SLACK: f64 = 1e-9;
        let amount = |r: &Self, name: &str| match name {
            "CPU" => r.cpu,
            "GPU" => r.gpu,
            other => r.custom.get(other).copied().unwrap_or(0.0),
        };
        self.amounts().all(|(name, need)| {
            need <= 0.0 || amount(used, name) + need <= amount(pool, name) + SLACK
        })
    }
}

impl AddAssign<&Resources> for Resources {
    fn add_assign(&mut self, other: &Resources) {
        self.cpu += other.cpu;
        self.gpu += other.gpu;
        for (k, v) in &other.custom {
            *self.custom.entry(k.clone()).or_default() += v;
        }
    }
}

impl SubAssign<&Resources> for Resources {
    fn sub_assign(&mut self, other: &Resources) {
        self.cpu -= other.cpu;
        self.gpu -= other.gpu;
        for (k, v) in &other.custom {
            *self.custom.entry(k.clone()).or_default() -= v;
        }
    }
}

impl fmt::Display for Resources {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .amounts()
            .filter(|(name, v)| *v != 0.0 || *name == "CPU")
            .map(|(name, v)| format!("{name}: {v}"))
            .collect();
        write!(f, "{{{}}}", parts.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_rays_resource_dicts_and_checks_amounts() {
        let r: Resources =
            serde_json::from_value(serde_json::json!({"CPU": 2, "GPU": 0.5, "memory": 8})).unwrap();
        assert_eq!(
            r,
            Resources::cpu(2.0).with_gpu(0.5).with_custom("memory", 8.0)
        );
        assert!(r.validate("resources").is_ok());
        let err = Resources::cpu(-1.0).validate("resources").unwrap_err();
        assert!(err.to_string().contains("CPU=-1"), "{err}");
        assert!(Resources::cpu(f64::NAN).validate("resources").is_err());
    }

    #[test]
    fn accounting() {
        let pool = Resources::cpu(4.0).with_custom("tpu", 1.0);
        let mut used = Resources::new();
        let need = Resources::cpu(1.5).with_custom("tpu", 0.5);
        for _ in 0..2 {
            assert!(need.fits_within(&used, &pool));
            used += &need;
        }
        assert!(!need.fits_within(&used, &pool));
        used -= &need;
        assert!(need.fits_within(&used, &pool));
        assert!(
            !Resources::new()
                .with_gpu(1.0)
                .fits_within(&Resources::new(), &pool)
        );
        assert_eq!(need.times(2.0), Resources::cpu(3.0).with_custom("tpu", 1.0));
    }
}
