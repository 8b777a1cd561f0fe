use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use xxhash_rust::xxh3::Xxh3;

use crate::{CheckpointError, Result};

/// File name of the manifest at the root of every checkpoint this crate writes.
///
/// It is a reserved entry name: it never appears in listings or dicts.
pub const MANIFEST_NAME: &str = ".air_checkpoint.json";

/// Newest manifest format version this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;

const FORMAT_TAG: &str = "air-checkpoint";

/// What the manifest records of one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FileRecord {
    pub(crate) size: u64,
    pub(crate) xxh3: u64,
}

#[derive(Serialize, Deserialize)]
struct FileRecordJson {
    size: u64,
    xxh3: String,
}

/// The manifest: format version, completeness, metadata and one record per file.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Manifest {
    pub(crate) complete: bool,
    pub(crate) metadata: Map<String, Value>,
    pub(crate) files: BTreeMap<String, FileRecord>,
}

#[derive(Serialize, Deserialize)]
struct ManifestJson {
    format: String,
    version: u32,
    complete: bool,
    metadata: Map<String, Value>,
    files: BTreeMap<String, FileRecordJson>,
}

impl Manifest {
    /// The marker a writer puts first on object storage, so readers see "incomplete".
    pub(crate) fn incomplete() -> Self {
        Self {
            complete: false,
            metadata: Map::new(),
            files: BTreeMap::new(),
        }
    }

    pub(crate) fn to_json(&self) -> Vec<u8> {
        let json = ManifestJson {
            format: FORMAT_TAG.to_owned(),
            version: FORMAT_VERSION,
            complete: self.complete,
            metadata: self.metadata.clone(),
            files: self
                .files
                .iter()
                .map(|(name, r)| {
                    (
                        name.clone(),
                        FileRecordJson {
                            size: r.size,
                            xxh3: hex(r.xxh3),
                        },
                    )
                })
                .collect(),
        };
        serde_json::to_vec_pretty(&json).expect("a manifest always serializes")
    }

    /// Parses a manifest, checking the format tag and version before the fields so that a
    /// newer format is reported as such rather than as a parse error.
    pub(crate) fn parse(bytes: &[u8], location: &str) -> Result<Self> {
        let invalid = |reason: String| CheckpointError::InvalidManifest {
            location: location.to_owned(),
            reason,
        };
        let value: Value = serde_json::from_slice(bytes)
            .map_err(|e| invalid(format!("not valid JSON ({e}); the file may be truncated")))?;
        match value.get("format").and_then(Value::as_str) {
            Some(FORMAT_TAG) => {}
            other => {
                return Err(invalid(format!(
                    "format tag is {other:?}, expected {FORMAT_TAG:?}: not an AIR checkpoint"
                )));
            }
        }
        let version = value
            .get("version")
            .and_then(Value::as_u64)
            .ok_or_else(|| invalid("missing or non-integer `version` field".to_owned()))?;
        if version > u64::from(FORMAT_VERSION) || version == 0 {
            return Err(CheckpointError::UnsupportedVersion {
                location: location.to_owned(),
                found: version,
                supported: FORMAT_VERSION,
            });
        }
        let json: ManifestJson =
            serde_json::from_value(value).map_err(|e| invalid(e.to_string()))?;
        let mut files = BTreeMap::new();
        for (name, r) in json.files {
            crate::name::validate(&name)
                .map_err(|e| invalid(format!("bad entry name in manifest: {e}")))?;
            let xxh3 = u64::from_str_radix(&r.xxh3, 16).map_err(|_| {
                invalid(format!(
                    "entry {name:?} has checksum {:?}, expected 16 hex digits",
                    r.xxh3
                ))
            })?;
            files.insert(name, FileRecord { size: r.size, xxh3 });
        }
        Ok(Self {
            complete: json.complete,
            metadata: json.metadata,
            files,
        })
    }
}

pub(crate) fn hex(hash: u64) -> String {
    format!("{hash:016x}")
}

/// Running size and checksum of an entry's bytes, checked against what is expected of it.
pub(crate) struct Verifier<'a> {
    name: &'a str,
    location: &'a str,
    expected: Option<FileRecord>,
    hasher: Xxh3,
    size: u64,
}

impl<'a> Verifier<'a> {
    pub(crate) fn new(name: &'a str, location: &'a str, expected: Option<FileRecord>) -> Self {
        Self {
            name,
            location,
            expected,
            hasher: Xxh3::new(),
            size: 0,
        }
    }

    pub(crate) fn update(&mut self, chunk: &[u8]) {
        self.hasher.update(chunk);
        self.size += chunk.len() as u64;
    }

    /// The record of what was seen, or an error if it differs from the expectation.
    pub(crate) fn finish(self) -> Result<FileRecord> {
        let seen = FileRecord {
            size: self.size,
            xxh3: self.hasher.digest(),
        };
        check(self.name, self.location, self.expected, seen)?;
        Ok(seen)
    }
}

/// Size and checksum of a whole buffer, checked against the expectation.
pub(crate) fn verify_bytes(
    name: &str,
    location: &str,
    expected: Option<FileRecord>,
    bytes: &[u8],
) -> Result<FileRecord> {
    let seen = FileRecord {
        size: bytes.len() as u64,
        xxh3: xxhash_rust::xxh3::xxh3_64(bytes),
    };
    check(name, location, expected, seen)?;
    Ok(seen)
}

fn check(name: &str, location: &str, expected: Option<FileRecord>, seen: FileRecord) -> Result<()> {
    let Some(expected) = expected else {
        return Ok(());
    };
    if expected.size != seen.size {
        return Err(CheckpointError::SizeMismatch {
            name: name.to_owned(),
            location: location.to_owned(),
            expected: expected.size,
            found: seen.size,
        });
    }
    if expected.xxh3 != seen.xxh3 {
        return Err(CheckpointError::ChecksumMismatch {
            name: name.to_owned(),
            location: location.to_owned(),
            expected: hex(expected.xxh3),
            found: hex(seen.xxh3),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Manifest {
        let mut files = BTreeMap::new();
        files.insert(
            "a/b.bin".to_owned(),
            FileRecord {
                size: 3,
                xxh3: u64::MAX,
            },
        );
        let mut metadata = Map::new();
        metadata.insert("epoch".to_owned(), Value::from(3));
        Manifest {
            complete: true,
            metadata,
            files,
        }
    }

    #[test]
    fn round_trips_through_json() {
        let m = sample();
        assert_eq!(Manifest::parse(&m.to_json(), "here").unwrap(), m);
    }

    #[test]
    fn newer_version_is_reported_as_such() {
        let mut v: Value = serde_json::from_slice(&sample().to_json()).unwrap();
        v["version"] = Value::from(99);
        v["files"] = Value::from("a shape this build does not know");
        let err = Manifest::parse(&serde_json::to_vec(&v).unwrap(), "loc").unwrap_err();
        assert!(
            matches!(err, CheckpointError::UnsupportedVersion { found: 99, .. }),
            "{err}"
        );
    }

    #[test]
    fn truncated_and_foreign_manifests_are_rejected() {
        let json = sample().to_json();
        let err = Manifest::parse(&json[..json.len() / 2], "loc")
            .unwrap_err()
            .to_string();
        assert!(err.contains("truncated"), "{err}");
        let err = Manifest::parse(br#"{"format": "mlflow"}"#, "loc")
            .unwrap_err()
            .to_string();
        assert!(err.contains("not an AIR checkpoint"), "{err}");
    }

    #[test]
    fn verifier_names_the_bad_entry() {
        let expected = Some(FileRecord {
            size: 3,
            xxh3: xxhash_rust::xxh3::xxh3_64(b"abc"),
        });
        verify_bytes("w", "loc", expected, b"abc").unwrap();
        let err = verify_bytes("w", "loc", expected, b"ab").unwrap_err();
        assert!(matches!(
            err,
            CheckpointError::SizeMismatch {
                expected: 3,
                found: 2,
                ..
            }
        ));
        let err = verify_bytes("w", "loc", expected, b"abd").unwrap_err();
        assert!(matches!(err, CheckpointError::ChecksumMismatch { ref name, .. } if name == "w"));
        let mut v = Verifier::new("w", "loc", expected);
        v.update(b"a");
        v.update(b"bc");
        v.finish().unwrap();
    }

    mod fuzz {
        //! Manifests are read from storage anyone may have written to: whatever the bytes, the
        //! parser answers with a manifest or an error naming the location, never a panic.
        use proptest::prelude::*;

        use super::*;

        fn any_manifest() -> impl Strategy<Value = Manifest> {
            let name = "[a-z]{1,8}(/[a-z0-9_.]{1,8}){0,2}"
                .prop_filter("valid entry name", |n| crate::name::validate(n).is_ok());
            (
                any::<bool>(),
                proptest::collection::btree_map(name, (any::<u64>(), any::<u64>()), 0..6),
                proptest::collection::btree_map("[a-z]{1,6}", any::<i64>(), 0..4),
            )
                .prop_map(|(complete, files, metadata)| Manifest {
                    complete,
                    files: files
                        .into_iter()
                        .map(|(n, (size, xxh3))| (n, FileRecord { size, xxh3 }))
                        .collect(),
                    metadata: metadata
                        .into_iter()
                        .map(|(k, v)| (k, Value::from(v)))
                        .collect(),
                })
        }

        /// Edits of a valid manifest: truncations, byte flips, splices of JSON fragments.
        fn mutated() -> impl Strategy<Value = Vec<u8>> {
            let fragments = prop::sample::select(vec![
                "null",
                "-1",
                "1e999",
                "\"\"",
                "[]",
                "{}",
                "\"../x\"",
                "\"/abs\"",
                "\"ffffffffffffffffff\"",
                "18446744073709551616",
                "\"\\u0000\"",
                "true",
                "\".air_checkpoint.json\"",
                "[[[[[[[[[[[[[[[[",
                "\"complete\":false",
            ]);
            (
                any_manifest(),
                any::<prop::sample::Index>(),
                fragments,
                0usize..4,
            )
                .prop_map(|(m, at, fragment, how)| {
                    let mut bytes = m.to_json();
                    let i = at.index(bytes.len() + 1);
                    match how {
                        0 => bytes.truncate(i),
                        1 => {
                            if let Some(b) = bytes.get_mut(i) {
                                *b = b.wrapping_add(1);
                            }
                        }
                        2 => {
                            bytes.splice(i..i, fragment.bytes());
                        }
                        _ => {
                            let end = (i + fragment.len()).min(bytes.len());
                            bytes.splice(i..end, fragment.bytes());
                        }
                    }
                    bytes
                })
        }

        proptest! {
            #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

            #[test]
            fn any_manifest_round_trips(m in any_manifest()) {
                prop_assert_eq!(Manifest::parse(&m.to_json(), "loc").unwrap(), m);
            }

            #[test]
            fn arbitrary_bytes_are_an_error_not_a_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
                // Random bytes are almost never a manifest; if they are, they parse.
                if let Err(e) = Manifest::parse(&bytes, "loc") {
                    prop_assert!(e.to_string().contains("loc"), "{}", e);
                }
            }

            #[test]
            fn edited_manifests_parse_or_are_refused_by_name(bytes in mutated()) {
                match Manifest::parse(&bytes, "loc") {
                    Ok(m) => {
                        for name in m.files.keys() {
                            prop_assert!(crate::name::validate(name).is_ok(), "{:?}", name);
                        }
                    }
                    Err(e) => prop_assert!(e.to_string().contains("loc"), "{}", e),
                }
            }
        }
    }
}
