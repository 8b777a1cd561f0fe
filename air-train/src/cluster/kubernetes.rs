//! Kubernetes manifests for running beyond one machine (feature `kubernetes`): a training run
//! as an Indexed Job behind a headless Service ([`TrainingJob`]), whose pods find their rank
//! and rank 0 exactly as [`ProcessEnv`](super::ProcessEnv) reads them; and a model server as a
//! Deployment behind a Service ([`ServingDeployment`]). Built from `k8s-openapi` types and
//! written as one `List` that `kubectl apply -f` takes. Nothing here talks to a cluster.

use std::{collections::BTreeMap, num::NonZeroUsize};

use k8s_openapi::{
    api::{
        apps::v1::{Deployment, DeploymentSpec},
        batch::v1::{Job, JobSpec},
        core::v1::{
            Container, ContainerPort, EnvVar, HTTPGetAction, PersistentVolumeClaimVolumeSource,
            PodSpec, PodTemplateSpec, Probe, ResourceRequirements, Service, ServicePort,
            ServiceSpec, Volume, VolumeMount,
        },
    },
    apimachinery::pkg::{
        api::resource::Quantity,
        apis::meta::v1::{LabelSelector, ObjectMeta},
        util::intstr::IntOrString,
    },
};
use serde_json::{Value, json};

use super::{DEFAULT_COORDINATOR_PORT, PORT_VARIABLE};
use crate::TrainError;

/// The label that ties a run's pods to its Service.
pub const RUN_LABEL: &str = "air.rs/run";

/// Variables the manifests set for [`ProcessEnv`](super::ProcessEnv); user variables may not
/// replace them.
const RESERVED: [&str; 4] = [
    "AIR_WORLD_SIZE",
    "AIR_SERVICE",
    "AIR_JOB_NAME",
    PORT_VARIABLE,
];

fn invalid(field: &'static str, value: impl Into<String>, expected: &str) -> TrainError {
    TrainError::InvalidConfig {
        field,
        value: value.into(),
        expected: expected.to_owned(),
    }
}

/// What each pod asks for: CPU and memory (requested and limited alike) and NVIDIA GPUs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodResources {
    cpu: Option<String>,
    memory: Option<String>,
    gpus: u32,
}

impl PodResources {
    /// No requests (the cluster's defaults).
    pub fn new() -> Self {
        Self::default()
    }

    /// CPU as a Kubernetes quantity (`"4"`, `"500m"`).
    pub fn with_cpu(mut self, cpu: &str) -> Result<Self, TrainError> {
        self.cpu = Some(quantity("resources.cpu", cpu)?);
        Ok(self)
    }

    /// Memory as a Kubernetes quantity (`"16Gi"`, `"512M"`).
    pub fn with_memory(mut self, memory: &str) -> Result<Self, TrainError> {
        self.memory = Some(quantity("resources.memory", memory)?);
        Ok(self)
    }

    /// `nvidia.com/gpu` per pod.
    pub fn with_gpus(mut self, gpus: u32) -> Self {
        self.gpus = gpus;
        self
    }

    fn requirements(&self) -> Option<ResourceRequirements> {
        let mut amounts = BTreeMap::new();
        if let Some(cpu) = &self.cpu {
            amounts.insert("cpu".to_owned(), Quantity(cpu.clone()));
        }
        if let Some(memory) = &self.memory {
            amounts.insert("memory".to_owned(), Quantity(memory.clone()));
        }
        let mut limits = amounts.clone();
        if self.gpus > 0 {
            // Extended resources are limits only (a request, if given, must equal it).
            limits.insert("nvidia.com/gpu".to_owned(), Quantity(self.gpus.to_string()));
        }
        (!limits.is_empty()).then(|| ResourceRequirements {
            requests: (!amounts.is_empty()).then_some(amounts),
            limits: Some(limits),
            ..Default::default()
        })
    }
}

/// A Kubernetes quantity: a decimal number with an optional SI or binary suffix.
fn quantity(field: &'static str, value: &str) -> Result<String, TrainError> {
    const SUFFIXES: [&str; 13] = [
        "", "m", "k", "M", "G", "T", "P", "E", "Ki", "Mi", "Gi", "Ti", "Pi",
    ];
    let digits_end = value
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(value.len());
    let (number, suffix) = value.split_at(digits_end);
    let number_ok = !number.is_empty()
        && number.matches('.').count() <= 1
        && number.parse::<f64>().is_ok_and(|n| n > 0.0);
    if number_ok && SUFFIXES.contains(&suffix) {
        Ok(value.to_owned())
    } else {
        Err(invalid(
            field,
            format!("{value:?}"),
            "a positive Kubernetes quantity such as \"2\", \"500m\", \"16Gi\"",
        ))
    }
}

/// A DNS-1123 label of at most `max` characters (Kubernetes object and host names).
fn dns_label(field: &'static str, value: &str, max: usize) -> Result<String, TrainError> {
    let ok = !value.is_empty()
        && value.len() <= max
        && value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !value.starts_with('-')
        && !value.ends_with('-');
    if ok {
        Ok(value.to_owned())
    } else {
        Err(invalid(
            field,
            format!("{value:?}"),
            &format!(
                "at most {max} lower-case letters, digits and '-', starting and ending with a \
                 letter or digit (a DNS-1123 label)"
            ),
        ))
    }
}

/// What a pod runs, shared by training and serving.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PodProgram {
    image: String,
    command: Vec<String>,
    env: BTreeMap<String, String>,
    resources: PodResources,
    /// A PersistentVolumeClaim and where it is mounted.
    volume: Option<(String, String)>,
}

impl PodProgram {
    fn new(image: &str, command: &[&str]) -> Result<Self, TrainError> {
        if image.trim().is_empty() || image.contains(char::is_whitespace) {
            return Err(invalid(
                "image",
                format!("{image:?}"),
                "a container image reference such as \"registry.example/air-train:1.0\"",
            ));
        }
        if command.first().is_none_or(|c| c.trim().is_empty()) {
            return Err(invalid(
                "command",
                format!("{command:?}"),
                "the program to run in the container and its arguments",
            ));
        }
        Ok(Self {
            image: image.to_owned(),
            command: command.iter().map(|c| (*c).to_owned()).collect(),
            env: BTreeMap::new(),
            resources: PodResources::new(),
            volume: None,
        })
    }

    fn set_env(&mut self, name: &str, value: &str) -> Result<(), TrainError> {
        let valid = name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(invalid(
                "env",
                format!("{name:?}"),
                "a variable name of letters, digits and '_', not starting with a digit",
            ));
        }
        if RESERVED.contains(&name) {
            return Err(invalid(
                "env",
                format!("{name:?}"),
                &format!(
                    "a variable other than {} (the manifests set those for the launcher)",
                    RESERVED.join(", ")
                ),
            ));
        }
        self.env.insert(name.to_owned(), value.to_owned());
        Ok(())
    }

    fn set_volume(&mut self, claim: &str, mount_path: &str) -> Result<(), TrainError> {
        let claim = dns_label("volume claim", claim, 253)?;
        if !mount_path.starts_with('/') {
            return Err(invalid(
                "volume mount path",
                format!("{mount_path:?}"),
                "an absolute path in the container, such as /runs",
            ));
        }
        self.volume = Some((claim, mount_path.to_owned()));
        Ok(())
    }

    fn container(&self, name: &str, env: Vec<EnvVar>, port: ContainerPort) -> Container {
        let user_env = self.env.iter().map(|(k, v)| EnvVar {
            name: k.clone(),
            value: Some(v.clone()),
            ..Default::default()
        });
        Container {
            name: name.to_owned(),
            image: Some(self.image.clone()),
            command: Some(self.command.clone()),
            env: Some(env.into_iter().chain(user_env).collect()),
            ports: Some(vec![port]),
            resources: self.resources.requirements(),
            volume_mounts: self.volume.as_ref().map(|(_, path)| {
                vec![VolumeMount {
                    name: "runs".to_owned(),
                    mount_path: path.clone(),
                    ..Default::default()
                }]
            }),
            ..Default::default()
        }
    }

    fn volumes(&self) -> Option<Vec<Volume>> {
        self.volume.as_ref().map(|(claim, _)| {
            vec![Volume {
                name: "runs".to_owned(),
                persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                    claim_name: claim.clone(),
                    read_only: None,
                }),
                ..Default::default()
            }]
        })
    }
}

fn env(name: &str, value: impl Into<String>) -> EnvVar {
    EnvVar {
        name: name.to_owned(),
        value: Some(value.into()),
        ..Default::default()
    }
}

fn meta(name: &str, namespace: Option<&String>, labels: &BTreeMap<String, String>) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_owned()),
        namespace: namespace.cloned(),
        labels: Some(labels.clone()),
        ..Default::default()
    }
}

/// The labels of a run's objects and pods: what the Services select.
fn labels(app: &str, name: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".to_owned(), app.to_owned()),
        (RUN_LABEL.to_owned(), name.to_owned()),
    ])
}

fn list(items: Vec<Value>) -> Value {
    json!({"apiVersion": "v1", "kind": "List", "items": items})
}

/// A training run of `workers` processes as an Indexed Job (pod `i` is rank `i`) and the
/// headless Service through which the ranks reach rank 0 (`<name>-0.<name>`). The pods get
/// `AIR_WORLD_SIZE`, `AIR_SERVICE`, `AIR_JOB_NAME` and `AIR_COORDINATOR_PORT`, so a program
/// whose trainer's `num_workers` equals `workers` joins the run by itself. A failed pod is
/// restarted in place up to `backoff_limit` times; with
/// [`ExistingRun::Resume`](crate::ExistingRun::Resume) and storage every pod reaches (a shared
/// volume or `s3://`), the relaunched run continues from its newest checkpoint.
///
/// ```
/// use std::num::NonZeroUsize;
/// use air_train::cluster::kubernetes::{PodResources, TrainingJob};
///
/// let job = TrainingJob::new(
///     "mlp-sweep",
///     "registry.example/air-train:1.0",
///     &["/app/train", "--storage", "s3://runs/"],
///     NonZeroUsize::new(4).unwrap(),
/// )?
/// .with_resources(PodResources::new().with_cpu("4")?.with_memory("16Gi")?);
/// let manifests = job.manifests();
/// assert_eq!(manifests["items"][0]["kind"], "Service");
/// assert_eq!(manifests["items"][1]["spec"]["completionMode"], "Indexed");
/// # Ok::<(), air_train::TrainError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrainingJob {
    name: String,
    namespace: Option<String>,
    workers: NonZeroUsize,
    port: u16,
    backoff_limit: u32,
    program: PodProgram,
}

impl TrainingJob {
    /// The Job and Service `name` (also the pods' host names `<name>-<rank>`), each pod
    /// running `command` in `image`.
    pub fn new(
        name: &str,
        image: &str,
        command: &[&str],
        workers: NonZeroUsize,
    ) -> Result<Self, TrainError> {
        // Pod host names `<name>-<index>` must fit in 63 characters.
        let digits = (workers.get() - 1).to_string().len();
        Ok(Self {
            name: dns_label("name", name, 62 - digits)?,
            namespace: None,
            workers,
            port: DEFAULT_COORDINATOR_PORT,
            backoff_limit: 3,
            program: PodProgram::new(image, command)?,
        })
    }

    /// The namespace (the one `kubectl` uses, when not given).
    pub fn with_namespace(mut self, namespace: &str) -> Result<Self, TrainError> {
        self.namespace = Some(dns_label("namespace", namespace, 63)?);
        Ok(self)
    }

    /// The port rank 0 listens on (29500 by default).
    pub fn with_port(mut self, port: u16) -> Result<Self, TrainError> {
        if port == 0 {
            return Err(invalid("port", "0", "a port from 1 to 65535"));
        }
        self.port = port;
        Ok(self)
    }

    /// How many times failed pods are restarted before the Job fails (3 by default).
    pub fn with_backoff_limit(mut self, restarts: u32) -> Self {
        self.backoff_limit = restarts;
        self
    }

    /// What each pod asks for.
    pub fn with_resources(mut self, resources: PodResources) -> Self {
        self.program.resources = resources;
        self
    }

    /// An environment variable for every pod (storage credentials, the program's options).
    pub fn with_env(mut self, name: &str, value: &str) -> Result<Self, TrainError> {
        self.program.set_env(name, value)?;
        Ok(self)
    }

    /// Mounts PersistentVolumeClaim `claim` (ReadWriteMany, for a storage path every pod
    /// shares) at `mount_path`.
    pub fn with_shared_volume(mut self, claim: &str, mount_path: &str) -> Result<Self, TrainError> {
        self.program.set_volume(claim, mount_path)?;
        Ok(self)
    }

    fn labels(&self) -> BTreeMap<String, String> {
        labels("air-train", &self.name)
    }

    /// The headless Service: DNS names for the pods, published before they are ready (rank 0
    /// is found while the run starts).
    pub fn service(&self) -> Service {
        Service {
            metadata: meta(&self.name, self.namespace.as_ref(), &self.labels()),
            spec: Some(ServiceSpec {
                cluster_ip: Some("None".to_owned()),
                publish_not_ready_addresses: Some(true),
                selector: Some(self.labels()),
                ports: Some(vec![ServicePort {
                    name: Some("collective".to_owned()),
                    port: i32::from(self.port),
                    target_port: Some(IntOrString::Int(i32::from(self.port))),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    /// The Indexed Job: `workers` completions, all running at once.
    pub fn job(&self) -> Job {
        let workers = i32::try_from(self.workers.get()).unwrap_or(i32::MAX);
        let env = vec![
            env("AIR_WORLD_SIZE", self.workers.to_string()),
            env("AIR_SERVICE", self.name.clone()),
            env("AIR_JOB_NAME", self.name.clone()),
            env(PORT_VARIABLE, self.port.to_string()),
        ];
        let port = ContainerPort {
            name: Some("collective".to_owned()),
            container_port: i32::from(self.port),
            ..Default::default()
        };
        Job {
            metadata: meta(&self.name, self.namespace.as_ref(), &self.labels()),
            spec: Some(JobSpec {
                completion_mode: Some("Indexed".to_owned()),
                completions: Some(workers),
                parallelism: Some(workers),
                backoff_limit: Some(i32::try_from(self.backoff_limit).unwrap_or(i32::MAX)),
                template: PodTemplateSpec {
                    metadata: Some(ObjectMeta {
                        labels: Some(self.labels()),
                        ..Default::default()
                    }),
                    spec: Some(PodSpec {
                        subdomain: Some(self.name.clone()),
                        restart_policy: Some("OnFailure".to_owned()),
                        containers: vec![self.program.container("train", env, port)],
                        volumes: self.program.volumes(),
                        ..Default::default()
                    }),
                },
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    /// The Service and the Job as one `List` for `kubectl apply -f` (the Service first, so
    /// the pods' names resolve from their start).
    pub fn manifests(&self) -> Value {
        list(vec![
            serde_json::to_value(self.service()).unwrap_or_default(),
            serde_json::to_value(self.job()).unwrap_or_default(),
        ])
    }
}

/// A model server (a program running the project's HTTP server, bound to `0.0.0.0` on `port`)
/// as a Deployment of `replicas` pods, ready when `/-/healthz` answers, behind a Service on
/// port 80.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServingDeployment {
    name: String,
    namespace: Option<String>,
    replicas: NonZeroUsize,
    port: u16,
    program: PodProgram,
}

impl ServingDeployment {
    /// The Deployment and Service `name`, each pod running `command` in `image` and serving
    /// on `port`.
    pub fn new(
        name: &str,
        image: &str,
        command: &[&str],
        port: u16,
        replicas: NonZeroUsize,
    ) -> Result<Self, TrainError> {
        if port == 0 {
            return Err(invalid("port", "0", "a port from 1 to 65535"));
        }
        Ok(Self {
            name: dns_label("name", name, 63)?,
            namespace: None,
            replicas,
            port,
            program: PodProgram::new(image, command)?,
        })
    }

    /// The namespace (the one `kubectl` uses, when not given).
    pub fn with_namespace(mut self, namespace: &str) -> Result<Self, TrainError> {
        self.namespace = Some(dns_label("namespace", namespace, 63)?);
        Ok(self)
    }

    /// What each pod asks for.
    pub fn with_resources(mut self, resources: PodResources) -> Self {
        self.program.resources = resources;
        self
    }

    /// An environment variable for every pod.
    pub fn with_env(mut self, name: &str, value: &str) -> Result<Self, TrainError> {
        self.program.set_env(name, value)?;
        Ok(self)
    }

    /// Mounts PersistentVolumeClaim `claim` (where the checkpoints are) at `mount_path`.
    pub fn with_shared_volume(mut self, claim: &str, mount_path: &str) -> Result<Self, TrainError> {
        self.program.set_volume(claim, mount_path)?;
        Ok(self)
    }

    fn labels(&self) -> BTreeMap<String, String> {
        labels("air-serve", &self.name)
    }

    /// The Deployment.
    pub fn deployment(&self) -> Deployment {
        let port = ContainerPort {
            name: Some("http".to_owned()),
            container_port: i32::from(self.port),
            ..Default::default()
        };
        let mut container = self.program.container("serve", Vec::new(), port);
        container.readiness_probe = Some(Probe {
            http_get: Some(HTTPGetAction {
                path: Some("/-/healthz".to_owned()),
                port: IntOrString::String("http".to_owned()),
                ..Default::default()
            }),
            period_seconds: Some(5),
            ..Default::default()
        });
        Deployment {
            metadata: meta(&self.name, self.namespace.as_ref(), &self.labels()),
            spec: Some(DeploymentSpec {
                replicas: Some(i32::try_from(self.replicas.get()).unwrap_or(i32::MAX)),
                selector: LabelSelector {
                    match_labels: Some(self.labels()),
                    ..Default::default()
                },
                template: PodTemplateSpec {
                    metadata: Some(ObjectMeta {
                        labels: Some(self.labels()),
                        ..Default::default()
                    }),
                    spec: Some(PodSpec {
                        containers: vec![container],
                        volumes: self.program.volumes(),
                        ..Default::default()
                    }),
                },
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    /// The Service: port 80 to the pods' `http` port.
    pub fn service(&self) -> Service {
        Service {
            metadata: meta(&self.name, self.namespace.as_ref(), &self.labels()),
            spec: Some(ServiceSpec {
                selector: Some(self.labels()),
                ports: Some(vec![ServicePort {
                    name: Some("http".to_owned()),
                    port: 80,
                    target_port: Some(IntOrString::String("http".to_owned())),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    /// The Service and the Deployment as one `List` for `kubectl apply -f`.
    pub fn manifests(&self) -> Value {
        list(vec![
            serde_json::to_value(self.service()).unwrap_or_default(),
            serde_json::to_value(self.deployment()).unwrap_or_default(),
        ])
    }
}
