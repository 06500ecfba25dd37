//! The Sequential model: a stack of layers with Keras's naming, `summary()`, forward and
//! backward through the stack, and save/load (config JSON in Keras's vocabulary + safetensors
//! weights with Keras's variable names).
//!
//! ```
//! use memcell::layers::{Dense, SimpleRnn};
//! use memcell::model::Sequential;
//! let mut m = Sequential::<f32>::new().input(&[2, 1]).add(SimpleRnn::new(200)).add(Dense::new(1));
//! m.build().unwrap();
//! assert_eq!(m.param_count(), 40_601);
//! ```

pub mod callbacks;
pub mod fit;

pub use callbacks::{Callback, CsvLogger, EarlyStopping, ModelCheckpoint, ReduceLrOnPlateau};
pub use fit::{set_step_overlap, steps_overlapped, FitOptions, History};

use crate::error::{Error, Result};
use crate::init::rng_from_seed;
use crate::io::write_atomic;
use crate::layers::config::{layer_from_config, layer_to_config};
use crate::layers::{Ctx, Layer, Mask, Param};
use crate::loss::Loss;
use crate::optim::Optimizer;
use crate::tensor::{Scalar, Tensor};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::Path;

/// The end of the run of layers from `start` that inference can step through together: each
/// [`crate::layers::recurrent::StackStep::stackable`] for a batch of `batch` rows, each but
/// the last returning sequences. `start + 1` when there is no such run of two or more.
fn stack_end<T: Scalar>(layers: &[Box<dyn Layer<T>>], start: usize, batch: usize) -> usize {
    let min_rows = crate::layers::recurrent::chunk_ranges(batch).iter().map(|(r0, r1)| r1 - r0).min().unwrap_or(0);
    let mut end = start;
    while let Some(s) = layers.get(end).and_then(|l| l.stack_step()) {
        if !s.stackable(min_rows) {
            break;
        }
        end += 1;
        if !s.returns_sequences() {
            break;
        }
    }
    end.max(start + 1)
}

/// A linear stack of layers (Keras `Sequential`). `T` is the compute type: `f32` (Keras's
/// default) or `f64`.
pub struct Sequential<T: Scalar> {
    pub name: String,
    layers: Vec<Box<dyn Layer<T>>>,
    input_shape: Option<Vec<usize>>,
    out_shapes: Vec<Vec<usize>>,
    built: bool,
    seed: u64,
    pub(crate) rng: ChaCha8Rng,
    pub(crate) loss: Option<Loss>,
    pub(crate) optimizer: Option<Optimizer>,
    pub(crate) metrics: Vec<Loss>,
    /// Tied weights: (target layer, source layer) names; the target's kernel is the
    /// transpose of the source's (see [`Sequential::tie`]).
    ties: Vec<(String, String)>,
    tie_idx: Vec<(usize, usize)>,
    /// The last forward pass kept what backward needs.
    kept: bool,
    /// The gradient buffers hold the last training step's gradients, standing for zeros: the
    /// next step overwrites them, anything that adds into them zeroes them first (see
    /// `Sequential::train_step`). Only ever set inside `fit`, which zeroes them before it returns.
    pub(crate) grads_stale: bool,
}

impl<T: Scalar> Default for Sequential<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Scalar> Sequential<T> {
    /// An empty model with seed 0.
    pub fn new() -> Self {
        Sequential {
            name: "sequential".into(),
            layers: Vec::new(),
            input_shape: None,
            out_shapes: Vec::new(),
            built: false,
            seed: 0,
            rng: rng_from_seed(0),
            loss: None,
            optimizer: None,
            metrics: Vec::new(),
            ties: Vec::new(),
            tie_idx: Vec::new(),
            kept: false,
            grads_stale: false,
        }
    }

    /// Sets the input shape without the batch axis (Keras `keras.Input(shape=...)`), e.g.
    /// `&[time, features]`.
    pub fn input(mut self, shape: &[usize]) -> Self {
        self.input_shape = Some(shape.to_vec());
        self.built = false;
        self
    }

    /// Sets the seed that drives weight initialisation, shuffling and dropout.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self.rng = rng_from_seed(seed);
        self.built = false;
        self
    }

    /// Appends a layer (builder style).
    #[allow(clippy::should_implement_trait)] // Keras's `model.add`
    pub fn add(mut self, layer: impl Layer<T> + 'static) -> Self {
        self.push(Box::new(layer));
        self
    }

    /// Appends a boxed layer, renaming it `name_1`, `name_2`, ... if the name is taken.
    pub fn push(&mut self, mut layer: Box<dyn Layer<T>>) {
        let base = layer.name().to_string();
        let taken = |n: &str, ls: &[Box<dyn Layer<T>>]| ls.iter().any(|l| l.name() == n);
        if taken(&base, &self.layers) {
            let mut i = 1;
            while taken(&format!("{base}_{i}"), &self.layers) {
                i += 1;
            }
            layer.set_name(&format!("{base}_{i}"));
        }
        self.layers.push(layer);
        self.built = false;
    }

    /// Ties the kernel of layer `target` to the transpose of the kernel of the earlier layer
    /// `source` (a stacked autoencoder's decoder reusing its encoder's weights: the decoder
    /// computes `f(h · Wᵀ + b')`). Only the source kernel is trained: its gradient collects
    /// both uses, `dW = dW_source + (dW_target)ᵀ`; the target keeps its own bias. Checked at
    /// build: both layers have 2-D kernels of transposed shapes and `source` comes first.
    pub fn tie(mut self, target: &str, source: &str) -> Self {
        self.ties.push((target.to_string(), source.to_string()));
        self.built = false;
        self
    }

    /// The tied pairs (target, source), as given to [`Sequential::tie`].
    pub fn ties(&self) -> &[(String, String)] {
        &self.ties
    }

    fn resolve_ties(&mut self) -> Result<()> {
        self.tie_idx.clear();
        for (t, s) in &self.ties {
            let find = |n: &str| {
                self.layers
                    .iter()
                    .position(|l| l.name() == n)
                    .ok_or_else(|| Error::config(format!("tied weights: the model has no layer named '{n}'")))
            };
            let (ti, si) = (find(t)?, find(s)?);
            if si >= ti {
                return Err(Error::config(format!("tied weights: source layer '{s}' must come before '{t}'")));
            }
            let kshape = |i: usize| {
                self.layers[i].params().into_iter().find(|p| p.name == "kernel").map(|p| p.shape.clone()).ok_or_else(
                    || Error::config(format!("tied weights: layer '{}' has no kernel", self.layers[i].name())),
                )
            };
            let (ts, ss) = (kshape(ti)?, kshape(si)?);
            if ts.len() != 2 || ss.len() != 2 || ts[0] != ss[1] || ts[1] != ss[0] {
                return Err(Error::config(format!(
                    "tied weights: kernel of '{t}' {ts:?} is not the transpose of kernel of '{s}' {ss:?}"
                )));
            }
            if self.tie_idx.iter().any(|&(a, _)| a == ti) {
                return Err(Error::config(format!("tied weights: layer '{t}' is tied twice")));
            }
            self.tie_idx.push((ti, si));
        }
        Ok(())
    }

    /// Copies every tied source kernel, transposed, into its target (every forward call does
    /// this first; call it to see consistent weights without a forward call, e.g. after
    /// [`Sequential::set_weights`]).
    pub fn sync_tied_kernels(&mut self) {
        self.sync_ties();
    }

    /// Copies every tied source kernel, transposed, into its target.
    fn sync_ties(&mut self) {
        for &(ti, si) in &self.tie_idx {
            let (head, tail) = self.layers.split_at_mut(ti);
            let src = head[si].params().into_iter().find(|p| p.name == "kernel").expect("checked at build");
            let (a, b) = (src.shape[0], src.shape[1]);
            let dst = tail[0].params_mut().into_iter().find(|p| p.name == "kernel").expect("checked at build");
            // dst (b, a) = srcᵀ
            for i in 0..a {
                for j in 0..b {
                    dst.value[j * a + i] = src.value[i * b + j];
                }
            }
        }
    }

    /// Moves the gradients of tied targets into their sources: `dW_source += dW_targetᵀ`.
    fn fold_tied_grads(&mut self) {
        for &(ti, si) in &self.tie_idx {
            let (head, tail) = self.layers.split_at_mut(ti);
            let dst = tail[0].params_mut().into_iter().find(|p| p.name == "kernel").expect("checked at build");
            let src = head[si].params_mut().into_iter().find(|p| p.name == "kernel").expect("checked at build");
            let (a, b) = (src.shape[0], src.shape[1]);
            for i in 0..a {
                for j in 0..b {
                    src.grad[i * b + j] += dst.grad[j * a + i];
                }
            }
            dst.grad.fill(T::zero());
        }
    }

    /// The layers, in order.
    pub fn layers(&self) -> &[Box<dyn Layer<T>>] {
        &self.layers
    }

    /// The layers, mutable (for example to reset stateful layers one by one).
    pub fn layers_mut(&mut self) -> &mut [Box<dyn Layer<T>>] {
        &mut self.layers
    }

    /// The seed given to [`Sequential::seed`].
    pub fn get_seed(&self) -> u64 {
        self.seed
    }

    /// Input shape without the batch axis.
    pub fn input_shape(&self) -> Option<&[usize]> {
        self.input_shape.as_deref()
    }

    /// Output shape without the batch axis (after [`Sequential::build`]).
    pub fn output_shape(&self) -> Option<&[usize]> {
        self.out_shapes.last().map(|v| v.as_slice())
    }

    /// Creates every layer's weights from the seed. Called by `fit`/`predict` when needed.
    pub fn build(&mut self) -> Result<()> {
        let input = self
            .input_shape
            .clone()
            .ok_or_else(|| Error::config("the model has no input shape: call .input(&[time, features]) first"))?;
        if self.layers.is_empty() {
            return Err(Error::config("the model has no layers"));
        }
        if input.is_empty() || input.contains(&0) {
            return Err(Error::config(format!("input shape {input:?} must have positive sizes")));
        }
        let mut rng = rng_from_seed(self.seed);
        let mut shape = input;
        self.out_shapes.clear();
        for l in self.layers.iter_mut() {
            shape = l.build(&shape, &mut rng)?;
            self.out_shapes.push(shape.clone());
        }
        self.resolve_ties()?;
        self.sync_ties();
        // Training randomness (shuffles, dropout) comes from its own stream of the same seed.
        self.rng = rng_from_seed(self.seed ^ 0x9e37_79b9_7f4a_7c15);
        self.built = true;
        Ok(())
    }

    /// Restarts the stream that drives shuffling, dropout and noise from `seed` (so a
    /// training-mode call can be repeated with the same dropout masks).
    pub fn reseed_rng(&mut self, seed: u64) {
        self.rng = rng_from_seed(seed);
    }

    pub(crate) fn ensure_built(&mut self) -> Result<()> {
        if !self.built {
            self.build()?;
        }
        Ok(())
    }

    /// Checks that `x` is (batch, *input_shape) with finite values.
    pub(crate) fn check_input(&self, x: &Tensor<T>, what: &str) -> Result<()> {
        let want = self.input_shape.as_ref().expect("built");
        if x.shape.len() != want.len() + 1 || x.shape[1..] != want[..] {
            return Err(Error::shape(
                format!("model input ({what})"),
                format!("(batch, {})", want.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(", ")),
                format!("{:?}", x.shape),
            ));
        }
        if let Some((i, v)) = x.first_non_finite() {
            return Err(Error::data(format!("{what} holds a non-finite value {v} at flat index {i}")));
        }
        Ok(())
    }

    /// One forward pass through the stack. `mask` and `initial_state` go to the first layers
    /// that consume them (Keras `model(x, mask=..., initial_state=...)` on the first RNN).
    /// Keeps what [`Sequential::backward`] needs.
    pub fn call(
        &mut self,
        x: &Tensor<T>,
        training: bool,
        mask: Option<Mask>,
        initial_state: Option<Vec<Tensor<T>>>,
    ) -> Result<Tensor<T>> {
        self.ensure_built()?;
        self.check_input(x, "input")?;
        if let Some(m) = &mask {
            if m.batch != x.batch() || x.shape.len() < 3 || m.time != x.shape[1] {
                return Err(Error::shape(
                    "mask",
                    format!("({}, {})", x.batch(), x.shape.get(1).unwrap_or(&0)),
                    format!("({}, {})", m.batch, m.time),
                ));
            }
        }
        self.run(x, training, true, mask, initial_state)
    }

    /// The forward pass on input already checked. `for_backward` false: inference only
    /// (layers keep nothing for a backward pass, which then fails with an error).
    pub(crate) fn run(
        &mut self,
        x: &Tensor<T>,
        training: bool,
        for_backward: bool,
        mask: Option<Mask>,
        initial_state: Option<Vec<Tensor<T>>>,
    ) -> Result<Tensor<T>> {
        self.sync_ties();
        self.kept = for_backward;
        let mut ctx = Ctx { training, mask, initial_state, rng: &mut self.rng, for_backward };
        if self.layers.is_empty() {
            return Err(Error::config("the model has no layers"));
        }
        let inference = !training && !for_backward;
        let mut h: Option<Tensor<T>> = None;
        let mut i = 0;
        while i < self.layers.len() {
            let x = h.as_ref().unwrap_or(x);
            // In inference, consecutive recurrent layers (each but the last returning
            // sequences) run together a time step at a time: the same numbers, without the
            // intermediate sequences (see `recurrent::run_stack`).
            let end = if inference && ctx.mask.is_none() && ctx.initial_state.is_none() {
                stack_end(&self.layers, i, x.batch())
            } else {
                i + 1
            };
            let y = if end > i + 1 {
                let mut stack: Vec<&mut dyn crate::layers::recurrent::StackStep<T>> =
                    self.layers[i..end].iter_mut().map(|l| l.stack_step_mut().expect("checked by stack_end")).collect();
                crate::layers::recurrent::run_stack(&mut stack, x)?
            } else {
                self.layers[i].forward(x, &mut ctx)?
            };
            h = Some(y);
            i = end;
        }
        Ok(h.expect("at least one layer ran"))
    }

    /// Runs layers `from..to` only (an autoencoder's encoder or decoder half); `x` must have
    /// the shape that layer `from` takes. No mask, no initial state.
    pub fn call_range(&mut self, x: &Tensor<T>, training: bool, from: usize, to: usize) -> Result<Tensor<T>> {
        self.ensure_built()?;
        if from >= to || to > self.layers.len() {
            return Err(Error::config(format!(
                "layer range {from}..{to} of a model with {} layers",
                self.layers.len()
            )));
        }
        let want = if from == 0 { self.input_shape.clone().expect("built") } else { self.out_shapes[from - 1].clone() };
        if x.shape.len() != want.len() + 1 || x.shape[1..] != want[..] {
            return Err(Error::shape(
                format!("input of layer '{}'", self.layers[from].name()),
                format!("(batch, {})", want.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(", ")),
                format!("{:?}", x.shape),
            ));
        }
        if let Some((i, v)) = x.first_non_finite() {
            return Err(Error::data(format!("input holds a non-finite value {v} at flat index {i}")));
        }
        self.sync_ties();
        self.kept = false;
        let mut ctx = Ctx { training, mask: None, initial_state: None, rng: &mut self.rng, for_backward: false };
        let mut h = self.layers[from].forward(x, &mut ctx)?;
        for l in self.layers[from + 1..to].iter_mut() {
            h = l.forward(&h, &mut ctx)?;
        }
        Ok(h)
    }

    /// Output shapes of every layer, without the batch axis (after build).
    pub fn layer_output_shapes(&self) -> &[Vec<usize>] {
        &self.out_shapes
    }

    /// Inference on a whole batch (no dropout).
    pub fn forward(&mut self, x: &Tensor<T>) -> Result<Tensor<T>> {
        self.call(x, false, None, None)
    }

    /// Backward pass after [`Sequential::call`]: `dy` is d(objective)/d(output). Adds into every
    /// parameter's gradient buffer and returns d(objective)/d(input).
    pub fn backward(&mut self, dy: &Tensor<T>) -> Result<Tensor<T>> {
        if !self.kept {
            return Err(Error::config(
                "backward needs the forward pass of `call` (predict, evaluate and encode/decode keep nothing for it)",
            ));
        }
        let mut g = dy.clone();
        for l in self.layers.iter_mut().rev() {
            g = l.backward(&g);
        }
        self.fold_tied_grads();
        Ok(g)
    }

    /// [`Sequential::backward`] for training: the parameter gradients only (the input
    /// gradient of the first layer, whose input is data, is not computed).
    pub(crate) fn backward_params(&mut self, dy: &Tensor<T>) -> Result<()> {
        if !self.kept {
            return Err(Error::config("backward needs the forward pass of `call`"));
        }
        // The gradient into each layer: dy itself for the last (not a copy of it).
        let mut g: Option<Tensor<T>> = None;
        for (i, l) in self.layers.iter_mut().enumerate().rev() {
            let gi = g.as_ref().unwrap_or(dy);
            if i == 0 {
                l.backward_params(gi);
            } else {
                g = Some(l.backward(gi));
            }
        }
        self.fold_tied_grads();
        Ok(())
    }

    /// States returned by the last layer (Keras `return_state=True`), after a call.
    pub fn states(&self) -> Vec<Tensor<T>> {
        self.layers.last().map(|l| l.states()).unwrap_or_default()
    }

    /// Gradients with respect to the initial states passed to the last call.
    pub fn initial_state_grads(&self) -> Vec<Tensor<T>> {
        for l in &self.layers {
            let g = l.initial_state_grads();
            if !g.is_empty() {
                return g;
            }
        }
        Vec::new()
    }

    /// Forgets the states of stateful layers (Keras `model.reset_states()`).
    pub fn reset_states(&mut self) {
        for l in self.layers.iter_mut() {
            l.reset_state();
        }
    }

    /// Sets every gradient buffer to zero.
    pub fn zero_grad(&mut self) {
        for l in self.layers.iter_mut() {
            for p in l.params_mut() {
                p.zero_grad();
            }
        }
        self.grads_stale = false;
    }

    /// All trainable variables with their full Keras names (`<layer>/<variable>`).
    pub fn named_params(&self) -> Vec<(String, &Param<T>)> {
        let mut out = Vec::new();
        for l in &self.layers {
            for (n, p) in l.weight_names().into_iter().zip(l.params()) {
                out.push((n, p));
            }
        }
        out
    }

    /// All trainable variables, mutable, in the same order as [`Sequential::named_params`].
    pub fn params_mut(&mut self) -> Vec<&mut Param<T>> {
        self.layers.iter_mut().flat_map(|l| l.params_mut()).collect()
    }

    /// The variables the optimizer updates: [`Sequential::params_mut`] without the kernels
    /// of tied layers (they are copies of their sources).
    pub fn trainable_params_mut(&mut self) -> Vec<&mut Param<T>> {
        let tied: Vec<usize> = self.tie_idx.iter().map(|&(t, _)| t).collect();
        self.layers
            .iter_mut()
            .enumerate()
            .flat_map(|(i, l)| {
                let skip = tied.contains(&i);
                l.params_mut().into_iter().filter(move |p| !(skip && p.name == "kernel"))
            })
            .collect()
    }

    /// Number of scalar weights (a tied kernel counts once).
    pub fn param_count(&self) -> usize {
        let tied: usize = self
            .tie_idx
            .iter()
            .filter_map(|&(t, _)| {
                self.layers[t].params().into_iter().find(|p| p.name == "kernel").map(|p| p.value.len())
            })
            .sum();
        self.layers.iter().flat_map(|l| l.params()).map(|p| p.value.len()).sum::<usize>() - tied
    }

    /// Copies of all weight values (Keras `get_weights()`).
    pub fn get_weights(&self) -> Vec<Vec<T>> {
        self.layers.iter().flat_map(|l| l.params()).map(|p| p.value.clone()).collect()
    }

    /// Restores values from [`Sequential::get_weights`].
    pub fn set_weights(&mut self, w: &[Vec<T>]) -> Result<()> {
        let mut ps = self.params_mut();
        if ps.len() != w.len() {
            return Err(Error::shape("set_weights", format!("{} arrays", ps.len()), format!("{} arrays", w.len())));
        }
        for (p, v) in ps.iter_mut().zip(w) {
            if p.value.len() != v.len() {
                return Err(Error::shape(
                    format!("set_weights '{}'", p.name),
                    p.value.len().to_string(),
                    v.len().to_string(),
                ));
            }
            p.value.copy_from_slice(v);
        }
        Ok(())
    }

    /// Sets one variable by its full Keras name, e.g. `"lstm/kernel"`, from f64 values.
    pub fn set_weight_f64(&mut self, name: &str, shape: &[usize], values: &[f64]) -> Result<()> {
        self.ensure_built()?;
        for l in self.layers.iter_mut() {
            let names = l.weight_names();
            if let Some(i) = names.iter().position(|n| n == name) {
                let p = l.params_mut().into_iter().nth(i).expect("same order");
                if p.shape != shape {
                    return Err(Error::shape(
                        format!("weight '{name}'"),
                        format!("{:?}", p.shape),
                        format!("{shape:?}"),
                    ));
                }
                for (d, &s) in p.value.iter_mut().zip(values) {
                    *d = T::of(s);
                }
                return Ok(());
            }
        }
        Err(Error::config(format!("the model has no weight named '{name}'")))
    }

    /// Sum of weight and activity penalties (added to the loss, as Keras does).
    pub fn regularization_loss(&self) -> f64 {
        let mut s = 0.0;
        for l in &self.layers {
            for p in l.params() {
                if let Some(r) = &p.regularizer {
                    s += r.penalty(&p.value);
                }
            }
            s += l.activity_penalty();
        }
        s
    }

    /// Adds the weight penalties' gradients into the gradient buffers.
    pub fn add_regularization_grads(&mut self) {
        for p in self.params_mut() {
            add_penalty_grad(p);
        }
    }

    /// Keras's summary table, e.g. for the seed's S1:
    ///
    /// ```text
    /// Model: "sequential"
    /// ┏━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━┓
    /// ┃ Layer (type)                    ┃ Output Shape           ┃       Param # ┃
    /// ...
    ///  Total params: 40,601 (158.60 KB)
    /// ```
    pub fn summary(&mut self) -> Result<String> {
        self.ensure_built()?;
        let w = [33usize, 24, 15];
        let line = |l: &str, m: &str, r: &str, f: &str| {
            format!("{l}{}{m}{}{m}{}{r}\n", f.repeat(w[0]), f.repeat(w[1]), f.repeat(w[2]))
        };
        let row = |a: &str, b: &str, c: &str, s: &str| {
            format!("{s} {:<w0$}{s} {:<w1$}{s} {:>w2$} {s}\n", a, b, c, w0 = w[0] - 1, w1 = w[1] - 1, w2 = w[2] - 2)
        };
        let mut out = format!("Model: \"{}\"\n", self.name);
        out += &line("┏", "┳", "┓", "━");
        out += &row("Layer (type)", "Output Shape", "Param #", "┃");
        out += &line("┡", "╇", "┩", "━");
        let n = self.layers.len();
        for (i, (l, s)) in self.layers.iter().zip(&self.out_shapes).enumerate() {
            let count: usize = l.params().iter().map(|p| p.value.len()).sum();
            let mut shape = format!("(None, {})", s.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(", "));
            if l.returns_state() {
                let units = s.last().copied().unwrap_or(0);
                let k = l.states().len().max(1);
                let st = format!("(None, {units})");
                shape = format!("[{shape}, {}]", vec![st; k].join(", "));
            }
            out += &row(&format!("{} ({})", l.name(), l.class_name()), &shape, &group(count), "│");
            out += &if i + 1 < n { line("├", "┼", "┤", "─") } else { line("└", "┴", "┘", "─") };
        }
        let total = self.param_count();
        let bytes = (total * std::mem::size_of::<T>()) as f64;
        out += &format!(" Total params: {} ({})\n", group(total), human_bytes(bytes));
        out += &format!(" Trainable params: {} ({})\n", group(total), human_bytes(bytes));
        out += " Non-trainable params: 0 (0.00 B)\n";
        Ok(out)
    }

    /// The model config in Keras's vocabulary:
    /// `{"class_name": "Sequential", "config": {"name", "layers": [InputLayer, ...]}}`.
    pub fn to_config(&self) -> Value {
        let mut layers = Vec::new();
        if let Some(s) = &self.input_shape {
            let mut bs: Vec<Value> = vec![Value::Null];
            bs.extend(s.iter().map(|&v| json!(v)));
            layers.push(json!({"class_name": "InputLayer", "config": {"batch_shape": bs, "dtype": T::DTYPE, "name": "input_layer"}}));
        }
        for l in &self.layers {
            layers.push(layer_to_config(l.as_ref()));
        }
        json!({"class_name": "Sequential", "config": {"name": self.name, "layers": layers, "dtype": T::DTYPE}, "memcell": {"seed": self.seed, "ties": self.ties}})
    }

    /// Builds a model from [`Sequential::to_config`]'s output (or Keras's own
    /// `model.get_config()` wrapped the same way), or from a bare JSON array of layer configs.
    pub fn from_config(v: &Value) -> Result<Self> {
        let layers = if let Some(a) = v.as_array() {
            a.clone()
        } else {
            let cfg = v.get("config").unwrap_or(v);
            cfg.get("layers")
                .and_then(|l| l.as_array())
                .cloned()
                .ok_or_else(|| Error::config("model config has no 'layers' array"))?
        };
        let mut m = Sequential::new();
        if let Some(n) = v.get("config").and_then(|c| c.get("name")).and_then(|n| n.as_str()) {
            m.name = n.to_string();
        }
        if let Some(s) = v.get("memcell").and_then(|c| c.get("seed")).and_then(|s| s.as_u64()) {
            m = m.seed(s);
        }
        if let Some(ties) = v.get("memcell").and_then(|c| c.get("ties")).and_then(|t| t.as_array()) {
            for t in ties {
                let pair = t.as_array().filter(|p| p.len() == 2).and_then(|p| Some((p[0].as_str()?, p[1].as_str()?)));
                let (a, b) =
                    pair.ok_or_else(|| Error::config(format!("tied weights: expected [target, source], got {t}")))?;
                m.ties.push((a.to_string(), b.to_string()));
            }
        }
        for (i, l) in layers.iter().enumerate() {
            let class = l
                .get("class_name")
                .and_then(|c| c.as_str())
                .ok_or_else(|| Error::config(format!("layer {i} has no 'class_name'")))?;
            let cfg = l.get("config").cloned().unwrap_or(Value::Null);
            if class == "InputLayer" {
                let bs = cfg
                    .get("batch_shape")
                    .or_else(|| cfg.get("batch_input_shape"))
                    .and_then(|b| b.as_array())
                    .ok_or_else(|| Error::config("InputLayer needs 'batch_shape'"))?;
                let shape: Vec<usize> = bs[1..]
                    .iter()
                    .map(|d| {
                        d.as_u64().map(|d| d as usize).ok_or_else(|| {
                            Error::config(format!("InputLayer: dimension {d} must be a positive integer"))
                        })
                    })
                    .collect::<Result<_>>()?;
                m.input_shape = Some(shape);
                continue;
            }
            m.push(layer_from_config::<T>(class, &cfg)?);
        }
        Ok(m)
    }

    /// Saves into folder `dir`: `config.json` (Keras vocabulary) and `model.safetensors`
    /// (Keras variable names, the compute dtype). Both files are written atomically.
    pub fn save(&mut self, dir: &Path) -> Result<()> {
        self.ensure_built()?;
        // A tied target kernel lags its source by the last optimizer step until the next call.
        self.sync_ties();
        let cfg = serde_json::to_vec_pretty(&self.to_config()).expect("json");
        let named = self.named_params();
        let tensors: Vec<(String, Vec<usize>, Vec<T>)> =
            named.into_iter().map(|(n, p)| (n, p.shape.clone(), p.value.clone())).collect();
        let bytes = write_safetensors(&tensors, None)?;
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        write_atomic(&dir.join("model.safetensors"), &bytes)?;
        write_atomic(&dir.join("config.json"), &cfg)?;
        Ok(())
    }

    /// Loads a model saved by [`Sequential::save`]; it predicts bit-identically.
    pub fn load(dir: &Path) -> Result<Self> {
        let cpath = dir.join("config.json");
        let text = std::fs::read_to_string(&cpath).map_err(|e| Error::io(&cpath, e))?;
        let v: Value = serde_json::from_str(&text).map_err(|e| Error::format(&cpath, e.to_string()))?;
        let mut m = Self::from_config(&v)?;
        m.build()?;
        let wpath = dir.join("model.safetensors");
        let bytes = std::fs::read(&wpath).map_err(|e| Error::io(&wpath, e))?;
        let st = read_safetensors(&wpath, &bytes)?;
        let names: Vec<String> = m.named_params().into_iter().map(|(n, _)| n).collect();
        for n in names {
            let (shape, vals) =
                st.tensors.get(&n).ok_or_else(|| Error::format(&wpath, format!("missing weight '{n}'")))?;
            m.set_weight_f64(&n, shape, vals)?;
        }
        Ok(m)
    }
}

/// `40601` -> `"40,601"`.
pub fn group(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn human_bytes(b: f64) -> String {
    if b < 1024.0 {
        format!("{b:.2} B")
    } else if b < 1024.0 * 1024.0 {
        format!("{:.2} KB", b / 1024.0)
    } else {
        format!("{:.2} MB", b / 1024.0 / 1024.0)
    }
}

/// Serialises named tensors in the compute dtype.
pub fn write_safetensors<T: Scalar>(
    tensors: &[(String, Vec<usize>, Vec<T>)],
    metadata: Option<HashMap<String, String>>,
) -> Result<Vec<u8>> {
    use safetensors::tensor::{Dtype, TensorView};
    let dtype = if T::DTYPE == "float32" { Dtype::F32 } else { Dtype::F64 };
    let raw: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
        .iter()
        .map(|(n, s, v)| {
            let mut b = Vec::with_capacity(v.len() * std::mem::size_of::<T>());
            for &x in v {
                if dtype == Dtype::F32 {
                    b.extend_from_slice(&(x.f64() as f32).to_le_bytes());
                } else {
                    b.extend_from_slice(&x.f64().to_le_bytes());
                }
            }
            (n.clone(), s.clone(), b)
        })
        .collect();
    let views: Vec<(String, TensorView)> = raw
        .iter()
        .map(|(n, s, b)| (n.clone(), TensorView::new(dtype, s.clone(), b).expect("consistent sizes")))
        .collect();
    safetensors::serialize(views, &metadata).map_err(|e| Error::config(format!("safetensors: {e}")))
}

/// A safetensors file read into f64 values (F32, F64 and U8 tensors).
pub struct SafeTensorsFile {
    pub metadata: HashMap<String, String>,
    pub tensors: HashMap<String, (Vec<usize>, Vec<f64>)>,
}

/// Reads every tensor of a safetensors file as f64.
pub fn read_safetensors(path: &Path, bytes: &[u8]) -> Result<SafeTensorsFile> {
    use safetensors::tensor::Dtype;
    use safetensors::SafeTensors;
    let fe = |m: String| Error::format(path, m);
    let (_, meta) = SafeTensors::read_metadata(bytes).map_err(|e| fe(format!("not a safetensors file: {e}")))?;
    let st = SafeTensors::deserialize(bytes).map_err(|e| fe(format!("not a safetensors file: {e}")))?;
    let metadata = meta.metadata().clone().unwrap_or_default();
    let mut tensors = HashMap::new();
    for (name, view) in st.tensors() {
        let d = view.data();
        let vals: Vec<f64> = match view.dtype() {
            Dtype::F64 => d.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().unwrap())).collect(),
            Dtype::F32 => d.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap()) as f64).collect(),
            Dtype::U8 => d.iter().map(|&v| v as f64).collect(),
            Dtype::BOOL => d.iter().map(|&v| (v != 0) as u8 as f64).collect(),
            other => return Err(fe(format!("tensor '{name}' has unsupported dtype {other:?}"))),
        };
        tensors.insert(name, (view.shape().to_vec(), vals));
    }
    Ok(SafeTensorsFile { metadata, tensors })
}

/// Adds the gradient of a variable's weight penalty (if any) into its gradient buffer.
fn add_penalty_grad<T: Scalar>(p: &mut Param<T>) {
    if let Some(r) = p.regularizer {
        let Param { value, grad, .. } = p;
        r.add_grad(value, grad, 1.0);
    }
}
