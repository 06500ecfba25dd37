//! The benchmark workloads of `bench/WORKLOADS.md`, their FLOP counts, their synthetic data and
//! the runner behind `memcell bench`.
//!
//! The same workloads are implemented for PyTorch (`bench/torch_workloads.py`) and Keras
//! (`bench/keras_workloads.py`); `bench/compare.py` runs all three and prints one table. This
//! module is the reference definition: the Python scripts mirror [`workloads`] exactly and the
//! smoke test (`bench/smoke_test.py`) checks that the definitions, FLOP counts and data agree.
//!
//! # Timing
//!
//! Every workload runs in a child process of the same binary (`memcell bench --child ID`), so
//! that its peak resident set ([`peak_rss_bytes`], `VmHWM` read at the child's end) is its own.
//! Only the stated phase is timed: data generation and model construction (`build`, which
//! creates the weights, and `compile`) come before the clock starts.
//!
//! * Seed workloads (S1-S5): each repeat builds a fresh model (seed = repeat index) and times
//!   `fit` (150 epochs, batch 32, validation_split 0.05, shuffle) plus the recursive
//!   extrapolation to all 20 points, as the seed's timer does. No warm-up (the seed's figure is
//!   a whole first run). Median of 5.
//! * Per-epoch workloads (M1-M3, L1, A1): one model, one warm-up epoch (`fit(epochs=1)`), then
//!   each repeat times one more `fit(epochs=1)` call. Median of 3.
//! * I1: one model (M1's, untrained), one warm-up `predict`, then each repeat times
//!   `predict(all 8192 windows, batch 1024)`. Median of 3.
//! * `sgemm`: the machine's measured f32 GEMM peak through [`crate::tensor::gemm`]: best of 5
//!   for 2048x2048x2048 and for 4096x4096x1024 (m x n x k); the row reports the better shape.
//!
//! # Data (identical in all three systems)
//!
//! Every synthetic value is a function of its index, so any system can compute it exactly:
//!
//! * `u(stream, i) = (splitmix64(stream * 2^40 + i) >> 40) / 2^24`, a uniform value in [0, 1)
//!   with 24 bits (exact in f32 and f64); [`splitmix64`] is the usual finaliser.
//! * Noise `n(t) = 0.01 * (sum_{k<12} u(1, 12 t + k) - 6)`: an Irwin-Hall approximation of
//!   N(0, 0.01^2) (standard deviation 0.01) whose sum is exact in f64.
//! * Series `s(t) = f32(exp(-0.001 t) sin(0.07 t) + 0.1 sin(0.31 t) + n(t))`, evaluated in f64
//!   in that order with the C library's `exp`/`sin` (Python's `math` module calls the same ones).
//! * Windows (M1-M3, I1): `x[i, τ, 0] = s(i + τ)`, `y[i] = s(i + L)`, `i < 8192`, `L = 64`.
//! * L1: 16 lagged copies, lag 8 steps: with `o = 8 * 15`, `x[i, τ, k] = s(o + i + τ - 8 k)`,
//!   `y[i] = s(o + i + 32)` (the next value of the unlagged series), `i < 4096`.
//! * A1: `u_ij = u(2, 784 i + j)`, `x[i, j] = f32((u_{i,j-1} + 2 u_ij + u_{i,j+1}) / 4)` with
//!   `j ± 1` taken modulo 784 (a smoothed uniform row), target = input.
//!
//! `memcell bench --write-data DIR` writes these arrays as `.npy` files that the Python scripts
//! load (`--data DIR`); without it they compute them with their own port of the formulas, which
//! the smoke test checks bit for bit against memcell's files.
//!
//! # FLOPs
//!
//! See [`forward_flop`] (matmul FLOPs of one sample's forward pass) and [`phase_flop`] (the
//! timed phase; training counts 3x forward).

use crate::error::{Error, Result};
use crate::layers::{Dense, Gru, Layer, Lstm, SimpleRnn};
use crate::loss::Loss;
use crate::model::{FitOptions, Sequential};
use crate::optim::Optimizer;
use crate::tensor::{gemm, set_threads, Acc, Tensor};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::Instant;

/// The seed note's inputs: X = 2, 4, ..., 40 (the bundled series' x).
pub fn seed_x() -> Vec<f64> {
    crate::datasets::seed_series().x
}

/// The seed note's 20-point coupled-cluster energy series (the bundled
/// `data/seed_ccd_pairing_g0.5.csv`, the one source of it).
pub fn seed_y() -> Vec<f64> {
    crate::datasets::seed_series().y.iter().map(|r| r[0]).collect()
}

/// Points of the seed series used for training.
pub use crate::datasets::SEED_TRAIN;
/// The seed's validation split.
pub const SEED_VALIDATION_SPLIT: f64 = 0.05;

/// One layer of a workload's model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LayerSpec {
    /// Keras `Dense(units, activation)` (time-distributed on 3-D input, as Keras).
    Dense { units: usize, activation: String },
    /// Keras `SimpleRNN(units, activation, return_sequences)`.
    SimpleRnn { units: usize, activation: String, return_sequences: bool },
    /// Keras `LSTM(units, return_sequences)` (tanh, sigmoid, unit forget bias).
    Lstm { units: usize, return_sequences: bool },
    /// Keras `GRU(units, return_sequences)` (tanh, sigmoid, reset_after).
    Gru { units: usize, return_sequences: bool },
}

impl LayerSpec {
    fn dense(units: usize, activation: &str) -> Self {
        LayerSpec::Dense { units, activation: activation.into() }
    }
    fn rnn(units: usize, activation: &str, return_sequences: bool) -> Self {
        LayerSpec::SimpleRnn { units, activation: activation.into(), return_sequences }
    }
    fn lstm(units: usize, return_sequences: bool) -> Self {
        LayerSpec::Lstm { units, return_sequences }
    }
    fn gru(units: usize, return_sequences: bool) -> Self {
        LayerSpec::Gru { units, return_sequences }
    }

    /// The memcell layer.
    pub fn to_layer(&self) -> Result<Box<dyn Layer<f32>>> {
        let act = |a: &str| crate::activation::Activation::parse(a).map(|_| ());
        Ok(match self {
            LayerSpec::Dense { units, activation } => {
                act(activation)?;
                Box::new(Dense::<f32>::new(*units).activation(activation))
            }
            LayerSpec::SimpleRnn { units, activation, return_sequences } => {
                act(activation)?;
                Box::new(SimpleRnn::<f32>::new(*units).activation(activation).return_sequences(*return_sequences))
            }
            LayerSpec::Lstm { units, return_sequences } => {
                Box::new(Lstm::<f32>::new(*units).return_sequences(*return_sequences))
            }
            LayerSpec::Gru { units, return_sequences } => {
                Box::new(Gru::<f32>::new(*units).return_sequences(*return_sequences))
            }
        })
    }
}

/// Where a workload's samples come from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DataSpec {
    /// The seed's first 12 points in windows of 2 -> next value: 10 pairs, x (10, 2, 1).
    SeedWindows,
    /// The seed's first 12 points as x -> y regression with sequence length 1: x (12, 1, 1).
    SeedXy,
    /// Windows of the synthetic series (see the module docs): x (windows, len, features).
    Series { windows: usize, len: usize, features: usize, lag: usize },
    /// Smoothed uniform rows (see the module docs): x = y (samples, dim).
    Ae { samples: usize, dim: usize },
}

impl DataSpec {
    /// The file stem the data is exported under (`<key>_x.npy`, `<key>_y.npy`).
    pub fn key(&self) -> String {
        match self {
            DataSpec::SeedWindows => "seed-windows".into(),
            DataSpec::SeedXy => "seed-xy".into(),
            DataSpec::Series { windows, len, features, lag } => format!("series-w{windows}-l{len}-f{features}-g{lag}"),
            DataSpec::Ae { samples, dim } => format!("ae-n{samples}-d{dim}"),
        }
    }

    /// Number of samples.
    pub fn samples(&self) -> usize {
        match self {
            DataSpec::SeedWindows => SEED_TRAIN - 2,
            DataSpec::SeedXy => SEED_TRAIN,
            DataSpec::Series { windows, .. } => *windows,
            DataSpec::Ae { samples, .. } => *samples,
        }
    }

    /// The inputs and the targets; `None` targets mean "the inputs" (the autoencoder, which is
    /// fitted as `fit(&x, &x)`, so no copy is made).
    pub fn generate(&self) -> Result<(Tensor<f32>, Option<Tensor<f32>>)> {
        match *self {
            DataSpec::SeedWindows => {
                let sy = seed_y();
                let n = SEED_TRAIN - 2;
                let mut x = Vec::with_capacity(2 * n);
                let mut y = Vec::with_capacity(n);
                for i in 0..n {
                    x.extend_from_slice(&sy[i..i + 2]);
                    y.push(sy[i + 2]);
                }
                Ok((Tensor::from_f64(&[n, 2, 1], &x)?, Some(Tensor::from_f64(&[n, 1], &y)?)))
            }
            DataSpec::SeedXy => Ok((
                Tensor::from_f64(&[SEED_TRAIN, 1, 1], &seed_x()[..SEED_TRAIN])?,
                Some(Tensor::from_f64(&[SEED_TRAIN, 1], &seed_y()[..SEED_TRAIN])?),
            )),
            DataSpec::Series { windows, len, features, lag } => {
                let o = lag * (features - 1);
                let s = series(o + windows + len);
                let mut x = Vec::with_capacity(windows * len * features);
                let mut y = Vec::with_capacity(windows);
                for i in 0..windows {
                    for t in 0..len {
                        for k in 0..features {
                            x.push(s[o + i + t - lag * k]);
                        }
                    }
                    y.push(s[o + i + len]);
                }
                Ok((Tensor::new(&[windows, len, features], x)?, Some(Tensor::new(&[windows, 1], y)?)))
            }
            DataSpec::Ae { samples, dim } => Ok((Tensor::new(&[samples, dim], ae_data(samples, dim))?, None)),
        }
    }
}

/// The splitmix64 finaliser (Steele, Lea, Flood 2014), the hash behind every synthetic value.
pub fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// `u(stream, i)`: a uniform value in [0, 1) on the 2^-24 grid (exact in f32).
pub fn uniform(stream: u64, i: u64) -> f64 {
    debug_assert!(i < 1 << 40);
    (splitmix64((stream << 40) | i) >> 40) as f64 * (1.0 / 16_777_216.0)
}

/// The noise stream of the series.
pub const NOISE_STREAM: u64 = 1;
/// The stream of the autoencoder data.
pub const AE_STREAM: u64 = 2;

/// The synthetic series `s(0..n)` (module docs): f64 arithmetic, stored as f32.
pub fn series(n: usize) -> Vec<f32> {
    (0..n)
        .map(|ti| {
            let t = ti as f64;
            let mut u = 0.0f64;
            for k in 0..12u64 {
                u += uniform(NOISE_STREAM, 12 * ti as u64 + k);
            }
            let noise = 0.01 * (u - 6.0);
            let v = (-0.001 * t).exp() * (0.07 * t).sin() + 0.1 * (0.31 * t).sin() + noise;
            v as f32
        })
        .collect()
}

/// The autoencoder rows (module docs), row-major (samples, dim).
pub fn ae_data(samples: usize, dim: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(samples * dim);
    let mut row = vec![0.0f64; dim];
    for i in 0..samples {
        for (j, r) in row.iter_mut().enumerate() {
            *r = uniform(AE_STREAM, (i * dim + j) as u64);
        }
        for j in 0..dim {
            let (l, r) = (row[(j + dim - 1) % dim], row[(j + 1) % dim]);
            out.push(((l + 2.0 * row[j] + r) * 0.25) as f32);
        }
    }
    out
}

/// What is timed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Phase {
    /// `fit(epochs, batch 32, validation_split 0.05)` plus extrapolation to all 20 points.
    SeedFit { epochs: usize },
    /// One training epoch (`fit(epochs=1)`) after a warm-up epoch.
    Epoch,
    /// `predict` over all samples after a warm-up predict.
    Predict,
    /// The f32 GEMM peak: best time for each (m, n, k).
    Sgemm { shapes: Vec<[usize; 3]>, tries: usize },
}

/// One benchmark workload.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Workload {
    /// Short id: `S1`, `M1`, ... (`sgemm` for the GEMM peak).
    pub id: String,
    /// Long name: `seed-rnn`, `lstm-medium`, ...
    pub name: String,
    /// Input shape without the batch axis.
    pub input: Vec<usize>,
    pub layers: Vec<LayerSpec>,
    pub data: DataSpec,
    pub batch: usize,
    pub phase: Phase,
    /// Default number of timed repeats (the median is reported).
    pub repeats: usize,
}

impl Workload {
    /// Forward matmul FLOPs of one sample.
    pub fn forward_flop(&self) -> u64 {
        forward_flop(&self.layers, &self.input)
    }
    /// FLOPs of the timed phase (one repeat).
    pub fn phase_flop(&self) -> u64 {
        phase_flop(self)
    }
    /// Samples processed by the timed phase (training sample-steps for the seed workloads).
    pub fn phase_samples(&self) -> Option<usize> {
        let n = self.data.samples();
        match &self.phase {
            Phase::SeedFit { epochs } => Some(epochs * seed_split(n).0),
            Phase::Epoch | Phase::Predict => Some(n),
            Phase::Sgemm { .. } => None,
        }
    }
}

/// Keras 3's validation split of `n` samples: (train, validation) = (floor(n 0.95), rest).
pub fn seed_split(n: usize) -> (usize, usize) {
    let train = ((n as f64) * (1.0 - SEED_VALIDATION_SPLIT)).floor() as usize;
    (train, n - train)
}

/// Forward-pass matmul FLOPs of one sample through `layers` for an input of shape `input`
/// (without the batch axis). Only the matrix products count (a multiply-add is 2 FLOPs); bias
/// adds, activations and gate arithmetic are left out:
///
/// * `Dense(units)` on (..., F): `2 · F · units` per position (positions = the product of the
///   leading axes, e.g. the T time steps of a time-distributed Dense);
/// * `SimpleRNN(H)` on (T, F): `T · 2 · H · (F + H)` (input projection `x·W` plus the
///   recurrent product `h·U`, both with H outputs);
/// * `LSTM(H)`: `T · 2 · 4H · (F + H)` (4 gate blocks);
/// * `GRU(H)`: `T · 2 · 3H · (F + H)` (3 gate blocks; reset_after or not, the same products).
///
/// A recurrent layer without `return_sequences` outputs (H): later Dense layers count once.
pub fn forward_flop(layers: &[LayerSpec], input: &[usize]) -> u64 {
    let mut shape: Vec<u64> = input.iter().map(|&v| v as u64).collect();
    let mut total = 0u64;
    for l in layers {
        match l {
            LayerSpec::Dense { units, .. } => {
                let f = *shape.last().unwrap_or(&1);
                let positions: u64 = shape[..shape.len().saturating_sub(1)].iter().product();
                total += 2 * positions * f * *units as u64;
                if let Some(last) = shape.last_mut() {
                    *last = *units as u64;
                }
            }
            LayerSpec::SimpleRnn { units, return_sequences, .. }
            | LayerSpec::Lstm { units, return_sequences }
            | LayerSpec::Gru { units, return_sequences } => {
                let gates = match l {
                    LayerSpec::SimpleRnn { .. } => 1,
                    LayerSpec::Lstm { .. } => 4,
                    _ => 3,
                };
                let (t, f, h) = (shape[0], shape[shape.len() - 1], *units as u64);
                total += t * 2 * gates * h * (f + h);
                shape = if *return_sequences { vec![t, h] } else { vec![h] };
            }
        }
    }
    total
}

/// FLOPs of a workload's timed phase, with `fwd` = [`forward_flop`] per sample and training
/// counted as 3 · fwd per sample (forward, plus the two products of the backward pass: the
/// input gradient and the weight gradient):
///
/// * seed fit: `epochs · (3 · fwd · n_train + fwd · n_val) + fwd · 8` (n_train, n_val from
///   Keras's split; validation is one forward per epoch; the extrapolation predicts the 8
///   points 13..20);
/// * one epoch: `3 · fwd · n`;
/// * predict: `fwd · n`;
/// * sgemm: `2 · m · n · k` of the shape the row reports (the best one).
pub fn phase_flop(w: &Workload) -> u64 {
    let fwd = w.forward_flop();
    let n = w.data.samples() as u64;
    match &w.phase {
        Phase::SeedFit { epochs } => {
            let (tr, va) = seed_split(n as usize);
            *epochs as u64 * (3 * fwd * tr as u64 + fwd * va as u64) + fwd * (seed_x().len() - SEED_TRAIN) as u64
        }
        Phase::Epoch => 3 * fwd * n,
        Phase::Predict => fwd * n,
        Phase::Sgemm { shapes, .. } => shapes.iter().map(|s| 2 * (s[0] * s[1] * s[2]) as u64).max().unwrap_or(0),
    }
}

/// Every workload, in the order `memcell bench` runs them (`sgemm` first). `smoke` gives the
/// same workloads with reduced sizes (for tests; never for figures).
pub fn workloads(smoke: bool) -> Vec<Workload> {
    let seed_epochs = if smoke { 3 } else { 150 };
    let seed = |id: &str, name: &str, layers: Vec<LayerSpec>, xy: bool| Workload {
        id: id.into(),
        name: name.into(),
        input: if xy { vec![1, 1] } else { vec![2, 1] },
        layers,
        data: if xy { DataSpec::SeedXy } else { DataSpec::SeedWindows },
        batch: 32,
        phase: Phase::SeedFit { epochs: seed_epochs },
        repeats: 5,
    };
    // Medium: L=64, 8192 windows, 128 units (smoke: L=16, 256 windows, 16 units).
    let (mw, ml, mu) = if smoke { (256, 16, 16) } else { (8192, 64, 128) };
    let mdata = DataSpec::Series { windows: mw, len: ml, features: 1, lag: 0 };
    let medium = |id: &str, name: &str, l1: LayerSpec, l2: LayerSpec| Workload {
        id: id.into(),
        name: name.into(),
        input: vec![ml, 1],
        layers: vec![l1, l2, LayerSpec::dense(1, "linear")],
        data: mdata.clone(),
        batch: 64,
        phase: Phase::Epoch,
        repeats: 3,
    };
    let (lw, ll, lu, lb, lg) = if smoke { (128, 8, 32, 64, 2) } else { (4096, 32, 512, 256, 8) };
    let (an, ab) = if smoke { (512, 128) } else { (16384, 128) };
    let shapes =
        if smoke { vec![[256, 256, 256], [512, 512, 128]] } else { vec![[2048, 2048, 2048], [4096, 4096, 1024]] };
    vec![
        Workload {
            id: "sgemm".into(),
            name: "sgemm-peak".into(),
            input: vec![],
            layers: vec![],
            data: DataSpec::Ae { samples: 0, dim: 0 },
            batch: 0,
            phase: Phase::Sgemm { shapes, tries: if smoke { 2 } else { 5 } },
            repeats: 1,
        },
        seed("S1", "seed-rnn", vec![LayerSpec::rnn(200, "tanh", false), LayerSpec::dense(1, "linear")], false),
        seed(
            "S2",
            "seed-rnn2",
            vec![
                LayerSpec::rnn(500, "sigmoid", true),
                LayerSpec::rnn(500, "sigmoid", false),
                LayerSpec::dense(1, "linear"),
            ],
            false,
        ),
        seed(
            "S3",
            "seed-lstm2",
            vec![LayerSpec::lstm(250, true), LayerSpec::lstm(250, false), LayerSpec::dense(1, "linear")],
            false,
        ),
        seed(
            "S4",
            "seed-gru",
            vec![
                LayerSpec::dense(125, "relu"),
                LayerSpec::dense(125, "relu"),
                LayerSpec::gru(250, true),
                LayerSpec::gru(250, false),
                LayerSpec::dense(1, "linear"),
            ],
            false,
        ),
        seed("S5", "seed-xy", vec![LayerSpec::rnn(200, "tanh", false), LayerSpec::dense(1, "linear")], true),
        medium("M1", "lstm-medium", LayerSpec::lstm(mu, true), LayerSpec::lstm(mu, false)),
        medium("M2", "gru-medium", LayerSpec::gru(mu, true), LayerSpec::gru(mu, false)),
        medium("M3", "rnn-medium", LayerSpec::rnn(mu, "tanh", true), LayerSpec::rnn(mu, "tanh", false)),
        Workload {
            id: "L1".into(),
            name: "lstm-large".into(),
            input: vec![ll, 16],
            layers: vec![LayerSpec::lstm(lu, false), LayerSpec::dense(1, "linear")],
            data: DataSpec::Series { windows: lw, len: ll, features: 16, lag: lg },
            batch: lb,
            phase: Phase::Epoch,
            repeats: 3,
        },
        Workload {
            id: "I1".into(),
            name: "lstm-infer".into(),
            input: vec![ml, 1],
            layers: vec![LayerSpec::lstm(mu, true), LayerSpec::lstm(mu, false), LayerSpec::dense(1, "linear")],
            data: mdata.clone(),
            batch: 1024,
            phase: Phase::Predict,
            repeats: 3,
        },
        Workload {
            id: "A1".into(),
            name: "ae-dense".into(),
            input: vec![784],
            layers: vec![
                LayerSpec::dense(256, "relu"),
                LayerSpec::dense(32, "relu"),
                LayerSpec::dense(256, "relu"),
                LayerSpec::dense(784, "sigmoid"),
            ],
            data: DataSpec::Ae { samples: an, dim: 784 },
            batch: ab,
            phase: Phase::Epoch,
            repeats: 3,
        },
    ]
}

/// Resolves workload ids or names (case-insensitive; `all` = every one) in the order given,
/// without duplicates. An unknown name is an error that lists the known ones.
pub fn select(names: &[String], smoke: bool) -> Result<Vec<Workload>> {
    let all = workloads(smoke);
    if names.is_empty() {
        return Ok(all);
    }
    let mut out: Vec<Workload> = Vec::new();
    for n in names {
        for part in n.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let found: Vec<Workload> = if part.eq_ignore_ascii_case("all") {
                all.clone()
            } else {
                let w = all
                    .iter()
                    .find(|w| w.id.eq_ignore_ascii_case(part) || w.name.eq_ignore_ascii_case(part))
                    .ok_or_else(|| Error::config(format!("unknown workload '{part}'; known: {}", known_list(&all))))?;
                vec![w.clone()]
            };
            for w in found {
                if !out.iter().any(|o| o.id == w.id) {
                    out.push(w);
                }
            }
        }
    }
    Ok(out)
}

fn known_list(all: &[Workload]) -> String {
    all.iter().map(|w| format!("{} ({})", w.id, w.name)).collect::<Vec<_>>().join(", ")
}

/// One timed repeat.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub seconds: f64,
    /// The last epoch's training loss (training workloads).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub final_loss: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub final_val_loss: Option<f64>,
    /// Seed workloads: mean squared error of the extrapolated series over all 20 points.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mse_all: Option<f64>,
}

/// One GEMM shape's best time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GemmShape {
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub best_seconds: f64,
    pub gflops: f64,
}

/// A workload's result: one object of `memcell bench --json`'s array (the Python scripts
/// write the same schema).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BenchResult {
    pub id: String,
    pub name: String,
    /// `"memcell"` (the Python scripts write `"torch"`, `"keras"`).
    pub system: String,
    /// Median of `all_seconds` (sgemm: the best time of the best shape).
    pub seconds: f64,
    pub all_seconds: Vec<f64>,
    pub repeats: usize,
    /// FLOPs of one timed phase ([`phase_flop`]).
    pub flop: u64,
    /// `flop / seconds / 1e9`.
    pub gflops: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub samples_per_second: Option<f64>,
    /// The child process's peak resident set (VmHWM at its end), bytes.
    pub peak_rss_bytes: Option<u64>,
    /// The child's peak before the workload's data and model (the process itself; for the
    /// Python peers the interpreter and the imported framework), bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_rss_bytes: Option<u64>,
    pub threads: usize,
    /// `"fit+extrapolate"`, `"train-epoch"`, `"predict"` or `"gemm"`.
    pub phase: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<usize>,
    /// Medians over the repeats (per-run values in `runs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub final_loss: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub final_val_loss: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mse_all: Option<f64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub runs: Vec<RunRecord>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sgemm_shapes: Vec<GemmShape>,
    /// Reduced sizes (`--smoke`): not a figure.
    pub smoke: bool,
}

/// The median (the mean of the two middle values for an even count); NaN for none.
pub fn median(v: &[f64]) -> f64 {
    crate::experiment::stats(v).0
}

fn median_opt(v: impl Iterator<Item = Option<f64>>) -> Option<f64> {
    let v: Vec<f64> = v.flatten().collect();
    if v.is_empty() {
        None
    } else {
        Some(median(&v))
    }
}

/// This process's peak resident set size in bytes (`VmHWM` of `/proc/self/status`; `None`
/// where there is no procfs).
pub fn peak_rss_bytes() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Builds and compiles a workload's model (Adam(1e-3), MSE), weights from `seed`.
pub fn build_model(w: &Workload, seed: u64) -> Result<Sequential<f32>> {
    let mut m = Sequential::<f32>::new().input(&w.input).seed(seed);
    for l in &w.layers {
        m.push(l.to_layer()?);
    }
    m.build()?;
    m.compile(Loss::Mse, Optimizer::adam(1e-3))?;
    Ok(m)
}

/// Runs one workload in this process (`repeats` overrides the workload's default; `threads`
/// sets [`set_threads`], `None` keeps the current setting) and returns its result. `peak_rss_bytes` is this process's peak so far: call it in a fresh process (as
/// [`run_in_child`] does) for the workload's own figure.
pub fn run_workload(w: &Workload, repeats: Option<usize>, threads: Option<usize>, smoke: bool) -> Result<BenchResult> {
    let repeats = repeats.unwrap_or(w.repeats);
    if repeats == 0 {
        return Err(Error::config("repeats must be at least 1"));
    }
    // `None` leaves the process's setting alone (tests share the global).
    if let Some(t) = threads {
        set_threads(t);
    }
    let threads = threads.unwrap_or(0);
    let base_rss_bytes = peak_rss_bytes();
    let mut res = BenchResult {
        base_rss_bytes,
        id: w.id.clone(),
        name: w.name.clone(),
        system: "memcell".into(),
        threads,
        smoke,
        batch: (w.batch > 0).then_some(w.batch),
        ..Default::default()
    };
    let mut params = None;
    match &w.phase {
        Phase::Sgemm { shapes, tries } => {
            res.phase = "gemm".into();
            let tries = (*tries).max(repeats);
            let mut best: Option<GemmShape> = None;
            for &[m, n, k] in shapes {
                let s = time_sgemm(m, n, k, tries);
                let g = GemmShape { m, n, k, best_seconds: s, gflops: 2.0 * (m * n * k) as f64 / s / 1e9 };
                if best.as_ref().is_none_or(|b| g.gflops > b.gflops) {
                    best = Some(g.clone());
                }
                res.sgemm_shapes.push(g);
            }
            let b = best.ok_or_else(|| Error::config("sgemm needs at least one shape"))?;
            res.seconds = b.best_seconds;
            res.all_seconds = vec![b.best_seconds];
            res.flop = 2 * (b.m * b.n * b.k) as u64;
            res.repeats = tries;
        }
        Phase::SeedFit { epochs } => {
            res.phase = "fit+extrapolate".into();
            let (x, y) = w.data.generate()?;
            let y = y.as_ref().unwrap_or(&x);
            let xy = w.data == DataSpec::SeedXy;
            let (sx, sy) = (seed_x(), seed_y());
            for r in 0..repeats {
                let mut m = build_model(w, r as u64)?;
                params = Some(m.param_count());
                let opts = FitOptions::default()
                    .epochs(*epochs)
                    .batch_size(w.batch)
                    .validation_split(SEED_VALIDATION_SPLIT)
                    .verbose(false);
                let t0 = Instant::now();
                let h = m.fit(&x, y, &opts, &mut [])?;
                let pred = extrapolate(&mut m, xy, &sx, &sy)?;
                let secs = t0.elapsed().as_secs_f64();
                let mse = pred.iter().zip(&sy).map(|(p, t)| (p - t) * (p - t)).sum::<f64>() / sy.len() as f64;
                res.runs.push(RunRecord {
                    seconds: secs,
                    final_loss: h.loss().last().copied(),
                    final_val_loss: h.val_loss().last().copied(),
                    mse_all: Some(mse),
                });
            }
            res.flop = w.phase_flop();
            res.repeats = repeats;
        }
        Phase::Epoch => {
            res.phase = "train-epoch".into();
            let (x, y) = w.data.generate()?;
            let y = y.as_ref().unwrap_or(&x);
            let mut m = build_model(w, 0)?;
            params = Some(m.param_count());
            let opts = FitOptions::default().epochs(1).batch_size(w.batch).verbose(false);
            m.fit(&x, y, &opts, &mut [])?; // warm-up
            for _ in 0..repeats {
                let t0 = Instant::now();
                let h = m.fit(&x, y, &opts, &mut [])?;
                let secs = t0.elapsed().as_secs_f64();
                res.runs.push(RunRecord { seconds: secs, final_loss: h.loss().last().copied(), ..Default::default() });
            }
            res.flop = w.phase_flop();
            res.repeats = repeats;
        }
        Phase::Predict => {
            res.phase = "predict".into();
            let (x, _) = w.data.generate()?;
            let mut m = build_model(w, 0)?;
            params = Some(m.param_count());
            let p = m.predict(&x, w.batch)?; // warm-up
            if let Some((i, v)) = p.first_non_finite() {
                return Err(Error::data(format!("{}: prediction {i} is {v}", w.id)));
            }
            for _ in 0..repeats {
                let t0 = Instant::now();
                let p = m.predict(&x, w.batch)?;
                let secs = t0.elapsed().as_secs_f64();
                std::hint::black_box(&p);
                res.runs.push(RunRecord { seconds: secs, ..Default::default() });
            }
            res.flop = w.phase_flop();
            res.repeats = repeats;
        }
    }
    if !res.runs.is_empty() {
        res.all_seconds = res.runs.iter().map(|r| r.seconds).collect();
        res.seconds = median(&res.all_seconds);
        res.final_loss = median_opt(res.runs.iter().map(|r| r.final_loss));
        res.final_val_loss = median_opt(res.runs.iter().map(|r| r.final_val_loss));
        res.mse_all = median_opt(res.runs.iter().map(|r| r.mse_all));
    }
    res.params = params;
    res.gflops = res.flop as f64 / res.seconds / 1e9;
    res.samples_per_second = w.phase_samples().map(|n| n as f64 / res.seconds);
    res.peak_rss_bytes = peak_rss_bytes();
    Ok(res)
}

/// The seed's extrapolation: the 20-point series with points 13..20 predicted (recursively from
/// the last two training points for the window models, from x for S5), given the series `sx`, `sy`.
fn extrapolate(m: &mut Sequential<f32>, xy: bool, sx: &[f64], sy: &[f64]) -> Result<Vec<f64>> {
    let mut pred: Vec<f64> = sy[..SEED_TRAIN].to_vec();
    if xy {
        let x = Tensor::<f32>::from_f64(&[sx.len() - SEED_TRAIN, 1, 1], &sx[SEED_TRAIN..])?;
        pred.extend(m.predict(&x, 32)?.to_f64());
    } else {
        let (mut a, mut b) = (sy[SEED_TRAIN - 2], sy[SEED_TRAIN - 1]);
        for _ in SEED_TRAIN..sy.len() {
            let x = Tensor::<f32>::from_f64(&[1, 2, 1], &[a, b])?;
            let p = m.predict(&x, 32)?.data[0] as f64;
            pred.push(p);
            (a, b) = (b, p);
        }
    }
    Ok(pred)
}

/// Best wall time of `tries` products C (m, n) = A (m, k) · B (k, n) through
/// [`crate::tensor::gemm`], after one untimed call.
fn time_sgemm(m: usize, n: usize, k: usize, tries: usize) -> f64 {
    let a: Vec<f32> = (0..m * k).map(|i| (uniform(3, i as u64) - 0.5) as f32).collect();
    let b: Vec<f32> = (0..k * n).map(|i| (uniform(4, i as u64) - 0.5) as f32).collect();
    let mut c = vec![0.0f32; m * n];
    gemm(m, n, k, &a, k, false, &b, n, false, &mut c, n, Acc::Overwrite);
    let mut best = f64::INFINITY;
    for _ in 0..tries.max(1) {
        let t0 = Instant::now();
        gemm(m, n, k, &a, k, false, &b, n, false, &mut c, n, Acc::Overwrite);
        best = best.min(t0.elapsed().as_secs_f64());
        std::hint::black_box(&c);
    }
    best
}

/// Runs one workload in a child process (`exe bench --child ID`), with `MEMCELL_THREADS` and
/// `RAYON_NUM_THREADS` set to `threads`, and parses the one JSON line it prints.
pub fn run_in_child(
    exe: &Path,
    w: &Workload,
    repeats: Option<usize>,
    threads: usize,
    smoke: bool,
) -> Result<BenchResult> {
    let mut cmd = std::process::Command::new(exe);
    cmd.arg("bench").arg("--child").arg(&w.id).arg("--threads").arg(threads.to_string());
    if let Some(r) = repeats {
        cmd.arg("--repeats").arg(r.to_string());
    }
    if smoke {
        cmd.arg("--smoke");
    }
    cmd.env("MEMCELL_THREADS", threads.to_string()).env("RAYON_NUM_THREADS", threads.to_string());
    let out = cmd.output().map_err(|e| Error::io(exe, e))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let tail: String =
            err.lines().rev().take(20).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n");
        return Err(Error::data(format!("workload {} failed ({}): {}", w.id, out.status, tail.trim())));
    }
    let line = stdout.lines().rev().find(|l| l.trim_start().starts_with('{')).unwrap_or("");
    serde_json::from_str(line)
        .map_err(|e| Error::data(format!("workload {}: cannot parse the child's result ({e}): {line}", w.id)))
}

/// Writes every dataset the workloads use as `.npy` files (`<key>_x.npy`, `<key>_y.npy`, f32,
/// little-endian, C order; no `_y` file where the targets are the inputs) into `dir`,
/// atomically. Returns the paths written.
pub fn write_data(dir: &Path, smoke: bool) -> Result<Vec<std::path::PathBuf>> {
    let mut keys: Vec<DataSpec> = Vec::new();
    for w in workloads(smoke) {
        if !matches!(w.phase, Phase::Sgemm { .. }) && !keys.contains(&w.data) {
            keys.push(w.data.clone());
        }
    }
    let mut paths = Vec::new();
    for d in keys {
        let (x, y) = d.generate()?;
        for (suffix, t) in [("x", Some(&x)), ("y", y.as_ref())] {
            let Some(t) = t else { continue };
            let p = dir.join(format!("{}_{suffix}.npy", d.key()));
            crate::io::write_atomic(&p, &npy_f32(&t.shape, &t.data))?;
            paths.push(p);
        }
    }
    Ok(paths)
}

/// A `.npy` (format 1.0) file of f32 values.
pub fn npy_f32(shape: &[usize], data: &[f32]) -> Vec<u8> {
    let dims = match shape.len() {
        1 => format!("({},)", shape[0]),
        _ => format!("({})", shape.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(", ")),
    };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {dims}, }}");
    let unpadded = 10 + header.len() + 1;
    header.push_str(&" ".repeat((64 - unpadded % 64) % 64));
    header.push('\n');
    let mut out = Vec::with_capacity(10 + header.len() + 4 * data.len());
    out.extend_from_slice(b"\x93NUMPY\x01\x00");
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for v in data {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

fn fmt_opt(v: Option<f64>, f: impl Fn(f64) -> String) -> String {
    v.filter(|v| v.is_finite()).map(f).unwrap_or_else(|| "-".into())
}

/// The results as a text table; `% peak` is against the `sgemm` row when there is one.
pub fn format_table(results: &[BenchResult]) -> String {
    let peak = results.iter().find(|r| r.id == "sgemm").map(|r| r.gflops);
    let mut out = format!(
        "{:<6} {:<12} {:>10} {:>12} {:>9} {:>7} {:>9} {:>10} {:>10}\n",
        "id", "name", "seconds", "samples/s", "GFLOP/s", "% peak", "RSS MB", "loss", "mse_all"
    );
    for r in results {
        let pct = match (peak, r.id.as_str()) {
            (_, "sgemm") => "100.0".to_string(),
            (Some(p), _) if p > 0.0 => format!("{:.1}", 100.0 * r.gflops / p),
            _ => "-".into(),
        };
        out += &format!(
            "{:<6} {:<12} {:>10.4} {:>12} {:>9.2} {:>7} {:>9} {:>10} {:>10}\n",
            r.id,
            r.name,
            r.seconds,
            fmt_opt(r.samples_per_second, |v| format!("{v:.1}")),
            r.gflops,
            pct,
            fmt_opt(r.peak_rss_bytes.map(|b| b as f64), |b| format!("{:.1}", b / 1048576.0)),
            fmt_opt(r.final_loss, |v| format!("{v:.3e}")),
            fmt_opt(r.mse_all, |v| format!("{v:.3e}")),
        );
    }
    if results.iter().any(|r| r.smoke) {
        out += "(smoke sizes: not figures)\n";
    }
    out
}

/// A workload definition as `memcell bench --list --json` writes it (with its FLOP counts).
#[derive(Serialize)]
struct Definition<'a> {
    #[serde(flatten)]
    w: &'a Workload,
    forward_flop_per_sample: u64,
    phase_flop: u64,
    samples: usize,
    data_key: String,
}

/// The definitions (with FLOP counts) as JSON, for the cross-checks of the Python ports.
pub fn definitions_json(ws: &[Workload]) -> String {
    let defs: Vec<Definition> = ws
        .iter()
        .map(|w| Definition {
            w,
            forward_flop_per_sample: w.forward_flop(),
            phase_flop: w.phase_flop(),
            samples: if matches!(w.phase, Phase::Sgemm { .. }) { 0 } else { w.data.samples() },
            data_key: w.data.key(),
        })
        .collect();
    serde_json::to_string_pretty(&defs).expect("json")
}

/// The definitions as a text table.
pub fn format_definitions(ws: &[Workload]) -> String {
    let mut out = format!(
        "{:<6} {:<12} {:>8} {:>6} {:>16} {:>16}  model\n",
        "id", "name", "samples", "batch", "fwd FLOP/sample", "phase FLOP"
    );
    for w in ws {
        let model = w
            .layers
            .iter()
            .map(|l| match l {
                LayerSpec::Dense { units, activation } => format!("Dense({units},{activation})"),
                LayerSpec::SimpleRnn { units, activation, return_sequences } => {
                    format!("SimpleRNN({units},{activation}{})", if *return_sequences { ",rs" } else { "" })
                }
                LayerSpec::Lstm { units, return_sequences } => {
                    format!("LSTM({units}{})", if *return_sequences { ",rs" } else { "" })
                }
                LayerSpec::Gru { units, return_sequences } => {
                    format!("GRU({units}{})", if *return_sequences { ",rs" } else { "" })
                }
            })
            .collect::<Vec<_>>()
            .join(" -> ");
        let (samples, model) = match &w.phase {
            Phase::Sgemm { shapes, .. } => (
                "-".to_string(),
                shapes.iter().map(|s| format!("{}x{}x{}", s[0], s[1], s[2])).collect::<Vec<_>>().join(", "),
            ),
            _ => (w.data.samples().to_string(), format!("input {:?}: {model}", w.input)),
        };
        out += &format!(
            "{:<6} {:<12} {:>8} {:>6} {:>16} {:>16}  {model}\n",
            w.id,
            w.name,
            samples,
            w.batch,
            w.forward_flop(),
            w.phase_flop()
        );
    }
    out
}

/// Options of `memcell bench`.
#[derive(Clone, Debug, Default)]
pub struct BenchOptions {
    pub workloads: Vec<String>,
    pub json: Option<std::path::PathBuf>,
    pub repeats: Option<usize>,
    pub threads: usize,
    pub smoke: bool,
    pub list: bool,
    pub write_data: Option<std::path::PathBuf>,
    pub child: Option<String>,
}

/// `memcell bench`: runs the selected workloads, each in a child process, prints the table and
/// writes the JSON array. Progress goes to stderr, the table to stdout.
pub fn run_cli(o: &BenchOptions) -> Result<()> {
    if o.threads == 0 {
        return Err(Error::config("--threads must be at least 1"));
    }
    if o.repeats == Some(0) {
        return Err(Error::config("--repeats must be at least 1"));
    }
    if let Some(id) = &o.child {
        let ws = select(std::slice::from_ref(id), o.smoke)?;
        let r = run_workload(&ws[0], o.repeats, Some(o.threads), o.smoke)?;
        println!("{}", serde_json::to_string(&r).expect("json"));
        return Ok(());
    }
    if let Some(dir) = &o.write_data {
        for p in write_data(dir, o.smoke)? {
            println!("{}", p.display());
        }
        return Ok(());
    }
    let ws = select(&o.workloads, o.smoke)?;
    if o.list {
        if let Some(path) = &o.json {
            crate::io::write_atomic(path, definitions_json(&ws).as_bytes())?;
        }
        print!("{}", format_definitions(&ws));
        return Ok(());
    }
    let exe = std::env::current_exe().map_err(|e| Error::io("current executable", e))?;
    let mut results = Vec::new();
    for w in &ws {
        eprintln!("memcell bench: {} ({}) ...", w.id, w.name);
        let t0 = Instant::now();
        let r = run_in_child(&exe, w, o.repeats, o.threads, o.smoke)?;
        eprintln!("memcell bench: {} done: median {:.4} s ({:.1} s wall)", w.id, r.seconds, t0.elapsed().as_secs_f64());
        results.push(r);
        if let Some(path) = &o.json {
            // Rewritten after every workload, so a long run leaves its finished part behind.
            crate::io::write_atomic(path, serde_json::to_string_pretty(&results).expect("json").as_bytes())?;
        }
    }
    print!("{}", format_table(&results));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flop_formulas_match_a_hand_count() {
        // LSTM(4, rs) on (T=3, F=2) -> GRU(5) -> Dense(1):
        //   LSTM: per step x·W (2x16) + h·U (4x16): 2·2·16 + 2·4·16 = 64 + 128 = 192; 3 steps = 576
        //   GRU:  per step x·W (4x15) + h·U (5x15): 2·4·15 + 2·5·15 = 120 + 150 = 270; 3 steps = 810
        //   Dense on (5): 2·5·1 = 10
        let layers = vec![LayerSpec::lstm(4, true), LayerSpec::gru(5, false), LayerSpec::dense(1, "linear")];
        assert_eq!(forward_flop(&layers, &[3, 2]), 576 + 810 + 10);
        // Time-distributed Dense(3) on (T=2, F=1) -> SimpleRNN(2): 2·(2·1·3) + 2·(2·2·(3+2)) = 12 + 40.
        let layers = vec![LayerSpec::dense(3, "relu"), LayerSpec::rnn(2, "tanh", false)];
        assert_eq!(forward_flop(&layers, &[2, 1]), 12 + 40);
        // S1: SimpleRNN(200) on (2, 1) -> Dense(1): 2·2·200·201 + 2·200 = 161,200.
        let s1 = &select(&["S1".into()], false).unwrap()[0];
        assert_eq!(s1.forward_flop(), 161_200);
        // 150 epochs of 9 training samples (x3) and 1 validation sample, then 8 predictions.
        assert_eq!(s1.phase_flop(), 150 * (3 * 161_200 * 9 + 161_200) + 8 * 161_200);
        // A1: 2·(784·256 + 256·32 + 32·256 + 256·784) per sample, x3, x16384 samples.
        let a1 = &select(&["ae-dense".into()], false).unwrap()[0];
        assert_eq!(a1.forward_flop(), 835_584);
        assert_eq!(a1.phase_flop(), 3 * 835_584 * 16_384);
        // I1 is M1's model, forward only.
        let m = select(&["M1".into(), "I1".into()], false).unwrap();
        assert_eq!(m[0].forward_flop(), m[1].forward_flop());
        assert_eq!(m[0].phase_flop(), 3 * m[1].phase_flop());
        assert_eq!(m[0].forward_flop(), 64 * 8 * 128 * (1 + 128) + 64 * 8 * 128 * 256 + 256);
    }

    #[test]
    fn data_generator_is_deterministic_and_as_defined() {
        assert_eq!(series(300), series(300));
        let long = series(1000);
        assert_eq!(&long[..300], &series(300)[..]); // values depend on the index only
                                                    // s(0) = noise(0) only; recompute it from the definition.
        let u: f64 = (0..12).map(|k| uniform(NOISE_STREAM, k)).sum();
        assert_eq!(long[0], (0.01 * (u - 6.0)) as f32);
        // The noise is small and the signal visible.
        assert!(long.iter().all(|v| v.abs() < 1.2));
        assert!(uniform(1, 0) >= 0.0 && uniform(1, 0) < 1.0);
        assert_eq!(splitmix64(0), 0xE220_A839_7B1D_CDAF); // the reference value of splitmix64
        let a = ae_data(3, 784);
        assert_eq!(a, ae_data(3, 784));
        assert!(a.iter().all(|v| (0.0..1.0).contains(v)));
        let d = DataSpec::Series { windows: 5, len: 4, features: 3, lag: 2 };
        let (x, y) = d.generate().unwrap();
        let y = y.unwrap();
        assert_eq!(x.shape, vec![5, 4, 3]);
        let s = series(4 + 5 + 4);
        // o = 4: x[i, t, k] = s(4 + i + t - 2k), y[i] = s(4 + i + 4).
        assert_eq!(x.data[(2 * 4 + 1) * 3 + 2], s[4 + 2 + 1 - 4]);
        assert_eq!(y.data[3], s[4 + 3 + 4]);
        let (x, y) = DataSpec::SeedWindows.generate().unwrap();
        let y = y.unwrap();
        assert_eq!((x.shape.clone(), y.shape.clone()), (vec![10, 2, 1], vec![10, 1]));
        assert_eq!(y.data[9], -0.8702784034f64 as f32); // the note's 12th point
    }

    #[test]
    fn npy_header_is_aligned() {
        let b = npy_f32(&[2, 3], &[0.0; 6]);
        let hl = u16::from_le_bytes([b[8], b[9]]) as usize;
        assert_eq!((10 + hl) % 64, 0);
        assert_eq!(b.len(), 10 + hl + 24);
    }

    #[test]
    fn unknown_workload_names_the_known_ones() {
        let e = select(&["S9".into()], false).unwrap_err().to_string();
        assert!(e.contains("unknown workload 'S9'") && e.contains("M1 (lstm-medium)"), "{e}");
        let ws = select(&["s1,M1".into(), "seed-rnn".into()], false).unwrap();
        assert_eq!(ws.iter().map(|w| w.id.as_str()).collect::<Vec<_>>(), ["S1", "M1"]);
        assert_eq!(select(&[], false).unwrap().len(), 12);
    }

    #[test]
    fn tiny_workloads_run() {
        for id in ["S1", "S4", "S5", "M2", "I1", "A1", "sgemm"] {
            let w = &select(&[id.into()], true).unwrap()[0];
            let r = run_workload(w, Some(1), None, true).unwrap();
            assert_eq!(r.all_seconds.len(), 1);
            assert!(r.seconds > 0.0 && r.gflops > 0.0, "{id}: {r:?}");
            if id == "sgemm" {
                assert!([2 * 256 * 256 * 256, 2 * 512 * 512 * 128].contains(&r.flop));
                assert_eq!(r.sgemm_shapes.len(), 2);
            } else {
                assert_eq!(r.flop, w.phase_flop());
            }
            if id.starts_with('S') {
                assert!(r.mse_all.unwrap().is_finite() && r.final_val_loss.is_some());
            }
            let json = serde_json::to_string(&r).unwrap();
            let back: BenchResult = serde_json::from_str(&json).unwrap();
            // (serde_json's float parsing may differ in the last bit: compare the fields)
            assert_eq!((&back.id, back.flop, back.runs.len(), back.params), (&r.id, r.flop, r.runs.len(), r.params));
            assert!((back.seconds - r.seconds).abs() <= 1e-12 * r.seconds);
        }
    }
}
