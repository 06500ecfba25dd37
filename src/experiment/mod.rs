//! Extrapolation experiments as the seed note runs them: train a network on the first `train`
//! points of a series (as windows `(y1..yw) -> y_{w+1}`, or as plain x -> y regression), then
//! extrapolate to every remaining point, and score the prediction beside classical baselines.
//!
//! [`seed_specs`] are the note's five experiments; [`config::RunConfig`] reads a user's own
//! from TOML. [`run_all`] trains every model for every seed and [`output::write_outputs`]
//! writes the results folder.

pub mod config;
pub mod figures;
pub mod output;

/// What the bundled series is, in words (for reports).
pub const SEED_DESCRIPTION: &str = "Coupled-cluster doubles (CCD) correlation energy of the pairing model \
(g = 0.5, level spacing 1) against the number of particles N = 2..40 (the seed lecture note's series)";

use crate::baselines::{all_baselines, Baseline};
use crate::datasets::{check_split, windows, Series};
use crate::error::{Error, Result};
use crate::layers::config::layer_from_config;
use crate::loss::Loss;
use crate::model::{FitOptions, Sequential};
use crate::optim::Optimizer;
use crate::tensor::Tensor;
use serde::Serialize;
use serde_json::{json, Value};
use std::time::Instant;

/// How a model sees the series.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Sequence formatting: windows of `window` consecutive values predict the next value;
    /// extrapolation feeds predictions back (the note's `format_data` and `test_rnn`).
    Window { window: usize },
    /// Plain regression y(x) through a sequence of length 1 (the note's last experiment).
    Xy,
}

/// One model of an experiment.
#[derive(Clone, Debug, Serialize)]
pub struct ModelSpec {
    pub id: String,
    pub title: String,
    pub kind: Kind,
    /// Keras layer configs `{"class_name": ..., "config": {...}}`.
    pub layers: Vec<Value>,
}

/// How every model is trained.
#[derive(Clone, Debug, Serialize)]
pub struct FitSpec {
    pub epochs: usize,
    pub batch_size: usize,
    pub validation_split: f64,
    pub shuffle: bool,
    pub loss: String,
    /// The optimizer as in a config file: `{"type": "adam", "learning_rate": 0.001}`.
    pub optimizer: Value,
    pub seeds: Vec<u64>,
}

impl Default for FitSpec {
    /// The seed note's set-up: Adam with Keras's defaults, 150 epochs, batch 32,
    /// validation_split 0.05, five seeds.
    fn default() -> Self {
        FitSpec {
            epochs: 150,
            batch_size: 32,
            validation_split: 0.05,
            shuffle: true,
            loss: "mse".into(),
            optimizer: json!({"type": "adam", "learning_rate": 0.001}),
            seeds: (0..5).collect(),
        }
    }
}

fn layer(class: &str, cfg: Value) -> Value {
    json!({"class_name": class, "config": cfg})
}

/// The seed note's five experiments, layer for layer (names as in the note).
pub fn seed_specs() -> Vec<ModelSpec> {
    let w2 = Kind::Window { window: 2 };
    vec![
        ModelSpec {
            id: "S1".into(),
            title: "SimpleRNN(200) + Dense(1)".into(),
            kind: w2.clone(),
            layers: vec![
                layer("SimpleRNN", json!({"name": "RNN", "units": 200})),
                layer("Dense", json!({"name": "dense", "units": 1})),
            ],
        },
        ModelSpec {
            id: "S2".into(),
            title: "2 x SimpleRNN(500, sigmoid) + Dense(1)".into(),
            kind: w2.clone(),
            layers: vec![
                layer(
                    "SimpleRNN",
                    json!({"name": "RNN1", "units": 500, "activation": "sigmoid", "return_sequences": true}),
                ),
                layer("SimpleRNN", json!({"name": "RNN2", "units": 500, "activation": "sigmoid"})),
                layer("Dense", json!({"name": "dense", "units": 1})),
            ],
        },
        ModelSpec {
            id: "S3".into(),
            title: "2 x LSTM(250) + Dense(1)".into(),
            kind: w2.clone(),
            layers: vec![
                layer("LSTM", json!({"name": "RNN", "units": 250, "return_sequences": true})),
                layer("LSTM", json!({"name": "RNN1", "units": 250})),
                layer("Dense", json!({"name": "dense", "units": 1})),
            ],
        },
        ModelSpec {
            id: "S4".into(),
            title: "2 x Dense(125, relu) + 2 x GRU(250) + Dense(1)".into(),
            kind: w2,
            layers: vec![
                // The note writes Dense(hidden_neurons/2): 250/2 = 125.0, an integral float.
                layer("Dense", json!({"name": "dnn", "units": 125.0, "activation": "relu"})),
                layer("Dense", json!({"name": "dnn1", "units": 125.0, "activation": "relu"})),
                layer("GRU", json!({"name": "RNN1", "units": 250, "return_sequences": true})),
                layer("GRU", json!({"name": "RNN", "units": 250})),
                layer("Dense", json!({"name": "dense", "units": 1})),
            ],
        },
        ModelSpec {
            id: "S5".into(),
            title: "SimpleRNN(200) + Dense(1) on x -> y".into(),
            kind: Kind::Xy,
            layers: vec![
                layer("SimpleRNN", json!({"name": "RNN", "units": 200})),
                layer("Dense", json!({"name": "dense", "units": 1})),
            ],
        },
    ]
}

/// One trained model (one seed).
#[derive(Clone, Debug, Serialize)]
pub struct RunResult {
    pub seed: u64,
    /// MSE over every point (training points count with their true values, as in the note).
    pub mse_all: f64,
    /// MSE over the extrapolated points only.
    pub mse_extrapolated: f64,
    pub max_abs_error: f64,
    pub final_loss: f64,
    pub final_val_loss: Option<f64>,
    /// Wall-clock seconds of fit plus extrapolation (what the note's timer measures).
    pub seconds: f64,
    /// Every point: the training values, then the extrapolation (first y column).
    pub prediction: Vec<f64>,
    /// Per feature when the series has several y columns.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prediction_features: Option<Vec<Vec<f64>>>,
    pub loss: Vec<f64>,
    pub val_loss: Vec<f64>,
}

/// One model over all its seeds.
#[derive(Clone, Debug, Serialize)]
pub struct ExperimentResult {
    pub id: String,
    pub title: String,
    pub kind: Kind,
    pub params: usize,
    pub summary: String,
    pub layers: Vec<Value>,
    pub runs: Vec<RunResult>,
}

impl ExperimentResult {
    /// (median, min, max) of `mse_all` over the runs.
    pub fn mse_stats(&self) -> (f64, f64, f64) {
        stats(&self.runs.iter().map(|r| r.mse_all).collect::<Vec<_>>())
    }
    /// Median of the seconds over the runs.
    pub fn median_seconds(&self) -> f64 {
        stats(&self.runs.iter().map(|r| r.seconds).collect::<Vec<_>>()).0
    }
    /// Pointwise median, min and max of the predictions over seeds.
    pub fn prediction_band(&self) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
        let n = self.runs.first().map(|r| r.prediction.len()).unwrap_or(0);
        let mut med = Vec::with_capacity(n);
        let (mut lo, mut hi) = (Vec::with_capacity(n), Vec::with_capacity(n));
        for i in 0..n {
            let v: Vec<f64> = self.runs.iter().map(|r| r.prediction[i]).collect();
            let (m, a, b) = stats(&v);
            med.push(m);
            lo.push(a);
            hi.push(b);
        }
        (med, lo, hi)
    }
}

/// (median, min, max); NaN-free input assumed, empty gives NaNs.
pub fn stats(v: &[f64]) -> (f64, f64, f64) {
    if v.is_empty() {
        return (f64::NAN, f64::NAN, f64::NAN);
    }
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let n = s.len();
    let med = if n % 2 == 1 { s[n / 2] } else { 0.5 * (s[n / 2 - 1] + s[n / 2]) };
    (med, s[0], s[n - 1])
}

/// A baseline scored like the networks.
#[derive(Clone, Debug, Serialize)]
pub struct BaselineResult {
    pub id: String,
    pub description: String,
    pub mse_all: f64,
    pub mse_extrapolated: f64,
    pub max_abs_error: f64,
    pub prediction: Vec<f64>,
}

/// Everything one invocation produces.
#[derive(Clone, Debug, Serialize)]
pub struct Results {
    pub memcell_version: String,
    pub data: DataInfo,
    pub fit: FitSpec,
    pub experiments: Vec<ExperimentResult>,
    pub baselines: Vec<BaselineResult>,
}

/// What was trained on.
#[derive(Clone, Debug, Serialize)]
pub struct DataInfo {
    pub description: String,
    pub x_name: String,
    pub y_names: Vec<String>,
    pub x: Vec<f64>,
    pub y: Vec<f64>,
    pub train: usize,
}

fn scores(truth: &[f64], pred: &[f64], train: usize) -> (f64, f64, f64) {
    let n = truth.len();
    let mut all = 0.0;
    let mut ext = 0.0;
    let mut worst: f64 = 0.0;
    for i in 0..n {
        let e = pred[i] - truth[i];
        all += e * e;
        if i >= train {
            ext += e * e;
        }
        worst = worst.max(e.abs());
    }
    let ne = (n - train).max(1) as f64;
    (all / n as f64, ext / ne, worst)
}

/// Builds the Keras model of `spec` for `features` input features.
pub fn build_model(spec: &ModelSpec, features: usize, seed: u64) -> Result<Sequential<f32>> {
    let input = match spec.kind {
        Kind::Window { window } => vec![window, features],
        Kind::Xy => vec![1, 1],
    };
    let mut m = Sequential::<f32>::new().input(&input).seed(seed);
    m.name = spec.id.clone();
    for (i, l) in spec.layers.iter().enumerate() {
        let class = l
            .get("class_name")
            .and_then(|c| c.as_str())
            .ok_or_else(|| Error::config(format!("model {}: layer {} has no type", spec.id, i + 1)))?;
        let cfg = l.get("config").cloned().unwrap_or(json!({}));
        m.push(
            layer_from_config::<f32>(class, &cfg)
                .map_err(|e| Error::config(format!("model {}, layer {}: {e}", spec.id, i + 1)))?,
        );
    }
    m.build()?;
    let want_out = match spec.kind {
        Kind::Window { .. } => features,
        Kind::Xy => features,
    };
    let out = m.output_shape().unwrap_or(&[]).to_vec();
    if out != [want_out] {
        return Err(Error::config(format!(
            "model {}: the last layer must output one value per y column, shape ({want_out},) per sample; it outputs {:?} \
             (end with Dense({want_out}) and no return_sequences)",
            spec.id, out
        )));
    }
    Ok(m)
}

/// Trains `spec` with one seed on the first `train` points and extrapolates to the end.
pub fn run_one(
    series: &Series,
    train: usize,
    spec: &ModelSpec,
    fit: &FitSpec,
    seed: u64,
    verbose: bool,
) -> Result<(RunResult, usize, String)> {
    let f = series.n_features();
    let mut m = build_model(spec, f, seed)?;
    let params = m.param_count();
    let summary = m.summary()?;
    let loss = Loss::parse(&fit.loss)?;
    m.compile(loss, Optimizer::from_json(&fit.optimizer)?)?;
    let opts = FitOptions::default()
        .epochs(fit.epochs)
        .batch_size(fit.batch_size)
        .validation_split(fit.validation_split)
        .shuffle(fit.shuffle)
        .verbose(verbose);
    let n = series.len();
    let start = Instant::now();
    let (history, pred) = match spec.kind {
        Kind::Window { window } => {
            check_split(series, train, window)?;
            let (xs, ys, nw) = windows(&series.y[..train], window);
            let x = Tensor::from_f64(&[nw, window, f], &xs)?;
            let y = Tensor::from_f64(&[nw, f], &ys)?;
            let h = m.fit(&x, &y, &opts, &mut [])?;
            // Recursive extrapolation from the last `window` training points.
            let mut pred: Vec<Vec<f64>> = series.y[..train].to_vec();
            let mut ctx: Vec<f64> = series.y[train - window..train].iter().flatten().copied().collect();
            for _ in train..n {
                let xin = Tensor::from_f64(&[1, window, f], &ctx)?;
                let next = m.predict(&xin, 1)?.to_f64();
                if let Some(bad) = next.iter().find(|v| !v.is_finite()) {
                    return Err(Error::data(format!("model {} seed {seed}: extrapolation produced {bad}", spec.id)));
                }
                ctx.drain(..f);
                ctx.extend_from_slice(&next);
                pred.push(next);
            }
            (h, pred)
        }
        Kind::Xy => {
            if train < 2 {
                return Err(Error::data(format!(
                    "x -> y regression needs at least 2 training points, got train = {train}"
                )));
            }
            if train > n {
                return Err(Error::data(format!("train = {train} is larger than the {n} points of the series")));
            }
            if f != 1 {
                return Err(Error::config("kind = \"xy\" needs exactly one y column"));
            }
            let x = Tensor::from_f64(&[train, 1, 1], &series.x[..train])?;
            let y = Tensor::from_f64(&[train, 1], &series.y[..train].iter().map(|v| v[0]).collect::<Vec<_>>())?;
            let h = m.fit(&x, &y, &opts, &mut [])?;
            let mut pred: Vec<Vec<f64>> = series.y[..train].to_vec();
            if n > train {
                let xq = Tensor::from_f64(&[n - train, 1, 1], &series.x[train..])?;
                let yq = m.predict(&xq, 32)?.to_f64();
                pred.extend(yq.into_iter().map(|v| vec![v]));
            }
            (h, pred)
        }
    };
    let seconds = start.elapsed().as_secs_f64();
    let truth0: Vec<f64> = series.y.iter().map(|v| v[0]).collect();
    let pred0: Vec<f64> = pred.iter().map(|v| v[0]).collect();
    let (mse_all, mse_extrapolated, max_abs_error) = if f == 1 {
        scores(&truth0, &pred0, train)
    } else {
        let tf: Vec<f64> = series.y.iter().flatten().copied().collect();
        let pf: Vec<f64> = pred.iter().flatten().copied().collect();
        scores(&tf, &pf, train * f)
    };
    let run = RunResult {
        seed,
        mse_all,
        mse_extrapolated,
        max_abs_error,
        final_loss: *history.loss().last().unwrap_or(&f64::NAN),
        final_val_loss: history.val_loss().last().copied(),
        seconds,
        prediction: pred0,
        prediction_features: if f > 1 {
            Some((0..f).map(|j| pred.iter().map(|v| v[j]).collect()).collect())
        } else {
            None
        },
        loss: history.loss().to_vec(),
        val_loss: history.val_loss().to_vec(),
    };
    Ok((run, params, summary))
}

/// Scores the classical baselines on the first y column.
pub fn run_baselines(series: &Series, train: usize) -> Result<Vec<BaselineResult>> {
    let y: Vec<f64> = series.y.iter().map(|v| v[0]).collect();
    let bs: Vec<Baseline> = all_baselines(&series.x, &y, train)?;
    Ok(bs
        .into_iter()
        .map(|b| {
            let (a, e, w) = scores(&y, &b.prediction, train);
            BaselineResult {
                id: b.id,
                description: b.description,
                mse_all: a,
                mse_extrapolated: e,
                max_abs_error: w,
                prediction: b.prediction,
            }
        })
        .collect())
}

/// Progress reports from [`run_all`].
pub trait Progress {
    fn run_done(&mut self, spec: &ModelSpec, run: &RunResult);
}

/// Prints nothing.
pub struct Quiet;
impl Progress for Quiet {
    fn run_done(&mut self, _: &ModelSpec, _: &RunResult) {}
}

/// Trains every model for every seed, and scores the baselines.
pub fn run_all(
    series: &Series,
    description: &str,
    train: usize,
    specs: &[ModelSpec],
    fit: &FitSpec,
    progress: &mut dyn Progress,
) -> Result<Results> {
    if fit.seeds.is_empty() {
        return Err(Error::config("no seeds given (--seeds must be at least 1)"));
    }
    if train > series.len() {
        return Err(Error::data(format!("train = {train} is larger than the {} points of the series", series.len())));
    }
    // Validate every model before training any (so a typo in S5 does not cost S1..S4's time).
    for s in specs {
        if let Kind::Window { window } = s.kind {
            check_split(series, train, window)?;
        }
        build_model(s, series.n_features(), 0)?;
    }
    let mut experiments = Vec::new();
    for s in specs {
        let mut runs = Vec::new();
        let (mut params, mut summary) = (0, String::new());
        for &seed in &fit.seeds {
            let (r, p, sm) = run_one(series, train, s, fit, seed, false)?;
            progress.run_done(s, &r);
            params = p;
            summary = sm;
            runs.push(r);
        }
        experiments.push(ExperimentResult {
            id: s.id.clone(),
            title: s.title.clone(),
            kind: s.kind.clone(),
            params,
            summary,
            layers: s.layers.clone(),
            runs,
        });
    }
    let baselines = if series.n_features() == 1 { run_baselines(series, train)? } else { Vec::new() };
    Ok(Results {
        memcell_version: env!("CARGO_PKG_VERSION").into(),
        data: DataInfo {
            description: description.into(),
            x_name: series.x_name.clone(),
            y_names: series.y_names.clone(),
            x: series.x.clone(),
            y: series.y.iter().map(|v| v[0]).collect(),
            train,
        },
        fit: fit.clone(),
        experiments,
        baselines,
    })
}
