//! Training with Keras's `fit` semantics: `validation_split` takes the *last* fraction of the
//! samples before any shuffling (Keras 3: the first floor(N·(1-v)) train), the training
//! samples are reshuffled every epoch, batches of `batch_size` (the last one smaller), the
//! epoch's `loss` is the batch-size-weighted mean of the batch losses (regularization
//! included), and `val_loss` is evaluated at the end of the epoch.

use super::callbacks::{Callback, Logs};
use super::Sequential;
use crate::error::{Error, Result};
use crate::loss::Loss;
use crate::optim::Optimizer;
use crate::tensor::{Scalar, Tensor};
use rand::seq::SliceRandom;
use std::borrow::Cow;

/// The largest weight-gradient product (floating-point operations) of a training step whose
/// update overlaps its backward pass (see [`Sequential::train_step`]): the size above which
/// the GEMM shares a product out between threads.
const OVERLAP_MAX_FLOPS: f64 = 1.5e7;

/// Forward work of a training batch (operations) from which [`Sequential::fit`] keeps the
/// other thread watching through the batch.
const SHARED_BATCH_FLOPS: f64 = 2.0e7;

/// The fewest weights of a model whose training steps overlap their update with the backward
/// pass (see [`Sequential::train_step`]): below, the update is too short to share.
const OVERLAP_MIN_WEIGHTS: usize = 100_000;

/// Test override of the overlap choice: 0 = by size, 1 = always (where allowed), 2 = never.
static STEP_OVERLAP: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);

/// Forces (`Some(true)`), forbids (`Some(false)`) or leaves to the step's size (`None`) the
/// overlap of each training step's update with its backward pass. The results are the same
/// bits either way; tests use this to compare the two orders.
pub fn set_step_overlap(force: Option<bool>) {
    let v = match force {
        None => 0,
        Some(true) => 1,
        Some(false) => 2,
    };
    STEP_OVERLAP.store(v, std::sync::atomic::Ordering::Relaxed);
}

/// Training steps that overlapped their update with the backward pass, since the start.
static STEPS_OVERLAPPED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// How many training steps so far (in this process, every model) overlapped their update with
/// the backward pass (for tests and diagnostics).
pub fn steps_overlapped() -> u64 {
    STEPS_OVERLAPPED.load(std::sync::atomic::Ordering::Relaxed)
}

fn step_overlap() -> Option<bool> {
    match STEP_OVERLAP.load(std::sync::atomic::Ordering::Relaxed) {
        1 => Some(true),
        2 => Some(false),
        _ => None,
    }
}

/// Inputs and targets, borrowed or owned.
type DataPair<'a, T> = (Cow<'a, Tensor<T>>, Cow<'a, Tensor<T>>);
use std::collections::BTreeMap;
use std::io::IsTerminal;

/// Options of [`Sequential::fit`], with Keras's defaults.
#[derive(Clone, Debug)]
pub struct FitOptions<T: Scalar> {
    pub epochs: usize,
    pub batch_size: usize,
    /// Fraction of the samples, taken from the end, held out for validation.
    pub validation_split: f64,
    /// Explicit validation data (takes precedence over `validation_split`).
    pub validation_data: Option<(Tensor<T>, Tensor<T>)>,
    /// Reshuffle the training samples before every epoch.
    pub shuffle: bool,
    /// Show a progress bar (only ever drawn on a terminal).
    pub verbose: bool,
}

impl<T: Scalar> Default for FitOptions<T> {
    fn default() -> Self {
        FitOptions {
            epochs: 1,
            batch_size: 32,
            validation_split: 0.0,
            validation_data: None,
            shuffle: true,
            verbose: true,
        }
    }
}

impl<T: Scalar> FitOptions<T> {
    pub fn epochs(mut self, n: usize) -> Self {
        self.epochs = n;
        self
    }
    pub fn batch_size(mut self, n: usize) -> Self {
        self.batch_size = n;
        self
    }
    pub fn validation_split(mut self, v: f64) -> Self {
        self.validation_split = v;
        self
    }
    pub fn validation_data(mut self, x: Tensor<T>, y: Tensor<T>) -> Self {
        self.validation_data = Some((x, y));
        self
    }
    pub fn shuffle(mut self, s: bool) -> Self {
        self.shuffle = s;
        self
    }
    pub fn verbose(mut self, v: bool) -> Self {
        self.verbose = v;
        self
    }
}

/// What `fit` returns: one value per epoch for every logged quantity (Keras `History.history`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct History {
    /// `loss`, `val_loss`, metric names (`mae`, `val_mae`, ...) and `learning_rate`.
    pub history: BTreeMap<String, Vec<f64>>,
    /// Epochs actually run (early stopping may end before `epochs`).
    pub epochs_run: usize,
}

impl History {
    /// The series of one logged quantity (empty if never logged).
    pub fn get(&self, key: &str) -> &[f64] {
        self.history.get(key).map(|v| v.as_slice()).unwrap_or(&[])
    }
    pub fn loss(&self) -> &[f64] {
        self.get("loss")
    }
    pub fn val_loss(&self) -> &[f64] {
        self.get("val_loss")
    }
}

impl<T: Scalar> Sequential<T> {
    /// Sets the loss and the optimizer (Keras `compile`).
    pub fn compile(&mut self, loss: Loss, optimizer: Optimizer) -> Result<()> {
        optimizer.validate()?;
        self.loss = Some(loss);
        self.optimizer = Some(optimizer);
        self.metrics.clear();
        Ok(())
    }

    /// Like [`Sequential::compile`], with extra metrics logged per epoch (`mae`, `mse`, ...).
    pub fn compile_with_metrics(&mut self, loss: Loss, optimizer: Optimizer, metrics: &[Loss]) -> Result<()> {
        self.compile(loss, optimizer)?;
        self.metrics = metrics.to_vec();
        Ok(())
    }

    /// The optimizer set by `compile`.
    pub fn optimizer(&self) -> Option<&Optimizer> {
        self.optimizer.as_ref()
    }

    /// The optimizer, mutable (callbacks change its learning rate).
    pub fn optimizer_mut(&mut self) -> Option<&mut Optimizer> {
        self.optimizer.as_mut()
    }

    fn check_targets(&self, x: &Tensor<T>, y: &Tensor<T>, what: &str) -> Result<()> {
        self.check_target_shape(x, y, what)?;
        if let Some((i, v)) = y.first_non_finite() {
            return Err(Error::data(format!("{what} targets hold a non-finite value {v} at flat index {i}")));
        }
        Ok(())
    }

    fn check_target_shape(&self, x: &Tensor<T>, y: &Tensor<T>, what: &str) -> Result<()> {
        let out = self.output_shape().expect("built");
        if y.shape.len() != out.len() + 1 || y.shape[1..] != out[..] || y.batch() != x.batch() {
            return Err(Error::shape(
                format!("targets ({what})"),
                format!("({}, {})", x.batch(), out.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(", ")),
                format!("{:?}", y.shape),
            ));
        }
        Ok(())
    }

    /// Trains the model (Keras `fit`). Stops with [`Error::NonFiniteLoss`] naming the epoch and
    /// batch (both counted from 1) if the loss turns NaN or infinite; the weights are then those
    /// before the offending step.
    pub fn fit(
        &mut self,
        x: &Tensor<T>,
        y: &Tensor<T>,
        opts: &FitOptions<T>,
        callbacks: &mut [&mut dyn Callback<T>],
    ) -> Result<History> {
        let res = self.fit_epochs(x, y, opts, callbacks);
        // The gradients are left at zero, however fit ends (its steps leave them stale).
        if self.grads_stale {
            self.zero_grad();
        }
        res
    }

    fn fit_epochs(
        &mut self,
        x: &Tensor<T>,
        y: &Tensor<T>,
        opts: &FitOptions<T>,
        callbacks: &mut [&mut dyn Callback<T>],
    ) -> Result<History> {
        let loss_fn = self.loss.ok_or_else(|| Error::config("call compile(loss, optimizer) before fit"))?;
        self.ensure_built()?;
        if opts.batch_size == 0 {
            return Err(Error::config("batch_size must be a positive integer, got 0"));
        }
        if !(opts.validation_split.is_finite() && (0.0..1.0).contains(&opts.validation_split)) {
            return Err(Error::config(format!("validation_split must be in [0, 1), got {}", opts.validation_split)));
        }
        if x.batch() == 0 {
            return Err(Error::data("fit got no samples (x is empty)"));
        }
        self.check_input(x, "training data")?;
        // Targets that are the inputs (an autoencoder's fit(x, x)) were just checked.
        let y_is_x = std::ptr::eq(x, y);
        if y_is_x {
            self.check_target_shape(x, y, "training")?;
        } else {
            self.check_targets(x, y, "training")?;
        }

        // Keras 3: split before shuffling; the first floor(N (1 - v)) samples train. The data
        // is borrowed where it is used whole (a copy of a large set costs more than an epoch of
        // a small model).
        let n = x.batch();
        let ((xt, yt), val): (DataPair<T>, Option<DataPair<T>>) = if let Some((xv, yv)) = &opts.validation_data {
            self.check_input(xv, "validation data")?;
            self.check_targets(xv, yv, "validation")?;
            ((Cow::Borrowed(x), Cow::Borrowed(y)), Some((Cow::Borrowed(xv), Cow::Borrowed(yv))))
        } else if opts.validation_split > 0.0 {
            let split = ((n as f64) * (1.0 - opts.validation_split)).floor() as usize;
            if split == 0 || split == n {
                return Err(Error::data(format!(
                    "validation_split {} of {n} samples leaves {split} for training and {} for validation; both must be non-empty",
                    opts.validation_split,
                    n - split
                )));
            }
            let (xv, yv) = (Cow::Owned(x.slice_batch(split, n)), Cow::Owned(y.slice_batch(split, n)));
            ((Cow::Owned(x.slice_batch(0, split)), Cow::Owned(y.slice_batch(0, split))), Some((xv, yv)))
        } else {
            ((Cow::Borrowed(x), Cow::Borrowed(y)), None)
        };

        let mut history = History::default();
        let mut order: Vec<usize> = (0..xt.batch()).collect();
        let nb = xt.batch().div_ceil(opts.batch_size);
        let bar = progress_bar(opts.verbose, opts.epochs as u64);
        for cb in callbacks.iter_mut() {
            cb.on_train_begin(self)?;
        }
        self.zero_grad();
        let metrics = self.metrics.clone();
        for epoch in 0..opts.epochs {
            if opts.shuffle {
                order.shuffle(&mut self.rng);
            }
            let (mut loss_sum, mut count) = (0.0f64, 0usize);
            let mut metric_sums = vec![0.0f64; metrics.len()];
            for bi in 0..nb {
                let idx = &order[bi * opts.batch_size..((bi + 1) * opts.batch_size).min(order.len())];
                let (gx, gy);
                let (xb, yb): (&Tensor<T>, &Tensor<T>) = if idx.len() == xt.batch() && !opts.shuffle {
                    (&xt, &yt)
                } else if y_is_x {
                    gx = xt.gather_batch(idx);
                    (&gx, &gx)
                } else {
                    (gx, gy) = (xt.gather_batch(idx), yt.gather_batch(idx));
                    (&gx, &gy)
                };
                let overlap =
                    self.overlaps_step(self.optimizer.as_ref().expect("compiled"), xb.len() / xb.last_dim().max(1));
                if overlap || self.shares_batches(xb.len() / xb.last_dim().max(1)) {
                    // The other thread will be needed again within microseconds all through
                    // the batch (its products, the overlapped update, the element-wise passes):
                    // keep it awake through the serial stretches between them (the loss, the
                    // small layers), where it would otherwise fall asleep and take 50-70 µs to
                    // wake.
                    crate::tensor::keep_watching(std::time::Duration::from_millis(2));
                }
                let pred = self.run(xb, true, true, None, None)?;
                let mut g = Tensor::zeros(&pred.shape);
                let l = loss_fn.compute(&pred, yb, Some(&mut g))? + self.regularization_loss();
                if !l.is_finite() {
                    bar.abandon();
                    return Err(Error::NonFiniteLoss { epoch: epoch + 1, batch: bi + 1, value: l });
                }
                for (s, m) in metric_sums.iter_mut().zip(&metrics) {
                    *s += m.compute(&pred, yb, None)? * idx.len() as f64;
                }
                self.train_step(&g, overlap)?;
                loss_sum += l * idx.len() as f64;
                count += idx.len();
            }
            let mut logs = Logs::new();
            logs.insert("loss".into(), loss_sum / count as f64);
            for (m, s) in metrics.iter().zip(&metric_sums) {
                logs.insert(m.name().into(), s / count as f64);
            }
            if let Some((xv, yv)) = &val {
                let (vl, vm) = self.evaluate_all(xv, yv, opts.batch_size, &metrics)?;
                logs.insert("val_loss".into(), vl);
                for (m, v) in metrics.iter().zip(vm) {
                    logs.insert(format!("val_{}", m.name()), v);
                }
            }
            logs.insert("learning_rate".into(), self.optimizer.as_ref().expect("compiled").learning_rate());
            for (k, v) in &logs {
                history.history.entry(k.clone()).or_default().push(*v);
            }
            history.epochs_run = epoch + 1;
            bar.set_position(epoch as u64 + 1);
            bar.set_message(format!(
                "loss {:.4e}{}",
                logs["loss"],
                logs.get("val_loss").map(|v| format!("  val_loss {v:.4e}")).unwrap_or_default()
            ));
            let mut stop = false;
            for cb in callbacks.iter_mut() {
                stop |= cb.on_epoch_end(epoch, &logs, self)?;
            }
            if stop {
                break;
            }
        }
        for cb in callbacks.iter_mut() {
            cb.on_train_end(self)?;
        }
        bar.finish_and_clear();
        Ok(history)
    }

    /// Backward from the loss gradient `g`, the weight penalties' gradients and one optimizer
    /// update. The backward pass overwrites the gradients instead of adding into zeroed ones,
    /// and leaves this step's values for the next step to overwrite (`grads_stale`: no pass
    /// zeroes them, a store per weight saved, a third of Adam's pass), except with tied weights,
    /// whose gradients are folded by adding: those are zeroed in the update's pass.
    ///
    /// With `overlap` (see [`Sequential::overlaps_step`]: the step's products are small, each
    /// would run on one thread anyway), the update overlaps the backward pass: the calling
    /// thread goes down the layers computing what the layer below needs (each layer's input
    /// gradient), while the other thread takes each layer's weight-gradient products as soon as
    /// the layer is passed, then its update in pieces that both threads share. Every number is
    /// computed by the same operations as in the plain order, so the results are the same bits.
    fn train_step(&mut self, g: &Tensor<T>, overlap: bool) -> Result<()> {
        let mut opt = self.optimizer.take().expect("compiled");
        let res = if overlap {
            self.backward_and_update(g, &mut opt)
        } else if self.tie_idx.is_empty() {
            self.backward_overwriting(g).map(|()| {
                self.add_regularization_grads();
                opt.step(&mut self.trainable_params_mut());
                self.grads_stale = true;
            })
        } else {
            if self.grads_stale {
                self.zero_grad();
            }
            self.backward_params(g).map(|()| {
                self.add_regularization_grads();
                opt.step_and_zero_grads(&mut self.trainable_params_mut());
            })
        };
        self.optimizer = Some(opt);
        res
    }

    /// The backward pass with every gradient overwritten instead of added (so no pass zeroes
    /// them between steps): [`Layer::backward_split`]'s two parts, one after the other.
    /// Not for tied weights, whose gradients are folded by adding.
    fn backward_overwriting(&mut self, dy: &Tensor<T>) -> Result<()> {
        if !self.kept {
            return Err(Error::config("backward needs the forward pass of `call`"));
        }
        let mut g: Option<Tensor<T>> = None;
        for (i, l) in self.layers.iter_mut().enumerate().rev() {
            let (dx, job) = l.backward_split(g.as_ref().unwrap_or(dy), i > 0, true);
            job();
            g = Some(dx);
        }
        Ok(())
    }

    /// Whether a training batch of `rows` rows (batch x steps) has work for more than one
    /// thread: about two operations per weight and row in the forward pass alone, against
    /// the size from which products and passes are shared out.
    fn shares_batches(&self, rows: usize) -> bool {
        let weights: usize = self.layers.iter().flat_map(|l| l.params()).map(|p| p.value.len()).sum();
        crate::tensor::threads() > 1 && 2.0 * rows as f64 * weights as f64 >= SHARED_BATCH_FLOPS
    }

    /// Whether [`Sequential::train_step`] overlaps the update with the backward pass, for a
    /// batch whose products have `rows` rows (batch x steps).
    fn overlaps_step(&self, opt: &Optimizer, rows: usize) -> bool {
        let lens = self.layers.iter().flat_map(|l| l.params()).map(|p| p.value.len());
        let (largest, total) = lens.fold((0, 0), |(m, s), n| (m.max(n), s + n));
        let allowed = self.tie_idx.is_empty() && opt.clip.global_clipnorm.is_none() && crate::tensor::threads() > 1;
        match step_overlap() {
            Some(force) => allowed && force,
            // The weight-gradient products (2·rows·len operations for a variable of len values)
            // stay below the size where the GEMM shares one product out between threads, and
            // the update is long enough to be worth sharing (measured: the seed's 40k-weight
            // S1 gains nothing, its 0.7M-weight S2-S4 gain 20-35 %).
            None => allowed && 2.0 * rows as f64 * largest as f64 <= OVERLAP_MAX_FLOPS && total >= OVERLAP_MIN_WEIGHTS,
        }
    }

    /// The overlapped backward pass and update (see [`Sequential::train_step`]).
    fn backward_and_update(&mut self, dy: &Tensor<T>, opt: &mut Optimizer) -> Result<()> {
        if !self.kept {
            return Err(Error::config("backward needs the forward pass of `call`"));
        }
        let lens: Vec<usize> = self.layers.iter().flat_map(|l| l.params()).map(|p| p.value.len()).collect();
        let counts: Vec<usize> = self.layers.iter().map(|l| l.params().len()).collect();
        let (rule, slots) = opt.begin_step::<T>(&lens);
        let mut groups = Vec::with_capacity(counts.len());
        let mut rest = slots;
        for &c in &counts {
            let (a, b) = std::mem::take(&mut rest).split_at_mut(c);
            groups.push(a);
            rest = b;
        }
        let rule = &rule;
        let layers = &mut self.layers;
        crate::tensor::run_queue(crate::tensor::threads() - 1, move |q: &crate::tensor::Queue<'_>| {
            let mut g = dy.clone();
            for (i, (l, slots)) in layers.iter_mut().zip(groups).enumerate().rev() {
                let l: &mut dyn crate::layers::Layer<T> = &mut **l;
                // The gradients are overwritten, so the update need not zero them.
                let (dx, job) = l.backward_split(&g, i > 0, true);
                // The layer's weight gradients and penalties, then its update in pieces that
                // either thread may take.
                q.push(Box::new(move |q: &crate::tensor::Queue<'_>| {
                    let mut ps = job();
                    for p in ps.iter_mut() {
                        super::add_penalty_grad(p);
                    }
                    for pc in rule.pieces(ps, slots, T::one()) {
                        q.push(Box::new(move |_: &crate::tensor::Queue<'_>| rule.update_piece(pc, false)));
                    }
                }));
                g = dx;
            }
        });
        opt.end_step();
        self.grads_stale = true;
        STEPS_OVERLAPPED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    fn evaluate_all(
        &mut self,
        x: &Tensor<T>,
        y: &Tensor<T>,
        batch_size: usize,
        metrics: &[Loss],
    ) -> Result<(f64, Vec<f64>)> {
        let loss_fn = self.loss.ok_or_else(|| Error::config("call compile(loss, optimizer) before evaluate"))?;
        let n = x.batch();
        if n == 0 {
            return Err(Error::data("evaluate got no samples"));
        }
        let bs = batch_size.max(1);
        let (mut s, mut ms) = (0.0, vec![0.0; metrics.len()]);
        for start in (0..n).step_by(bs) {
            let end = (start + bs).min(n);
            let (xb, yb) = (x.slice_batch(start, end), y.slice_batch(start, end));
            let pred = self.run(&xb, false, false, None, None)?;
            let l = loss_fn.compute(&pred, &yb, None)? + self.regularization_loss();
            s += l * (end - start) as f64;
            for (acc, m) in ms.iter_mut().zip(metrics) {
                *acc += m.compute(&pred, &yb, None)? * (end - start) as f64;
            }
        }
        Ok((s / n as f64, ms.into_iter().map(|v| v / n as f64).collect()))
    }

    /// The loss (regularization included) over `x`, `y`, in batches (Keras `evaluate`).
    pub fn evaluate(&mut self, x: &Tensor<T>, y: &Tensor<T>, batch_size: usize) -> Result<f64> {
        self.ensure_built()?;
        self.check_input(x, "evaluation data")?;
        self.check_targets(x, y, "evaluation")?;
        Ok(self.evaluate_all(x, y, batch_size, &[])?.0)
    }

    /// Inference in batches of `batch_size` (Keras `predict`, default batch 32).
    pub fn predict(&mut self, x: &Tensor<T>, batch_size: usize) -> Result<Tensor<T>> {
        self.ensure_built()?;
        self.check_input(x, "prediction input")?;
        let n = x.batch();
        if n == 0 {
            return Err(Error::data("predict got no samples"));
        }
        let bs = batch_size.max(1);
        if n <= bs {
            return self.run(x, false, false, None, None);
        }
        let mut parts = Vec::new();
        for start in (0..n).step_by(bs) {
            let xb = x.slice_batch(start, (start + bs).min(n));
            parts.push(self.run(&xb, false, false, None, None)?);
        }
        Ok(Tensor::concat_batch(&parts))
    }
}

fn progress_bar(verbose: bool, len: u64) -> indicatif::ProgressBar {
    if !verbose || !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let pb = indicatif::ProgressBar::new(len);
    pb.set_style(
        indicatif::ProgressStyle::with_template("epoch {pos:>4}/{len} [{bar:30}] {elapsed_precise} {msg}")
            .expect("static template")
            .progress_chars("=> "),
    );
    pb
}
