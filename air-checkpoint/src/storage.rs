//! URIs to object stores: scheme parsing, per-scheme configuration, error classification.
//!
//! air-data reads datasets through the same functions, so a URI means the same store (and the
//! same credentials) for data and for checkpoints.

use std::{
    collections::{BTreeMap, HashMap},
    fmt,
    future::Future,
    path::PathBuf,
    sync::{Arc, Mutex, OnceLock},
    time::Duration,
};

use object_store::{ObjectStore, memory::InMemory, path::Path as ObjectPath};
use url::Url;

use crate::{CheckpointError, Result};

/// Settings for object stores: backend options plus retry limits.
///
/// Backend options use object_store's configuration keys (for s3: `aws_endpoint`,
/// `aws_access_key_id`, `aws_secret_access_key`, `aws_region`, `aws_allow_http`, ...). They
/// override the environment (`AWS_*`, `GOOGLE_*`, `AZURE_*`), which is read first.
///
/// ```
/// use std::time::Duration;
/// use air_checkpoint::StorageOptions;
///
/// let opts = StorageOptions::new()
///     .with_option("aws_endpoint", "http://127.0.0.1:9000")
///     .with_max_retries(2)
///     .with_retry_timeout(Duration::from_secs(10));
/// assert_eq!(opts.option("aws_endpoint"), Some("http://127.0.0.1:9000"));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct StorageOptions {
    options: BTreeMap<String, String>,
    max_retries: Option<usize>,
    retry_timeout: Option<Duration>,
    instance_credentials: bool,
}

impl Default for StorageOptions {
    fn default() -> Self {
        Self {
            options: BTreeMap::new(),
            max_retries: None,
            retry_timeout: None,
            instance_credentials: true,
        }
    }
}

impl fmt::Debug for StorageOptions {
    // Options hold secrets: print the keys only.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StorageOptions")
            .field("keys", &self.options.keys().collect::<Vec<_>>())
            .field("max_retries", &self.max_retries)
            .field("retry_timeout", &self.retry_timeout)
            .field("instance_credentials", &self.instance_credentials)
            .finish()
    }
}

impl StorageOptions {
    /// No options: configuration comes from the environment.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets one backend option (an object_store configuration key).
    pub fn with_option(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.options.insert(key.into(), value.into());
        self
    }

    /// How many times a failed request is retried (object_store's default is 10).
    pub fn with_max_retries(mut self, max_retries: usize) -> Self {
        self.max_retries = Some(max_retries);
        self
    }

    /// How long a request keeps being retried (object_store's default is 3 minutes).
    pub fn with_retry_timeout(mut self, timeout: Duration) -> Self {
        self.retry_timeout = Some(timeout);
        self
    }

    /// Whether a store without configured credentials may fall back to the cloud's instance
    /// credentials (the EC2 metadata service for s3). On by default, like the AWS SDKs; off,
    /// a missing key is reported at once instead of after a metadata-service timeout. The
    /// `AWS_EC2_METADATA_DISABLED=true` environment variable also turns it off.
    pub fn with_instance_credentials(mut self, allowed: bool) -> Self {
        self.instance_credentials = allowed;
        self
    }

    /// The value of one backend option, if set.
    pub fn option(&self, key: &str) -> Option<&str> {
        self.options.get(key).map(String::as_str)
    }

    /// All backend options, sorted by key (air-data hands them to polars' own cloud readers).
    pub fn options(&self) -> impl Iterator<Item = (&str, &str)> {
        self.options.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The retry limit, if set.
    pub fn max_retries(&self) -> Option<usize> {
        self.max_retries
    }

    /// The retry time limit, if set.
    pub fn retry_timeout(&self) -> Option<Duration> {
        self.retry_timeout
    }
}

/// An object store and the prefix inside it that a URI names.
#[derive(Clone)]
pub struct StoreLocation {
    /// The URI as given.
    pub uri: String,
    /// The store.
    pub store: Arc<dyn ObjectStore>,
    /// The path inside the store (no leading or trailing `/`).
    pub prefix: ObjectPath,
}

impl fmt::Debug for StoreLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreLocation")
            .field("uri", &self.uri)
            .field("store", &self.store.to_string())
            .finish()
    }
}

impl StoreLocation {
    /// The object path of entry `name` (a `/`-separated relative name) under the prefix.
    pub fn child(&self, name: &str) -> ObjectPath {
        name.split('/')
            .fold(self.prefix.clone(), |path, part| path.clone().join(part))
    }

    /// The relative entry name of `location`, if it lies under the prefix.
    pub fn relative_name(&self, location: &ObjectPath) -> Option<String> {
        let parts = location.prefix_match(&self.prefix)?;
        let parts: Vec<String> = parts.map(|p| percent_decode(p.as_ref())).collect();
        (!parts.is_empty()).then(|| parts.join("/"))
    }

    /// Classifies an object_store error into this crate's error for this location.
    pub fn error(&self, source: object_store::Error) -> CheckpointError {
        classify(&self.uri, source)
    }
}

/// Where a URI points: a local directory (`file://` and plain paths) or an object store.
#[derive(Debug, Clone)]
pub enum Resolved {
    /// A local path; checkpoints there get the directory form's atomic writes.
    Local(PathBuf),
    /// An object store prefix.
    Store(StoreLocation),
}

/// The URI schemes this build supports.
pub fn supported_schemes() -> Vec<&'static str> {
    let mut schemes = vec!["file", "memory"];
    if cfg!(feature = "s3") {
        schemes.extend(["s3", "s3a"]);
    }
    if cfg!(feature = "gcp") {
        schemes.extend(["gs"]);
    }
    if cfg!(feature = "azure") {
        schemes.extend(["az", "abfs", "abfss"]);
    }
    schemes
}

/// Whether `uri` has a scheme (`s3://...`, `file://...`); anything else is a local path. This is
/// the one place that tells the two apart.
fn has_scheme(uri: &str) -> bool {
    uri.contains("://")
}

/// The local path `uri` names (a plain path or a `file://` URL); `None` for an object store URI
/// or a malformed one. Nothing is connected to or checked.
pub fn local_path(uri: &str) -> Option<PathBuf> {
    if !has_scheme(uri) {
        return Some(PathBuf::from(uri));
    }
    Url::parse(uri)
        .ok()
        .filter(|u| u.scheme() == "file")
        .and_then(|u| u.to_file_path().ok())
}

/// Resolves `uri` (`file://`, `memory://`, `s3://`, `gs://`, `az://`, or a plain local path)
/// to a local path or an object store location.
pub fn resolve(uri: &str, options: &StorageOptions) -> Result<Resolved> {
    if !has_scheme(uri) {
        return Ok(Resolved::Local(PathBuf::from(uri)));
    }
    let invalid = |reason: String| CheckpointError::InvalidUri {
        uri: uri.to_owned(),
        reason,
    };
    let url = Url::parse(uri).map_err(|e| invalid(e.to_string()))?;
    let scheme = url.scheme().to_owned();
    if scheme == "file" {
        return url
            .to_file_path()
            .map(Resolved::Local)
            .map_err(|()| invalid("not an absolute local path (use file:///abs/path)".to_owned()));
    }
    let bucket = url.host_str().filter(|h| !h.is_empty()).ok_or_else(|| {
        invalid(format!(
            "no bucket or container name (expected {scheme}://BUCKET/path)"
        ))
    })?;
    let prefix = ObjectPath::from_url_path(url.path()).map_err(|e| invalid(e.to_string()))?;
    let store: Arc<dyn ObjectStore> = match scheme.as_str() {
        "memory" => memory_store(bucket),
        #[cfg(feature = "s3")]
        "s3" | "s3a" => s3_store(uri, bucket, options)?,
        #[cfg(feature = "gcp")]
        "gs" => gcs_store(uri, bucket, options)?,
        #[cfg(feature = "azure")]
        "az" | "abfs" | "abfss" => azure_store(uri, &url, options)?,
        _ => {
            return Err(CheckpointError::UnsupportedScheme {
                scheme,
                uri: uri.to_owned(),
                supported: supported_schemes().join(", "),
            });
        }
    };
    let _ = options; // unused when no cloud feature is compiled in
    Ok(Resolved::Store(StoreLocation {
        uri: uri.trim_end_matches('/').to_owned(),
        store,
        prefix,
    }))
}

/// `memory://NAME/...` stores live for the whole process, one per NAME, so a checkpoint written
/// there can be read back by another `from_uri` call.
fn memory_store(name: &str) -> Arc<dyn ObjectStore> {
    static STORES: OnceLock<Mutex<HashMap<String, Arc<InMemory>>>> = OnceLock::new();
    let mut stores = STORES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    stores
        .entry(name.to_owned())
        .or_insert_with(|| Arc::new(InMemory::new()))
        .clone()
}

#[cfg(any(feature = "s3", feature = "gcp", feature = "azure"))]
fn retry_config(options: &StorageOptions) -> object_store::RetryConfig {
    let mut retry = object_store::RetryConfig::default();
    if let Some(n) = options.max_retries {
        retry.max_retries = n;
    }
    if let Some(t) = options.retry_timeout {
        retry.retry_timeout = t;
    }
    retry
}

#[cfg(any(feature = "s3", feature = "gcp", feature = "azure"))]
fn parse_key<K: std::str::FromStr>(uri: &str, key: &str) -> Result<K> {
    key.parse().map_err(|_| CheckpointError::InvalidOption {
        key: key.to_owned(),
        uri: uri.to_owned(),
        reason: "not a configuration key of this store (see object_store's config keys)".to_owned(),
    })
}

#[cfg(any(feature = "s3", feature = "gcp", feature = "azure"))]
fn build_err(uri: &str, e: object_store::Error) -> CheckpointError {
    CheckpointError::InvalidOption {
        key: "(store configuration)".to_owned(),
        uri: uri.to_owned(),
        reason: e.to_string(),
    }
}

#[cfg(feature = "s3")]
fn s3_store(uri: &str, bucket: &str, options: &StorageOptions) -> Result<Arc<dyn ObjectStore>> {
    use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey as K};

    let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
    for (key, value) in &options.options {
        builder = builder.with_config(parse_key::<K>(uri, key)?, value);
    }
    // An explicit plain-http endpoint (MinIO, moto, a local gateway) is intent enough.
    if builder
        .get_config_value(&K::Endpoint)
        .is_some_and(|e| e.starts_with("http://"))
    {
        builder = builder.with_allow_http(true);
    }
    let has = |key: K| {
        builder
            .get_config_value(&key)
            .is_some_and(|v| !v.is_empty())
    };
    let has_credentials = has(K::AccessKeyId)
        || has(K::WebIdentityTokenFile)
        || has(K::ContainerCredentialsRelativeUri)
        || has(K::ContainerCredentialsFullUri)
        || builder
            .get_config_value(&K::SkipSignature)
            .is_some_and(|v| v == "true");
    // Without credentials object_store falls back to the EC2 instance metadata service; where
    // the user has switched that off (the AWS SDKs' own switch), say so instead of timing out.
    let imds_disabled = std::env::var("AWS_EC2_METADATA_DISABLED")
        .is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1");
    if !has_credentials && (imds_disabled || !options.instance_credentials) {
        return Err(CheckpointError::MissingCredentials {
            uri: uri.to_owned(),
            hint: "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or the aws_access_key_id / \
                   aws_secret_access_key options), a web identity token, or aws_skip_signature \
                   for a public bucket (instance credentials are switched off by the options or by \
                   AWS_EC2_METADATA_DISABLED)"
                .to_owned(),
        });
    }
    let store = builder
        .with_retry(retry_config(options))
        .build()
        .map_err(|e| build_err(uri, e))?;
    Ok(Arc::new(store))
}

#[cfg(feature = "gcp")]
fn gcs_store(uri: &str, bucket: &str, options: &StorageOptions) -> Result<Arc<dyn ObjectStore>> {
    use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey as K};

    let mut builder = GoogleCloudStorageBuilder::from_env().with_bucket_name(bucket);
    for (key, value) in &options.options {
        builder = builder.with_config(parse_key::<K>(uri, key)?, value);
    }
    let store = builder
        .with_retry(retry_config(options))
        .build()
        .map_err(|e| build_err(uri, e))?;
    Ok(Arc::new(store))
}

#[cfg(feature = "azure")]
fn azure_store(uri: &str, url: &Url, options: &StorageOptions) -> Result<Arc<dyn ObjectStore>> {
    use object_store::azure::{AzureConfigKey as K, MicrosoftAzureBuilder};

    let mut builder = MicrosoftAzureBuilder::from_env().with_url(url.as_str());
    for (key, value) in &options.options {
        builder = builder.with_config(parse_key::<K>(uri, key)?, value);
    }
    let store = builder
        .with_retry(retry_config(options))
        .build()
        .map_err(|e| build_err(uri, e))?;
    Ok(Arc::new(store))
}

/// Runs an object_store future to completion from synchronous code, on the one I/O runtime this
/// crate owns (object store clients must stay on the runtime that made them). Works inside and
/// outside a tokio runtime; air-data's readers and writers use it too.
pub fn block_on<F: Future + Send>(future: F) -> F::Output
where
    F::Output: Send,
{
    crate::runtime::block_on(future)
}

/// Turns an object_store error into the most specific error this crate has for it.
pub(crate) fn classify(uri: &str, source: object_store::Error) -> CheckpointError {
    let uri = uri.to_owned();
    match source {
        object_store::Error::Unauthenticated { .. }
        | object_store::Error::PermissionDenied { .. } => {
            CheckpointError::AccessDenied { uri, source }
        }
        source if is_connect_error(&source) => CheckpointError::Unreachable { uri, source },
        source if mentions_credentials(&source) => CheckpointError::MissingCredentials {
            hint: format!(
                "the credential provider failed ({source}); set AWS_ACCESS_KEY_ID and \
                 AWS_SECRET_ACCESS_KEY or the matching storage options"
            ),
            uri,
        },
        source => CheckpointError::Storage { uri, source },
    }
}

fn is_connect_error(error: &object_store::Error) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = cause {
        #[cfg(any(feature = "s3", feature = "gcp", feature = "azure"))]
        if let Some(http) = e.downcast_ref::<object_store::client::HttpError>()
            && matches!(http.kind(), object_store::client::HttpErrorKind::Connect)
        {
            return true;
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::HostUnreachable
            )
        {
            return true;
        }
        cause = e.source();
    }
    false
}

fn mentions_credentials(error: &object_store::Error) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = cause {
        if e.to_string().to_ascii_lowercase().contains("credential") {
            return true;
        }
        cause = e.source();
    }
    false
}

fn percent_decode(part: &str) -> String {
    let bytes = part.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Some(v) = std::str::from_utf8(&bytes[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn plain_paths_and_file_uris_are_local() {
        assert!(
            matches!(resolve("/tmp/x", &StorageOptions::new()).unwrap(), Resolved::Local(p) if p == Path::new("/tmp/x"))
        );
        assert!(
            matches!(resolve("file:///tmp/x", &StorageOptions::new()).unwrap(), Resolved::Local(p) if p == Path::new("/tmp/x"))
        );
        let err = resolve("file://somehost/x", &StorageOptions::new()).unwrap_err();
        assert!(matches!(err, CheckpointError::InvalidUri { .. }), "{err}");
    }

    #[test]
    fn unknown_scheme_lists_supported_ones() {
        let err = resolve("ftp://host/x", &StorageOptions::new())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("\"ftp\"") && err.contains("memory") && err.contains("file"),
            "{err}"
        );
    }

    #[test]
    fn missing_bucket_is_invalid() {
        let err = resolve("memory:///x", &StorageOptions::new())
            .unwrap_err()
            .to_string();
        assert!(err.contains("no bucket"), "{err}");
    }

    #[test]
    fn entry_names_round_trip_through_object_paths() {
        let Resolved::Store(loc) = resolve("memory://names/ck/1", &StorageOptions::new()).unwrap()
        else {
            panic!("memory:// is a store");
        };
        for name in [
            "a.txt",
            "dir/sub/x y.bin",
            ".hidden",
            "odd%name#1[2]{3}.txt",
        ] {
            assert_eq!(loc.relative_name(&loc.child(name)).as_deref(), Some(name));
        }
        assert_eq!(loc.relative_name(&ObjectPath::from("ck/2/a")), None);
    }

    #[test]
    fn options_debug_hides_values() {
        let o = StorageOptions::new().with_option("aws_secret_access_key", "hunter2");
        assert!(!format!("{o:?}").contains("hunter2"));
    }
}
