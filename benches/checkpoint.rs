//! Checkpoint save/load throughput next to `cp -r` of the same files (the disk's own limit).
//!
//! Sizes default to 100 MB and 1 GB; set `AIR_BENCH_CHECKPOINT_MB=100,1000` to choose.
//! Run: `cargo bench --bench checkpoint`.

use std::{
    fs,
    hint::black_box,
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

use air::checkpoint::Checkpoint;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// A model-like checkpoint: four weight shards and a small config.
fn model_checkpoint(total_bytes: usize) -> Checkpoint {
    let shard = total_bytes / 4;
    let mut ckpt = Checkpoint::new();
    for i in 0..4u32 {
        // Not all zeros, so no layer can cheat on sparse or compressible data.
        let bytes: Vec<u8> = (0..shard as u32)
            .map(|j| (j.wrapping_mul(2_654_435_761) ^ i) as u8)
            .collect();
        ckpt.put_bytes(format!("model/shard-{i}.safetensors"), bytes)
            .unwrap();
    }
    ckpt.put_json(
        "config.json",
        &serde_json::json!({"hidden": 4096, "layers": 32}),
    )
    .unwrap();
    ckpt
}

/// Times `op(dest)` into fresh destinations, removing each one outside the timed part.
fn timed_writes(root: &Path, iters: u64, op: impl Fn(&Path)) -> Duration {
    let mut total = Duration::ZERO;
    for i in 0..iters {
        let dest = root.join(format!("out-{i}"));
        let start = Instant::now();
        op(&dest);
        total += start.elapsed();
        fs::remove_dir_all(&dest).unwrap();
    }
    total
}

fn bench_checkpoint(c: &mut Criterion) {
    let sizes: Vec<usize> = std::env::var("AIR_BENCH_CHECKPOINT_MB")
        .unwrap_or_else(|_| "100,1000".to_owned())
        .split(',')
        .map(|s| {
            s.trim()
                .parse()
                .expect("AIR_BENCH_CHECKPOINT_MB is a comma-separated list of MB")
        })
        .collect();
    for mb in sizes {
        let bytes = mb * 1_000_000;
        let tmp = tempfile::tempdir().unwrap();
        let ckpt = model_checkpoint(bytes);
        let src = tmp.path().join("src");
        ckpt.to_directory(&src).unwrap();
        let on_disk = Checkpoint::from_directory(&src).unwrap();
        let uri = format!("memory://bench/{mb}mb");
        ckpt.to_uri(&uri).unwrap();

        let mut group = c.benchmark_group(format!("checkpoint_{mb}MB"));
        group.throughput(Throughput::Bytes(bytes as u64));
        group.sample_size(10).warm_up_time(Duration::from_secs(1));
        if mb >= 1000 {
            group.measurement_time(Duration::from_secs(20));
        }

        group.bench_function("cp_r_dir_to_dir", |b| {
            b.iter_custom(|iters| {
                timed_writes(tmp.path(), iters, |dest| {
                    let status = Command::new("cp")
                        .arg("-r")
                        .arg(&src)
                        .arg(dest)
                        .status()
                        .unwrap();
                    assert!(status.success());
                })
            })
        });
        group.bench_function("copy_dir_to_dir", |b| {
            b.iter_custom(|iters| {
                timed_writes(tmp.path(), iters, |dest| {
                    on_disk.to_directory(dest).unwrap()
                })
            })
        });
        group.bench_function("save_memory_to_dir", |b| {
            b.iter_custom(|iters| {
                timed_writes(tmp.path(), iters, |dest| ckpt.to_directory(dest).unwrap())
            })
        });
        group.bench_function("load_dir_to_memory", |b| {
            b.iter(|| black_box(Checkpoint::from_directory(&src).unwrap().to_dict().unwrap()))
        });
        group.bench_function("save_memory_to_memory_uri", |b| {
            b.iter(|| ckpt.to_uri(&format!("memory://bench/save-{mb}mb")).unwrap())
        });
        group.bench_function("load_memory_uri_to_memory", |b| {
            b.iter(|| black_box(Checkpoint::from_uri(&uri).unwrap().to_dict().unwrap()))
        });
        group.finish();
    }
}

criterion_group!(benches, bench_checkpoint);
criterion_main!(benches);
