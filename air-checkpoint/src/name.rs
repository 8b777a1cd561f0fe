use crate::{CheckpointError, Result, manifest::MANIFEST_NAME};

/// Checks that `name` is a plain relative path that stays inside the checkpoint root.
pub(crate) fn validate(name: &str) -> Result<()> {
    let reason = if name.is_empty() {
        Some("it is empty")
    } else if name.starts_with('/') {
        Some("it is absolute")
    } else if name.contains('\\') {
        Some("it contains a backslash")
    } else if name.contains('\0') {
        Some("it contains a NUL byte")
    } else if name == MANIFEST_NAME {
        Some("that name is reserved for the checkpoint manifest")
    } else if name.ends_with('/') {
        Some("it ends with `/` (entries are files, not folders)")
    } else if name.split('/').any(|part| part.is_empty()) {
        Some("it contains an empty path component (`//`)")
    } else if name.split('/').any(|part| part == "..") {
        Some("it contains `..` and would escape the checkpoint root")
    } else if name.split('/').any(|part| part == ".") {
        Some("it contains a `.` component")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(CheckpointError::InvalidEntryName {
            name: name.to_owned(),
            reason,
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_relative_names() {
        for ok in [
            "model.json",
            "a/b/c.bin",
            ".hidden",
            "dir/.env",
            "weird name (1).txt",
            "..x",
        ] {
            validate(ok).unwrap();
        }
    }

    #[test]
    fn rejects_escaping_and_malformed_names() {
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../../x",
            "a//b",
            "a/",
            "./a",
            "a\\b",
            MANIFEST_NAME,
        ] {
            let err = validate(bad).unwrap_err().to_string();
            assert!(err.contains(&format!("{bad:?}")), "{err}");
        }
    }
}
