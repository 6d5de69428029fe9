//! Trains the obstacle classifier on frames rendered by the sim renderer, from a fixed seed, and
//! writes a safetensors file. Fresh frames every epoch (a fixed set over-fits); evaluates on a
//! held-out set after every epoch; resumable (`--resume` continues from the checkpoint).
//!
//! `cargo run -p cnn --release --bin train -- [--epochs 40] [--frames 3000] [--out PATH] [--resume]`

use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use cnn::data::generate;
use cnn::model::{INPUT_H, INPUT_W, Net};
use sim_core::Map;

struct Args {
    epochs: usize,
    frames: usize,
    batch: usize,
    lr: f64,
    seed: u64,
    out: PathBuf,
    resume: bool,
    held_out: usize,
}

fn parse_args() -> Result<Args, String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut a = Args {
        epochs: 40,
        frames: 3000,
        batch: 32,
        lr: 2e-3,
        seed: 7,
        out: root.join("model/obstacle.safetensors"),
        resume: false,
        held_out: 1200,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let value = || {
            args.get(i + 1)
                .cloned()
                .ok_or_else(|| format!("{} needs a value", args[i]))
        };
        let num = |v: String| v.parse::<f64>().map_err(|_| format!("{} takes a number", args[i]));
        match args[i].as_str() {
            "--epochs" => a.epochs = num(value()?)? as usize,
            "--frames" => a.frames = num(value()?)? as usize,
            "--batch" => a.batch = num(value()?)? as usize,
            "--lr" => a.lr = num(value()?)?,
            "--seed" => a.seed = num(value()?)? as u64,
            "--held-out" => a.held_out = num(value()?)? as usize,
            "--out" => a.out = value()?.into(),
            "--resume" => {
                a.resume = true;
                i -= 1;
            }
            other => return Err(format!("unknown argument {other}")),
        }
        i += 2;
    }
    Ok(a)
}

fn shipped_maps() -> Vec<Map> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../graphs/maps");
    ["room", "corridor", "warehouse"]
        .iter()
        .filter_map(|m| Map::load(&dir.join(format!("{m}.yaml"))).ok())
        .collect()
}

fn to_tensors(samples: &[(Vec<f32>, u8)], device: &Device) -> candle_core::Result<(Tensor, Tensor)> {
    let n = samples.len();
    let mut xs = Vec::with_capacity(n * 3 * INPUT_H * INPUT_W);
    let mut ys = Vec::with_capacity(n);
    for (x, y) in samples {
        xs.extend_from_slice(x);
        ys.push(*y as u32);
    }
    Ok((
        Tensor::from_vec(xs, (n, 3, INPUT_H, INPUT_W), device)?,
        Tensor::from_vec(ys, n, device)?,
    ))
}

fn accuracy(net: &Net, x: &Tensor, y: &Tensor) -> candle_core::Result<f64> {
    let n = y.dim(0)?;
    let mut correct = 0usize;
    let mut start = 0;
    while start < n {
        let len = 256.min(n - start);
        let pred = net.forward(&x.narrow(0, start, len)?)?.argmax(1)?;
        let want = y.narrow(0, start, len)?;
        correct += pred.eq(&want)?.to_dtype(DType::U32)?.sum_all()?.to_scalar::<u32>()? as usize;
        start += len;
    }
    Ok(correct as f64 / n as f64)
}

fn tensors(vars: &[(String, Var)]) -> HashMap<String, Tensor> {
    vars.iter().map(|(n, v)| (n.clone(), v.as_tensor().clone())).collect()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse_args()?;
    let device = Device::Cpu;
    let maps = shipped_maps();
    let checkpoint = args.out.with_extension("ckpt.safetensors");
    let (vars, first_epoch) = if args.resume && checkpoint.exists() {
        let mut saved = candle_core::safetensors::load(&checkpoint, &device)?;
        let epoch = saved
            .remove("meta.epoch")
            .map(|t| t.to_scalar::<u32>())
            .transpose()?
            .unwrap_or(0) as usize;
        let mut names: Vec<String> = saved.keys().cloned().collect();
        names.sort();
        let vars = names
            .into_iter()
            .map(|n| Ok((n.clone(), Var::from_tensor(&saved[&n])?)))
            .collect::<candle_core::Result<Vec<_>>>()?;
        println!("resuming from {} after epoch {epoch}", checkpoint.display());
        (vars, epoch)
    } else {
        (Net::init(args.seed, &device)?, 0)
    };
    let params: usize = vars.iter().map(|(_, v)| v.as_tensor().elem_count()).sum();
    println!(
        "model: {params} parameters; {} fresh frames per epoch; held-out set: {} frames",
        args.frames, args.held_out
    );
    let t0 = Instant::now();
    let held = generate(0x00C0_FFEE, args.held_out, &maps);
    let (hx, hy) = to_tensors(&held, &device)?;
    println!("rendered the held-out set in {:.1}s", t0.elapsed().as_secs_f64());
    let mut opt = AdamW::new(
        vars.iter().map(|(_, v)| v.clone()).collect(),
        ParamsAdamW {
            lr: args.lr,
            weight_decay: 1e-4,
            ..Default::default()
        },
    )?;
    let mut best = 0.0;
    for epoch in first_epoch..args.epochs {
        let started = Instant::now();
        // Cosine learning-rate decay over the run.
        let lr = args.lr * 0.5 * (1.0 + (std::f64::consts::PI * epoch as f64 / args.epochs as f64).cos()) + 1e-5;
        opt.set_learning_rate(lr);
        let train = generate(
            args.seed.wrapping_mul(1000).wrapping_add(epoch as u64 + 1),
            args.frames,
            &maps,
        );
        let (x, y) = to_tensors(&train, &device)?;
        // Shuffle with a seeded permutation.
        let mut order: Vec<u32> = (0..train.len() as u32).collect();
        let mut rng = sim_core::Rng::new(epoch as u64 + 17);
        for i in (1..order.len()).rev() {
            order.swap(i, (rng.next_u64() % (i as u64 + 1)) as usize);
        }
        let idx = Tensor::from_vec(order, train.len(), &device)?;
        let (x, y) = (x.index_select(&idx, 0)?, y.index_select(&idx, 0)?);
        let net = Net::new(&tensors(&vars))?;
        let batches = train.len().div_ceil(args.batch);
        let mut loss_sum = 0.0;
        for b in 0..batches {
            let start = b * args.batch;
            let len = args.batch.min(train.len() - start);
            let logits = net.forward(&x.narrow(0, start, len)?)?;
            let loss = candle_nn::loss::cross_entropy(&logits, &y.narrow(0, start, len)?)?;
            opt.backward_step(&loss)?;
            loss_sum += loss.to_scalar::<f32>()? as f64;
            let done = (b + 1) * 30 / batches;
            print!(
                "\repoch {:>2}/{} [{}{}] {:>4}/{} loss {:.3}",
                epoch + 1,
                args.epochs,
                "#".repeat(done),
                " ".repeat(30 - done),
                start + len,
                train.len(),
                loss_sum / (b + 1) as f64
            );
            let _ = std::io::stdout().flush();
        }
        let acc = accuracy(&Net::new(&tensors(&vars))?, &hx, &hy)?;
        println!(
            "  held-out accuracy {:.2}%  ({:.0}s, lr {lr:.5})",
            100.0 * acc,
            started.elapsed().as_secs_f64()
        );
        let mut ckpt = tensors(&vars);
        ckpt.insert("meta.epoch".into(), Tensor::new(epoch as u32 + 1, &device)?);
        candle_core::safetensors::save(&ckpt, &checkpoint)?;
        if acc >= best {
            best = acc;
            candle_core::safetensors::save(&tensors(&vars), &args.out)?;
        }
    }
    println!(
        "best held-out accuracy {:.2}%; model written to {}",
        100.0 * best,
        args.out.display()
    );
    Ok(())
}
