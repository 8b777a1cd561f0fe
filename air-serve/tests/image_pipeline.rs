//! The image pipeline (PNG → preprocess → two burn CNNs → both top-5 lists, and a business
//! rule picking one model): every execution mode answers the same, HTTP answers like the
//! handle, and a corrupt image is a 422 naming the problem.

mod common;
#[path = "../examples/vision/mod.rs"]
mod vision;

use std::sync::OnceLock;

use air_serve::{
    ServeConfig, Server,
    pipeline::{ExecutionMode, RawBytes},
};
use air_train::ComputeDevice;
use common::client;
use vision::{Layout, Top5, ensemble, png, routed};

fn images() -> &'static [Vec<u8>] {
    static IMAGES: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    IMAGES.get_or_init(|| {
        vec![
            png(720, 720, true),
            png(300, 200, false),
            png(224, 500, true),
        ]
    })
}

fn layout(preprocess: ExecutionMode, models: ExecutionMode) -> Layout {
    Layout {
        preprocess,
        models,
        device: ComputeDevice::Cpu,
    }
}

#[test]
fn every_mode_gives_the_same_top_5_lists() {
    let local = ExecutionMode::Local;
    let reference: Vec<Vec<Top5>> = {
        let p = ensemble(layout(local, local)).deploy().unwrap();
        images()
            .iter()
            .map(|i| p.call(i.clone()).unwrap())
            .collect()
    };
    for lists in &reference {
        assert_eq!(lists.len(), 2);
        assert_eq!(
            (lists[0].model.as_str(), lists[1].model.as_str()),
            ("narrow", "wide")
        );
        for top in lists {
            let mut categories = top.top_5_categories.clone();
            categories.dedup();
            assert_eq!(categories.len(), 5, "{top:?}");
            assert!(top.top_5_scores.windows(2).all(|w| w[0] >= w[1]), "{top:?}");
            assert!(
                top.top_5_scores.iter().all(|s| *s > 0.0 && *s < 1.0),
                "{top:?}"
            );
        }
    }
    // The two widths are different models.
    assert_ne!(reference[0][0].top_5_scores, reference[0][1].top_5_scores);
    let modes = [
        ExecutionMode::Local,
        ExecutionMode::Tasks,
        ExecutionMode::Replicas { num_replicas: 2 },
    ];
    for preprocess in modes {
        for models in modes {
            let p = ensemble(layout(preprocess, models)).deploy().unwrap();
            // Concurrent calls, so that replicas and tasks interleave.
            let answers: Vec<Vec<Top5>> = std::thread::scope(|s| {
                let calls: Vec<_> = images()
                    .iter()
                    .map(|i| s.spawn(|| p.call(i.clone()).unwrap()))
                    .collect();
                calls.into_iter().map(|c| c.join().unwrap()).collect()
            });
            assert_eq!(answers, reference, "{preprocess:?} / {models:?}");
        }
    }
}

#[test]
fn http_answers_like_the_handle_and_a_corrupt_image_is_422() {
    let pipeline = ensemble(Layout::default())
        .deploy_with(air_serve::pipeline::PipelineConfig::new("classify"))
        .unwrap();
    let server = Server::new(ServeConfig::new().with_port(0))
        .with_pipeline(&pipeline, RawBytes)
        .unwrap()
        .start()
        .unwrap();
    let url = format!("{}/classify", server.url());
    let post = |body: Vec<u8>| {
        common::runtime().block_on(async {
            let r = client().post(&url).body(body).send().await.unwrap();
            let status = r.status().as_u16();
            (status, r.json::<serde_json::Value>().await.unwrap())
        })
    };
    for image in images() {
        let (status, answer) = post(image.clone());
        assert_eq!(status, 200, "{answer}");
        let answer: Vec<Top5> = serde_json::from_value(answer).unwrap();
        assert_eq!(answer, pipeline.call(image.clone()).unwrap());
    }
    let truncated = images()[0][..100].to_vec();
    for corrupt in [b"GIF89a, not a png".to_vec(), truncated] {
        let (status, answer) = post(corrupt);
        assert_eq!(status, 422, "{answer}");
        assert_eq!(answer["error"], "step_rejected_input");
        let message = answer["message"].as_str().unwrap();
        assert!(message.contains("step \"preprocess\""), "{message}");
        assert!(message.contains("not a PNG image"), "{message}");
    }
    let (status, _) = post(images()[1].clone());
    assert_eq!(status, 200, "still serving");
}

#[test]
fn the_business_rule_runs_only_the_model_it_picks() {
    let p = routed(Layout::default()).unwrap().deploy().unwrap();
    let colour = p.call(png(400, 300, true)).unwrap();
    let grey = p.call(png(400, 300, false)).unwrap();
    assert_eq!(
        (colour.model.as_str(), grey.model.as_str()),
        ("wide", "narrow")
    );
    let both = ensemble(Layout::default()).deploy().unwrap();
    let lists = both.call(png(400, 300, true)).unwrap();
    assert_eq!(
        colour, lists[1],
        "the wide model's answer, as in the ensemble"
    );
    let steps = p.steps();
    assert_eq!(steps.iter().map(|s| s.calls).collect::<Vec<_>>(), [2, 2]);
}
