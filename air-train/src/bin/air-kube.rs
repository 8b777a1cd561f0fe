//! `air-kube`: writes the Kubernetes manifests of a multi-process training run (an Indexed Job
//! and its headless Service) or of a model server (a Deployment and its Service) as one JSON
//! `List` on standard output, for `kubectl apply -f -`.
//!
//! ```text
//! air-kube train --name mlp --image registry.example/app:1 --workers 4 --cpu 4 \
//!     --memory 16Gi --env AWS_REGION=eu-west-1 -- /app/train --storage s3://runs/
//! air-kube serve --name mlp-api --image registry.example/app:1 --port 8000 --replicas 2 \
//!     -- /app/serve --host 0.0.0.0 --port 8000 s3://runs/mlp/checkpoint_000009
//! ```

use std::{num::NonZeroUsize, process::ExitCode};

use air_train::{
    TrainError,
    cluster::kubernetes::{PodResources, ServingDeployment, TrainingJob},
};
use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "air-kube",
    about = "Kubernetes manifests for AIR training runs and servers"
)]
struct Cli {
    #[command(subcommand)]
    what: What,
}

#[derive(Subcommand)]
enum What {
    /// A training run: an Indexed Job of --workers pods (pod i is rank i) and a headless Service.
    Train {
        #[command(flatten)]
        pod: Pod,
        /// Processes (the trainer's num_workers).
        #[arg(long)]
        workers: NonZeroUsize,
        /// The port rank 0 listens on.
        #[arg(long, default_value_t = 29500)]
        port: u16,
        /// Restarts of failed pods before the Job fails.
        #[arg(long, default_value_t = 3)]
        backoff_limit: u32,
    },
    /// A model server: a Deployment of --replicas pods and a Service on port 80.
    Serve {
        #[command(flatten)]
        pod: Pod,
        /// The port the server listens on in the pod (bound to 0.0.0.0).
        #[arg(long)]
        port: u16,
        /// Pods.
        #[arg(long, default_value_t = NonZeroUsize::MIN)]
        replicas: NonZeroUsize,
    },
}

#[derive(Args)]
struct Pod {
    /// The Job/Deployment and Service name (a DNS-1123 label).
    #[arg(long)]
    name: String,
    /// The container image.
    #[arg(long)]
    image: String,
    /// The namespace.
    #[arg(long)]
    namespace: Option<String>,
    /// CPU per pod (a Kubernetes quantity: 4, 500m).
    #[arg(long)]
    cpu: Option<String>,
    /// Memory per pod (16Gi, 512M).
    #[arg(long)]
    memory: Option<String>,
    /// NVIDIA GPUs per pod.
    #[arg(long, default_value_t = 0)]
    gpus: u32,
    /// NAME=VALUE, repeatable.
    #[arg(long = "env", value_name = "NAME=VALUE")]
    env: Vec<String>,
    /// CLAIM:PATH: a PersistentVolumeClaim mounted at PATH.
    #[arg(long, value_name = "CLAIM:PATH")]
    volume: Option<String>,
    /// The program the pods run, and its arguments (after `--`).
    #[arg(last = true, required = true)]
    command: Vec<String>,
}

impl Pod {
    fn resources(&self) -> Result<PodResources, TrainError> {
        let mut r = PodResources::new().with_gpus(self.gpus);
        if let Some(cpu) = &self.cpu {
            r = r.with_cpu(cpu)?;
        }
        if let Some(memory) = &self.memory {
            r = r.with_memory(memory)?;
        }
        Ok(r)
    }

    fn env(&self) -> Result<Vec<(&str, &str)>, TrainError> {
        self.env
            .iter()
            .map(|e| {
                e.split_once('=').ok_or_else(|| TrainError::InvalidConfig {
                    field: "--env",
                    value: format!("{e:?}"),
                    expected: "NAME=VALUE".to_owned(),
                })
            })
            .collect()
    }

    fn volume(&self) -> Result<Option<(&str, &str)>, TrainError> {
        self.volume
            .as_deref()
            .map(|v| {
                v.split_once(':').ok_or_else(|| TrainError::InvalidConfig {
                    field: "--volume",
                    value: format!("{v:?}"),
                    expected: "CLAIM:PATH, a PersistentVolumeClaim and a mount path".to_owned(),
                })
            })
            .transpose()
    }

    fn command(&self) -> Vec<&str> {
        self.command.iter().map(String::as_str).collect()
    }
}

fn train(
    pod: &Pod,
    workers: NonZeroUsize,
    port: u16,
    backoff: u32,
) -> Result<TrainingJob, TrainError> {
    let mut job = TrainingJob::new(&pod.name, &pod.image, &pod.command(), workers)?
        .with_port(port)?
        .with_backoff_limit(backoff)
        .with_resources(pod.resources()?);
    if let Some(ns) = &pod.namespace {
        job = job.with_namespace(ns)?;
    }
    for (k, v) in pod.env()? {
        job = job.with_env(k, v)?;
    }
    if let Some((claim, path)) = pod.volume()? {
        job = job.with_shared_volume(claim, path)?;
    }
    Ok(job)
}

fn serve(pod: &Pod, port: u16, replicas: NonZeroUsize) -> Result<ServingDeployment, TrainError> {
    let mut d = ServingDeployment::new(&pod.name, &pod.image, &pod.command(), port, replicas)?
        .with_resources(pod.resources()?);
    if let Some(ns) = &pod.namespace {
        d = d.with_namespace(ns)?;
    }
    for (k, v) in pod.env()? {
        d = d.with_env(k, v)?;
    }
    if let Some((claim, path)) = pod.volume()? {
        d = d.with_shared_volume(claim, path)?;
    }
    Ok(d)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let manifests = match &cli.what {
        What::Train {
            pod,
            workers,
            port,
            backoff_limit,
        } => train(pod, *workers, *port, *backoff_limit).map(|j| j.manifests()),
        What::Serve {
            pod,
            port,
            replicas,
        } => serve(pod, *port, *replicas).map(|d| d.manifests()),
    };
    match manifests {
        Ok(m) => {
            println!("{}", serde_json::to_string_pretty(&m).unwrap_or_default());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}
