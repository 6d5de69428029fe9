//! The committed model: its accuracy on a freshly rendered held-out set (another seed than the
//! trainer's), and clear errors for a missing or corrupt model file.

use std::path::Path;

use cnn::Classifier;
use cnn::data::generate;
use sim_core::Map;

fn model_path() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("model/obstacle.safetensors")
}

#[test]
fn held_out_accuracy_is_at_least_97_percent() {
    let classifier = Classifier::load(&model_path()).expect("the committed model loads");
    let maps: Vec<Map> = ["room", "corridor", "warehouse"]
        .iter()
        .map(|m| {
            Map::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../../graphs/maps/{m}.yaml"))).expect("map")
        })
        .collect();
    // A seed neither the trainer's epochs nor its held-out set use.
    let frames = generate(0x5EED_7E57, 900, &maps);
    let mut correct = 0;
    let mut per_class = [[0usize; 2]; 3];
    for (input, label) in frames.iter().cloned() {
        let p = classifier.classify_input(input).expect("inference");
        let predicted = (0..3).max_by(|&a, &b| p[a].total_cmp(&p[b])).expect("3 classes");
        per_class[label as usize][1] += 1;
        if predicted == label as usize {
            correct += 1;
            per_class[label as usize][0] += 1;
        }
    }
    let accuracy = correct as f64 / frames.len() as f64;
    println!(
        "held-out accuracy {:.2}% (per class correct/total: {per_class:?})",
        100.0 * accuracy
    );
    assert!(
        accuracy >= 0.97,
        "held-out accuracy {:.2}% is below 97% ({per_class:?})",
        100.0 * accuracy
    );
}

#[test]
fn a_missing_or_corrupt_model_is_a_clear_error() {
    let e = Classifier::load(Path::new("/nonexistent/obstacle.safetensors"))
        .err()
        .expect("missing");
    assert!(
        e.starts_with("cannot read model /nonexistent/obstacle.safetensors: "),
        "{e}"
    );
    let dir = std::env::temp_dir().join(format!("cnn-corrupt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp");
    let bad = dir.join("bad.safetensors");
    std::fs::write(&bad, b"this is not a model").expect("write");
    let e = Classifier::load(&bad).err().expect("corrupt");
    assert!(e.contains("is not a valid safetensors file"), "{e}");
    // A valid safetensors file of the wrong model.
    let t = candle_core::Tensor::zeros(3, candle_core::DType::F32, &candle_core::Device::Cpu).expect("tensor");
    candle_core::safetensors::save(
        &std::collections::HashMap::from([("x".to_string(), t)]),
        dir.join("other.safetensors"),
    )
    .expect("save");
    let e = Classifier::load(&dir.join("other.safetensors"))
        .err()
        .expect("wrong model");
    assert!(e.ends_with("the model has no tensor `conv1.bias`"), "{e}");
}
