//! Callbacks run at the end of every epoch, with Keras's semantics: EarlyStopping (with
//! `restore_best_weights`), ReduceLROnPlateau, ModelCheckpoint and CSVLogger.

use super::Sequential;
use crate::error::{Error, Result};
use crate::io::write_atomic;
use crate::tensor::Scalar;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The values logged at the end of an epoch (`loss`, `val_loss`, metrics, `learning_rate`).
pub type Logs = BTreeMap<String, f64>;

/// A hook into `fit`. `on_epoch_end` returns `true` to stop training.
pub trait Callback<T: Scalar> {
    fn on_train_begin(&mut self, _model: &mut Sequential<T>) -> Result<()> {
        Ok(())
    }
    /// `epoch` counts from 0, as in Keras.
    fn on_epoch_end(&mut self, epoch: usize, logs: &Logs, model: &mut Sequential<T>) -> Result<bool>;
    fn on_train_end(&mut self, _model: &mut Sequential<T>) -> Result<()> {
        Ok(())
    }
}

fn monitored(logs: &Logs, key: &str, who: &str) -> Result<f64> {
    logs.get(key).copied().ok_or_else(|| {
        Error::config(format!(
            "{who} monitors '{key}', which fit does not log (logged: {}); pass validation data or monitor 'loss'",
            logs.keys().cloned().collect::<Vec<_>>().join(", ")
        ))
    })
}

/// Keras `EarlyStopping(monitor, min_delta, patience, restore_best_weights, start_from_epoch)`
/// in mode `min`.
#[derive(Clone, Debug)]
pub struct EarlyStopping<T> {
    pub monitor: String,
    pub min_delta: f64,
    pub patience: usize,
    pub restore_best_weights: bool,
    pub start_from_epoch: usize,
    wait: usize,
    best: f64,
    best_weights: Option<Vec<Vec<T>>>,
    /// The epoch (from 0) at which training stopped, if it did.
    pub stopped_epoch: Option<usize>,
    /// The epoch (from 0) with the best monitored value.
    pub best_epoch: usize,
}

impl<T: Scalar> EarlyStopping<T> {
    pub fn new(monitor: &str, patience: usize) -> Self {
        EarlyStopping {
            monitor: monitor.into(),
            min_delta: 0.0,
            patience,
            restore_best_weights: false,
            start_from_epoch: 0,
            wait: 0,
            best: f64::INFINITY,
            best_weights: None,
            stopped_epoch: None,
            best_epoch: 0,
        }
    }
    pub fn min_delta(mut self, d: f64) -> Self {
        self.min_delta = d.abs();
        self
    }
    pub fn restore_best_weights(mut self, r: bool) -> Self {
        self.restore_best_weights = r;
        self
    }
}

impl<T: Scalar> Callback<T> for EarlyStopping<T> {
    fn on_train_begin(&mut self, _model: &mut Sequential<T>) -> Result<()> {
        self.wait = 0;
        self.best = f64::INFINITY;
        self.best_weights = None;
        self.stopped_epoch = None;
        self.best_epoch = 0;
        Ok(())
    }
    fn on_epoch_end(&mut self, epoch: usize, logs: &Logs, model: &mut Sequential<T>) -> Result<bool> {
        let current = monitored(logs, &self.monitor, "EarlyStopping")?;
        if epoch < self.start_from_epoch {
            return Ok(false);
        }
        if self.restore_best_weights && self.best_weights.is_none() {
            self.best_weights = Some(model.get_weights());
        }
        self.wait += 1;
        if current - self.min_delta < self.best {
            self.best = current;
            self.best_epoch = epoch;
            if self.restore_best_weights {
                self.best_weights = Some(model.get_weights());
            }
            self.wait = 0;
            return Ok(false);
        }
        if self.wait >= self.patience && epoch > 0 {
            self.stopped_epoch = Some(epoch);
            if self.restore_best_weights {
                if let Some(w) = &self.best_weights {
                    model.set_weights(w)?;
                }
            }
            return Ok(true);
        }
        Ok(false)
    }
}

/// Keras `ReduceLROnPlateau(monitor, factor, patience, min_delta, cooldown, min_lr)`, mode `min`.
#[derive(Clone, Debug)]
pub struct ReduceLrOnPlateau {
    pub monitor: String,
    pub factor: f64,
    pub patience: usize,
    pub min_delta: f64,
    pub cooldown: usize,
    pub min_lr: f64,
    wait: usize,
    cooldown_counter: usize,
    best: f64,
}

impl ReduceLrOnPlateau {
    /// Keras's defaults: factor 0.1, patience 10, min_delta 1e-4, cooldown 0, min_lr 0.
    pub fn new(monitor: &str) -> Self {
        ReduceLrOnPlateau {
            monitor: monitor.into(),
            factor: 0.1,
            patience: 10,
            min_delta: 1e-4,
            cooldown: 0,
            min_lr: 0.0,
            wait: 0,
            cooldown_counter: 0,
            best: f64::INFINITY,
        }
    }
    pub fn factor(mut self, f: f64) -> Self {
        self.factor = f;
        self
    }
    pub fn patience(mut self, p: usize) -> Self {
        self.patience = p;
        self
    }
    pub fn min_lr(mut self, m: f64) -> Self {
        self.min_lr = m;
        self
    }
    pub fn cooldown(mut self, c: usize) -> Self {
        self.cooldown = c;
        self
    }
}

impl<T: Scalar> Callback<T> for ReduceLrOnPlateau {
    fn on_train_begin(&mut self, _model: &mut Sequential<T>) -> Result<()> {
        if !(self.factor > 0.0 && self.factor < 1.0) {
            return Err(Error::config(format!("ReduceLROnPlateau factor must be in (0, 1), got {}", self.factor)));
        }
        self.wait = 0;
        self.cooldown_counter = 0;
        self.best = f64::INFINITY;
        Ok(())
    }
    fn on_epoch_end(&mut self, _epoch: usize, logs: &Logs, model: &mut Sequential<T>) -> Result<bool> {
        let current = monitored(logs, &self.monitor, "ReduceLROnPlateau")?;
        if self.cooldown_counter > 0 {
            self.cooldown_counter -= 1;
            self.wait = 0;
        }
        if current < self.best - self.min_delta {
            self.best = current;
            self.wait = 0;
        } else if self.cooldown_counter == 0 {
            self.wait += 1;
            if self.wait >= self.patience {
                if let Some(opt) = model.optimizer_mut() {
                    let old = opt.learning_rate();
                    if old > self.min_lr {
                        opt.set_learning_rate((old * self.factor).max(self.min_lr));
                        self.cooldown_counter = self.cooldown;
                        self.wait = 0;
                    }
                }
            }
        }
        Ok(false)
    }
}

/// Keras `ModelCheckpoint(filepath, monitor, save_best_only)`: saves the model folder
/// ([`Sequential::save`]) after each epoch, or only when the monitored value improves.
#[derive(Clone, Debug)]
pub struct ModelCheckpoint {
    pub dir: PathBuf,
    pub monitor: String,
    pub save_best_only: bool,
    best: f64,
}

impl ModelCheckpoint {
    pub fn new(dir: impl Into<PathBuf>, monitor: &str, save_best_only: bool) -> Self {
        ModelCheckpoint { dir: dir.into(), monitor: monitor.into(), save_best_only, best: f64::INFINITY }
    }
}

impl<T: Scalar> Callback<T> for ModelCheckpoint {
    fn on_epoch_end(&mut self, _epoch: usize, logs: &Logs, model: &mut Sequential<T>) -> Result<bool> {
        if self.save_best_only {
            let current = monitored(logs, &self.monitor, "ModelCheckpoint")?;
            if current < self.best {
                self.best = current;
                model.save(&self.dir)?;
            }
        } else {
            model.save(&self.dir)?;
        }
        Ok(false)
    }
}

/// Keras `CSVLogger(filename)`: one row per epoch (epoch counted from 0, then the logged keys
/// in sorted order). The file is rewritten atomically after every epoch, so it is never
/// half-written.
#[derive(Clone, Debug)]
pub struct CsvLogger {
    pub path: PathBuf,
    header: Vec<String>,
    rows: Vec<String>,
}

impl CsvLogger {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        CsvLogger { path: path.into(), header: Vec::new(), rows: Vec::new() }
    }
}

impl<T: Scalar> Callback<T> for CsvLogger {
    fn on_train_begin(&mut self, _model: &mut Sequential<T>) -> Result<()> {
        self.header.clear();
        self.rows.clear();
        Ok(())
    }
    fn on_epoch_end(&mut self, epoch: usize, logs: &Logs, _model: &mut Sequential<T>) -> Result<bool> {
        if self.header.is_empty() {
            self.header = logs.keys().cloned().collect();
        }
        let vals: Vec<String> =
            self.header.iter().map(|k| logs.get(k).map(|v| format!("{v:e}")).unwrap_or_default()).collect();
        self.rows.push(format!("{epoch},{}", vals.join(",")));
        let mut text = format!("epoch,{}\n", self.header.join(","));
        for r in &self.rows {
            text.push_str(r);
            text.push('\n');
        }
        write_atomic(&self.path, text.as_bytes())?;
        Ok(false)
    }
}
