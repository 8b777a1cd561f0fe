//! The predictor kinds a program builds from checkpoints: which predictor reads a checkpoint
//! is the kind its metadata records (`predictor_kind`), else the kind whose model file it
//! holds (checkpoints written before the key existed, models imported by hand).

use std::{collections::BTreeMap, fmt, sync::Arc};

use air_checkpoint::Checkpoint;
use air_serve::{PredictorFactory, on_device};
use air_train::{ComputeDevice, FromCheckpoint, PREDICTOR_KIND_KEY, Predictor};
use serde_json::{Value, json};

use crate::error::{CliError, Result};

/// Describes a checkpoint's model for `air checkpoint inspect`.
pub type Summarize = Arc<dyn Fn(&Checkpoint) -> air_train::Result<Value> + Send + Sync>;

#[derive(Clone)]
struct Kind {
    /// The entry only this kind's checkpoints hold.
    model_file: String,
    /// `None`: the kind is known but this program cannot build it (the sentence says why).
    factory: Result<Arc<dyn PredictorFactory>, String>,
    summarize: Option<Summarize>,
}

/// Predictor kinds by name.
///
/// [`Registry::builtin`] knows every kind this workspace trains except `burn`, whose
/// architecture is a [`ModelConfig`](air_train::burn::ModelConfig) type in the user's program.
/// A program that has one builds its own `air` with it registered:
///
/// ```no_run
/// use air_cli::Registry;
/// use air_train::burn::{Backend, DispatchDevice, ModelConfig, Tensor, nn};
///
/// /// The program's architecture: one linear layer.
/// #[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
/// struct Linear { inputs: usize }
///
/// impl ModelConfig for Linear {
///     type Model = nn::Linear<Backend>;
///     fn init(&self, device: &DispatchDevice) -> Self::Model {
///         nn::LinearConfig::new(self.inputs, 1).init(device)
///     }
///     fn forward(model: &Self::Model, x: Tensor<Backend, 2>) -> Tensor<Backend, 2> {
///         model.forward(x)
///     }
/// }
///
/// use air_train::burn::{BurnPredictor, MODEL_CONFIG_ENTRY, PREDICTOR_KIND};
///
/// fn main() -> std::process::ExitCode {
///     let registry = Registry::builtin().with_kind(
///         PREDICTOR_KIND,
///         MODEL_CONFIG_ENTRY,
///         air_serve::on_device(BurnPredictor::<Linear>::from_checkpoint_on),
///     );
///     air_cli::main_with(registry)
/// }
/// ```
#[derive(Clone, Default)]
pub struct Registry {
    kinds: BTreeMap<String, Kind>,
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("kinds", &self.kinds.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// A factory shared by several deployments or commands.
#[derive(Clone)]
pub(crate) struct SharedFactory(pub(crate) Arc<dyn PredictorFactory>);

impl PredictorFactory for SharedFactory {
    fn build(
        &self,
        checkpoint: &Checkpoint,
        device: ComputeDevice,
    ) -> air_train::Result<Arc<dyn Predictor>> {
        self.0.build(checkpoint, device)
    }
}

impl Registry {
    /// No kinds.
    pub fn new() -> Self {
        Self::default()
    }

    /// `gbdt`, `sklearn`, `transformers` and `rl`; `burn` is known but needs the program's
    /// model type (see the type's docs).
    pub fn builtin() -> Self {
        use air_train::{burn, gbdt, sklearn, transformers};
        Self::new()
            .with_kind(
                gbdt::PREDICTOR_KIND,
                gbdt::GBDT_MODEL_ENTRY,
                gbdt::GbdtPredictor::from_checkpoint,
            )
            .with_summary(gbdt::PREDICTOR_KIND, |c| {
                let model = gbdt::load_gbdt_model(c)?;
                let leaves: usize = model
                    .trees
                    .iter()
                    .map(|t| (0..t.len()).filter(|&n| t.left[n] < 0).count())
                    .sum();
                Ok(json!({
                    "objective": model.objective.xgboost_name(),
                    "features": model.num_feature,
                    "feature_names": model.feature_names,
                    "rounds": model.num_rounds(),
                    "trees": model.trees.len(),
                    "leaves": leaves,
                }))
            })
            .with_kind(
                sklearn::PREDICTOR_KIND,
                sklearn::SKLEARN_MODEL_ENTRY,
                sklearn::SklearnPredictor::from_checkpoint,
            )
            .with_summary(sklearn::PREDICTOR_KIND, |c| {
                let model = sklearn::load_sklearn_model(c)?;
                Ok(json!({
                    "estimator": model.estimator.name(),
                    "features": model.feature_names.len(),
                    "feature_names": model.feature_names,
                    "classes": model.classes,
                }))
            })
            .with_kind(
                transformers::PREDICTOR_KIND,
                transformers::TASK_ENTRY,
                on_device(transformers::TransformersPredictor::from_checkpoint_on),
            )
            .with_summary(transformers::PREDICTOR_KIND, |c| {
                let task: Value = c.get_json(transformers::TASK_ENTRY)?;
                let config: Value = c.get_json(transformers::CONFIG_ENTRY)?;
                Ok(json!({ "task": task, "config": config }))
            })
            .with_kind(
                air_rl::PREDICTOR_KIND,
                air_rl::algo::ALGORITHM_ENTRY,
                on_device(|c: &Checkpoint, d: ComputeDevice| {
                    air_rl::RLPredictor::from_checkpoint_on(c, d).map_err(Into::into)
                }),
            )
            .with_summary(air_rl::PREDICTOR_KIND, |c| {
                let algorithm: Value = c.get_json(air_rl::algo::ALGORITHM_ENTRY)?;
                Ok(json!({ "algorithm": algorithm }))
            })
            .with_unbuildable(
                burn::PREDICTOR_KIND,
                burn::MODEL_CONFIG_ENTRY,
                "; a burn model's architecture is a ModelConfig type of the program that \
                 trained it: build an `air` of your own with \
                 air_cli::Registry::builtin().with_kind(\"burn\", MODEL_CONFIG_ENTRY, \
                 on_device(BurnPredictor::<YourConfig>::from_checkpoint_on)) and \
                 air_cli::main_with (see the air-cli docs)",
            )
    }

    /// Builds checkpoints of `kind` — recorded under `predictor_kind`, or holding
    /// `model_file` — with `factory`. Replaces an earlier registration of `kind`.
    pub fn with_kind(
        mut self,
        kind: &str,
        model_file: &str,
        factory: impl PredictorFactory + 'static,
    ) -> Self {
        let summarize = self.kinds.get(kind).and_then(|k| k.summarize.clone());
        self.kinds.insert(
            kind.to_owned(),
            Kind {
                model_file: model_file.to_owned(),
                factory: Ok(Arc::new(factory)),
                summarize,
            },
        );
        self
    }

    /// Describes `kind`'s models in `air checkpoint inspect` with `summarize`.
    pub fn with_summary(
        mut self,
        kind: &str,
        summarize: impl Fn(&Checkpoint) -> air_train::Result<Value> + Send + Sync + 'static,
    ) -> Self {
        if let Some(k) = self.kinds.get_mut(kind) {
            k.summarize = Some(Arc::new(summarize));
        }
        self
    }

    fn with_unbuildable(mut self, kind: &str, model_file: &str, hint: &str) -> Self {
        self.kinds.insert(
            kind.to_owned(),
            Kind {
                model_file: model_file.to_owned(),
                factory: Err(hint.to_owned()),
                summarize: None,
            },
        );
        self
    }

    /// The kinds this registry builds, sorted.
    pub fn kinds(&self) -> Vec<&str> {
        self.kinds
            .iter()
            .filter(|(_, k)| k.factory.is_ok())
            .map(|(n, _)| n.as_str())
            .collect()
    }

    fn known(&self) -> String {
        self.kinds().join(", ")
    }

    /// The predictor kind of `checkpoint` (at `location`): its recorded kind, else the kind
    /// whose model file it holds.
    pub fn kind_of(&self, checkpoint: &Checkpoint, location: &str) -> Result<String> {
        if let Some(kind) = checkpoint
            .metadata()
            .get(PREDICTOR_KIND_KEY)
            .and_then(Value::as_str)
        {
            return Ok(kind.to_owned());
        }
        let found: Vec<&String> = self
            .kinds
            .iter()
            .filter(|(_, k)| checkpoint.contains(&k.model_file))
            .map(|(n, _)| n)
            .collect();
        match found.as_slice() {
            [one] => Ok((*one).clone()),
            _ => Err(CliError::NoKind {
                location: location.to_owned(),
                key: PREDICTOR_KIND_KEY,
                known: self
                    .kinds
                    .iter()
                    .map(|(n, k)| format!("{} ({n})", k.model_file))
                    .collect::<Vec<_>>()
                    .join(", "),
            }),
        }
    }

    /// Opens the checkpoint at `location` with the factory of `kind`, or of the kind it
    /// records (or is recognised as) when `kind` is `None`.
    pub(crate) fn open(
        &self,
        location: &str,
        kind: Option<&str>,
    ) -> Result<(Checkpoint, SharedFactory)> {
        let checkpoint = crate::checkpoint::open(location)?;
        let kind = match kind {
            Some(k) => k.to_owned(),
            None => self.kind_of(&checkpoint, location)?,
        };
        let factory = self.factory(&kind, location)?;
        Ok((checkpoint, factory))
    }

    /// The factory of `kind`, for the checkpoint at `location`.
    pub(crate) fn factory(&self, kind: &str, location: &str) -> Result<SharedFactory> {
        match self.kinds.get(kind).map(|k| &k.factory) {
            Some(Ok(f)) => Ok(SharedFactory(Arc::clone(f))),
            Some(Err(hint)) => Err(self.unknown(kind, location, hint)),
            None => Err(self.unknown(kind, location, "")),
        }
    }

    fn unknown(&self, kind: &str, location: &str, hint: &str) -> CliError {
        CliError::UnknownKind {
            location: location.to_owned(),
            kind: kind.to_owned(),
            known: self.known(),
            hint: hint.to_owned(),
        }
    }

    /// A description of the model in `checkpoint`, when its kind has one.
    pub(crate) fn summary(&self, kind: &str, checkpoint: &Checkpoint) -> Option<Value> {
        let summarize = self.kinds.get(kind)?.summarize.as_ref()?;
        Some(summarize(checkpoint).unwrap_or_else(|e| json!({ "error": e.to_string() })))
    }
}
