//! Type names → constructors for saved preprocessors, and names → batch functions.
//!
//! Built-ins are registered from the start. A custom preprocessor or a `BatchMapper` function
//! is registered by the program before it loads a checkpoint that uses it; an unknown name is an
//! error listing the known ones.

use std::{
    collections::BTreeMap,
    sync::{Arc, OnceLock, RwLock},
};

use serde::de::DeserializeOwned;

use super::{
    BatchMapper, Categorizer, Chain, Concatenator, CountVectorizer, CustomKBinsDiscretizer,
    FeatureHasher, HashingVectorizer, LabelEncoder, MaxAbsScaler, MinMaxScaler, MultiHotEncoder,
    NamedPreprocessor, Normalizer, OneHotEncoder, OrdinalEncoder, PowerTransformer, Preprocessor,
    RobustScaler, SimpleImputer, StandardScaler, TokenFn, Tokenizer, UniformKBinsDiscretizer,
    chain,
};
use crate::{
    BatchFn,
    error::{DataError, Result},
};

type Constructor = Arc<dyn Fn(serde_json::Value) -> Result<Box<dyn Preprocessor>> + Send + Sync>;

fn from_serde<T: Preprocessor + DeserializeOwned + 'static>(
    name: &'static str,
) -> impl Fn(serde_json::Value) -> Result<Box<dyn Preprocessor>> + Send + Sync {
    move |config| {
        serde_json::from_value::<T>(config)
            .map(|p| Box::new(p) as Box<dyn Preprocessor>)
            .map_err(|e| DataError::PreprocessorFormat {
                reason: format!("{name}: {e}"),
            })
    }
}

fn constructors() -> &'static RwLock<BTreeMap<String, Constructor>> {
    static REGISTRY: OnceLock<RwLock<BTreeMap<String, Constructor>>> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        let mut m: BTreeMap<String, Constructor> = BTreeMap::new();
        macro_rules! builtin {
            ($($t:ident),*) => {
                $(m.insert($t::NAME.to_owned(), Arc::new(from_serde::<$t>($t::NAME)));)*
            };
        }
        builtin!(
            StandardScaler,
            MinMaxScaler,
            MaxAbsScaler,
            RobustScaler,
            Normalizer,
            PowerTransformer,
            SimpleImputer,
            OrdinalEncoder,
            OneHotEncoder,
            LabelEncoder,
            Concatenator,
            Categorizer,
            UniformKBinsDiscretizer,
            CustomKBinsDiscretizer,
            MultiHotEncoder,
            Tokenizer,
            CountVectorizer,
            HashingVectorizer,
            FeatureHasher
        );
        m.insert(Chain::NAME.to_owned(), Arc::new(chain::chain_from_config));
        m.insert(
            BatchMapper::NAME.to_owned(),
            Arc::new(chain::batch_mapper_from_config),
        );
        RwLock::new(m)
    })
}

fn batch_fns() -> &'static RwLock<BTreeMap<String, Arc<dyn BatchFn>>> {
    static FNS: OnceLock<RwLock<BTreeMap<String, Arc<dyn BatchFn>>>> = OnceLock::new();
    FNS.get_or_init(Default::default)
}

fn token_fns() -> &'static RwLock<BTreeMap<String, Arc<dyn TokenFn>>> {
    static FNS: OnceLock<RwLock<BTreeMap<String, Arc<dyn TokenFn>>>> = OnceLock::new();
    FNS.get_or_init(Default::default)
}

/// Registers `f` under `name` for [`Tokenization::Custom`](super::Tokenization::Custom): the
/// tokenizers and vectorizers that name it (including ones loaded from checkpoints) call it.
/// Registering a name again replaces it.
pub fn register_tokenizer<F: TokenFn>(name: &str, f: F) {
    token_fns()
        .write()
        .unwrap_or_else(|p| p.into_inner())
        .insert(name.to_owned(), Arc::new(f));
}

pub(crate) fn token_fn(name: &str) -> Result<Arc<dyn TokenFn>> {
    let fns = token_fns().read().unwrap_or_else(|p| p.into_inner());
    fns.get(name)
        .cloned()
        .ok_or_else(|| DataError::NotRegistered {
            kind: "tokenizer",
            name: name.to_owned(),
            known: fns.keys().cloned().collect(),
            hint: "air_data::register_tokenizer(name, f)",
        })
}

/// Registers a custom preprocessor type under its [`NamedPreprocessor::NAME`] (which its
/// [`type_name`](Preprocessor::type_name) returns): checkpoints holding such a preprocessor are
/// loaded by deserialising its [`to_config`](Preprocessor::to_config) JSON into `T`.
/// Registering a name again replaces it.
pub fn register_preprocessor<T>()
where
    T: Preprocessor + NamedPreprocessor + DeserializeOwned + 'static,
{
    constructors()
        .write()
        .unwrap_or_else(|p| p.into_inner())
        .insert(T::NAME.to_owned(), Arc::new(from_serde::<T>(T::NAME)));
}

/// Registers `f` under `name` for [`BatchMapper`](crate::BatchMapper)s loaded from checkpoints.
pub fn register_batch_fn<F: BatchFn>(name: &str, f: F) {
    register_batch_arc(name, Arc::new(f));
}

pub(crate) fn register_batch_arc(name: &str, f: Arc<dyn BatchFn>) {
    batch_fns()
        .write()
        .unwrap_or_else(|p| p.into_inner())
        .insert(name.to_owned(), f);
}

pub(crate) fn batch_fn(name: &str) -> Result<Arc<dyn BatchFn>> {
    let fns = batch_fns().read().unwrap_or_else(|p| p.into_inner());
    fns.get(name)
        .cloned()
        .ok_or_else(|| DataError::NotRegistered {
            kind: "batch function",
            name: name.to_owned(),
            known: fns.keys().cloned().collect(),
            hint: "air_data::register_batch_fn(name, f)",
        })
}

pub(crate) fn construct(name: &str, config: serde_json::Value) -> Result<Box<dyn Preprocessor>> {
    let constructor = {
        let map = constructors().read().unwrap_or_else(|p| p.into_inner());
        map.get(name)
            .cloned()
            .ok_or_else(|| DataError::NotRegistered {
                kind: "preprocessor",
                name: name.to_owned(),
                known: map.keys().cloned().collect(),
                hint: "air_data::register_preprocessor::<T>(name)",
            })?
    };
    constructor(config)
}
