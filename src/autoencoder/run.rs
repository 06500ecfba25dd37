//! Builds every model of an [`AeConfig`], trains it on the training samples and scores it on
//! both splits beside PCA with as many components as the code has values; on Ising data also
//! the code's correlation with the magnetization and where its susceptibility peaks.
//!
//! Everything that can be checked before training is: [`build_all`] builds every model (shapes,
//! code sizes, ties) before the first one trains, so a bad model fails in a second, not after
//! the others have trained.

use super::config::{AeConfig, FitSpec, ModelSpec, Noise, Variant};
use super::data::{AeData, Coloring};
use super::{mse, pearson, Autoencoder, Pca};
use crate::datasets::ising::{peak_temperature, susceptibility_by_temperature, T_CRITICAL};
use crate::error::{Error, Result};
use crate::layers::config::layer_from_config;
use crate::layers::Layer;
use crate::loss::Loss;
use crate::model::{FitOptions, History, Sequential};
use crate::optim::Optimizer;
use crate::tensor::Tensor;
use serde::Serialize;
use serde_json::{json, Value};
use std::path::Path;
use std::time::Instant;

/// A pair of errors on the two splits.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct TrainVal {
    pub train: f64,
    pub validation: f64,
}

/// The logged losses per epoch.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HistoryOut {
    pub loss: Vec<f64>,
    pub val_loss: Vec<f64>,
}

impl From<&History> for HistoryOut {
    fn from(h: &History) -> Self {
        HistoryOut { loss: h.loss().to_vec(), val_loss: h.val_loss().to_vec() }
    }
}

/// The Ising observables of one model (over all samples, training and validation).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct IsingResult {
    /// Pearson r between a one-dimensional code z and the signed magnetization m (null for a
    /// code of another size). The sign of z is arbitrary: compare |r|.
    pub code_magnetization_correlation: Option<f64>,
    /// Where `chi_z(T) = L² (<z²> - <|z|>²) / T` peaks, z centred on its mean over all samples.
    pub code_susceptibility_peak_temperature: Option<f64>,
    /// Where `chi_m(T) = L² (<m²> - <|m|>²) / T` of the same samples peaks.
    pub magnetic_susceptibility_peak_temperature: Option<f64>,
    /// The curves: temperatures ascending, `chi_z` (empty without a 1-D code) and `chi_m`.
    pub susceptibility: Curves,
}

/// `chi_z(T)` and `chi_m(T)`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Curves {
    pub temperature: Vec<f64>,
    pub chi_z: Vec<f64>,
    pub chi_m: Vec<f64>,
}

/// What denoising buys: the error on held-out *noisy* inputs against the clean ones.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DenoisingResult {
    pub noise: Noise,
    /// This model on noisy validation inputs, against the clean validation samples.
    pub noisy_validation_mse: f64,
    /// The plain autoencoder (same layers, no corruption, same data and training) on the same
    /// noisy inputs.
    pub plain_noisy_validation_mse: f64,
    /// The noisy inputs themselves against the clean ones (no model).
    pub noisy_input_mse: f64,
    /// The plain autoencoder's clean reconstruction error.
    pub plain_reconstruction_mse: TrainVal,
    pub plain_params: usize,
    pub plain_history: HistoryOut,
    pub plain_seconds: f64,
}

/// How sparse the code is (validation samples).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SparsityResult {
    /// The KL target, if any.
    pub rho: Option<f64>,
    pub beta: Option<f64>,
    pub l1: Option<f64>,
    /// Mean code value over samples and units (compare with rho).
    pub mean_code_activation: f64,
    /// Mean of |code|.
    pub mean_abs_code: f64,
    /// Each unit's mean activation.
    pub unit_mean_activation: Vec<f64>,
}

/// The variational model's generative side.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct VariationalResult {
    pub latent: usize,
    pub kl_weight: f64,
    /// Samples decoded from N(0, I) codes (written to `generated_<id>.npy`).
    pub generated: usize,
    pub generated_min: f64,
    pub generated_max: f64,
}

/// One trained model, as written to `results.json`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ModelResult {
    pub id: String,
    pub title: String,
    pub variant: Variant,
    /// Trainable weights (a tied kernel counts once).
    pub params: usize,
    /// Values in one code.
    pub code_size: usize,
    /// The model's input shape (without the batch axis).
    pub input_shape: Vec<usize>,
    /// MSE of the reconstruction (inference: no noise, a variational code is its mean).
    pub reconstruction_mse: TrainVal,
    /// Components of the PCA baseline (the code size, at most the input size).
    pub pca_components: usize,
    /// PCA fitted on the training samples, scored on the validation samples.
    pub pca_mse: f64,
    /// The same PCA on its training samples.
    pub pca_mse_train: f64,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub ising: Option<IsingResult>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub denoising: Option<DenoisingResult>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sparsity: Option<SparsityResult>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variational: Option<VariationalResult>,
    /// Training loss of the last epoch (penalties included).
    pub final_loss: f64,
    pub final_val_loss: f64,
    pub history: HistoryOut,
    /// One history per level of greedy layer-wise pretraining.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pretrain_history: Option<Vec<HistoryOut>>,
    /// Wall-clock seconds of pretraining and training.
    pub seconds: f64,
    pub fit: FitSpec,
    /// The model in Keras's vocabulary (what `models/<id>/config.json` holds).
    pub model: Value,
    /// Keras's summary table.
    pub summary: String,
}

/// What the figures need besides [`ModelResult`].
pub struct Artifacts {
    /// Codes of every sample (n × code_size), in sample order.
    pub codes: Vec<f64>,
    /// Validation samples shown as examples (indices into the data).
    pub examples: Vec<usize>,
    /// Their reconstructions (examples × dim).
    pub reconstructions: Vec<f64>,
    /// Denoising: the noisy examples, this model's and the plain model's reconstructions.
    pub noisy: Option<(Vec<f64>, Vec<f64>, Vec<f64>)>,
    /// Variational: samples from the prior (generated × dim).
    pub generated: Vec<f64>,
    /// Variational with a 2-D code: the decoded grid of codes (side × side × dim) and the side.
    pub manifold: Option<(Vec<f64>, usize, f64)>,
    /// The trained model (saved to `models/<id>/`).
    pub model: Autoencoder<f32>,
}

/// Everything one invocation produces.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AeResults {
    pub memcell_version: String,
    pub config: String,
    pub data: DataOut,
    pub fit: FitSpec,
    pub models: Vec<ModelResult>,
}

/// What was trained on.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DataOut {
    pub kind: String,
    pub description: String,
    pub n_samples: usize,
    pub n_train: usize,
    pub n_validation: usize,
    pub sample_shape: Vec<usize>,
    pub validation_fraction: f64,
    pub seed: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scaling: Option<super::data::Scaling>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ising: Option<IsingData>,
}

/// The magnetic side of the Ising samples, model-free.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct IsingData {
    pub l: usize,
    pub t_critical_infinite_lattice: f64,
    pub temperature: Vec<f64>,
    pub chi_m: Vec<f64>,
    pub mean_abs_m: Vec<f64>,
    pub magnetic_susceptibility_peak_temperature: Option<f64>,
}

/// Reports progress while models train.
pub trait Progress {
    fn model_done(&mut self, _r: &ModelResult) {}
}

/// No progress output.
pub struct Quiet;
impl Progress for Quiet {}

fn ctx<'a>(origin: &'a Path, id: &str) -> impl Fn(Error) -> Error + 'a {
    let id = id.to_string();
    move |e| match e {
        Error::Format { path, msg } if path == origin => Error::Format { path, msg },
        e => Error::format(origin, format!("model {id}: {e}")),
    }
}

fn config_layer(class: &str, cfg: Value) -> Value {
    json!({"class_name": class, "config": cfg})
}

/// The model's input shape and full layer lists (variant pieces added). `with_noise: false`
/// leaves the corruption layer out (the plain twin of a denoising model).
fn layer_plan(spec: &ModelSpec, data: &AeData, with_noise: bool) -> Result<(Vec<usize>, Vec<Value>, Vec<Value>)> {
    let d = data.dim();
    let input = if spec.variant == Variant::Sequence {
        if data.sample_shape.len() != 2 {
            return Err(Error::config(format!(
                "variant = \"sequence\" needs samples of shape (time, features), but these samples have shape {:?}; \
                 set window = N in [data] to cut a series into windows",
                data.sample_shape
            )));
        }
        data.sample_shape.clone()
    } else {
        vec![d]
    };
    let mut enc = spec.encoder.clone();
    let mut dec = spec.decoder.clone();
    if with_noise {
        if let Some(n) = &spec.noise {
            enc.insert(0, n.layer());
        }
    }
    match spec.variant {
        Variant::Sparse => {
            let code = enc.last_mut().expect("the encoder is not empty");
            if code["class_name"] != "Dense" {
                return Err(Error::config(format!(
                    "variant = \"sparse\" puts its penalty on the code layer, the last encoder layer, which must be \
                     Dense (it is {})",
                    code["class_name"]
                )));
            }
            if let Some(s) = &spec.sparsity {
                let act = code["config"].get("activation").and_then(|a| a.as_str()).unwrap_or("linear");
                if act != "sigmoid" {
                    return Err(Error::config(format!(
                        "sparsity = {{ rho, beta }} needs code activations in (0, 1): give the last encoder layer \
                         activation = \"sigmoid\" (it has \"{act}\")"
                    )));
                }
                code["config"]["activity_sparsity"] = json!({"rho": s.rho, "beta": s.beta});
            }
            if let Some(l1) = spec.l1 {
                if code["config"].get("activity_regularizer").is_some_and(|v| !v.is_null()) {
                    return Err(Error::config(
                        "give either l1 = ... or an activity_regularizer on the code layer, not both",
                    ));
                }
                code["config"]["activity_regularizer"] = json!({"class_name": "L1", "config": {"l1": l1}});
            }
        }
        Variant::Variational => {
            let latent = spec.latent.expect("checked when parsed");
            let w = spec.kl_weight.unwrap_or(1.0 / d as f64);
            enc.push(config_layer("Dense", json!({"name": "z_mean_log_var", "units": 2 * latent})));
            enc.push(config_layer("Sampling", json!({"name": "sampling", "kl_weight": w})));
        }
        Variant::Sequence => {
            let recurrent =
                |l: &Value| matches!(l["class_name"].as_str(), Some("LSTM" | "GRU" | "SimpleRNN" | "Bidirectional"));
            if !enc.iter().any(recurrent) {
                return Err(Error::config(
                    "variant = \"sequence\" needs a recurrent encoder (LSTM, GRU, SimpleRNN or Bidirectional)",
                ));
            }
            if dec.first().and_then(|l| l["class_name"].as_str()) != Some("RepeatVector") {
                dec.insert(0, config_layer("RepeatVector", json!({"name": "repeat_vector", "n": input[0]})));
            }
        }
        _ => {}
    }
    Ok((input, enc, dec))
}

/// Builds the autoencoder of `spec` for `data` (weights from the fit seed).
pub fn build(spec: &ModelSpec, data: &AeData, with_noise: bool) -> Result<Autoencoder<f32>> {
    let (input, enc, dec) = layer_plan(spec, data, with_noise)?;
    let make = |ls: &[Value]| -> Result<Vec<Box<dyn Layer<f32>>>> {
        ls.iter().map(|l| layer_from_config::<f32>(l["class_name"].as_str().unwrap_or("?"), &l["config"])).collect()
    };
    let mut ae = Autoencoder::new(&input, make(&enc)?, make(&dec)?, spec.fit.seed)?;
    ae.model.name = spec.id.clone();
    let d = data.dim();
    let code = ae.code_size();
    if spec.variant == Variant::Undercomplete && code >= d {
        return Err(Error::config(format!(
            "variant = \"undercomplete\" needs a code smaller than the input, but the code has {code} values for an \
             input of {d}"
        )));
    }
    if spec.variant == Variant::Stacked {
        let names: Vec<String> = ae.model.layers().iter().map(|l| l.name().to_string()).collect();
        let k = ae.n_encoder();
        if names.len() != 2 * k || ae.model.layers().iter().any(|l| l.class_name() != "Dense") {
            return Err(Error::config(format!(
                "variant = \"stacked\" needs Dense layers only and as many decoder as encoder layers (mirrored), got \
                 {} encoder and {} decoder layers: {}",
                k,
                names.len() - k,
                ae.model.layers().iter().map(|l| l.class_name()).collect::<Vec<_>>().join(", ")
            )));
        }
        if spec.tied {
            for j in 0..k {
                ae.tie(&names[k + j], &names[k - 1 - j])?;
            }
        }
    }
    Ok(ae)
}

/// Builds every model once, so that a bad one fails before anything trains.
pub fn build_all(cfg: &AeConfig, data: &AeData, origin: &Path) -> Result<()> {
    for spec in &cfg.models {
        build(spec, data, true).map_err(ctx(origin, &spec.id))?;
    }
    Ok(())
}

fn tensor(data: &AeData, idx: &[usize], input: &[usize]) -> Result<Tensor<f32>> {
    let mut shape = vec![idx.len()];
    shape.extend_from_slice(input);
    Tensor::from_f64(&shape, &data.gather(idx))
}

/// A corrupted copy of `x`: the model's own noise layer run in training mode, seeded.
fn corrupt(noise: &Noise, x: &Tensor<f32>, seed: u64) -> Result<Tensor<f32>> {
    let l = noise.layer();
    let mut m = Sequential::<f32>::new().input(&x.shape[1..]).seed(seed);
    m.push(layer_from_config::<f32>(l["class_name"].as_str().unwrap_or("?"), &l["config"])?);
    m.build()?;
    m.call(x, true, None, None)
}

fn fit_opts(f: &FitSpec, verbose: bool) -> FitOptions<f32> {
    FitOptions::default().epochs(f.epochs).batch_size(f.batch_size).shuffle(f.shuffle).verbose(verbose)
}

/// Indices of the validation samples shown as examples: one of each class (digits), a spread
/// over temperature (Ising), or the first few.
pub fn example_indices(data: &AeData, max: usize) -> Vec<usize> {
    if let Some(info) = &data.ising {
        let mut v = data.validation.clone();
        v.sort_by(|&a, &b| info.temperature[a].total_cmp(&info.temperature[b]).then(a.cmp(&b)));
        let k = max.min(v.len());
        return (0..k).map(|i| v[if k > 1 { i * (v.len() - 1) / (k - 1) } else { 0 }]).collect();
    }
    if let Some(Coloring::Classes { classes, .. }) = &data.coloring {
        let mut seen = std::collections::BTreeMap::new();
        for &i in &data.validation {
            seen.entry(classes[i]).or_insert(i);
        }
        if seen.len() > 1 {
            return seen.into_values().take(max).collect();
        }
    }
    data.validation.iter().copied().take(max).collect()
}

fn ising_result(data: &AeData, codes: &[f64], code_size: usize) -> Option<IsingResult> {
    let info = data.ising.as_ref()?;
    let chi_m = susceptibility_by_temperature(&info.temperature, &info.magnetization, info.l);
    let (mut r, mut peak_z, mut chi_z) = (None, None, Vec::new());
    if code_size == 1 {
        r = Some(pearson(codes, &info.magnetization)).filter(|v| v.is_finite());
        let mean = codes.iter().sum::<f64>() / codes.len() as f64;
        let zc: Vec<f64> = codes.iter().map(|z| z - mean).collect();
        let c = susceptibility_by_temperature(&info.temperature, &zc, info.l);
        peak_z = peak_temperature(&c);
        chi_z = c.iter().map(|p| p.1).collect();
    }
    Some(IsingResult {
        code_magnetization_correlation: r,
        code_susceptibility_peak_temperature: peak_z,
        magnetic_susceptibility_peak_temperature: peak_temperature(&chi_m),
        susceptibility: Curves {
            temperature: chi_m.iter().map(|p| p.0).collect(),
            chi_z,
            chi_m: chi_m.iter().map(|p| p.1).collect(),
        },
    })
}

/// Trains one model and scores it.
pub fn train_model(spec: &ModelSpec, data: &AeData, verbose: bool) -> Result<(ModelResult, Artifacts)> {
    let mut ae = build(spec, data, true)?;
    let input = ae.model.input_shape().expect("built").to_vec();
    let (xt, xv) = (tensor(data, &data.train, &input)?, tensor(data, &data.validation, &input)?);
    let loss = Loss::parse(&spec.fit.loss)?;
    let opts = fit_opts(&spec.fit, verbose);
    let start = Instant::now();
    let mut pretrain_history = None;
    if let Some(p) = &spec.pretrain {
        let popts = FitOptions::default()
            .epochs(p.epochs)
            .batch_size(p.batch_size)
            .shuffle(spec.fit.shuffle)
            .verbose(verbose)
            .validation_data(xv.clone(), xv.clone());
        let hs = ae.pretrain_layerwise(&xt, loss, &Optimizer::from_json(&p.optimizer)?, &popts)?;
        pretrain_history = Some(hs.iter().map(HistoryOut::from).collect::<Vec<_>>());
    }
    ae.compile(loss, Optimizer::from_json(&spec.fit.optimizer)?)?;
    let history = ae.fit(&xt, &opts.clone().validation_data(xv.clone(), xv.clone()), &mut [])?;
    let seconds = start.elapsed().as_secs_f64();
    let reconstruction_mse =
        TrainVal { train: ae.reconstruction_mse(&xt, &xt)?, validation: ae.reconstruction_mse(&xv, &xv)? };
    let d = data.dim();
    let code_size = ae.code_size();
    let (nt, nv) = (data.train.len(), data.validation.len());
    let (xt64, xv64) = (data.gather(&data.train), data.gather(&data.validation));
    let k = code_size.min(d);
    let (pca_mse, pca_mse_train) = if nt >= 2 {
        let p = Pca::fit(&xt64, nt, d, k)?;
        (p.reconstruction_mse(&xv64), p.reconstruction_mse(&xt64))
    } else {
        (f64::NAN, f64::NAN)
    };
    let all: Vec<usize> = (0..data.n).collect();
    let codes = ae.encode(&tensor(data, &all, &input)?)?.to_f64();
    let ising = ising_result(data, &codes, code_size);
    let examples = example_indices(data, 10);
    let ex = tensor(data, &examples, &input)?;
    let reconstructions = ae.reconstruct(&ex)?.to_f64();

    let (mut denoising, mut noisy) = (None, None);
    if let Some(noise) = &spec.noise {
        let seed = spec.fit.seed ^ 0x5eed_5eed;
        let xv_noisy = corrupt(noise, &xv, seed)?;
        let mut plain = build(spec, data, false)?;
        plain.compile(loss, Optimizer::from_json(&spec.fit.optimizer)?)?;
        let t0 = Instant::now();
        let ph = plain.fit(&xt, &opts.clone().validation_data(xv.clone(), xv.clone()), &mut [])?;
        let plain_seconds = t0.elapsed().as_secs_f64();
        denoising = Some(DenoisingResult {
            noise: *noise,
            noisy_validation_mse: ae.reconstruction_mse(&xv_noisy, &xv)?,
            plain_noisy_validation_mse: plain.reconstruction_mse(&xv_noisy, &xv)?,
            noisy_input_mse: mse(&xv_noisy.data, &xv.data),
            plain_reconstruction_mse: TrainVal {
                train: plain.reconstruction_mse(&xt, &xt)?,
                validation: plain.reconstruction_mse(&xv, &xv)?,
            },
            plain_params: plain.model.param_count(),
            plain_history: HistoryOut::from(&ph),
            plain_seconds,
        });
        let ex_noisy = corrupt(noise, &ex, seed)?;
        noisy = Some((ex_noisy.to_f64(), ae.reconstruct(&ex_noisy)?.to_f64(), plain.reconstruct(&ex_noisy)?.to_f64()));
    }

    let sparsity = if spec.variant == Variant::Sparse {
        let zv = ae.encode(&xv)?.to_f64();
        let mut unit = vec![0.0; code_size];
        for row in zv.chunks_exact(code_size) {
            for (u, z) in unit.iter_mut().zip(row) {
                *u += z / nv as f64;
            }
        }
        Some(SparsityResult {
            rho: spec.sparsity.map(|s| s.rho),
            beta: spec.sparsity.map(|s| s.beta),
            l1: spec.l1,
            mean_code_activation: zv.iter().sum::<f64>() / zv.len().max(1) as f64,
            mean_abs_code: zv.iter().map(|z| z.abs()).sum::<f64>() / zv.len().max(1) as f64,
            unit_mean_activation: unit,
        })
    } else {
        None
    };

    let (mut variational, mut generated, mut manifold) = (None, Vec::new(), None);
    if spec.variant == Variant::Variational {
        let latent = spec.latent.expect("checked when parsed");
        let g = ae.generate(64, spec.fit.seed)?.to_f64();
        if let Some(bad) = g.iter().find(|v| !v.is_finite()) {
            return Err(Error::data(format!("the generated samples hold a non-finite value {bad}")));
        }
        variational = Some(VariationalResult {
            latent,
            kl_weight: spec.kl_weight.unwrap_or(1.0 / d as f64),
            generated: 64,
            generated_min: g.iter().cloned().fold(f64::INFINITY, f64::min),
            generated_max: g.iter().cloned().fold(f64::NEG_INFINITY, f64::max),
        });
        generated = g;
        if latent == 2 {
            let (side, span) = (10usize, 2.0);
            let mut z = Vec::with_capacity(side * side * 2);
            for r in 0..side {
                for c in 0..side {
                    let at = |i: usize| -span + 2.0 * span * i as f64 / (side - 1) as f64;
                    z.push(at(c));
                    z.push(-at(r)); // rows top to bottom: z2 from +span to -span
                }
            }
            let decoded = ae.decode(&Tensor::from_f64(&[side * side, 2], &z)?)?.to_f64();
            manifold = Some((decoded, side, span));
        }
    }
    let result = ModelResult {
        id: spec.id.clone(),
        title: spec.title.clone(),
        variant: spec.variant,
        params: ae.model.param_count(),
        code_size,
        input_shape: input,
        reconstruction_mse,
        pca_components: k,
        pca_mse,
        pca_mse_train,
        ising,
        denoising,
        sparsity,
        variational,
        final_loss: history.loss().last().copied().unwrap_or(f64::NAN),
        final_val_loss: history.val_loss().last().copied().unwrap_or(f64::NAN),
        history: HistoryOut::from(&history),
        pretrain_history,
        seconds,
        fit: spec.fit.clone(),
        model: ae.model.to_config(),
        summary: ae.model.summary()?,
    };
    let art = Artifacts { codes, examples, reconstructions, noisy, generated, manifold, model: ae };
    Ok((result, art))
}

/// The model-free Ising facts of the samples.
pub fn ising_data(data: &AeData) -> Option<IsingData> {
    let info = data.ising.as_ref()?;
    let chi = susceptibility_by_temperature(&info.temperature, &info.magnetization, info.l);
    let abs_m = crate::datasets::ising::mean_abs_by_temperature(&info.temperature, &info.magnetization);
    Some(IsingData {
        l: info.l,
        t_critical_infinite_lattice: T_CRITICAL,
        temperature: chi.iter().map(|p| p.0).collect(),
        chi_m: chi.iter().map(|p| p.1).collect(),
        mean_abs_m: abs_m.iter().map(|p| p.1).collect(),
        magnetic_susceptibility_peak_temperature: peak_temperature(&chi),
    })
}

/// Loads the data, builds every model (failing early), then trains and scores them in order.
pub fn run_all(
    cfg: &AeConfig,
    origin: &Path,
    verbose: bool,
    progress: &mut dyn Progress,
) -> Result<(AeResults, AeData, Vec<Artifacts>)> {
    let data = super::data::load(&cfg.data)?;
    build_all(cfg, &data, origin)?;
    let mut models = Vec::new();
    let mut arts = Vec::new();
    for spec in &cfg.models {
        let (r, a) = train_model(spec, &data, verbose).map_err(ctx(origin, &spec.id))?;
        progress.model_done(&r);
        models.push(r);
        arts.push(a);
    }
    let results = AeResults {
        memcell_version: env!("CARGO_PKG_VERSION").into(),
        config: origin.display().to_string(),
        data: DataOut {
            kind: data.kind.to_string(),
            description: data.description.clone(),
            n_samples: data.n,
            n_train: data.train.len(),
            n_validation: data.validation.len(),
            sample_shape: data.sample_shape.clone(),
            validation_fraction: cfg.data.validation,
            seed: cfg.data.seed,
            scaling: data.scaling.clone(),
            ising: ising_data(&data),
        },
        fit: cfg.fit.clone(),
        models,
    };
    Ok((results, data, arts))
}
