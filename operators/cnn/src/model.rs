//! The network: four small convolutions and a head that pools the left and the right half of
//! the feature map separately (the class is a position: one global pool would throw it away).
//! ~61k parameters, softmax applied once (at inference, outside the network).

use std::collections::HashMap;

use candle_core::{D, DType, Device, Module, Result, Tensor, Var};
use candle_nn::{Conv2d, Conv2dConfig, Linear};
use sim_core::Rng;

/// Network input: 64 x 48 RGB.
pub const INPUT_W: usize = 64;
pub const INPUT_H: usize = 48;
/// Class names, by class id (quiver_msgs/Classification's constants).
pub const CLASSES: [&str; 3] = ["clear", "obstacle_left", "obstacle_right"];

/// (name, in channels, out channels, stride); kernels are 3x3, padding 1.
const CONVS: [(&str, usize, usize, usize); 4] = [
    ("conv1", 3, 16, 2),
    ("conv2", 16, 32, 2),
    ("conv3", 32, 64, 2),
    ("conv4", 64, 64, 1),
];
const HEAD_IN: usize = 64 * 2;

/// Every tensor the model has: name and shape.
pub fn shapes() -> Vec<(String, Vec<usize>)> {
    let mut out = Vec::new();
    for (name, cin, cout, _) in CONVS {
        out.push((format!("{name}.weight"), vec![cout, cin, 3, 3]));
        out.push((format!("{name}.bias"), vec![cout]));
    }
    out.push(("head.weight".into(), vec![CLASSES.len(), HEAD_IN]));
    out.push(("head.bias".into(), vec![CLASSES.len()]));
    out.sort();
    out
}

pub struct Net {
    convs: Vec<Conv2d>,
    head: Linear,
}

impl Net {
    /// Builds the network over `tensors` (checked: every name present with its shape).
    pub fn new(tensors: &HashMap<String, Tensor>) -> std::result::Result<Net, String> {
        for (name, shape) in shapes() {
            let t = tensors
                .get(&name)
                .ok_or_else(|| format!("the model has no tensor `{name}`"))?;
            if t.dims() != shape.as_slice() {
                return Err(format!("tensor `{name}` has shape {:?}, expected {shape:?}", t.dims()));
            }
        }
        let get = |n: String| tensors[&n].clone();
        let convs = CONVS
            .iter()
            .map(|(name, _, _, stride)| {
                let cfg = Conv2dConfig {
                    padding: 1,
                    stride: *stride,
                    ..Default::default()
                };
                Conv2d::new(get(format!("{name}.weight")), Some(get(format!("{name}.bias"))), cfg)
            })
            .collect();
        Ok(Net {
            convs,
            head: Linear::new(get("head.weight".into()), Some(get("head.bias".into()))),
        })
    }

    /// Fresh weights (He initialisation) from `seed`, drawn in sorted name order with our own
    /// generator, so the same seed gives bit-identical weights (candle's CPU RNG cannot be seeded).
    pub fn init(seed: u64, device: &Device) -> Result<Vec<(String, Var)>> {
        let mut rng = Rng::new(seed);
        let mut vars = Vec::new();
        for (name, shape) in shapes() {
            let n: usize = shape.iter().product();
            let fan_in: usize = if shape.len() > 1 {
                shape[1..].iter().product()
            } else {
                1
            };
            let values: Vec<f32> = if name.ends_with(".bias") {
                vec![0.0; n]
            } else {
                let std = (2.0 / fan_in as f64).sqrt();
                (0..n).map(|_| (rng.normal() * std) as f32).collect()
            };
            vars.push((name, Var::from_tensor(&Tensor::from_vec(values, shape, device)?)?));
        }
        Ok(vars)
    }

    /// Logits `[batch, 3]` for images `[batch, 3, 48, 64]`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut x = x.clone();
        for conv in &self.convs {
            x = conv.forward(&x)?.relu()?;
        }
        let w = x.dim(3)?;
        let left = x.narrow(3, 0, w / 2)?.mean((2, 3))?;
        let right = x.narrow(3, w / 2, w - w / 2)?.mean((2, 3))?;
        self.head.forward(&Tensor::cat(&[left, right], 1)?)
    }

    /// Class probabilities `[batch, 3]`.
    pub fn probabilities(&self, x: &Tensor) -> Result<Tensor> {
        candle_nn::ops::softmax(&self.forward(x)?, D::Minus1)
    }
}

/// Loads a safetensors model file, with a message that says what is wrong.
pub fn load(path: &std::path::Path, device: &Device) -> std::result::Result<Net, String> {
    const MAX_MODEL_BYTES: u64 = 2 << 30;
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read model {}: {e}", path.display()))?;
    if !meta.is_file() {
        return Err(format!("model {} is not a regular file", path.display()));
    }
    if meta.len() > MAX_MODEL_BYTES {
        return Err(format!(
            "model {} is {} bytes: larger than the {} GiB this operator reads",
            path.display(),
            meta.len(),
            MAX_MODEL_BYTES >> 30
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read model {}: {e}", path.display()))?;
    let tensors = candle_core::safetensors::load_buffer(&bytes, device)
        .map_err(|e| format!("model {} is not a valid safetensors file: {e}", path.display()))?;
    let tensors: HashMap<String, Tensor> = tensors
        .into_iter()
        .map(|(k, t)| t.to_dtype(DType::F32).map(|t| (k, t)))
        .collect::<Result<_>>()
        .map_err(|e| format!("model {}: {e}", path.display()))?;
    Net::new(&tensors).map_err(|e| format!("model {}: {e}", path.display()))
}
