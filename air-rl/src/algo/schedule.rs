//! [`Schedule`]: a value that changes with the timestep count, piecewise linearly (RLlib's
//! `lr_schedule` and epsilon schedules).

use serde::{Deserialize, Serialize};

use crate::{Result, RlError};

/// `[[timestep, value], ...]`: linear between points, constant before the first and after the
/// last.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Schedule(Vec<(u64, f64)>);

impl Schedule {
    /// A schedule through `points` (timesteps strictly increasing).
    pub fn new(points: Vec<(u64, f64)>) -> Result<Self> {
        let s = Self(points);
        s.validate("schedule")?;
        Ok(s)
    }

    /// A constant.
    pub fn constant(value: f64) -> Self {
        Self(vec![(0, value)])
    }

    /// A line from `start` at timestep 0 to `end` at `timesteps`, constant after.
    pub fn linear(start: f64, end: f64, timesteps: u64) -> Self {
        Self(vec![(0, start), (timesteps.max(1), end)])
    }

    /// The value at `timestep`.
    pub fn value(&self, timestep: u64) -> f64 {
        let points = &self.0;
        match points.iter().position(|(t, _)| *t > timestep) {
            Some(0) => points[0].1,
            Some(i) => {
                let (t0, v0) = points[i - 1];
                let (t1, v1) = points[i];
                let f = (timestep - t0) as f64 / (t1 - t0) as f64;
                (v1 - v0).mul_add(f, v0)
            }
            None => points.last().map_or(0.0, |p| p.1),
        }
    }

    pub(crate) fn validate(&self, field: &'static str) -> Result<()> {
        let increasing = self.0.windows(2).all(|w| w[0].0 < w[1].0);
        let finite = self.0.iter().all(|p| p.1.is_finite());
        if self.0.is_empty() || !increasing || !finite {
            return Err(RlError::InvalidConfig {
                field,
                value: format!("{:?}", self.0),
                expected: "[[timestep, value], ...] with at least one point, timesteps strictly \
                           increasing and finite values"
                    .to_owned(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interpolates_between_points_and_holds_outside() {
        let s = Schedule::new(vec![(100, 1.0), (200, 0.0)]).unwrap();
        assert_eq!(s.value(0), 1.0);
        assert_eq!(s.value(150), 0.5);
        assert_eq!(s.value(500), 0.0);
        assert!(Schedule::new(vec![(5, 1.0), (5, 2.0)]).is_err());
        assert_eq!(Schedule::linear(1.0, 0.1, 10).value(5), 0.55);
    }
}
