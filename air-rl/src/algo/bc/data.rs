//! Reading a behaviour-cloning dataset: observations and actions as dense host arrays,
//! checked (sizes, finiteness, action range).

use air_data::{Dataset, Matrix, polars::prelude::DataFrame, to_f32_matrix};

use crate::{Result, RlError, env::Space, frame::list_as_array};

/// Observations and actions, row-major.
#[derive(Debug)]
pub(crate) struct Demonstrations {
    pub(crate) obs: Matrix,
    /// Discrete actions, or continuous ones row-major (`action_dim` per row).
    pub(crate) discrete: Vec<i64>,
    pub(crate) continuous: Matrix,
}

fn invalid(what: &'static str, found: String, expected: impl Into<String>) -> RlError {
    RlError::InvalidData {
        what,
        found,
        expected: expected.into(),
    }
}

/// Reads `obs_columns` and `action_column` from `data`; `spaces` are the environment's
/// (observation size, action space) when known.
pub(crate) fn read(
    data: &Dataset,
    obs_columns: &[String],
    action_column: &str,
    spaces: Option<(usize, &Space)>,
) -> Result<Demonstrations> {
    let mut wanted: Vec<String> = obs_columns.to_vec();
    wanted.push(action_column.to_owned());
    let mut df: DataFrame = data.select_columns(&wanted).to_polars()?;
    if df.height() == 0 {
        return Err(invalid(
            "dataset",
            "no rows".to_owned(),
            "logged steps to learn from",
        ));
    }
    if let [name] = obs_columns {
        let c = list_as_array(
            df.column(name).map_err(|_| missing(name, &df))?,
            spaces.map(|s| s.0),
        )?;
        df.with_column(c)
            .map_err(|e| invalid("observations", e.to_string(), "a column"))?;
    }
    let obs = to_f32_matrix(&df, obs_columns)?;
    if let Some((dim, _)) = spaces
        && obs.cols != dim
    {
        return Err(invalid(
            "observations",
            format!("{} values per row in {obs_columns:?}", obs.cols),
            format!("{dim}, the environment's observation size"),
        ));
    }
    if let Some(i) = obs.data.iter().position(|v| !v.is_finite()) {
        return Err(invalid(
            "observations",
            format!(
                "row {} holds {} (or a null)",
                i / obs.cols.max(1),
                obs.data[i]
            ),
            "finite numbers",
        ));
    }
    let action = df
        .column(action_column)
        .map_err(|_| missing(action_column, &df))?;
    let discrete_data = action.dtype().is_integer();
    let mut out = Demonstrations {
        obs,
        discrete: Vec::new(),
        continuous: Matrix {
            data: Vec::new(),
            rows: 0,
            cols: 0,
        },
    };
    match spaces.map(|s| s.1) {
        Some(Space::Discrete { n }) => {
            out.discrete = discrete_actions(&df, action_column, Some(*n))?
        }
        Some(Space::Box { low, .. }) => {
            out.continuous = continuous_actions(&mut df, action_column, Some(low.len()))?;
        }
        None if discrete_data => out.discrete = discrete_actions(&df, action_column, None)?,
        None => out.continuous = continuous_actions(&mut df, action_column, None)?,
    }
    Ok(out)
}

fn missing(name: &str, df: &DataFrame) -> RlError {
    invalid(
        "dataset",
        format!("no column {name:?} (columns: {:?})", df.get_column_names()),
        "the configured obs_columns and action_column",
    )
}

fn discrete_actions(df: &DataFrame, column: &str, n: Option<usize>) -> Result<Vec<i64>> {
    let values = air_data::to_f64_vector(df, column)?;
    let mut out = Vec::with_capacity(values.len());
    for (i, v) in values.iter().enumerate() {
        let ok = v.fract() == 0.0 && *v >= 0.0 && n.is_none_or(|n| *v < n as f64);
        if !ok {
            return Err(invalid(
                "actions",
                format!("row {i} of {column:?} is {v}"),
                match n {
                    Some(n) => format!("an integer in 0..{n} (the environment's Discrete({n}))"),
                    None => "a non-negative integer".to_owned(),
                },
            ));
        }
        out.push(*v as i64);
    }
    Ok(out)
}

fn continuous_actions(df: &mut DataFrame, column: &str, dim: Option<usize>) -> Result<Matrix> {
    let c = list_as_array(df.column(column).map_err(|_| missing(column, df))?, dim)?;
    df.with_column(c)
        .map_err(|e| invalid("actions", e.to_string(), "a column"))?;
    let m = to_f32_matrix(df, &[column])?;
    if let Some(d) = dim
        && m.cols != d
    {
        return Err(invalid(
            "actions",
            format!("{} values per row in {column:?}", m.cols),
            format!("{d}, the environment's action size"),
        ));
    }
    if let Some(i) = m.data.iter().position(|v| !v.is_finite()) {
        return Err(invalid(
            "actions",
            format!(
                "row {} of {column:?} holds {}",
                i / m.cols.max(1),
                m.data[i]
            ),
            "finite numbers",
        ));
    }
    Ok(m)
}
