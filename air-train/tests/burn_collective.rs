//! Does burn-collective 0.21's local server all-reduce on the flex CPU backend, directly and
//! through the dispatch backend the workspace trains with? (Built with `--features collective`.)
#![cfg(feature = "collective")]

use air_train::burn::{
    collective::{
        CollectiveConfig, PeerId, ReduceOperation, all_reduce, register, reset_collective,
    },
    tensor::{Tensor, TensorData, TensorPrimitive, backend::Backend},
};

fn mean_over_threads<B: Backend>(devices: Vec<B::Device>) -> Vec<Vec<f32>> {
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
fn all_reduce_on_dispatch_flex() {
    let device = air_train::ComputeDevice::Cpu.inference_device().unwrap();
    let out = mean_over_threads::<air_train::Backend>(vec![device; 3]);
    assert!(out.iter().all(|v| v == &[1.0, 1.0]), "{out:?}");
}
