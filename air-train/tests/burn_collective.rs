//! Does burn-collective 0.21's local server all-reduce on the flex CPU backend, directly and
//! through the dispatch backend the workspace trains with? (Built with `--features collective`.)
#![cfg(feature = "collective")]

use air_train::burn::{
    collective::{
        CollectiveConfig, PeerId, ReduceOperation, all_reduce, register, reset_collective,
    },
    tensor::{Tensor, TensorData, TensorPrimitive, backend::Backend},
};

/// burn-collective keeps one server per backend type: tests on the same backend take turns.
static SERVER: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn mean_over_threads<B: Backend>(devices: Vec<B::Device>) -> Vec<Vec<f32>> {
    let _turn = SERVER.lock().unwrap_or_else(|p| p.into_inner());
    reset_collective::<B>();
    let n = devices.len();
    let config = CollectiveConfig::default().with_num_devices(n);
    let handles: Vec<_> = devices
        .into_iter()
        .enumerate()
        .map(|(i, device)| {
            let config = config.clone();
            std::thread::spawn(move || {
                let id = PeerId::from(i);
                register::<B>(id, device.clone(), config).unwrap();
                let t =
                    Tensor::<B, 1>::from_data(TensorData::new(vec![i as f32, 1.0], [2]), &device);
                let out = all_reduce::<B>(id, t.into_primitive().tensor(), ReduceOperation::Mean)
                    .unwrap();
                Tensor::<B, 1>::from_primitive(TensorPrimitive::Float(out))
                    .into_data()
                    .to_vec::<f32>()
                    .unwrap()
            })
        })
        .collect();
    handles.into_iter().map(|h| h.join().unwrap()).collect()
}

#[test]
fn all_reduce_on_flex() {
    let out = mean_over_threads::<burn_flex::Flex>(vec![Default::default(); 3]);
    assert!(out.iter().all(|v| v == &[1.0, 1.0]), "{out:?}");
}

#[test]
fn f64_sums_through_burn_collective_keep_their_precision() {
    use air_train::{Collective, burn::BurnCollective};
    let _turn = SERVER.lock().unwrap_or_else(|p| p.into_inner());
    let c = std::sync::Arc::new(BurnCollective::new(3));
    let handles: Vec<_> = (0..3)
        .map(|rank| {
            let c = c.clone();
            std::thread::spawn(move || {
                let mut v = [
                    (rank as f64).mul_add(0.125, 1e9),
                    1e-9 * (rank as f64 + 1.0),
                ];
                c.all_reduce_sum_f64(rank, &mut v).unwrap();
                v
            })
        })
        .collect();
    for h in handles {
        let v = h.join().unwrap();
        assert!((v[0] - (3e9 + 0.375)).abs() < 1e-3, "{}", v[0]);
        assert!((v[1] - 6e-9).abs() < 1e-15, "{}", v[1]);
    }
}

#[test]
fn all_reduce_on_dispatch_flex() {
    let device = air_train::ComputeDevice::Cpu.inference_device().unwrap();
    let out = mean_over_threads::<air_train::burn::Backend>(vec![device; 3]);
    assert!(out.iter().all(|v| v == &[1.0, 1.0]), "{out:?}");
}
