//! Weights by HuggingFace name: [`WeightReader`] takes tensors out of a safetensors file with
//! their shapes checked, [`WeightWriter`] collects a model's tensors into one.
//!
//! PyTorch's `nn.Linear` stores its weight as `[out, in]`, burn's `Linear` as `[in, out]`:
//! [`Layout::Transposed`] turns one into the other on the way in and out.

use std::{
    borrow::Cow,
    collections::{BTreeMap, BTreeSet},
};

use ::burn::tensor::{DType, Tensor, TensorData, backend::Backend};
use safetensors::{Dtype, SafeTensors, View};

use crate::{TrainError, error::Result};

/// How a tensor is laid out in the file relative to the burn parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Layout {
    /// The same shape.
    AsIs,
    /// A 2-D tensor stored transposed (PyTorch's `nn.Linear` weight).
    Transposed,
}

/// Takes named tensors out of a safetensors file, checking each shape.
pub(crate) struct WeightReader<'a> {
    tensors: SafeTensors<'a>,
    /// Where the file came from, for errors.
    source: String,
    /// A prefix every name carries in this file (`"bert."` in a `BertFor…` model), or `""`.
    prefix: String,
    used: BTreeSet<String>,
}

impl<'a> WeightReader<'a> {
    /// Reads the header of `bytes` (a safetensors file from `source`). When no
    /// `probe` tensor is present but `prefix + probe` is, every name gets that prefix (a
    /// `BertForSequenceClassification` file nests the encoder under `bert.`).
    pub(crate) fn new(
        bytes: &'a [u8],
        source: impl Into<String>,
        probe: &str,
        prefixes: &[&str],
    ) -> Result<Self> {
        let source = source.into();
        let tensors = SafeTensors::deserialize(bytes).map_err(|e| TrainError::Weights {
            file: source.clone(),
            tensor: "(header)".to_owned(),
            problem: format!("not a safetensors file: {e}"),
        })?;
        let names: BTreeSet<String> = tensors.names().into_iter().map(str::to_owned).collect();
        let prefix = if names.contains(probe) {
            String::new()
        } else {
            prefixes
                .iter()
                .find(|p| names.contains(&format!("{p}{probe}")))
                .map(|p| (*p).to_owned())
                .ok_or_else(|| TrainError::Weights {
                    file: source.clone(),
                    tensor: probe.to_owned(),
                    problem: format!(
                        "missing (also under the prefixes {prefixes:?}); the file holds {} \
                         tensors, such as {:?}: is it a BERT-family encoder?",
                        names.len(),
                        names.iter().take(4).collect::<Vec<_>>()
                    ),
                })?
        };
        Ok(Self {
            tensors,
            source,
            prefix,
            used: BTreeSet::new(),
        })
    }

    /// Whether the file has `name` (after the prefix).
    #[allow(dead_code)]
    pub(crate) fn contains(&self, name: &str) -> bool {
        self.tensors
            .tensor(&format!("{}{name}", self.prefix))
            .is_ok()
    }

    /// The tensor `name`, which must have the burn parameter's shape `expected` (before
    /// `layout`), as an f32 tensor on `device`.
    pub(crate) fn tensor<B: Backend, const D: usize>(
        &mut self,
        name: &str,
        expected: [usize; D],
        layout: Layout,
        device: &B::Device,
    ) -> Result<Tensor<B, D>> {
        let full = format!("{}{name}", self.prefix);
        let error = |problem: String| TrainError::Weights {
            file: self.source.clone(),
            tensor: full.clone(),
            problem,
        };
        let view = self
            .tensors
            .tensor(&full)
            .map_err(|_| error("missing from the file".to_owned()))?;
        let stored: Vec<usize> = match layout {
            Layout::AsIs => expected.to_vec(),
            Layout::Transposed => expected.iter().rev().copied().collect(),
        };
        if view.shape() != stored.as_slice() {
            return Err(error(format!(
                "has shape {:?}, the model expects {stored:?}: the config.json does not \
                 describe these weights",
                view.shape()
            )));
        }
        let dtype = match view.dtype() {
            Dtype::F32 => DType::F32,
            Dtype::F16 => DType::F16,
            Dtype::BF16 => DType::BF16,
            Dtype::F64 => DType::F64,
            other => {
                return Err(error(format!(
                    "has dtype {other:?}; expected a float tensor (F32, F16, BF16 or F64)"
                )));
            }
        };
        let data = TensorData::from_bytes_vec(view.data().to_vec(), stored, dtype).convert::<f32>();
        self.used.insert(full);
        let tensor = Tensor::<B, D>::from_data(data, device);
        Ok(match layout {
            Layout::AsIs => tensor,
            Layout::Transposed => tensor.transpose(),
        })
    }

    /// Where the file came from.
    pub(crate) fn source(&self) -> &str {
        &self.source
    }

    /// The file's tensors that no [`WeightReader::tensor`] call took, but for names matched by
    /// `ignore` (buffers such as `position_ids`, heads the model does not have).
    pub(crate) fn unused(&self, ignore: impl Fn(&str) -> bool) -> Vec<String> {
        self.tensors
            .names()
            .into_iter()
            .filter(|n| !self.used.contains(*n) && !ignore(n))
            .map(str::to_owned)
            .collect()
    }
}

/// One tensor on its way into a safetensors file.
struct Stored {
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

impl View for &Stored {
    fn dtype(&self) -> Dtype {
        Dtype::F32
    }

    fn shape(&self) -> &[usize] {
        &self.shape
    }

    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.bytes)
    }

    fn data_len(&self) -> usize {
        self.bytes.len()
    }
}

/// Collects tensors by name and writes them as one safetensors file (f32).
#[derive(Default)]
pub(crate) struct WeightWriter {
    tensors: BTreeMap<String, Stored>,
}

impl WeightWriter {
    /// Adds `tensor` under `name`, laid out as `layout` says.
    pub(crate) fn put<B: Backend, const D: usize>(
        &mut self,
        name: impl Into<String>,
        tensor: Tensor<B, D>,
        layout: Layout,
    ) {
        let tensor = match layout {
            Layout::AsIs => tensor,
            Layout::Transposed => tensor.transpose(),
        };
        let shape = tensor.dims().to_vec();
        let data = tensor.into_data().convert::<f32>();
        self.tensors.insert(
            name.into(),
            Stored {
                shape,
                bytes: data.as_bytes().to_vec(),
            },
        );
    }

    /// The safetensors file's bytes.
    pub(crate) fn into_bytes(self) -> Result<Vec<u8>> {
        let metadata = Some(std::collections::HashMap::from([(
            "format".to_owned(),
            "pt".to_owned(),
        )]));
        safetensors::serialize(self.tensors.iter().map(|(k, v)| (k.as_str(), v)), metadata)
            .map_err(|e| TrainError::model("writing safetensors weights", e))
    }
}
