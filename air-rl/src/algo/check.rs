//! The checks algorithm configs share, each failing with the field, the value and what is
//! accepted.

use crate::{Result, RlError};

fn invalid(field: &'static str, value: impl ToString, expected: &str) -> Result<()> {
    Err(RlError::InvalidConfig {
        field,
        value: value.to_string(),
        expected: expected.to_owned(),
    })
}

/// A positive, finite learning rate.
pub(crate) fn learning_rate(lr: f64) -> Result<()> {
    if lr > 0.0 && lr.is_finite() {
        Ok(())
    } else {
        invalid("lr", lr, "a positive learning rate")
    }
}

/// A positive, finite value.
pub(crate) fn positive(field: &'static str, v: f64) -> Result<()> {
    if v > 0.0 && v.is_finite() {
        Ok(())
    } else {
        invalid(field, v, "a positive value")
    }
}

/// Values in [0, 1].
pub(crate) fn unit_interval(fields: &[(&'static str, f64)]) -> Result<()> {
    match fields.iter().find(|(_, v)| !(0.0..=1.0).contains(v)) {
        Some((field, v)) => invalid(field, v, "a value in [0, 1]"),
        None => Ok(()),
    }
}

/// Counts of at least one.
pub(crate) fn at_least_one(fields: &[(&'static str, u64)]) -> Result<()> {
    match fields.iter().find(|(_, v)| *v == 0) {
        Some((field, _)) => invalid(field, 0, "at least 1"),
        None => Ok(()),
    }
}

/// Optional bounds that, when set, are positive.
pub(crate) fn optional_positive(fields: &[(&'static str, Option<f64>)]) -> Result<()> {
    match fields
        .iter()
        .find(|(_, v)| matches!(v, Some(c) if c.is_nan() || *c <= 0.0))
    {
        Some((field, v)) => invalid(
            field,
            format!("{v:?}"),
            "a positive bound, or null for none",
        ),
        None => Ok(()),
    }
}

/// Optional intervals that, when set, are at least one.
pub(crate) fn optional_interval(fields: &[(&'static str, Option<usize>)]) -> Result<()> {
    match fields.iter().find(|(_, v)| *v == Some(0)) {
        Some((field, _)) => invalid(field, 0, "at least 1, or null for none"),
        None => Ok(()),
    }
}

/// Hidden layer sizes without an empty layer.
pub(crate) fn hidden_layers(hidden: &[usize]) -> Result<()> {
    if hidden.contains(&0) {
        invalid("fcnet_hiddens", format!("{hidden:?}"), "no empty layer")
    } else {
        Ok(())
    }
}
