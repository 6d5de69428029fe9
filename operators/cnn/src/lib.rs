//! `cnn`: classifies camera frames (sensor_msgs/Image, rgb8) into clear / obstacle_left /
//! obstacle_right with a small convolutional network on candle, and sends a
//! quiver_msgs/Classification (class, label, confidence, all probabilities). Frames of any size
//! are shrunk to 64 x 48 and normalised inside the operator.
//!
//! The model is trained by this crate's `train` binary on frames rendered by the sim renderer
//! (`cargo run -p cnn --release --bin train`); `model/obstacle.safetensors` is the committed result.
#![deny(unsafe_code)]

pub mod data;
pub mod model;

use candle_core::{Device, Tensor};
use quiver_msgs::{Classification, ImageView, Message};
use quiver_operator::prelude::*;

use crate::model::{CLASSES, INPUT_H, INPUT_W, Net};

/// The trained network, ready to classify frames (used by the operator, its tests and benches).
pub struct Classifier {
    net: Net,
    device: Device,
}

impl Classifier {
    /// Loads a model file; the error names the file and what is wrong with it.
    pub fn load(path: &std::path::Path) -> std::result::Result<Classifier, String> {
        let device = Device::Cpu;
        Ok(Classifier {
            net: model::load(path, &device)?,
            device,
        })
    }

    /// Class probabilities for one rgb8 frame of any size.
    pub fn classify(&self, rgb: &[u8], width: usize, height: usize) -> candle_core::Result<Vec<f32>> {
        self.classify_input(data::preprocess(rgb, width, height))
    }

    /// Class probabilities for one pre-processed input (see [`data::preprocess`]).
    pub fn classify_input(&self, input: Vec<f32>) -> candle_core::Result<Vec<f32>> {
        let x = Tensor::from_vec(input, (1, 3, INPUT_H, INPUT_W), &self.device)?;
        self.net.probabilities(&x)?.flatten_all()?.to_vec1::<f32>()
    }
}

pub struct Cnn {
    classifier: Classifier,
    counts: [u64; 3],
}

impl Operator for Cnn {
    fn manifest() -> Manifest {
        Manifest::new(
            "cnn",
            env!("CARGO_PKG_VERSION"),
            "Classifies camera frames: clear, obstacle_left, obstacle_right",
        )
        .required_input("image", "sensor_msgs/Image", "rgb8 frames, any size")
        .output(
            "class",
            "quiver_msgs/Classification",
            "class, confidence and probabilities per frame",
        )
        .param(ParamSpec::path("model").doc("safetensors file written by the `train` binary"))
    }

    fn new(_ctx: &mut Context<'_>, p: &Params) -> Result<Self> {
        let classifier = Classifier::load(&p.path("model")?).map_err(Error::msg)?;
        Ok(Cnn {
            classifier,
            counts: [0; 3],
        })
    }

    fn on_input(&mut self, ctx: &mut Context<'_>, _input: &str, pack: DataPack) -> Result<()> {
        let data = pack.data()?;
        let image = ImageView::new(data.as_ref())?;
        let s = &image.scalars;
        if s.encoding != "rgb8" || s.step != s.width * 3 {
            bail!(
                "expects rgb8 frames without row padding, got {} with step {} for width {}",
                s.encoding,
                s.step,
                s.width
            );
        }
        let probabilities = self
            .classifier
            .classify(image.data, s.width as usize, s.height as usize)?;
        let (class_id, confidence) = probabilities
            .iter()
            .copied()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .unwrap_or((0, 0.0));
        self.counts[class_id] += 1;
        let out = Classification {
            header: s.header.clone(),
            class_id: class_id as u8,
            label: CLASSES[class_id].into(),
            confidence,
            probabilities,
        };
        ctx.emit_stamped("class", out.to_arrow()?, pack.timestamp_ns())?;
        ctx.report(
            "classes",
            format!(
                "clear={} left={} right={}",
                self.counts[0], self.counts[1], self.counts[2]
            ),
        );
        Ok(())
    }
}

export_operator!(Cnn);
