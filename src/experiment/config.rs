//! `memcell run CONFIG.toml`: a user's own series and models, in Keras's vocabulary.
//!
//! ```toml
//! [data]
//! csv = "my_series.csv"   # relative to this file; or npy = "...", or bundled = "seed"
//! x = "N"
//! y = "energy"            # or ["a", "b"]: several y columns become several input features
//! train = 12
//!
//! [model]                 # or several [[models]]
//! id = "S1"
//! kind = "window"         # "window" (sequence formatting) or "xy"
//! window = 2
//! layers = [ { type = "SimpleRNN", units = 200 }, { type = "Dense", units = 1 } ]
//!
//! [fit]
//! epochs = 150
//! batch_size = 32
//! validation_split = 0.05
//! optimizer = { type = "adam", learning_rate = 0.001 }
//! seeds = [0, 1, 2, 3, 4]
//! ```
//! Every key that is not known is an error that names it (a typo never silently does nothing).

use super::{FitSpec, Kind, ModelSpec};
use crate::datasets::{read_csv, read_npy, seed_series, Series};
use crate::error::{Error, Result};
use serde::Deserialize;
use serde_json::{json, Map, Value};
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
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawData {
    csv: Option<PathBuf>,
    npy: Option<PathBuf>,
    bundled: Option<String>,
    x: Option<String>,
    y: Option<OneOrMany>,
    train: usize,
    description: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawModel {
    id: Option<String>,
    title: Option<String>,
    kind: String,
    window: Option<usize>,
    layers: Vec<toml::Table>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawFit {
    epochs: Option<usize>,
    batch_size: Option<usize>,
    validation_split: Option<f64>,
    shuffle: Option<bool>,
    loss: Option<String>,
    optimizer: Option<toml::Value>,
    seeds: Option<Vec<u64>>,
}

/// A parsed and validated run configuration.
#[derive(Debug)]
pub struct RunConfig {
    pub series: Series,
    pub description: String,
    pub train: usize,
    pub specs: Vec<ModelSpec>,
    pub fit: FitSpec,
}

const RNN_KEYS: &[&str] = &[
    "units",
    "activation",
    "use_bias",
    "return_sequences",
    "return_state",
    "go_backwards",
    "stateful",
    "zero_output_for_mask",
    "dropout",
    "recurrent_dropout",
    "kernel_regularizer",
    "recurrent_regularizer",
    "bias_regularizer",
    "activity_regularizer",
    "unroll",
];

/// Keras argument names each layer type accepts here (besides `type` and `name`).
fn known_keys(class: &str) -> Option<Vec<&'static str>> {
    let mut v: Vec<&str> = match class {
        "Dense" => {
            vec![
                "units",
                "activation",
                "use_bias",
                "kernel_regularizer",
                "bias_regularizer",
                "activity_regularizer",
                "activity_sparsity",
            ]
        }
        "SimpleRNN" => RNN_KEYS.to_vec(),
        "LSTM" => [RNN_KEYS, &["recurrent_activation", "unit_forget_bias"]].concat(),
        "GRU" => [RNN_KEYS, &["recurrent_activation", "reset_after"]].concat(),
        "Bidirectional" => vec!["layer", "merge_mode", "backward_layer"],
        "Masking" => vec!["mask_value"],
        "Dropout" => vec!["rate"],
        "GaussianNoise" => vec!["stddev"],
        "Sampling" => vec!["kl_weight"],
        "RepeatVector" => vec!["n"],
        "Flatten" => vec![],
        "Reshape" => vec!["target_shape"],
        _ => return None,
    };
    v.push("name");
    Some(v)
}

/// Turns `{ type = "LSTM", units = 4, ... }` into a Keras layer config, rejecting unknown keys.
pub fn layer_entry(model: &str, i: usize, t: &toml::Table) -> Result<Value> {
    let class = t.get("type").and_then(|v| v.as_str()).ok_or_else(|| {
        Error::config(format!("model {model}, layer {}: missing 'type' (e.g. type = \"LSTM\")", i + 1))
    })?;
    let known = known_keys(class).ok_or_else(|| {
        Error::unsupported(
            format!("layer type in model {model}, layer {}", i + 1),
            format!("'{class}' (known: Dense, SimpleRNN, LSTM, GRU, Bidirectional, Masking, Dropout, GaussianNoise, Sampling, \
                 RepeatVector, Flatten, Reshape)"),
        )
    })?;
    let mut cfg = Map::new();
    for (k, v) in t {
        if k == "type" {
            continue;
        }
        if !known.contains(&k.as_str()) {
            return Err(Error::config(format!(
                "model {model}, layer {} ({class}): unknown key '{k}' (known: {})",
                i + 1,
                known.join(", ")
            )));
        }
        let mut jv = serde_json::to_value(v).map_err(|e| Error::config(e.to_string()))?;
        if k == "layer" {
            // Bidirectional's inner layer, written as a table with `type`.
            let inner = v
                .as_table()
                .ok_or_else(|| Error::config(format!("model {model}, layer {}: 'layer' must be a table", i + 1)))?;
            jv = layer_entry(model, i, inner)?;
        }
        cfg.insert(k.clone(), jv);
    }
    Ok(json!({"class_name": class, "config": Value::Object(cfg)}))
}

/// Keys an optimizer table may hold (Keras argument names).
const OPT_KEYS: &[&str] = &[
    "type",
    "learning_rate",
    "beta_1",
    "beta_2",
    "epsilon",
    "amsgrad",
    "weight_decay",
    "momentum",
    "nesterov",
    "rho",
    "centered",
    "clipnorm",
    "clipvalue",
    "global_clipnorm",
];

/// Checks an optimizer entry (`"adam"` or `{ type = "adam", learning_rate = 1e-3, ... }`),
/// rejecting unknown keys and invalid values, and returns it as JSON for
/// [`crate::optim::Optimizer::from_json`]. `what` names it in errors (e.g. `[fit] optimizer`).
pub fn optimizer_entry(origin: &Path, what: &str, v: &toml::Value) -> Result<Value> {
    if let Some(t) = v.as_table() {
        if let Some(k) = t.keys().find(|k| !OPT_KEYS.contains(&k.as_str())) {
            return Err(Error::format(origin, format!("{what}: unknown key '{k}' (known: {})", OPT_KEYS.join(", "))));
        }
    }
    let j = serde_json::to_value(v).map_err(|e| Error::config(e.to_string()))?;
    crate::optim::Optimizer::from_json(&j)?.validate()?;
    Ok(j)
}

/// One line for a TOML error: "FILE: line L: unknown field `smoothing`, expected one of ...".
pub fn toml_error(text: &str, origin: &Path, e: &toml::de::Error) -> Error {
    let msg = e.message().trim().replace('\n', " ");
    match e.span() {
        Some(span) => {
            let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
            Error::format(origin, format!("line {line}: {msg}"))
        }
        None => Error::format(origin, msg),
    }
}

impl RunConfig {
    /// Reads and validates a config file; data paths are relative to the file's folder.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Self::parse(&text, path.parent().unwrap_or(Path::new(".")), path)
    }

    /// Parses config text; `base` resolves relative data paths, `origin` names the file in errors.
    pub fn parse(text: &str, base: &Path, origin: &Path) -> Result<Self> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| toml_error(text, origin, &e))?;
        let d = &raw.data;
        let ys: Vec<String> = match &d.y {
            None => Vec::new(),
            Some(OneOrMany::One(s)) => vec![s.clone()],
            Some(OneOrMany::Many(v)) => v.clone(),
        };
        let sources = [d.csv.is_some(), d.npy.is_some(), d.bundled.is_some()].iter().filter(|b| **b).count();
        if sources != 1 {
            return Err(Error::format(
                origin,
                "[data] needs exactly one of csv = \"...\", npy = \"...\" or bundled = \"seed\"",
            ));
        }
        let (series, description) = if let Some(csv) = &d.csv {
            let p = base.join(csv);
            let x = d.x.clone().ok_or_else(|| Error::format(origin, "[data] csv needs x = \"<column>\""))?;
            if ys.is_empty() {
                return Err(Error::format(origin, "[data] csv needs y = \"<column>\" or a list of columns"));
            }
            (
                read_csv(&p, &x, &ys)?,
                d.description.clone().unwrap_or_else(|| format!("{} ({} vs {x})", p.display(), ys.join(", "))),
            )
        } else if let Some(npy) = &d.npy {
            let p = base.join(npy);
            (read_npy(&p)?, d.description.clone().unwrap_or_else(|| p.display().to_string()))
        } else {
            match d.bundled.as_deref() {
                Some("seed") => (seed_series(), super::SEED_DESCRIPTION.to_string()),
                Some(other) => {
                    return Err(Error::format(
                        origin,
                        format!("[data] bundled = \"{other}\" is not a bundled series (known: \"seed\")"),
                    ))
                }
                None => unreachable!("checked above"),
            }
        };
        let raw_models: Vec<RawModel> = match (raw.model, raw.models) {
            (Some(m), None) => vec![m],
            (None, Some(v)) if !v.is_empty() => v,
            (None, _) => return Err(Error::format(origin, "no [model] (or [[models]]) section")),
            (Some(_), Some(_)) => return Err(Error::format(origin, "use either [model] or [[models]], not both")),
        };
        let mut specs = Vec::new();
        for (mi, m) in raw_models.into_iter().enumerate() {
            let id = m.id.unwrap_or_else(|| format!("M{}", mi + 1));
            let kind = match m.kind.as_str() {
                "window" => Kind::Window {
                    window: match m.window {
                        Some(0) => {
                            return Err(Error::format(origin, format!("model {id}: window must be at least 1, got 0")))
                        }
                        Some(w) => w,
                        None => {
                            return Err(Error::format(
                                origin,
                                format!("model {id}: kind = \"window\" needs window = <length>"),
                            ))
                        }
                    },
                },
                "xy" => {
                    if m.window.is_some() {
                        return Err(Error::format(origin, format!("model {id}: window is only for kind = \"window\"")));
                    }
                    Kind::Xy
                }
                other => {
                    return Err(Error::format(
                        origin,
                        format!("model {id}: kind = \"{other}\" is not \"window\" or \"xy\""),
                    ))
                }
            };
            if m.layers.is_empty() {
                return Err(Error::format(origin, format!("model {id}: layers is empty")));
            }
            let layers =
                m.layers.iter().enumerate().map(|(i, t)| layer_entry(&id, i, t)).collect::<Result<Vec<_>>>()?;
            let title = m.title.unwrap_or_else(|| {
                layers
                    .iter()
                    .map(|l| {
                        let units = match l["config"].get("units") {
                            Some(u) if u.as_f64().is_some_and(|f| f.fract() == 0.0) => {
                                format!("{}", u.as_f64().unwrap_or(0.0) as i64)
                            }
                            Some(u) => u.to_string(),
                            None => String::new(),
                        };
                        format!("{}({units})", l["class_name"].as_str().unwrap_or("?"))
                    })
                    .collect::<Vec<_>>()
                    .join(" + ")
            });
            specs.push(ModelSpec { id, title, kind, layers });
        }
        let mut fit = FitSpec::default();
        let f = raw.fit;
        if let Some(v) = f.epochs {
            fit.epochs = v;
        }
        if let Some(v) = f.batch_size {
            if v == 0 {
                return Err(Error::format(origin, "[fit] batch_size must be at least 1"));
            }
            fit.batch_size = v;
        }
        if let Some(v) = f.validation_split {
            if !(0.0..1.0).contains(&v) {
                return Err(Error::format(origin, format!("[fit] validation_split must be in [0, 1), got {v}")));
            }
            fit.validation_split = v;
        }
        if let Some(v) = f.shuffle {
            fit.shuffle = v;
        }
        if let Some(v) = f.loss {
            crate::loss::Loss::parse(&v)?;
            fit.loss = v;
        }
        if let Some(v) = f.optimizer {
            fit.optimizer = optimizer_entry(origin, "[fit] optimizer", &v)?;
        }
        if let Some(v) = f.seeds {
            if v.is_empty() {
                return Err(Error::format(origin, "[fit] seeds is empty"));
            }
            fit.seeds = v;
        }
        Ok(RunConfig { series, description, train: d.train, specs, fit })
    }
}
