//! The samples an autoencoder config trains on: generated (Ising, sine), bundled (digits) or
//! read (CSV, `.npy`), validated once (finite values, at least two samples), optionally cut
//! into windows and scaled, and split into training and validation samples.

use super::config::{DataSpec, Scale, Source};
use crate::datasets::{digits, ising, read_npy_array};
use crate::error::{Error, Result};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};
use serde::Serialize;
use std::path::Path;

/// Ising facts of every sample, in sample order.
#[derive(Clone, Debug, PartialEq)]
pub struct IsingInfo {
    pub l: usize,
    pub temperature: Vec<f64>,
    pub magnetization: Vec<f64>,
    pub energy: Vec<f64>,
}

/// How one sample is drawn as an image.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ImageInfo {
    pub width: usize,
    pub height: usize,
    pub vmin: f64,
    pub vmax: f64,
    /// Ink on paper (low values white), for digits.
    pub inverted: bool,
}

/// A per-sample colour for the code scatter plots.
#[derive(Clone, Debug, PartialEq)]
pub enum Coloring {
    /// Integer classes (digits 0-9, an integer label column).
    Classes { name: String, classes: Vec<i64> },
    /// A continuous value.
    Values { name: String, values: Vec<f64> },
}

/// Per-feature scaling applied to the samples: `scaled = (v - offset) / scale`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Scaling {
    pub kind: Scale,
    pub offset: Vec<f64>,
    pub scale: Vec<f64>,
}

/// The samples of one run.
#[derive(Clone, Debug, PartialEq)]
pub struct AeData {
    /// What the samples are, in words.
    pub description: String,
    /// The data kind of the config (`ising`, `digits`, ...).
    pub kind: &'static str,
    /// Shape of one sample: `[L, L]` (Ising), `[8, 8]` (digits), `[window, features]`
    /// (windows), `[features]` (rows of a table).
    pub sample_shape: Vec<usize>,
    /// Names of the last axis' features (columns), when they have names.
    pub feature_names: Vec<String>,
    /// Every sample (scaled), sample-major.
    pub x: Vec<f64>,
    /// Number of samples.
    pub n: usize,
    /// Indices of the training samples (shuffled with the data seed).
    pub train: Vec<usize>,
    /// Indices of the validation samples.
    pub validation: Vec<usize>,
    pub ising: Option<IsingInfo>,
    pub coloring: Option<Coloring>,
    pub image: Option<ImageInfo>,
    pub scaling: Option<Scaling>,
}

impl AeData {
    /// Values per sample.
    pub fn dim(&self) -> usize {
        self.sample_shape.iter().product()
    }
    /// The values of sample `i`.
    pub fn sample(&self, i: usize) -> &[f64] {
        let d = self.dim();
        &self.x[i * d..(i + 1) * d]
    }
    /// The samples `idx`, concatenated.
    pub fn gather(&self, idx: &[usize]) -> Vec<f64> {
        let mut v = Vec::with_capacity(idx.len() * self.dim());
        for &i in idx {
            v.extend_from_slice(self.sample(i));
        }
        v
    }
    /// Whether samples are sequences (`[time, features]`) by nature: windows of a series.
    pub fn is_windows(&self) -> bool {
        self.kind != "ising" && self.kind != "digits" && self.sample_shape.len() == 2
    }
}

/// Rows of a table: (rows, columns, column names).
struct Table {
    rows: usize,
    cols: usize,
    names: Vec<String>,
    values: Vec<f64>,
}

fn read_csv_table(path: &Path, columns: Option<&[String]>, label: Option<&str>) -> Result<(Table, Option<Vec<f64>>)> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let origin = path.display().to_string();
    let (mut rdr, header) = crate::datasets::csv_with_header(&text, &origin)?;
    let col = |name: &str| crate::datasets::column_index(&header, name, &origin);
    let label_col = label.map(col).transpose()?;
    let feature_cols: Vec<usize> = match columns {
        Some(c) => c.iter().map(|n| col(n)).collect::<Result<_>>()?,
        None => (0..header.len()).filter(|&j| Some(j) != label_col).collect(),
    };
    if feature_cols.is_empty() {
        return Err(Error::data(format!("{origin}: no feature columns")));
    }
    let (mut values, mut labels, mut rows) = (Vec::new(), Vec::new(), 0usize);
    for (r, rec) in rdr.records().enumerate() {
        let line = r + 2;
        let rec = rec.map_err(|e| Error::data(format!("{origin}: line {line}: {e}")))?;
        let cell = |c: usize| -> Result<f64> {
            let s = rec.get(c).unwrap_or("");
            let v: f64 = s.parse().map_err(|_| {
                Error::data(format!("{origin}: line {line}, column '{}': '{s}' is not a number", header[c]))
            })?;
            if !v.is_finite() {
                return Err(Error::data(format!(
                    "{origin}: line {line}, column '{}': {s} is not a finite number",
                    header[c]
                )));
            }
            Ok(v)
        };
        for &c in &feature_cols {
            values.push(cell(c)?);
        }
        if let Some(c) = label_col {
            labels.push(cell(c)?);
        }
        rows += 1;
    }
    let names = feature_cols.iter().map(|&c| header[c].clone()).collect();
    Ok((Table { rows, cols: feature_cols.len(), names, values }, label_col.map(|_| labels)))
}

fn read_npy_table(path: &Path) -> Result<Table> {
    let (shape, values) = read_npy_array(path)?;
    let (rows, cols) = match shape.as_slice() {
        [n] => (*n, 1),
        [n, c] => (*n, *c),
        other => {
            return Err(Error::format(
                path,
                format!("expected a 2-D array (one sample per row) or a 1-D series, got shape {other:?}"),
            ))
        }
    };
    if let Some(i) = values.iter().position(|v| !v.is_finite()) {
        return Err(Error::format(
            path,
            format!("row {}, column {} holds {}, not a finite number", i / cols.max(1), i % cols.max(1), values[i]),
        ));
    }
    if cols == 0 {
        return Err(Error::format(path, "the array has no columns"));
    }
    let names = if shape.len() == 1 { vec!["y".to_string()] } else { (0..cols).map(|j| format!("x{j}")).collect() };
    Ok(Table { rows, cols, names, values })
}

/// Windows of `window` consecutive rows, every `stride` rows: (values, count).
fn windows(t: &Table, window: usize, stride: usize, origin: &str) -> Result<(Vec<f64>, usize)> {
    if t.rows < window {
        return Err(Error::data(format!(
            "{origin}: the series has {} rows, fewer than one window of {window}",
            t.rows
        )));
    }
    let count = (t.rows - window) / stride + 1;
    let mut v = Vec::with_capacity(count * window * t.cols);
    for w in 0..count {
        let s = w * stride;
        v.extend_from_slice(&t.values[s * t.cols..(s + window) * t.cols]);
    }
    Ok((v, count))
}

/// Loads, windows, splits and scales the samples of `spec`.
pub fn load(spec: &DataSpec) -> Result<AeData> {
    let mut d = match &spec.source {
        Source::Ising(cfg) => {
            let s = ising::generate(cfg)?;
            let n = s.n_samples();
            let ntemps = cfg.temps.len();
            AeData {
                description: format!(
                    "2-D Ising model, L = {}, {} temperatures from {} to {}, {} samples each (Wolff cluster updates, \
                     generator seed {})",
                    cfg.l,
                    ntemps,
                    cfg.temps.iter().cloned().fold(f64::INFINITY, f64::min),
                    cfg.temps.iter().cloned().fold(f64::NEG_INFINITY, f64::max),
                    cfg.samples_per_temp,
                    cfg.seed
                ),
                kind: "ising",
                sample_shape: vec![cfg.l, cfg.l],
                feature_names: Vec::new(),
                x: s.spins.iter().map(|&v| v as f64).collect(),
                n,
                train: Vec::new(),
                validation: Vec::new(),
                coloring: Some(Coloring::Values { name: "magnetization m".into(), values: s.magnetization.clone() }),
                ising: Some(IsingInfo {
                    l: cfg.l,
                    temperature: s.temperature,
                    magnetization: s.magnetization,
                    energy: s.energy,
                }),
                image: Some(ImageInfo { width: cfg.l, height: cfg.l, vmin: -1.0, vmax: 1.0, inverted: false }),
                scaling: None,
            }
        }
        Source::Digits => {
            let g = digits::load()?;
            AeData {
                description: format!(
                    "{} handwritten digits, 8 x 8 pixels scaled to [0, 1] (UCI Optical Recognition of Handwritten \
                     Digits, CC BY 4.0, bundled)",
                    g.len()
                ),
                kind: "digits",
                sample_shape: vec![digits::SIDE, digits::SIDE],
                feature_names: Vec::new(),
                n: g.len(),
                x: g.pixels,
                train: Vec::new(),
                validation: Vec::new(),
                coloring: Some(Coloring::Classes {
                    name: "digit".into(),
                    classes: g.labels.iter().map(|&l| l as i64).collect(),
                }),
                ising: None,
                image: Some(ImageInfo {
                    width: digits::SIDE,
                    height: digits::SIDE,
                    vmin: 0.0,
                    vmax: 1.0,
                    inverted: true,
                }),
                scaling: None,
            }
        }
        Source::Csv { .. } | Source::Npy { .. } | Source::Sine { .. } => tabular(spec)?,
    };
    if let Some(desc) = &spec.description {
        d.description = desc.clone();
    }
    if d.n < 2 {
        return Err(Error::data(format!(
            "{}: an autoencoder needs at least 2 samples (one to train, one to validate), got {}",
            d.description, d.n
        )));
    }
    let mut idx: Vec<usize> = (0..d.n).collect();
    idx.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(spec.seed));
    let nv = ((d.n as f64 * spec.validation).round() as usize).clamp(1, d.n - 1);
    d.validation = idx[..nv].to_vec();
    d.train = idx[nv..].to_vec();
    if spec.scale != Scale::None {
        scale(&mut d, spec.scale);
    }
    Ok(d)
}

fn tabular(spec: &DataSpec) -> Result<AeData> {
    let (table, labels, origin, description, kind) = match &spec.source {
        Source::Csv { path, columns, label } => {
            let (t, labels) = read_csv_table(path, columns.as_deref(), label.as_deref())?;
            let desc = format!("{} (columns {})", path.display(), t.names.join(", "));
            (t, labels.map(|l| (label.clone().unwrap_or_default(), l)), path.display().to_string(), desc, "csv")
        }
        Source::Npy { path } => {
            let t = read_npy_table(path)?;
            let desc = format!("{} ({} rows x {} columns)", path.display(), t.rows, t.cols);
            (t, None, path.display().to_string(), desc, "npy")
        }
        Source::Sine { length, period, noise } => {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(spec.seed);
            let values: Vec<f64> = (0..*length)
                .map(|i| {
                    let e: f64 = StandardNormal.sample(&mut rng);
                    (2.0 * std::f64::consts::PI * i as f64 / period).sin() + noise * e
                })
                .collect();
            let desc =
                format!("noisy sine sin(2 pi i / {period}) + {noise} N(0, 1), {length} points (seed {})", spec.seed);
            (Table { rows: *length, cols: 1, names: vec!["y".into()], values }, None, "sine".to_string(), desc, "sine")
        }
        _ => unreachable!("tabular sources only"),
    };
    let (x, n, shape, coloring) = match spec.window {
        Some(w) => {
            let (v, count) = windows(&table, w, spec.stride, &origin)?;
            let starts: Vec<f64> = (0..count).map(|i| (i * spec.stride) as f64).collect();
            let coloring = match &spec.source {
                // The phase of a sine window is what its code should hold.
                Source::Sine { period, .. } => Coloring::Values {
                    name: "phase of the window start / 2 pi".into(),
                    values: starts.iter().map(|s| (s / period).fract()).collect(),
                },
                _ => Coloring::Values { name: "window start (row)".into(), values: starts },
            };
            (v, count, vec![w, table.cols], Some(coloring))
        }
        None => {
            if matches!(spec.source, Source::Npy { .. }) && table.names == ["y"] && table.cols == 1 {
                return Err(Error::data(format!(
                    "{origin}: a 1-D array is a series: set window = N in [data] to cut it into samples, or save one \
                     sample per row (2-D)"
                )));
            }
            let coloring = labels.map(|(name, l)| {
                let distinct: std::collections::BTreeSet<i64> = l.iter().map(|&v| v as i64).collect();
                if l.iter().all(|v| v.fract() == 0.0) && distinct.len() <= 20 {
                    Coloring::Classes { name, classes: l.iter().map(|&v| v as i64).collect() }
                } else {
                    Coloring::Values { name, values: l }
                }
            });
            (table.values, table.rows, vec![table.cols], coloring)
        }
    };
    Ok(AeData {
        description: match spec.window {
            Some(w) => format!("windows of {w} rows (stride {}) of {description}", spec.stride),
            None => description,
        },
        kind,
        sample_shape: shape,
        feature_names: table.names,
        x,
        n,
        train: Vec::new(),
        validation: Vec::new(),
        ising: None,
        coloring,
        image: None,
        scaling: None,
    })
}

/// Scales every feature (last axis) with statistics of the training samples.
fn scale(d: &mut AeData, kind: Scale) {
    let f = *d.sample_shape.last().expect("non-empty shape");
    let d_all = d.dim();
    let mut vals: Vec<Vec<f64>> = vec![Vec::new(); f];
    for &i in &d.train {
        for (j, v) in d.x[i * d_all..(i + 1) * d_all].iter().enumerate() {
            vals[j % f].push(*v);
        }
    }
    let (mut offset, mut sc) = (vec![0.0; f], vec![1.0; f]);
    for j in 0..f {
        let v = &vals[j];
        let n = v.len().max(1) as f64;
        match kind {
            Scale::Standard => {
                let m = v.iter().sum::<f64>() / n;
                let s = (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / n).sqrt();
                offset[j] = m;
                sc[j] = if s > 0.0 { s } else { 1.0 };
            }
            Scale::Minmax => {
                let lo = v.iter().cloned().fold(f64::INFINITY, f64::min);
                let hi = v.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                offset[j] = lo;
                sc[j] = if hi > lo { hi - lo } else { 1.0 };
            }
            Scale::None => {}
        }
    }
    for (k, v) in d.x.iter_mut().enumerate() {
        let j = k % f;
        *v = (*v - offset[j]) / sc[j];
    }
    d.scaling = Some(Scaling { kind, offset, scale: sc });
}
