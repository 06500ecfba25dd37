//! Conformance against Keras: runs `memcell-fixture/1` files (see `tests/fixtures/keras/README.md`)
//! and compares outputs, returned states and gradients element by element with
//! `|a - b| <= atol + rtol |b|`.

use crate::error::{Error, Result};
use crate::layers::recurrent::mask_from_u8;
use crate::model::{read_safetensors, Sequential};
use crate::tensor::Tensor;
use std::path::{Path, PathBuf};

/// The outcome of one fixture.
#[derive(Clone, Debug)]
pub struct FixtureResult {
    pub path: PathBuf,
    pub name: String,
    /// `Ok(worst)` when every compared value is within tolerance; `Err(message)` otherwise.
    pub outcome: std::result::Result<Worst, String>,
    /// How many tensors were compared.
    pub compared: usize,
}

/// The compared value furthest from the reference, relative to its tolerance.
#[derive(Clone, Debug, Default)]
pub struct Worst {
    pub tensor: String,
    pub abs_err: f64,
    /// `|a - b| / (atol + rtol |b|)`: below 1 passes.
    pub ratio: f64,
}

impl FixtureResult {
    pub fn passed(&self) -> bool {
        self.outcome.is_ok()
    }
    /// One line for the terminal.
    pub fn line(&self) -> String {
        match &self.outcome {
            Ok(w) => format!(
                "PASS  {:<40} worst |err| {:.2e} in {} ({:.0}% of tolerance, {} tensors)",
                self.name,
                w.abs_err,
                w.tensor,
                100.0 * w.ratio,
                self.compared
            ),
            Err(m) => format!("FAIL  {:<40} {m}", self.name),
        }
    }
}

/// Expands paths: files as given, folders to their `.safetensors` files in sorted order.
pub fn collect(paths: &[PathBuf]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut v: Vec<PathBuf> = std::fs::read_dir(p)
                .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
                .unwrap_or_default();
            v.retain(|f| f.extension().is_some_and(|e| e == "safetensors"));
            v.sort();
            out.extend(v);
        } else {
            out.push(p.clone());
        }
    }
    out
}

/// Runs one fixture in f64.
pub fn run_fixture(path: &Path) -> FixtureResult {
    let name = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| path.display().to_string());
    let mut compared = 0;
    let outcome = check(path, &mut compared).map_err(|e| e.to_string()).and_then(|r| r);
    FixtureResult { path: path.to_path_buf(), name, outcome, compared }
}

fn check(path: &Path, compared: &mut usize) -> Result<std::result::Result<Worst, String>> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let f = read_safetensors(path, &bytes)?;
    let meta = |k: &str| f.metadata.get(k).cloned();
    if let Some(fmt) = meta("format") {
        if fmt != "memcell-fixture/1" {
            return Err(Error::format(path, format!("unknown fixture format '{fmt}'")));
        }
    }
    let model_json = meta("model").ok_or_else(|| Error::format(path, "metadata has no 'model'"))?;
    let model: serde_json::Value =
        serde_json::from_str(&model_json).map_err(|e| Error::format(path, format!("model JSON: {e}")))?;
    let num = |k: &str, d: f64| -> Result<f64> {
        match meta(k) {
            None => Ok(d),
            Some(s) => s
                .trim()
                .parse::<f64>()
                .map_err(|_| Error::format(path, format!("metadata '{k}' = '{s}' is not a number"))),
        }
    };
    let rtol = num("rtol", 1e-6)?;
    let atol = num("atol", 1e-6)?;
    let calls = num("calls", 1.0)? as usize;
    if calls == 0 {
        return Err(Error::format(path, "metadata 'calls' must be at least 1"));
    }
    let tensor = |n: &str| -> Option<Tensor<f64>> {
        f.tensors.get(n).map(|(s, v)| Tensor { shape: s.clone(), data: v.clone() })
    };
    let input = tensor("input").ok_or_else(|| Error::format(path, "no 'input' tensor"))?;
    if input.shape.len() < 2 {
        return Err(Error::format(path, format!("'input' has shape {:?}; expected (batch, ...)", input.shape)));
    }

    let mut m = Sequential::<f64>::from_config(&model)?.input(&input.shape[1..]);
    m.build()?;
    let names: Vec<String> = m.named_params().into_iter().map(|(n, _)| n).collect();
    for n in &names {
        let (s, v) = f.tensors.get(&format!("weight/{n}")).ok_or_else(|| {
            Error::format(path, format!("the model has weight '{n}' but the fixture has no 'weight/{n}'"))
        })?;
        m.set_weight_f64(n, s, v)?;
    }
    for k in f.tensors.keys() {
        if let Some(w) = k.strip_prefix("weight/") {
            if !names.iter().any(|n| n == w) {
                return Err(Error::format(
                    path,
                    format!("fixture weight '{w}' has no variable in the model (model has: {})", names.join(", ")),
                ));
            }
        }
    }
    let mask = match f.tensors.get("mask") {
        None => None,
        Some((s, v)) => {
            if s.len() != 2 {
                return Err(Error::format(path, format!("'mask' has shape {s:?}; expected (batch, time)")));
            }
            let u: Vec<u8> = v.iter().map(|&x| (x != 0.0) as u8).collect();
            Some(mask_from_u8(s[0], s[1], &u))
        }
    };
    let mut init = Vec::new();
    while let Some(t) = tensor(&format!("initial_state/{}", init.len())) {
        init.push(t);
    }

    let mut out = Tensor::zeros(&[0]);
    for _ in 0..calls {
        let st = if init.is_empty() { None } else { Some(init.clone()) };
        out = m.call(&input, false, mask.clone(), st)?;
    }

    let mut worst = Worst::default();
    let mut fails: Vec<String> = Vec::new();
    let mut cmp = |what: &str, got: &Tensor<f64>, want: Option<Tensor<f64>>| {
        let Some(want) = want else { return };
        *compared += 1;
        if got.shape != want.shape {
            fails.push(format!("{what}: shape {:?}, reference {:?}", got.shape, want.shape));
            return;
        }
        let (mut bad, mut first) = (0usize, None);
        for (i, (&a, &b)) in got.data.iter().zip(&want.data).enumerate() {
            let err = (a - b).abs();
            let tol = atol + rtol * b.abs();
            let ratio = if err == 0.0 { 0.0 } else { err / tol };
            #[allow(clippy::neg_cmp_op_on_partial_ord)] // NaN fails
            if !(err <= tol) {
                bad += 1;
                first.get_or_insert((i, a, b));
            }
            if ratio > worst.ratio || err.is_nan() {
                worst = Worst {
                    tensor: what.to_string(),
                    abs_err: err,
                    ratio: if err.is_nan() { f64::INFINITY } else { ratio },
                };
            }
        }
        if let Some((i, a, b)) = first {
            fails.push(format!("{what}: {bad} of {} values off (first at {i}: {a:e} vs Keras {b:e})", want.data.len()));
        }
    };
    cmp("output", &out, tensor("output"));
    let states = m.states();
    for (i, s) in states.iter().enumerate() {
        cmp(&format!("state/{i}"), s, tensor(&format!("state/{i}")));
    }
    if let Some(g) = tensor("cotangent") {
        if g.shape != out.shape {
            return Err(Error::format(
                path,
                format!("'cotangent' shape {:?} differs from the output's {:?}", g.shape, out.shape),
            ));
        }
        m.zero_grad();
        let dx = m.backward(&g)?;
        cmp("grad/input", &dx, tensor("grad/input"));
        let grads: Vec<(String, Tensor<f64>)> = m
            .named_params()
            .into_iter()
            .map(|(n, p)| (n, Tensor { shape: p.shape.clone(), data: p.grad.clone() }))
            .collect();
        for (n, t) in &grads {
            cmp(&format!("grad/{n}"), t, tensor(&format!("grad/{n}")));
        }
        let ig = m.initial_state_grads();
        for (i, t) in ig.iter().enumerate() {
            cmp(&format!("grad/initial_state/{i}"), t, tensor(&format!("grad/initial_state/{i}")));
        }
    }
    if tensor("state/0").is_some() && states.is_empty() {
        fails.push("the fixture has returned states but the model returns none (return_state?)".into());
    }
    if *compared == 0 {
        return Err(Error::format(path, "nothing to compare: no 'output' tensor"));
    }
    if fails.is_empty() {
        Ok(Ok(worst))
    } else {
        Ok(Err(fails.join("; ")))
    }
}
