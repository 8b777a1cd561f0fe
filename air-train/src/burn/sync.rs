//! The burn side of a [`Session`]: the worker's autodiff device, averaging gradients across
//! workers, and starting every replica from rank 0's weights.
//!
//! Parameters are flattened in module visiting order, which is the structure of the model and
//! so the same on every rank (parameter ids differ between independently built replicas).

use ::burn::{
    DispatchDevice,
    module::{AutodiffModule, Module, ModuleMapper, ModuleVisitor, Param},
    optim::GradientsParams,
    tensor::{
        Tensor, TensorData,
        backend::{AutodiffBackend, Backend},
    },
};

use crate::{Session, TrainError, error::Result};

fn to_f32(data: TensorData, context: &str) -> Result<Vec<f32>> {
    data.convert::<f32>()
        .to_vec::<f32>()
        .map_err(|e| TrainError::model(context.to_owned(), format!("{e:?}")))
}

struct GatherGrads<'a> {
    grads: &'a GradientsParams,
    flat: Vec<f32>,
    present: Vec<bool>,
    error: Option<TrainError>,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for GatherGrads<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        match self.grads.get::<B::InnerBackend, D>(param.id) {
            Some(g) => match to_f32(g.into_data(), "gradient all-reduce") {
                Ok(v) => {
                    self.flat.extend(v);
                    self.present.push(true);
                }
                Err(e) => self.error = Some(e),
            },
            None => {
                let n = param.val().shape().num_elements();
                self.flat.extend(std::iter::repeat_n(0.0, n));
                self.present.push(false);
            }
        }
    }
}

struct ScatterGrads<'a> {
    grads: &'a mut GradientsParams,
    flat: &'a [f32],
    present: &'a [bool],
    offset: usize,
    index: usize,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for ScatterGrads<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let value = param.val();
        let shape = value.shape();
        let n = shape.num_elements();
        let slice = &self.flat[self.offset..self.offset + n];
        self.offset += n;
        let had = self.present[self.index];
        self.index += 1;
        // A parameter without a gradient stays without one (the optimizer skips it).
        if had {
            let device = value.inner().device();
            let g = Tensor::<B::InnerBackend, D>::from_data(
                TensorData::new(slice.to_vec(), shape),
                &device,
            );
            self.grads.register::<B::InnerBackend, D>(param.id, g);
        }
    }
}

struct GatherParams {
    flat: Vec<f32>,
    error: Option<TrainError>,
}

impl<B: Backend> ModuleVisitor<B> for GatherParams {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        match to_f32(param.val().into_data(), "parameter broadcast") {
            Ok(v) => self.flat.extend(v),
            Err(e) => self.error = Some(e),
        }
    }
}

struct LoadParams<'a> {
    flat: &'a [f32],
    offset: usize,
}

impl<B: Backend> ModuleMapper<B> for LoadParams<'_> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        let (id, tensor, mapper) = param.consume();
        let shape = tensor.shape();
        let n = shape.num_elements();
        let device = tensor.device();
        let require_grad = tensor.is_require_grad();
        let slice = self.flat[self.offset..self.offset + n].to_vec();
        self.offset += n;
        let mut t = Tensor::<B, D>::from_data(TensorData::new(slice, shape), &device);
        if require_grad {
            t = t.require_grad();
        }
        Param::from_mapped_value(id, t, mapper)
    }
}

fn flat_params<B: Backend, M: Module<B>>(module: &M) -> Result<Vec<f32>> {
    let mut gather = GatherParams {
        flat: Vec::new(),
        error: None,
    };
    module.visit(&mut gather);
    match gather.error {
        Some(e) => Err(e),
        None => Ok(gather.flat),
    }
}

impl Session {
    /// The autodiff burn device to build the model replica on (this worker's
    /// [`device`](Session::device)).
    pub fn training_device(&self) -> Result<DispatchDevice> {
        self.device().training_device()
    }

    /// Averages `grads` over all workers (Ray's DDP all-reduce): call it after `backward` and
    /// before the optimizer step, on every worker, every step.
    pub fn sync_gradients<B, M>(
        &self,
        module: &M,
        grads: GradientsParams,
    ) -> Result<GradientsParams>
    where
        B: AutodiffBackend,
        M: AutodiffModule<B>,
    {
        if self.world_size() == 1 {
            return Ok(grads);
        }
        let mut gather = GatherGrads {
            grads: &grads,
            flat: Vec::new(),
            present: Vec::new(),
            error: None,
        };
        module.visit(&mut gather);
        if let Some(e) = gather.error {
            return Err(e);
        }
        let (mut flat, present) = (gather.flat, gather.present);
        self.collective()
            .all_reduce_mean(self.world_rank(), &mut flat)?;
        let mut grads = grads;
        let mut scatter = ScatterGrads {
            grads: &mut grads,
            flat: &flat,
            present: &present,
            offset: 0,
            index: 0,
        };
        module.visit(&mut scatter);
        Ok(grads)
    }

    /// Gives every worker rank 0's weights (Ray's `prepare_model`): call it once on the freshly
    /// built (or checkpoint-loaded) replica before training.
    pub fn sync_model<B: Backend, M: Module<B>>(&self, module: M) -> Result<M> {
        if self.world_size() == 1 {
            return Ok(module);
        }
        let mut flat = if self.world_rank() == 0 {
            flat_params(&module)?
        } else {
            Vec::new()
        };
        self.collective()
            .broadcast(self.world_rank(), 0, &mut flat)?;
        let expected = flat_params(&module)?.len();
        if flat.len() != expected {
            return Err(TrainError::Collective(format!(
                "rank 0's model has {} parameters, rank {}'s has {expected}; every worker must \
                 build the same model",
                flat.len(),
                self.world_rank()
            )));
        }
        Ok(module.map(&mut LoadParams {
            flat: &flat,
            offset: 0,
        }))
    }
}
