//! `memcell autoencoder CONFIG.toml`: the config file, parsed and validated before any data is
//! read or any model is trained.
//!
//! ```toml
//! [data]
//! kind = "ising"            # "ising" | "digits" | "csv" | "npy" | "sine"
//! l = 16
//! temps = "1.0:3.5:0.1"     # a range, a comma list, or an array of both
//! samples = 400             # per temperature
//! seed = 0                  # generator seed and the seed of the validation shuffle
//! validation = 0.2          # fraction held out (shuffled), in (0, 1)
//!
//! [[models]]
//! id = "dense1d"
//! variant = "undercomplete" # undercomplete | denoising | sparse | stacked | variational | sequence
//! encoder = [ { type = "Dense", units = 64, activation = "tanh" }, { type = "Dense", units = 1 } ]
//! decoder = [ { type = "Dense", units = 64, activation = "tanh" }, { type = "Dense", units = 256, activation = "tanh" } ]
//! # denoising:   noise = { type = "gaussian", stddev = 0.3 } or { type = "dropout", rate = 0.3 }
//! # sparse:      sparsity = { rho = 0.05, beta = 3.0 } (sigmoid code layer) and/or l1 = 1e-4
//! # stacked:     tied = true, pretrain = { epochs = 30 }
//! # variational: latent = 2, kl_weight = 0.0156 (default 1 / input size)
//! # any model:   fit = { epochs = 500, optimizer = { type = "adam", learning_rate = 0.01 } }
//!
//! [fit]
//! epochs = 50
//! batch_size = 64
//! loss = "mse"
//! optimizer = { type = "adam", learning_rate = 0.001 }
//! seed = 0
//! ```
//!
//! Every key that is not known, or that belongs to another data kind or variant, is an error
//! that names it.

use crate::datasets::ising::{parse_temps, IsingConfig, Start};
use crate::error::{Error, Result};
use crate::experiment::config::{layer_entry, optimizer_entry, toml_error};
use crate::layers::KlSparsity;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    data: RawData,
    model: Option<RawModel>,
    models: Option<Vec<RawModel>>,
    #[serde(default)]
    fit: RawFit,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawTemps {
    Text(String),
    Number(f64),
    List(Vec<toml::Value>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawData {
    kind: String,
    description: Option<String>,
    validation: Option<f64>,
    seed: Option<u64>,
    scale: Option<String>,
    // ising
    l: Option<usize>,
    temps: Option<RawTemps>,
    samples: Option<usize>,
    equilibration_sweeps: Option<usize>,
    decorrelation_flips: Option<usize>,
    start: Option<String>,
    // csv, npy
    path: Option<PathBuf>,
    columns: Option<Vec<String>>,
    label: Option<String>,
    // sine
    length: Option<usize>,
    period: Option<f64>,
    noise: Option<f64>,
    // series -> windows
    window: Option<usize>,
    stride: Option<usize>,
}

#[derive(Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
struct RawFit {
    epochs: Option<usize>,
    batch_size: Option<usize>,
    loss: Option<String>,
    optimizer: Option<toml::Value>,
    seed: Option<u64>,
    shuffle: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNoise {
    #[serde(rename = "type")]
    kind: String,
    stddev: Option<f64>,
    rate: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSparsity {
    rho: f64,
    beta: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPretrain {
    epochs: usize,
    batch_size: Option<usize>,
    optimizer: Option<toml::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawModel {
    id: Option<String>,
    title: Option<String>,
    variant: String,
    encoder: Vec<toml::Table>,
    decoder: Vec<toml::Table>,
    noise: Option<RawNoise>,
    sparsity: Option<RawSparsity>,
    l1: Option<f64>,
    tied: Option<bool>,
    pretrain: Option<RawPretrain>,
    latent: Option<usize>,
    kl_weight: Option<f64>,
    fit: Option<RawFit>,
}

/// Where the samples come from.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Source {
    /// 2-D Ising configurations from [`crate::datasets::ising::generate`].
    Ising(IsingConfig),
    /// The bundled 8 × 8 handwritten digits ([`crate::datasets::digits`]).
    Digits,
    /// A CSV file with a header row: one sample per row (or, with `window`, one time step per
    /// row), the `columns` as features (default: every column but `label`).
    Csv { path: PathBuf, columns: Option<Vec<String>>, label: Option<String> },
    /// A float `.npy` array: 2-D, one sample per row (or one time step per row with
    /// `window`), or 1-D, a series (needs `window`).
    Npy { path: PathBuf },
    /// A noisy sine series `sin(2π i / period) + noise · N(0, 1)`, `i = 0..length` (needs
    /// `window`).
    Sine { length: usize, period: f64, noise: f64 },
}

/// Per-feature scaling, with statistics from the training samples only.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Scale {
    /// The values as they are.
    None,
    /// `(v − mean) / std` per feature.
    Standard,
    /// `(v − min) / (max − min)` per feature, to [0, 1].
    Minmax,
}

/// The `[data]` section.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DataSpec {
    pub source: Source,
    /// Text for the report (default: made from the source).
    pub description: Option<String>,
    /// Fraction of the samples held out for validation, in (0, 1).
    pub validation: f64,
    /// Seed of the validation shuffle (and of the Ising and sine generators).
    pub seed: u64,
    pub scale: Scale,
    /// Windows of `window` consecutive rows of a series become the samples.
    pub window: Option<usize>,
    /// Step between window starts (default 1).
    pub stride: usize,
}

/// How a model is trained (`[fit]`, overridden per model by its `fit = { ... }`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FitSpec {
    pub epochs: usize,
    pub batch_size: usize,
    pub loss: String,
    /// As in the config: `{"type": "adam", "learning_rate": 0.001}`.
    pub optimizer: Value,
    /// Seed of the weights, the shuffles and the noise.
    pub seed: u64,
    pub shuffle: bool,
}

impl Default for FitSpec {
    /// 50 epochs, batch 64, MSE, Adam(1e-3), seed 0, shuffled.
    fn default() -> Self {
        FitSpec {
            epochs: 50,
            batch_size: 64,
            loss: "mse".into(),
            optimizer: json!({"type": "adam", "learning_rate": 0.001}),
            seed: 0,
            shuffle: true,
        }
    }
}

/// The kinds of autoencoder.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Variant {
    /// A code smaller than the input.
    Undercomplete,
    /// Trained on corrupted inputs to reproduce the clean ones.
    Denoising,
    /// A sparsity penalty on the code.
    Sparse,
    /// Greedy layer-wise pretraining (and optionally tied weights), then fine-tuning.
    Stacked,
    /// A probabilistic code with a KL term; generates new samples from the prior.
    Variational,
    /// A recurrent encoder and decoder on sequences.
    Sequence,
}

impl Variant {
    fn parse(s: &str) -> Option<Variant> {
        Some(match s {
            "undercomplete" => Variant::Undercomplete,
            "denoising" => Variant::Denoising,
            "sparse" => Variant::Sparse,
            "stacked" => Variant::Stacked,
            "variational" => Variant::Variational,
            "sequence" => Variant::Sequence,
            _ => return None,
        })
    }
    /// The config name, e.g. `"denoising"`.
    pub fn name(self) -> &'static str {
        match self {
            Variant::Undercomplete => "undercomplete",
            Variant::Denoising => "denoising",
            Variant::Sparse => "sparse",
            Variant::Stacked => "stacked",
            Variant::Variational => "variational",
            Variant::Sequence => "sequence",
        }
    }
}

/// The corruption of a denoising autoencoder.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Noise {
    /// Keras `GaussianNoise(stddev)`: adds N(0, stddev²) to every value.
    Gaussian { stddev: f64 },
    /// Keras `Dropout(rate)`: zeroes each value with probability `rate`, scales the rest by
    /// 1 / (1 − rate).
    Dropout { rate: f64 },
}

impl Noise {
    /// The Keras layer config of the corruption layer.
    pub fn layer(&self) -> Value {
        match *self {
            Noise::Gaussian { stddev } => {
                json!({"class_name": "GaussianNoise", "config": {"name": "noise", "stddev": stddev}})
            }
            Noise::Dropout { rate } => json!({"class_name": "Dropout", "config": {"name": "noise", "rate": rate}}),
        }
    }
}

/// Greedy layer-wise pretraining before fine-tuning.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Pretrain {
    pub epochs: usize,
    pub batch_size: usize,
    pub optimizer: Value,
}

/// One `[[models]]` entry.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ModelSpec {
    pub id: String,
    pub title: String,
    pub variant: Variant,
    /// Keras layer configs, every layer named (`encoder_1`, ... unless the config names it).
    pub encoder: Vec<Value>,
    pub decoder: Vec<Value>,
    pub noise: Option<Noise>,
    pub sparsity: Option<KlSparsity>,
    pub l1: Option<f64>,
    pub tied: bool,
    pub pretrain: Option<Pretrain>,
    pub latent: Option<usize>,
    pub kl_weight: Option<f64>,
    pub fit: FitSpec,
}

/// A parsed and validated `memcell autoencoder` config.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AeConfig {
    pub data: DataSpec,
    /// The `[fit]` section (each model's `fit` holds it with that model's overrides).
    pub fit: FitSpec,
    pub models: Vec<ModelSpec>,
}

fn temps_of(origin: &Path, t: &RawTemps) -> Result<Vec<f64>> {
    let bad = |m: String| Error::format(origin, format!("[data] temps: {m}"));
    let v = match t {
        RawTemps::Text(s) => parse_temps(s).map_err(|e| bad(e.to_string()))?,
        RawTemps::Number(x) => parse_temps(&x.to_string()).map_err(|e| bad(e.to_string()))?,
        RawTemps::List(items) => {
            let mut v = Vec::new();
            for it in items {
                match it {
                    toml::Value::String(s) => v.extend(parse_temps(s).map_err(|e| bad(e.to_string()))?),
                    toml::Value::Float(x) => v.extend(parse_temps(&x.to_string()).map_err(|e| bad(e.to_string()))?),
                    toml::Value::Integer(x) => v.extend(parse_temps(&x.to_string()).map_err(|e| bad(e.to_string()))?),
                    other => return Err(bad(format!("entry {other} is not a number or a range \"start:stop:step\""))),
                }
            }
            if v.is_empty() {
                return Err(bad("the list is empty".into()));
            }
            v
        }
    };
    Ok(v)
}

fn merge_fit(origin: &Path, what: &str, base: &FitSpec, f: &RawFit) -> Result<FitSpec> {
    let mut fit = base.clone();
    if let Some(v) = f.epochs {
        if v == 0 {
            return Err(Error::format(origin, format!("{what} epochs must be at least 1, got 0")));
        }
        fit.epochs = v;
    }
    if let Some(v) = f.batch_size {
        if v == 0 {
            return Err(Error::format(origin, format!("{what} batch_size must be at least 1, got 0")));
        }
        fit.batch_size = v;
    }
    if let Some(v) = &f.loss {
        crate::loss::Loss::parse(v).map_err(|e| Error::format(origin, format!("{what} loss: {e}")))?;
        fit.loss = v.clone();
    }
    if let Some(v) = &f.optimizer {
        fit.optimizer = optimizer_entry(origin, &format!("{what} optimizer"), v)?;
    }
    if let Some(v) = f.seed {
        fit.seed = v;
    }
    if let Some(v) = f.shuffle {
        fit.shuffle = v;
    }
    Ok(fit)
}

/// A layer list from TOML tables, every layer named `{prefix}_{i}` unless it has a name.
fn layer_list(model: &str, part: &str, prefix: &str, tables: &[toml::Table]) -> Result<Vec<Value>> {
    let label = format!("{model} ({part})");
    let mut out = Vec::new();
    for (i, t) in tables.iter().enumerate() {
        let mut l = layer_entry(&label, i, t)?;
        if l["config"].get("name").is_none() {
            l["config"]["name"] = Value::String(format!("{prefix}_{}", i + 1));
        }
        out.push(l);
    }
    Ok(out)
}

/// A plain file-name-safe identifier (ids name the figure files).
fn check_id(origin: &Path, id: &str) -> Result<()> {
    if id.is_empty() || id.len() > 64 || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
        return Err(Error::format(
            origin,
            format!("model id {id:?} must be 1 to 64 letters, digits, '_' or '-' (it names the output files)"),
        ));
    }
    Ok(())
}

impl AeConfig {
    /// Reads and validates a config file; data paths are relative to the file's folder.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Self::parse(&text, path.parent().unwrap_or(Path::new(".")), path)
    }

    /// Parses config text; `base` resolves relative data paths, `origin` names the file in errors.
    pub fn parse(text: &str, base: &Path, origin: &Path) -> Result<Self> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| toml_error(text, origin, &e))?;
        let data = Self::parse_data(&raw.data, base, origin)?;
        let fit = merge_fit(origin, "[fit]", &FitSpec::default(), &raw.fit)?;
        let raw_models: Vec<RawModel> = match (raw.model, raw.models) {
            (Some(m), None) => vec![m],
            (None, Some(v)) if !v.is_empty() => v,
            (None, _) => return Err(Error::format(origin, "no [[models]] (or [model]) section")),
            (Some(_), Some(_)) => return Err(Error::format(origin, "use either [model] or [[models]], not both")),
        };
        let mut models: Vec<ModelSpec> = Vec::new();
        for (mi, m) in raw_models.into_iter().enumerate() {
            let spec = Self::parse_model(m, mi, &fit, origin)?;
            if models.iter().any(|o| o.id == spec.id) {
                return Err(Error::format(origin, format!("model id '{}' is used twice", spec.id)));
            }
            models.push(spec);
        }
        Ok(AeConfig { data, fit, models })
    }

    fn parse_data(d: &RawData, base: &Path, origin: &Path) -> Result<DataSpec> {
        let err = |m: String| Error::format(origin, format!("[data] {m}"));
        const KINDS: &str = "\"ising\", \"digits\", \"csv\", \"npy\" or \"sine\"";
        // Which keys each kind takes.
        let keys: [(&str, bool, &[&str]); 15] = [
            ("l", d.l.is_some(), &["ising"]),
            ("temps", d.temps.is_some(), &["ising"]),
            ("samples", d.samples.is_some(), &["ising"]),
            ("equilibration_sweeps", d.equilibration_sweeps.is_some(), &["ising"]),
            ("decorrelation_flips", d.decorrelation_flips.is_some(), &["ising"]),
            ("start", d.start.is_some(), &["ising"]),
            ("path", d.path.is_some(), &["csv", "npy"]),
            ("columns", d.columns.is_some(), &["csv"]),
            ("label", d.label.is_some(), &["csv"]),
            ("length", d.length.is_some(), &["sine"]),
            ("period", d.period.is_some(), &["sine"]),
            ("noise", d.noise.is_some(), &["sine"]),
            ("window", d.window.is_some(), &["csv", "npy", "sine"]),
            ("stride", d.stride.is_some(), &["csv", "npy", "sine"]),
            ("scale", d.scale.is_some(), &["csv", "npy", "sine"]),
        ];
        if !matches!(d.kind.as_str(), "ising" | "digits" | "csv" | "npy" | "sine") {
            return Err(err(format!("kind = \"{}\" is not one of {KINDS}", d.kind)));
        }
        for (k, set, kinds) in keys {
            if set && !kinds.contains(&d.kind.as_str()) {
                return Err(err(format!(
                    "key '{k}' is not used by kind = \"{}\" (it is for kind = {})",
                    d.kind,
                    kinds.iter().map(|k| format!("\"{k}\"")).collect::<Vec<_>>().join(" or ")
                )));
            }
        }
        let seed = d.seed.unwrap_or(0);
        let source = match d.kind.as_str() {
            "ising" => {
                let mut c = IsingConfig { seed, ..IsingConfig::default() };
                if let Some(l) = d.l {
                    c.l = l;
                }
                if let Some(t) = &d.temps {
                    c.temps = temps_of(origin, t)?;
                }
                if let Some(s) = d.samples {
                    c.samples_per_temp = s;
                }
                if let Some(s) = d.equilibration_sweeps {
                    c.equilibration_sweeps = s;
                }
                if let Some(s) = d.decorrelation_flips {
                    c.decorrelation_flips = s;
                }
                if let Some(s) = &d.start {
                    c.start = match s.as_str() {
                        "cold" => Start::Cold,
                        "hot" => Start::Hot,
                        "random" => Start::Random,
                        other => {
                            return Err(err(format!("start = \"{other}\" is not \"cold\", \"hot\" or \"random\"")))
                        }
                    };
                }
                c.validate().map_err(|e| err(e.to_string()))?;
                Source::Ising(c)
            }
            "digits" => Source::Digits,
            "csv" | "npy" => {
                let p = d.path.as_ref().ok_or_else(|| err(format!("kind = \"{}\" needs path = \"...\"", d.kind)))?;
                let path = base.join(p);
                if d.kind == "csv" {
                    if let Some(c) = &d.columns {
                        if c.is_empty() {
                            return Err(err("columns is empty".into()));
                        }
                        if let Some(l) = &d.label {
                            if c.contains(l) {
                                return Err(err(format!("column '{l}' is both a feature and the label")));
                            }
                        }
                    }
                    Source::Csv { path, columns: d.columns.clone(), label: d.label.clone() }
                } else {
                    Source::Npy { path }
                }
            }
            "sine" => {
                let length = d.length.unwrap_or(2000);
                let period = d.period.unwrap_or(50.0);
                let noise = d.noise.unwrap_or(0.1);
                if !(period.is_finite() && period > 0.0) {
                    return Err(err(format!("period must be positive, got {period}")));
                }
                if !(noise.is_finite() && noise >= 0.0) {
                    return Err(err(format!("noise must be finite and >= 0, got {noise}")));
                }
                if d.window.is_none() {
                    return Err(err("kind = \"sine\" needs window = <length of each sample>".into()));
                }
                Source::Sine { length, period, noise }
            }
            _ => unreachable!("checked above"),
        };
        let validation = d.validation.unwrap_or(0.2);
        if !(validation > 0.0 && validation < 1.0) {
            return Err(err(format!("validation must be a fraction in (0, 1), got {validation}")));
        }
        if d.window == Some(0) {
            return Err(err("window must be at least 1, got 0".into()));
        }
        if d.stride == Some(0) {
            return Err(err("stride must be at least 1, got 0".into()));
        }
        let scale = match d.scale.as_deref() {
            None | Some("none") => Scale::None,
            Some("standard") => Scale::Standard,
            Some("minmax") => Scale::Minmax,
            Some(other) => return Err(err(format!("scale = \"{other}\" is not \"none\", \"standard\" or \"minmax\""))),
        };
        Ok(DataSpec {
            source,
            description: d.description.clone(),
            validation,
            seed,
            scale,
            window: d.window,
            stride: d.stride.unwrap_or(1),
        })
    }

    fn parse_model(m: RawModel, mi: usize, fit: &FitSpec, origin: &Path) -> Result<ModelSpec> {
        let id = m.id.clone().unwrap_or_else(|| format!("M{}", mi + 1));
        check_id(origin, &id)?;
        let err = |msg: String| Error::format(origin, format!("model {id}: {msg}"));
        let variant = Variant::parse(&m.variant).ok_or_else(|| {
            err(format!(
                "variant = \"{}\" is not one of undercomplete, denoising, sparse, stacked, variational, sequence",
                m.variant
            ))
        })?;
        let only = |key: &str, set: bool, v: Variant| -> Result<()> {
            if set && variant != v {
                return Err(err(format!(
                    "'{key}' is only for variant = \"{}\" (this model is \"{}\")",
                    v.name(),
                    variant.name()
                )));
            }
            Ok(())
        };
        only("noise", m.noise.is_some(), Variant::Denoising)?;
        only("sparsity", m.sparsity.is_some(), Variant::Sparse)?;
        only("l1", m.l1.is_some(), Variant::Sparse)?;
        only("tied", m.tied.is_some(), Variant::Stacked)?;
        only("pretrain", m.pretrain.is_some(), Variant::Stacked)?;
        only("latent", m.latent.is_some(), Variant::Variational)?;
        only("kl_weight", m.kl_weight.is_some(), Variant::Variational)?;
        if m.encoder.is_empty() && variant != Variant::Variational {
            return Err(err("encoder is empty".into()));
        }
        if m.decoder.is_empty() {
            return Err(err("decoder is empty".into()));
        }
        let encoder = layer_list(&id, "encoder", "encoder", &m.encoder)?;
        let decoder = layer_list(&id, "decoder", "decoder", &m.decoder)?;
        let fit = merge_fit(origin, &format!("model {id}: fit"), fit, &m.fit.unwrap_or_default())?;
        let noise = match &m.noise {
            None if variant == Variant::Denoising => {
                return Err(err(
                    "variant = \"denoising\" needs noise = { type = \"gaussian\", stddev = 0.3 } or { type = \"dropout\", rate = 0.3 }"
                        .into(),
                ))
            }
            None => None,
            Some(n) => Some(match n.kind.as_str() {
                "gaussian" => {
                    if n.rate.is_some() {
                        return Err(err("noise: 'rate' is for type = \"dropout\"; gaussian noise takes stddev".into()));
                    }
                    let s = n.stddev.ok_or_else(|| err("noise: type = \"gaussian\" needs stddev".into()))?;
                    if !(s.is_finite() && s > 0.0) {
                        return Err(err(format!("noise: stddev must be positive and finite, got {s}")));
                    }
                    Noise::Gaussian { stddev: s }
                }
                "dropout" => {
                    if n.stddev.is_some() {
                        return Err(err("noise: 'stddev' is for type = \"gaussian\"; dropout takes rate".into()));
                    }
                    let r = n.rate.ok_or_else(|| err("noise: type = \"dropout\" needs rate".into()))?;
                    if !(r > 0.0 && r < 1.0) {
                        return Err(err(format!("noise: rate must be in (0, 1), got {r}")));
                    }
                    Noise::Dropout { rate: r }
                }
                other => return Err(err(format!("noise type \"{other}\" is not \"gaussian\" or \"dropout\""))),
            }),
        };
        let sparsity = match &m.sparsity {
            Some(s) => Some(KlSparsity::new(s.rho, s.beta).map_err(|e| err(e.to_string()))?),
            None => None,
        };
        if let Some(l1) = m.l1 {
            if !(l1.is_finite() && l1 > 0.0) {
                return Err(err(format!("l1 must be positive and finite, got {l1}")));
            }
        }
        if variant == Variant::Sparse && sparsity.is_none() && m.l1.is_none() {
            return Err(err(
                "variant = \"sparse\" needs sparsity = { rho = 0.05, beta = 3.0 } (KL penalty) or l1 = 1e-4".into(),
            ));
        }
        let pretrain = match &m.pretrain {
            Some(p) => {
                if p.epochs == 0 {
                    return Err(err("pretrain: epochs must be at least 1, got 0".into()));
                }
                if p.batch_size == Some(0) {
                    return Err(err("pretrain: batch_size must be at least 1, got 0".into()));
                }
                Some(Pretrain {
                    epochs: p.epochs,
                    batch_size: p.batch_size.unwrap_or(fit.batch_size),
                    optimizer: match &p.optimizer {
                        Some(o) => optimizer_entry(origin, &format!("model {id}: pretrain optimizer"), o)?,
                        None => fit.optimizer.clone(),
                    },
                })
            }
            None if variant == Variant::Stacked => {
                return Err(err(
                    "variant = \"stacked\" needs pretrain = { epochs = N } (greedy layer-wise pretraining)".into(),
                ))
            }
            None => None,
        };
        if variant == Variant::Variational {
            match m.latent {
                None => return Err(err("variant = \"variational\" needs latent = <code size>".into())),
                Some(0) => return Err(err("latent must be at least 1, got 0".into())),
                _ => {}
            }
            if let Some(w) = m.kl_weight {
                if !(w.is_finite() && w >= 0.0) {
                    return Err(err(format!("kl_weight must be finite and >= 0, got {w}")));
                }
            }
            if encoder.iter().chain(&decoder).any(|l| l["class_name"] == "Sampling") {
                return Err(err(
                    "leave the Sampling layer out: memcell appends Dense(2 * latent) and Sampling to the encoder"
                        .into(),
                ));
            }
        }
        let title = m.title.unwrap_or_else(|| {
            let desc = |ls: &[Value]| {
                ls.iter()
                    .map(|l| {
                        let units = l["config"].get("units").and_then(|u| u.as_f64()).map(|u| format!("{u}"));
                        format!("{}({})", l["class_name"].as_str().unwrap_or("?"), units.unwrap_or_default())
                    })
                    .collect::<Vec<_>>()
                    .join(" + ")
            };
            format!("{}: {} | {}", variant.name(), desc(&encoder), desc(&decoder))
        });
        Ok(ModelSpec {
            id,
            title,
            variant,
            encoder,
            decoder,
            noise,
            sparsity,
            l1: m.l1,
            tied: m.tied.unwrap_or(false),
            pretrain,
            latent: m.latent,
            kl_weight: m.kl_weight,
            fit,
        })
    }
}
