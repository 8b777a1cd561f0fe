//! `air checkpoint inspect|verify|copy`.

use std::io::Write;

use air_checkpoint::Checkpoint;
use air_data::{PREPROCESSOR_ENTRY, preprocessor_to_json};
use serde_json::{Map, Value, json};

use crate::{
    error::{CliError, Result},
    registry::Registry,
};

/// Opens the checkpoint at a local path or URI, naming it in the error.
pub(crate) fn open(location: &str) -> Result<Checkpoint> {
    Checkpoint::from_uri(location).map_err(CliError::checkpoint(location))
}

/// Everything `inspect` shows, as JSON.
pub(crate) fn describe(registry: &Registry, location: &str, checkpoint: &Checkpoint) -> Value {
    let files: Vec<Value> = checkpoint
        .entries()
        .into_iter()
        .map(|e| json!({ "name": e.name, "size": e.size }))
        .collect();
    let kind = registry.kind_of(checkpoint, location);
    let model = kind
        .as_ref()
        .ok()
        .and_then(|k| registry.summary(k, checkpoint));
    let preprocessor = if checkpoint.contains(PREPROCESSOR_ENTRY) {
        match air_data::load_preprocessor(checkpoint) {
            Ok(Some(p)) => preprocessor_to_json(p.as_ref())
                .map(|v| chain(&v))
                .unwrap_or_else(|e| json!({ "error": e.to_string() })),
            Ok(None) => Value::Null,
            Err(e) => json!({ "error": e.to_string() }),
        }
    } else {
        Value::Null
    };
    json!({
        "location": location,
        "files": files,
        "size": checkpoint.size_bytes(),
        "manifest": checkpoint.has_manifest(),
        "metadata": Value::Object(checkpoint.metadata().clone()),
        "kind": kind.as_ref().ok(),
        "kind_error": kind.as_ref().err().map(ToString::to_string),
        "model": model,
        "preprocessor": preprocessor,
    })
}

/// A saved preprocessor as its chain of stages: `{"type", "config"}` each, a `Chain`
/// flattened.
fn chain(saved: &Value) -> Value {
    let name = saved.get("type").and_then(Value::as_str).unwrap_or("?");
    let config = saved.get("config").cloned().unwrap_or(Value::Null);
    if name == "Chain"
        && let Some(stages) = config.get("stages").and_then(Value::as_array)
    {
        let flat: Vec<Value> = stages
            .iter()
            .flat_map(|s| match chain(s) {
                Value::Array(a) => a,
                one => vec![one],
            })
            .collect();
        return Value::Array(flat);
    }
    Value::Array(vec![json!({ "type": name, "config": config })])
}

/// Prints [`describe`]'s JSON as text for a person.
pub(crate) fn print_text(out: &mut impl Write, d: &Value) -> std::io::Result<()> {
    writeln!(out, "checkpoint {}", d["location"].as_str().unwrap_or(""))?;
    let files = d["files"].as_array().map_or(&[][..], Vec::as_slice);
    writeln!(
        out,
        "  {} files, {} bytes{}",
        files.len(),
        d["size"],
        if d["manifest"] == true {
            ", with a manifest (checksums)"
        } else {
            ", no manifest"
        }
    )?;
    for f in files {
        writeln!(
            out,
            "    {:>12}  {}",
            f["size"],
            f["name"].as_str().unwrap_or("")
        )?;
    }
    match (&d["kind"], &d["kind_error"]) {
        (Value::String(k), _) => writeln!(out, "  predictor kind: {k}")?,
        (_, Value::String(e)) => writeln!(out, "  predictor kind: unknown ({e})")?,
        _ => {}
    }
    if let Value::Object(model) = &d["model"] {
        writeln!(out, "  model:")?;
        print_fields(out, model)?;
    }
    if let Value::Array(stages) = &d["preprocessor"] {
        writeln!(out, "  preprocessor chain:")?;
        for (i, s) in stages.iter().enumerate() {
            writeln!(
                out,
                "    {}. {} {}",
                i + 1,
                s["type"].as_str().unwrap_or("?"),
                short(&s["config"])
            )?;
        }
    } else if let Value::Object(e) = &d["preprocessor"] {
        writeln!(out, "  preprocessor: unreadable ({})", e["error"])?;
    }
    if let Value::Object(metadata) = &d["metadata"]
        && !metadata.is_empty()
    {
        writeln!(out, "  metadata:")?;
        print_fields(out, metadata)?;
    }
    Ok(())
}

fn print_fields(out: &mut impl Write, fields: &Map<String, Value>) -> std::io::Result<()> {
    for (k, v) in fields {
        writeln!(out, "    {k}: {}", short(v))?;
    }
    Ok(())
}

/// A value on one line, long ones cut with an ellipsis.
fn short(v: &Value) -> String {
    const MAX: usize = 160;
    let text = match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if text.chars().count() > MAX {
        let cut: String = text.chars().take(MAX).collect();
        format!("{cut}…")
    } else {
        text
    }
}

/// Reads every file of the checkpoint against its manifest; the count of files checked.
pub(crate) fn verify(location: &str) -> Result<usize> {
    let checkpoint = open(location)?;
    if !checkpoint.has_manifest() {
        return Err(CliError::Argument {
            option: "CHECKPOINT",
            value: location.to_owned(),
            expected: "a checkpoint with a manifest (written by air-checkpoint); this one has no \
                       checksums to verify against"
                .to_owned(),
        });
    }
    checkpoint
        .verify()
        .map_err(CliError::checkpoint(location))?;
    Ok(checkpoint.len())
}

/// Copies the checkpoint at `from` to `to` (any two of a local directory, `file://`, `s3://`,
/// `gs://`, `az://`, `memory://`); the files and bytes copied.
pub(crate) fn copy(from: &str, to: &str) -> Result<(usize, u64)> {
    let checkpoint = open(from)?;
    checkpoint.to_uri(to).map_err(CliError::checkpoint(to))?;
    Ok((checkpoint.len(), checkpoint.size_bytes()))
}
