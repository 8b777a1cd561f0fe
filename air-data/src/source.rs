//! File sources: resolving a path, directory, glob or URI to files, and scanning them with polars.
//!
//! Local files and `s3://`/`gs://`/`az://` objects are handed to polars' own scanners, so a
//! remote parquet file is read by ranged requests (footer, then the row groups a query needs),
//! never downloaded whole. `memory://` objects are fetched when the plan runs.

use std::{
    collections::HashMap,
    fmt,
    io::Read,
    num::NonZeroUsize,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::SystemTime,
};

use air_checkpoint::{
    StorageOptions,
    storage::{self, Resolved, StoreLocation},
};
use futures::TryStreamExt;
use object_store::{ObjectStoreExt, path::Path as ObjectPath};
use polars::{io::cloud::CloudOptions, prelude::*};
use polars_buffer::Buffer;

use crate::{
    csv_fields::{Defect, FieldCounter},
    error::{DataError, Result, io_err, polars_err},
};

/// The file formats a dataset reads and writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FileFormat {
    /// Comma-separated values with a header row (`.csv`, `.tsv`, `.txt`).
    Csv,
    /// Apache Parquet (`.parquet`, `.pq`).
    Parquet,
    /// JSON lines or one JSON array (`.json`, `.jsonl`, `.ndjson`).
    Json,
}

impl FileFormat {
    /// Every format, in the order [`FileFormat::from_name`] tries them.
    pub const ALL: [Self; 3] = [Self::Parquet, Self::Csv, Self::Json];

    /// The format's name (`"parquet"`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Csv => "CSV",
            Self::Parquet => "parquet",
            Self::Json => "JSON",
        }
    }

    /// The format a file name's extension says (case-insensitive), if any.
    ///
    /// ```
    /// use air_data::FileFormat;
    /// assert_eq!(FileFormat::from_name("s3://b/part-0.PARQUET"), Some(FileFormat::Parquet));
    /// assert_eq!(FileFormat::from_name("rows.jsonl"), Some(FileFormat::Json));
    /// assert_eq!(FileFormat::from_name("data/"), None);
    /// ```
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.matches(name))
    }

    fn extensions(self) -> &'static [&'static str] {
        match self {
            Self::Csv => &["csv", "tsv", "txt"],
            Self::Parquet => &["parquet", "pq"],
            Self::Json => &["json", "jsonl", "ndjson"],
        }
    }

    fn matches(self, name: &str) -> bool {
        let lower = name.to_ascii_lowercase();
        self.extensions()
            .iter()
            .any(|ext| lower.ends_with(&format!(".{ext}")))
    }
}

/// What a CSV record with fewer fields than the header means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MissingFields {
    /// An error naming the file and line (as pyarrow, and so Ray Data, report it): a dropped
    /// separator must not become silently missing data.
    #[default]
    Error,
    /// The missing trailing fields read as null (pandas' and polars' behaviour).
    Null,
}

/// Options for reading CSV files.
///
/// ```
/// use air_data::{CsvOptions, MissingFields};
///
/// let opts = CsvOptions::new()
///     .with_separator(b';')
///     .with_null_values(["NA", ""])
///     .with_missing_fields(MissingFields::Null);
/// assert_eq!(opts.separator(), b';');
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct CsvOptions {
    separator: u8,
    has_header: bool,
    null_values: Vec<String>,
    infer_schema_rows: usize,
    missing_fields: MissingFields,
    storage: StorageOptions,
}

impl Default for CsvOptions {
    fn default() -> Self {
        Self {
            separator: b',',
            has_header: true,
            null_values: Vec::new(),
            infer_schema_rows: 1000,
            missing_fields: MissingFields::Error,
            storage: StorageOptions::new(),
        }
    }
}

impl CsvOptions {
    /// Comma separated, with a header row, types inferred from the first 1000 rows.
    pub fn new() -> Self {
        Self::default()
    }

    /// The field separator.
    pub fn with_separator(mut self, separator: u8) -> Self {
        self.separator = separator;
        self
    }

    /// Whether the first row names the columns (otherwise they are `column_1`, ...).
    pub fn with_has_header(mut self, has_header: bool) -> Self {
        self.has_header = has_header;
        self
    }

    /// Strings read as null in every column.
    pub fn with_null_values<S: Into<String>>(
        mut self,
        values: impl IntoIterator<Item = S>,
    ) -> Self {
        self.null_values = values.into_iter().map(Into::into).collect();
        self
    }

    /// How many rows the type inference looks at (at least 1).
    pub fn with_infer_schema_rows(mut self, rows: usize) -> Self {
        self.infer_schema_rows = rows.max(1);
        self
    }

    /// What a record with fewer fields than the header means (default: an error naming the file
    /// and line).
    pub fn with_missing_fields(mut self, missing: MissingFields) -> Self {
        self.missing_fields = missing;
        self
    }

    /// Object store settings for URIs.
    pub fn with_storage(mut self, storage: StorageOptions) -> Self {
        self.storage = storage;
        self
    }

    /// The field separator.
    pub fn separator(&self) -> u8 {
        self.separator
    }

    /// Whether the first row names the columns.
    pub fn has_header(&self) -> bool {
        self.has_header
    }

    /// How many rows the type inference looks at.
    pub fn infer_schema_rows(&self) -> usize {
        self.infer_schema_rows
    }

    /// What a record with fewer fields than the header means.
    pub fn missing_fields(&self) -> MissingFields {
        self.missing_fields
    }

    pub(crate) fn is_null_value(&self, field: &str) -> bool {
        self.null_values.iter().any(|v| v == field)
    }
}

/// Where the files of a source live.
#[derive(Clone)]
pub(crate) enum Files {
    /// Local paths.
    Local(Vec<PathBuf>),
    /// Objects polars reads itself (`s3://`, `gs://`, `az://`).
    Cloud {
        uris: Vec<String>,
        options: Box<CloudOptions>,
    },
    /// Objects fetched through object_store when the plan runs (`memory://`).
    Fetched {
        location: StoreLocation,
        paths: Vec<ObjectPath>,
    },
}

impl Files {
    pub(crate) fn names(&self) -> Vec<String> {
        match self {
            Self::Local(paths) => paths.iter().map(|p| p.display().to_string()).collect(),
            Self::Cloud { uris, .. } => uris.clone(),
            Self::Fetched { location, paths } => {
                paths.iter().map(|p| object_uri(location, p)).collect()
            }
        }
    }

    fn len(&self) -> usize {
        match self {
            Self::Local(p) => p.len(),
            Self::Cloud { uris, .. } => uris.len(),
            Self::Fetched { paths, .. } => paths.len(),
        }
    }

    fn single(&self, i: usize) -> Files {
        match self {
            Self::Local(p) => Self::Local(vec![p[i].clone()]),
            Self::Cloud { uris, options } => Self::Cloud {
                uris: vec![uris[i].clone()],
                options: options.clone(),
            },
            Self::Fetched { location, paths } => Self::Fetched {
                location: location.clone(),
                paths: vec![paths[i].clone()],
            },
        }
    }
}

fn object_uri(location: &StoreLocation, path: &ObjectPath) -> String {
    // location.uri is "scheme://bucket/prefix"; rebuild "scheme://bucket/<path>".
    let (scheme, rest) = location
        .uri
        .split_once("://")
        .unwrap_or(("", &location.uri));
    let bucket = rest.split('/').next().unwrap_or(rest);
    format!("{scheme}://{bucket}/{path}")
}

/// A checked file's size and modification time, and whether field counts were checked.
type Stamp = (u64, Option<SystemTime>, bool);

/// A set of files of one format: the leaf of every file-backed dataset.
#[derive(Clone)]
pub(crate) struct FileSource {
    pub(crate) format: FileFormat,
    pub(crate) files: Files,
    pub(crate) csv: CsvOptions,
    /// Given location, for messages.
    pub(crate) location: String,
    /// Local CSV files whose field counts were checked, with the size and modification time
    /// they had then (shared by clones: a dataset's plans are checked once).
    checked: Arc<Mutex<HashMap<PathBuf, Stamp>>>,
}

impl fmt::Debug for FileSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "read_{}({:?}, {} files)",
            self.format.name().to_ascii_lowercase(),
            self.location,
            self.files.len()
        )
    }
}

impl FileSource {
    /// Resolves `location` and checks that every file has the same schema.
    pub(crate) fn open(location: &str, format: FileFormat, csv: CsvOptions) -> Result<Self> {
        let files = list_files(location, format, &csv.storage)?;
        let source = Self {
            format,
            files,
            csv,
            location: location.to_owned(),
            checked: Arc::default(),
        };
        source.check_schemas()?;
        Ok(source)
    }

    fn check_schemas(&self) -> Result<()> {
        let n = self.files.len();
        if n < 2 {
            return Ok(());
        }
        let names = self.files.names();
        let single = |i: usize| Self {
            files: self.files.single(i),
            ..self.clone()
        };
        let first = single(0)
            .lazy()?
            .collect_schema()
            .map_err(|e| self.read_error(e, &names[0..1]))?;
        for i in 1..n {
            let schema = single(i)
                .lazy()?
                .collect_schema()
                .map_err(|e| self.read_error(e, &names[i..=i]))?;
            if let Some(difference) = schema_difference(&first, &schema) {
                return Err(DataError::SchemaMismatch {
                    first_file: names[0].clone(),
                    file: names[i].clone(),
                    difference,
                });
            }
        }
        Ok(())
    }

    /// The polars scan over all files.
    pub(crate) fn lazy(&self) -> Result<LazyFrame> {
        let sources = match &self.files {
            Files::Local(paths) => ScanSources::Paths(Buffer::from_iter(
                paths
                    .iter()
                    .map(|p| PlRefPath::new(p.to_string_lossy().as_ref())),
            )),
            Files::Cloud { uris, .. } => {
                ScanSources::Paths(Buffer::from_iter(uris.iter().map(PlRefPath::new)))
            }
            Files::Fetched { location, paths } => {
                let buffers = storage::block_on(fetch_all(location, paths))?;
                ScanSources::Buffers(buffers.into())
            }
        };
        let cloud = match &self.files {
            Files::Cloud { options, .. } => Some((**options).clone()),
            _ => None,
        };
        let context = || format!("reading {}", self.location);
        match self.format {
            FileFormat::Parquet => {
                // Files are listed by us, so polars' directory-based hive detection stays off.
                let args = ScanArgsParquet {
                    cloud_options: cloud,
                    glob: false,
                    hive_options: HiveOptions {
                        enabled: Some(false),
                        ..Default::default()
                    },
                    ..Default::default()
                };
                LazyFrame::scan_parquet_sources(sources, args).map_err(polars_err(context()))
            }
            FileFormat::Csv => {
                let null_values = (!self.csv.null_values.is_empty()).then(|| {
                    NullValues::AllColumns(
                        self.csv
                            .null_values
                            .iter()
                            .map(|s| PlSmallStr::from(s.as_str()))
                            .collect(),
                    )
                });
                LazyCsvReader::new_with_sources(sources)
                    .with_glob(false)
                    .with_cloud_options(cloud)
                    .with_has_header(self.csv.has_header)
                    .with_separator(self.csv.separator)
                    .with_null_values(null_values)
                    .with_infer_schema_length(Some(self.csv.infer_schema_rows))
                    .finish()
                    .map_err(polars_err(context()))
            }
            FileFormat::Json => self.lazy_json(sources, cloud),
        }
    }

    /// JSON lines are scanned lazily; a file holding one JSON array is parsed whole (the
    /// format has no record boundaries to stream on).
    fn lazy_json(&self, sources: ScanSources, cloud: Option<CloudOptions>) -> Result<LazyFrame> {
        let names = self.files.names();
        let array_files = self.json_array_files(&sources)?;
        if array_files.iter().all(|is_array| !is_array) {
            return LazyJsonLineReader::new_with_sources(sources)
                .with_cloud_options(cloud)
                .finish()
                .map_err(polars_err(format!("reading {}", self.location)));
        }
        let mut frames = Vec::with_capacity(names.len());
        for (i, is_array) in array_files.iter().enumerate() {
            let bytes = self.file_bytes(&sources, i)?;
            let format = if *is_array {
                JsonFormat::Json
            } else {
                JsonFormat::JsonLines
            };
            let df = JsonReader::new(std::io::Cursor::new(bytes))
                .with_json_format(format)
                .infer_schema_len(NonZeroUsize::new(1000))
                .finish()
                .map_err(|e| DataError::MalformedJson {
                    file: names[i].clone(),
                    reason: e.to_string(),
                })?;
            frames.push(df.lazy());
        }
        concat(frames, UnionArgs::default())
            .map_err(polars_err(format!("reading {}", self.location)))
    }

    fn json_array_files(&self, sources: &ScanSources) -> Result<Vec<bool>> {
        (0..self.files.len())
            .map(|i| {
                let head = match (&self.files, sources) {
                    (Files::Local(paths), _) => {
                        use std::io::Read;
                        let mut buf = vec![0u8; 4096];
                        let mut f =
                            std::fs::File::open(&paths[i]).map_err(io_err("opening", &paths[i]))?;
                        let n = f.read(&mut buf).map_err(io_err("reading", &paths[i]))?;
                        buf.truncate(n);
                        buf
                    }
                    (_, ScanSources::Buffers(b)) => {
                        b[i].as_slice()[..b[i].len().min(4096)].to_vec()
                    }
                    (Files::Cloud { .. }, _) => {
                        // polars reads cloud JSON lines itself; arrays must be fetched.
                        let bytes = self.file_bytes(sources, i)?;
                        bytes[..bytes.len().min(4096)].to_vec()
                    }
                    (Files::Fetched { .. }, _) => Vec::new(),
                };
                Ok(head
                    .iter()
                    .find(|b| !b.is_ascii_whitespace())
                    .is_some_and(|b| *b == b'['))
            })
            .collect()
    }

    fn file_bytes(&self, sources: &ScanSources, i: usize) -> Result<Vec<u8>> {
        match (&self.files, sources) {
            (Files::Local(paths), _) => {
                std::fs::read(&paths[i]).map_err(io_err("reading", &paths[i]))
            }
            (_, ScanSources::Buffers(b)) => Ok(b[i].as_slice().to_vec()),
            (Files::Cloud { uris, .. }, _) => {
                let location = self.store_of(&uris[i])?;
                let bytes = storage::block_on(async {
                    location
                        .store
                        .get(&location.prefix)
                        .await
                        .map_err(|e| location.error(e))?
                        .bytes()
                        .await
                        .map_err(|e| location.error(e))
                })?;
                Ok(bytes.to_vec())
            }
            (Files::Fetched { .. }, _) => unreachable!("fetched sources are buffers"),
        }
    }

    /// The object store location of one of the cloud files.
    fn store_of(&self, uri: &str) -> Result<StoreLocation> {
        match storage::resolve(uri, &self.csv.storage)? {
            Resolved::Store(location) => Ok(location),
            Resolved::Local(_) => unreachable!("cloud URIs resolve to stores"),
        }
    }

    /// Checks CSV files for NUL bytes and, unless missing fields read as null, for records with
    /// fewer (or more) fields than the header (see [`crate::csv_fields`]). Local files are
    /// checked once per size and modification time; objects in stores every time a plan runs.
    pub(crate) fn check_fields(&self) -> Result<()> {
        if self.format != FileFormat::Csv {
            return Ok(());
        }
        let count_fields = self.csv.missing_fields == MissingFields::Error;
        let counter = || FieldCounter::new(self.csv.separator, count_fields);
        let names = self.files.names();
        let defect = |i: usize, d: Defect| DataError::MalformedCsv {
            file: names[i].clone(),
            line: d.line(),
            reason: match d {
                Defect::Fields {
                    found, expected, ..
                } if found < expected => format!(
                    "{found} fields, expected {expected} like the first line; to read missing \
                     fields as null, use CsvOptions::with_missing_fields(MissingFields::Null)"
                ),
                Defect::Fields {
                    found, expected, ..
                } => format!("{found} fields, expected {expected} like the first line"),
                Defect::Nul { .. } => "a NUL byte: binary data where text was expected (a file \
                                       zero-filled by a crash, or not a CSV file)"
                    .to_owned(),
            },
        };
        match &self.files {
            Files::Local(paths) => {
                for (i, path) in paths.iter().enumerate() {
                    let meta = std::fs::metadata(path).map_err(io_err("reading", path))?;
                    let stamp = (meta.len(), meta.modified().ok(), count_fields);
                    let mut checked = self.checked.lock().unwrap_or_else(|p| p.into_inner());
                    if checked.get(path) == Some(&stamp) {
                        continue;
                    }
                    let file = std::fs::File::open(path).map_err(io_err("reading", path))?;
                    match scan(file, counter()) {
                        Ok(Ok(())) => {
                            checked.insert(path.clone(), stamp);
                        }
                        Ok(Err(d)) => {
                            // Text that is not UTF-8 miscounts; name the real problem.
                            return Err(crate::csv_check::find_bad_encoding(path)
                                .unwrap_or_else(|| defect(i, d)));
                        }
                        Err(e) => return Err(io_err("reading", path)(e)),
                    }
                }
                Ok(())
            }
            Files::Fetched { location, paths } => {
                let buffers = storage::block_on(fetch_all(location, paths))?;
                for (i, bytes) in buffers.iter().enumerate() {
                    let mut counter = counter();
                    counter
                        .feed(bytes.as_slice())
                        .and_then(|()| counter.finish())
                        .map_err(|d| defect(i, d))?;
                }
                Ok(())
            }
            Files::Cloud { uris, .. } => {
                for (i, uri) in uris.iter().enumerate() {
                    let location = self.store_of(uri)?;
                    let found = storage::block_on(async {
                        let mut stream = location
                            .store
                            .get(&location.prefix)
                            .await
                            .map_err(|e| location.error(e))?
                            .into_stream();
                        let mut counter = counter();
                        while let Some(chunk) =
                            stream.try_next().await.map_err(|e| location.error(e))?
                        {
                            if let Err(d) = counter.feed(&chunk) {
                                return Ok::<_, DataError>(Err(d));
                            }
                        }
                        Ok(counter.finish())
                    })?;
                    found.map_err(|d| defect(i, d))?;
                }
                Ok(())
            }
        }
    }

    /// Turns a polars error from reading these files into the clearest error available:
    /// for CSV, the file and line of the first malformed row.
    pub(crate) fn read_error(&self, error: PolarsError, names: &[String]) -> DataError {
        self.diagnose(&error, names)
            .unwrap_or_else(|| DataError::Polars {
                context: format!("reading {}", names.join(", ")),
                source: error,
            })
    }

    /// A precise error for `error` if these files explain it: a malformed CSV row (local files
    /// are re-scanned to find it) or a JSON parse failure.
    pub(crate) fn diagnose(&self, error: &PolarsError, names: &[String]) -> Option<DataError> {
        let named = |p: &&PathBuf| names.contains(&p.display().to_string());
        match (&self.format, &self.files) {
            (FileFormat::Csv, Files::Local(paths)) => paths.iter().filter(named).find_map(|p| {
                crate::csv_check::find_bad_encoding(p)
                    .or_else(|| crate::csv_check::find_malformed_row(p, &self.csv))
            }),
            (FileFormat::Parquet, Files::Local(paths)) => paths
                .iter()
                .filter(named)
                .find_map(|p| crate::parquet_check::check_file(p)),
            (FileFormat::Parquet, Files::Fetched { location, paths }) => {
                let buffers = storage::block_on(fetch_all(location, paths)).ok()?;
                let all = self.files.names();
                buffers
                    .iter()
                    .zip(&all)
                    .filter(|(_, n)| names.contains(n))
                    .find_map(|(b, n)| crate::parquet_check::check_bytes(n, b.as_slice()))
            }
            (FileFormat::Json, _) if error.to_string().to_ascii_lowercase().contains("json") => {
                Some(DataError::MalformedJson {
                    file: names.join(", "),
                    reason: error.to_string(),
                })
            }
            _ => None,
        }
    }
}

/// Feeds a reader through a [`FieldCounter`] in 1 MiB chunks.
fn scan(
    mut reader: impl Read,
    mut counter: FieldCounter,
) -> std::io::Result<std::result::Result<(), Defect>> {
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let n = match reader.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if let Err(m) = counter.feed(&buffer[..n]) {
            return Ok(Err(m));
        }
    }
    Ok(counter.finish())
}

async fn fetch_all(location: &StoreLocation, paths: &[ObjectPath]) -> Result<Vec<Buffer<u8>>> {
    let mut out = Vec::with_capacity(paths.len());
    for path in paths {
        let bytes = location
            .store
            .get(path)
            .await
            .map_err(|e| location.error(e))?
            .bytes()
            .await
            .map_err(|e| location.error(e))?;
        out.push(Buffer::from_owner(bytes));
    }
    Ok(out)
}

/// The first difference between two schemas, in words.
pub(crate) fn schema_difference(expected: &Schema, actual: &Schema) -> Option<String> {
    for (name, dtype) in expected.iter() {
        match actual.get(name) {
            None => return Some(format!("column {name:?} is missing")),
            Some(other) if other != dtype => {
                return Some(format!(
                    "column {name:?} has type {other}, expected {dtype}"
                ));
            }
            Some(_) => {}
        }
    }
    for name in actual.iter_names() {
        if expected.get(name).is_none() {
            return Some(format!("extra column {name:?}"));
        }
    }
    let a: Vec<_> = expected.iter_names().collect();
    let b: Vec<_> = actual.iter_names().collect();
    (a != b).then(|| format!("columns in a different order: {b:?}, expected {a:?}"))
}

fn has_glob(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

fn list_files(location: &str, format: FileFormat, storage: &StorageOptions) -> Result<Files> {
    match storage::resolve(location, storage)? {
        Resolved::Local(path) => list_local(location, &path, format).map(Files::Local),
        Resolved::Store(store) => {
            let paths = storage::block_on(list_store(location, &store, format))?;
            let scheme = location.split("://").next().unwrap_or_default();
            if scheme == "memory" {
                return Ok(Files::Fetched {
                    location: store,
                    paths,
                });
            }
            let uris: Vec<String> = paths.iter().map(|p| object_uri(&store, p)).collect();
            Ok(Files::Cloud {
                options: Box::new(cloud_options(scheme, storage)?),
                uris,
            })
        }
    }
}

fn list_local(location: &str, path: &Path, format: FileFormat) -> Result<Vec<PathBuf>> {
    let text = path.to_string_lossy();
    if has_glob(&text) {
        let mut files: Vec<PathBuf> = glob::glob(&text)
            .map_err(|e| DataError::InvalidArgument {
                name: "path",
                value: location.to_owned(),
                expected: format!("a valid glob pattern ({e})"),
            })?
            .filter_map(std::result::Result::ok)
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        if files.is_empty() {
            return Err(no_files(location, format));
        }
        return Ok(files);
    }
    let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => DataError::NotFound {
            path: location.to_owned(),
            cwd: std::env::current_dir()
                .map(|d| d.display().to_string())
                .unwrap_or_default(),
        },
        _ => DataError::Io {
            action: "reading",
            path: path.to_owned(),
            source: e,
        },
    })?;
    if meta.is_file() {
        return Ok(vec![path.to_owned()]);
    }
    let mut files = Vec::new();
    walk(path, format, &mut files)?;
    files.sort();
    if files.is_empty() {
        return Err(no_files(location, format));
    }
    Ok(files)
}

/// Hidden (`.x`) and marker (`_SUCCESS`, `_metadata`) entries are skipped, as Spark and
/// pyarrow datasets do.
fn skipped(name: &str) -> bool {
    name.starts_with('.') || name.starts_with('_')
}

fn walk(dir: &Path, format: FileFormat, out: &mut Vec<PathBuf>) -> Result<()> {
    for entry in std::fs::read_dir(dir).map_err(io_err("listing", dir))? {
        let entry = entry.map_err(io_err("listing", dir))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if skipped(&name) {
            continue;
        }
        let path = entry.path();
        if path.is_dir() {
            walk(&path, format, out)?;
        } else if format.matches(&name) {
            out.push(path);
        }
    }
    Ok(())
}

fn no_files(location: &str, format: FileFormat) -> DataError {
    DataError::NoFiles {
        location: location.to_owned(),
        format: format.name(),
        extensions: format
            .extensions()
            .iter()
            .map(|e| format!(".{e}"))
            .collect::<Vec<_>>()
            .join(", "),
    }
}

async fn list_store(
    location: &str,
    store: &StoreLocation,
    format: FileFormat,
) -> Result<Vec<ObjectPath>> {
    let prefix = store.prefix.as_ref();
    if has_glob(prefix) {
        let fixed: String = prefix
            .split('/')
            .take_while(|part| !has_glob(part))
            .collect::<Vec<_>>()
            .join("/");
        let pattern = glob::Pattern::new(prefix).map_err(|e| DataError::InvalidArgument {
            name: "path",
            value: location.to_owned(),
            expected: format!("a valid glob pattern ({e})"),
        })?;
        let listed: Vec<_> = store
            .store
            .list(Some(&ObjectPath::from(fixed)))
            .try_collect()
            .await
            .map_err(|e| store.error(e))?;
        let mut paths: Vec<ObjectPath> = listed
            .into_iter()
            .map(|m| m.location)
            .filter(|p| pattern.matches(p.as_ref()))
            .collect();
        paths.sort();
        if paths.is_empty() {
            return Err(no_files(location, format));
        }
        return Ok(paths);
    }
    match store.store.head(&store.prefix).await {
        Ok(_) => return Ok(vec![store.prefix.clone()]),
        Err(object_store::Error::NotFound { .. }) => {}
        Err(e) => return Err(store.error(e).into()),
    }
    let listed: Vec<_> = store
        .store
        .list(Some(&store.prefix))
        .try_collect()
        .await
        .map_err(|e| store.error(e))?;
    if listed.is_empty() {
        return Err(DataError::NotFound {
            path: location.to_owned(),
            cwd: "(object store)".to_owned(),
        });
    }
    let mut paths: Vec<ObjectPath> = listed
        .into_iter()
        .map(|m| m.location)
        .filter(|p| {
            let rel = store.relative_name(p).unwrap_or_default();
            !rel.split('/').any(skipped) && format.matches(&rel)
        })
        .collect();
    paths.sort();
    if paths.is_empty() {
        return Err(no_files(location, format));
    }
    Ok(paths)
}

/// polars' own cloud configuration for the same store and credentials as air-checkpoint's.
pub(crate) fn cloud_options(scheme: &str, storage: &StorageOptions) -> Result<CloudOptions> {
    let mut config: Vec<(String, String)> = storage
        .options()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    if matches!(scheme, "s3" | "s3a")
        && storage
            .option("aws_endpoint")
            .or(storage.option("endpoint"))
            .is_some_and(|e| e.starts_with("http://"))
        && storage.option("aws_allow_http").is_none()
    {
        config.push(("aws_allow_http".to_owned(), "true".to_owned()));
    }
    let cloud_scheme = CloudScheme::from_path(&format!("{scheme}://x"));
    let mut options = CloudOptions::from_untyped_config(cloud_scheme, config)
        .map_err(polars_err(format!("configuring {scheme}:// access")))?;
    if storage.max_retries().is_some() || storage.retry_timeout().is_some() {
        let mut retry = options.retry_config;
        retry.max_retries = storage.max_retries().or(retry.max_retries);
        retry.retry_timeout = storage.retry_timeout().or(retry.retry_timeout);
        options = options.with_retry_config(retry);
    }
    Ok(options)
}
