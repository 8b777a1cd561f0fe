//! The Kubernetes manifests, checked structurally (no cluster is reachable here): the Job's
//! pods get exactly the variables `ProcessEnv` reads, rank 0's name resolves through the
//! headless Service, selectors match the pods, and the `air-kube` command writes the same
//! manifests and names what is wrong in bad arguments.

use std::{num::NonZeroUsize, process::Command};

use air_train::cluster::{
    Launcher, ProcessEnv,
    kubernetes::{PodResources, RUN_LABEL, ServingDeployment, TrainingJob},
};
use k8s_openapi::api::{apps::v1::Deployment, batch::v1::Job, core::v1::Service};
use serde_json::{Value, json};

fn job() -> TrainingJob {
    TrainingJob::new(
        "mlp",
        "registry.example/air:1",
        &["/app/train", "--storage", "/runs"],
        NonZeroUsize::new(4).unwrap(),
    )
    .unwrap()
    .with_namespace("ml")
    .unwrap()
    .with_resources(
        PodResources::new()
            .with_cpu("4")
            .unwrap()
            .with_memory("16Gi")
            .unwrap()
            .with_gpus(1),
    )
    .with_env("AWS_REGION", "eu-west-1")
    .unwrap()
    .with_shared_volume("runs", "/runs")
    .unwrap()
}

#[test]
fn the_training_job_is_an_indexed_job_behind_a_headless_service() {
    let m = job().manifests();
    assert_eq!(m["kind"], "List");
    let items = m["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    // Each item reads back as its Kubernetes type.
    let service: Service = serde_json::from_value(items[0].clone()).unwrap();
    let job: Job = serde_json::from_value(items[1].clone()).unwrap();
    assert_eq!(items[0]["apiVersion"], "v1");
    assert_eq!(items[1]["apiVersion"], "batch/v1");
    assert_eq!(items[1]["kind"], "Job");

    let s = service.spec.unwrap();
    assert_eq!(s.cluster_ip.as_deref(), Some("None"), "headless");
    assert_eq!(s.publish_not_ready_addresses, Some(true));
    assert_eq!(s.ports.unwrap()[0].port, 29500);

    let spec = job.spec.unwrap();
    assert_eq!(spec.completion_mode.as_deref(), Some("Indexed"));
    assert_eq!(spec.completions, Some(4));
    assert_eq!(spec.parallelism, Some(4), "every rank runs at once");
    assert_eq!(spec.backoff_limit, Some(3));
    let labels = spec.template.metadata.unwrap().labels.unwrap();
    for (k, v) in s.selector.unwrap() {
        assert_eq!(
            labels.get(&k),
            Some(&v),
            "the Service selects the Job's pods"
        );
    }
    assert_eq!(labels[RUN_LABEL], "mlp");
    let pod = spec.template.spec.unwrap();
    assert_eq!(
        pod.subdomain.as_deref(),
        Some("mlp"),
        "pods named <job>-<i>.<service>"
    );
    assert_eq!(pod.restart_policy.as_deref(), Some("OnFailure"));
    let c = &pod.containers[0];
    assert_eq!(
        c.command.as_ref().unwrap(),
        &["/app/train", "--storage", "/runs"]
    );
    let limits = c.resources.as_ref().unwrap().limits.as_ref().unwrap();
    assert_eq!(limits["nvidia.com/gpu"].0, "1");
    assert_eq!(limits["memory"].0, "16Gi");
    assert_eq!(c.volume_mounts.as_ref().unwrap()[0].mount_path, "/runs");
    let claim = pod.volumes.unwrap()[0]
        .persistent_volume_claim
        .clone()
        .unwrap();
    assert_eq!(claim.claim_name, "runs");
    assert_eq!(items[1]["metadata"]["namespace"], "ml");

    // The pod of index 2, as the Job controller starts it: its variables plus the index and
    // host name Kubernetes sets. ProcessEnv reads rank 2 of 4, and rank 0 at the name the
    // headless Service gives pod 0.
    let mut vars: Vec<(String, String)> = c
        .env
        .as_ref()
        .unwrap()
        .iter()
        .map(|e| (e.name.clone(), e.value.clone().unwrap()))
        .collect();
    vars.push(("JOB_COMPLETION_INDEX".into(), "2".into()));
    vars.push(("HOSTNAME".into(), "mlp-2".into()));
    let env =
        ProcessEnv::from_vars(|name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
            .unwrap()
            .unwrap();
    assert_eq!(env.launcher, Launcher::KubernetesIndexedJob);
    assert_eq!((env.rank, env.world_size), (2, 4));
    assert_eq!(env.coordinator(), "mlp-0.mlp:29500");
    assert!(vars.contains(&("AWS_REGION".into(), "eu-west-1".into())));
}

#[test]
fn the_serving_deployment_is_probed_and_selected() {
    let d = ServingDeployment::new(
        "mlp-api",
        "registry.example/air:1",
        &["/app/serve", "--host", "0.0.0.0", "--port", "8000"],
        8000,
        NonZeroUsize::new(2).unwrap(),
    )
    .unwrap();
    let m = d.manifests();
    let items = m["items"].as_array().unwrap();
    let service: Service = serde_json::from_value(items[0].clone()).unwrap();
    let deployment: Deployment = serde_json::from_value(items[1].clone()).unwrap();
    assert_eq!(items[1]["apiVersion"], "apps/v1");
    let spec = deployment.spec.unwrap();
    assert_eq!(spec.replicas, Some(2));
    let labels = spec.template.metadata.unwrap().labels.unwrap();
    assert_eq!(spec.selector.match_labels.unwrap(), labels);
    assert_eq!(service.spec.clone().unwrap().selector.unwrap(), labels);
    let c = &spec.template.spec.unwrap().containers[0];
    assert_eq!(c.ports.as_ref().unwrap()[0].container_port, 8000);
    let probe = c
        .readiness_probe
        .as_ref()
        .unwrap()
        .http_get
        .as_ref()
        .unwrap();
    assert_eq!(probe.path.as_deref(), Some("/-/healthz"));
    let port = &service.spec.unwrap().ports.unwrap()[0];
    assert_eq!(port.port, 80);
    assert_eq!(
        serde_json::to_value(&port.target_port).unwrap(),
        json!("http"),
        "the Service targets the container's named port"
    );
}

#[test]
fn bad_values_name_the_field() {
    let four = NonZeroUsize::new(4).unwrap();
    let err = |r: Result<TrainingJob, air_train::TrainError>| r.unwrap_err().to_string();
    let e = err(TrainingJob::new("MLP_run", "img", &["/a"], four));
    assert!(e.contains("invalid name") && e.contains("DNS-1123"), "{e}");
    let e = err(TrainingJob::new("mlp", "", &["/a"], four));
    assert!(e.contains("invalid image"), "{e}");
    let e = err(TrainingJob::new("mlp", "img", &[], four));
    assert!(e.contains("invalid command"), "{e}");
    let e = err(TrainingJob::new("mlp", "img", &["/a"], four)
        .and_then(|j| j.with_env("AIR_WORLD_SIZE", "8")));
    assert!(e.contains("the manifests set those"), "{e}");
    let e = PodResources::new()
        .with_memory("16 GB")
        .unwrap_err()
        .to_string();
    assert!(e.contains("resources.memory") && e.contains("16Gi"), "{e}");
    let e = err(TrainingJob::new("mlp", "img", &["/a"], four)
        .and_then(|j| j.with_shared_volume("runs", "runs")));
    assert!(e.contains("absolute path"), "{e}");
}

fn air_kube(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_air-kube"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn the_command_writes_the_library_manifests() {
    let out = air_kube(&[
        "train",
        "--name",
        "mlp",
        "--image",
        "registry.example/air:1",
        "--workers",
        "4",
        "--namespace",
        "ml",
        "--cpu",
        "4",
        "--memory",
        "16Gi",
        "--gpus",
        "1",
        "--env",
        "AWS_REGION=eu-west-1",
        "--volume",
        "runs:/runs",
        "--",
        "/app/train",
        "--storage",
        "/runs",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(printed, job().manifests());

    let out = air_kube(&[
        "serve",
        "--name",
        "mlp-api",
        "--image",
        "img:1",
        "--port",
        "8000",
        "--",
        "/app/serve",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(printed["items"][1]["kind"], "Deployment");

    let out = air_kube(&[
        "train",
        "--name",
        "mlp",
        "--image",
        "img",
        "--workers",
        "2",
        "--env",
        "NOVALUE",
        "--",
        "/a",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--env") && stderr.contains("NAME=VALUE"),
        "{stderr}"
    );
    let out = air_kube(&["train", "--name", "mlp", "--image", "img", "--workers", "2"]);
    assert!(!out.status.success(), "the program to run is required");
}
