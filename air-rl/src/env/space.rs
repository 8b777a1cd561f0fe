//! [`Space`]: what observations and actions may be (gymnasium's `Discrete` and `Box`).

use std::fmt;

use serde::{Deserialize, Serialize};

/// An observation or action space.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Space {
    /// The integers `0..n`.
    Discrete {
        /// How many values.
        n: usize,
    },
    /// Vectors of `f32` within per-element bounds (infinite bounds allowed).
    Box {
        /// Lower bounds.
        low: Vec<f32>,
        /// Upper bounds.
        high: Vec<f32>,
    },
}

impl Space {
    /// A box of `low[i] <= x[i] <= high[i]`.
    pub fn boxed(low: impl Into<Vec<f32>>, high: impl Into<Vec<f32>>) -> Self {
        Self::Box {
            low: low.into(),
            high: high.into(),
        }
    }

    /// How many numbers one element has: 1 for `Discrete`, the box's length otherwise.
    pub fn dim(&self) -> usize {
        match self {
            Self::Discrete { .. } => 1,
            Self::Box { low, .. } => low.len(),
        }
    }

    /// Whether `action` is in the space (a box's values must also be finite).
    pub fn contains(&self, action: &Action) -> bool {
        match (self, action) {
            (Self::Discrete { n }, Action::Discrete(a)) => a < n,
            (Self::Box { low, high }, Action::Continuous(v)) => {
                v.len() == low.len()
                    && v.iter()
                        .zip(low.iter().zip(high))
                        .all(|(x, (l, h))| x.is_finite() && l <= x && x <= h)
            }
            _ => false,
        }
    }

    /// Whether `action` has the space's kind and size (continuous values may be out of bounds:
    /// continuous environments clip them, as gymnasium's do, but must be finite).
    pub fn fits(&self, action: &Action) -> bool {
        match (self, action) {
            (Self::Discrete { n }, Action::Discrete(a)) => a < n,
            (Self::Box { low, .. }, Action::Continuous(v)) => {
                v.len() == low.len() && v.iter().all(|x| x.is_finite())
            }
            _ => false,
        }
    }
}

impl fmt::Display for Space {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Discrete { n } => write!(f, "Discrete({n})"),
            Self::Box { low, high } => write!(f, "Box(low={low:?}, high={high:?})"),
        }
    }
}

/// An action: an index for a `Discrete` space, a vector for a `Box`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Action {
    /// One of `0..n`.
    Discrete(usize),
    /// A vector.
    Continuous(Vec<f32>),
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Discrete(a) => write!(f, "{a}"),
            Self::Continuous(v) => write!(f, "{v:?}"),
        }
    }
}
