//! Layers: each is a forward/backward kernel pair with Keras's semantics, names and weight
//! layouts. Recurrent layers share one time loop ([`recurrent::Recurrent`]) over a cell
//! ([`SimpleRnnCell`], [`LstmCell`], [`GruCell`]); a new cell type is one new file.

pub mod bidirectional;
pub mod config;
pub mod dense;
pub mod gru;
pub mod lstm;
pub mod noise;
pub mod recurrent;
pub mod shape;
pub mod simple_rnn;

pub use bidirectional::{Bidirectional, MergeMode};
pub use dense::Dense;
pub use gru::{Gru, GruCell};
pub use lstm::{Lstm, LstmCell};
pub use noise::{GaussianNoise, Sampling};
pub use recurrent::{Cell, Recurrent};
pub use shape::{Dropout, Flatten, Masking, RepeatVector, Reshape};
pub use simple_rnn::{SimpleRnn, SimpleRnnCell};

use crate::error::{Error, Result};
use crate::tensor::{Scalar, Tensor};
use rand_chacha::ChaCha8Rng;

/// L1/L2 penalty on a weight or an activity: `l1 * sum|w| + l2 * sum w^2` (Keras's `L1L2`).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Regularizer {
    pub l1: f64,
    pub l2: f64,
}

impl Regularizer {
    /// Parses a Keras regularizer config (`null`, `{"class_name": "L2", "config": {"l2": 0.01}}`,
    /// `"l2"`), or returns `None`.
    pub fn from_json(v: Option<&serde_json::Value>) -> Result<Option<Regularizer>> {
        let v = match v {
            None | Some(serde_json::Value::Null) => return Ok(None),
            Some(v) => v,
        };
        if let Some(s) = v.as_str() {
            return match s {
                "l1" => Ok(Some(Regularizer { l1: 0.01, l2: 0.0 })),
                "l2" => Ok(Some(Regularizer { l1: 0.0, l2: 0.01 })),
                "l1_l2" => Ok(Some(Regularizer { l1: 0.01, l2: 0.01 })),
                other => Err(Error::unsupported("regularizer", other)),
            };
        }
        let class = v.get("class_name").and_then(|c| c.as_str()).unwrap_or("L1L2");
        let cfg = v.get("config").unwrap_or(v);
        let get = |k: &str| cfg.get(k).and_then(|x| x.as_f64()).unwrap_or(0.0);
        match class {
            "L1" | "L2" | "L1L2" => Ok(Some(Regularizer { l1: get("l1"), l2: get("l2") })),
            other => Err(Error::unsupported("regularizer", other)),
        }
    }

    /// The penalty of `w`.
    pub fn penalty<T: Scalar>(&self, w: &[T]) -> f64 {
        let mut s = 0.0;
        for &v in w {
            let v = v.f64();
            s += self.l1 * v.abs() + self.l2 * v * v;
        }
        s
    }

    /// Adds `scale * d penalty / dw` into `g`.
    pub fn add_grad<T: Scalar>(&self, w: &[T], g: &mut [T], scale: f64) {
        let (l1, l2) = (T::of(self.l1 * scale), T::of(2.0 * self.l2 * scale));
        for (gv, &wv) in g.iter_mut().zip(w) {
            let sign = if wv > T::zero() {
                T::one()
            } else if wv < T::zero() {
                -T::one()
            } else {
                T::zero()
            };
            *gv += l1 * sign + l2 * wv;
        }
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({"class_name": "L1L2", "config": {"l1": self.l1, "l2": self.l2}})
    }
}

/// The sparse-autoencoder penalty on a layer's activations (UFLDL's sparse autoencoder):
/// `beta · Σ_j KL(rho ‖ rho_hat_j)`, with `rho_hat_j` the mean activation of unit j over the
/// batch (and time steps) and `KL(p ‖ q) = p ln(p/q) + (1-p) ln((1-p)/(1-q))`. It pulls each
/// unit's mean activation toward the small target `rho`; the activations must lie in (0, 1)
/// (a sigmoid layer). `rho_hat` is clamped to [1e-7, 1 - 1e-7] where the logarithms are taken.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct KlSparsity {
    /// Target mean activation, in (0, 1).
    pub rho: f64,
    /// Weight of the penalty.
    pub beta: f64,
}

impl KlSparsity {
    const EPS: f64 = 1e-7;

    /// Validated constructor: `rho` in (0, 1), `beta` finite and non-negative.
    pub fn new(rho: f64, beta: f64) -> Result<Self> {
        if !(rho > 0.0 && rho < 1.0) {
            return Err(Error::config(format!("sparsity target rho must be in (0, 1), got {rho}")));
        }
        if !(beta.is_finite() && beta >= 0.0) {
            return Err(Error::config(format!("sparsity weight beta must be finite and >= 0, got {beta}")));
        }
        Ok(KlSparsity { rho, beta })
    }

    /// Parses `{"rho": 0.05, "beta": 3.0}`, or returns `None`.
    pub fn from_json(v: Option<&serde_json::Value>) -> Result<Option<Self>> {
        match v {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(v) => {
                let get = |k: &str| {
                    v.get(k)
                        .and_then(|x| x.as_f64())
                        .ok_or_else(|| Error::config(format!("activity_sparsity needs a number '{k}', got {v}")))
                };
                Ok(Some(Self::new(get("rho")?, get("beta")?)?))
            }
        }
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({"rho": self.rho, "beta": self.beta})
    }

    fn mean_activations<T: Scalar>(a: &[T], units: usize) -> Vec<f64> {
        let rows = (a.len() / units).max(1);
        let mut m = vec![0.0; units];
        for row in a.chunks_exact(units) {
            for (s, &v) in m.iter_mut().zip(row) {
                *s += v.f64();
            }
        }
        m.iter_mut().for_each(|s| *s /= rows as f64);
        m
    }

    /// The penalty of activations `a` (rows, units).
    pub fn penalty<T: Scalar>(&self, a: &[T], units: usize) -> f64 {
        let (p, e) = (self.rho, Self::EPS);
        Self::mean_activations(a, units)
            .into_iter()
            .map(|q| {
                let q = q.clamp(e, 1.0 - e);
                p * (p / q).ln() + (1.0 - p) * ((1.0 - p) / (1.0 - q)).ln()
            })
            .sum::<f64>()
            * self.beta
    }

    /// Adds d penalty / d a into `g` (rows, units):
    /// `beta / rows · (-rho / rho_hat_j + (1 - rho) / (1 - rho_hat_j))` for every row.
    pub fn add_grad<T: Scalar>(&self, a: &[T], g: &mut [T], units: usize) {
        let rows = (a.len() / units).max(1) as f64;
        let (p, e) = (self.rho, Self::EPS);
        let d: Vec<T> = Self::mean_activations(a, units)
            .into_iter()
            .map(|q| {
                // The clamp is flat outside [e, 1 - e]: no gradient there.
                if q < e || q > 1.0 - e {
                    T::zero()
                } else {
                    T::of(self.beta / rows * (-p / q + (1.0 - p) / (1.0 - q)))
                }
            })
            .collect();
        for row in g.chunks_exact_mut(units) {
            for (gv, &dv) in row.iter_mut().zip(&d) {
                *gv += dv;
            }
        }
    }
}

/// A trainable variable with its Keras name (`kernel`, `recurrent_kernel`, `bias`), its Keras
/// shape, its value, the gradient buffer backward adds into, and an optional penalty.
#[derive(Clone, Debug)]
pub struct Param<T> {
    pub name: String,
    pub shape: Vec<usize>,
    pub value: Vec<T>,
    pub grad: Vec<T>,
    pub regularizer: Option<Regularizer>,
}

impl<T: Scalar> Param<T> {
    pub fn new(name: &str, shape: &[usize], value: Vec<T>) -> Self {
        let n = value.len();
        Param { name: name.to_string(), shape: shape.to_vec(), value, grad: vec![T::zero(); n], regularizer: None }
    }
    pub fn zero_grad(&mut self) {
        self.grad.fill(T::zero());
    }
}

/// A timestep mask (batch, time): `true` keeps the step (Keras's `mask`).
#[derive(Clone, Debug, PartialEq)]
pub struct Mask {
    pub batch: usize,
    pub time: usize,
    pub keep: Vec<bool>,
}

impl Mask {
    pub fn get(&self, b: usize, t: usize) -> bool {
        self.keep[b * self.time + t]
    }
    pub fn gather_batch(&self, idx: &[usize]) -> Mask {
        let mut keep = Vec::with_capacity(idx.len() * self.time);
        for &i in idx {
            keep.extend_from_slice(&self.keep[i * self.time..(i + 1) * self.time]);
        }
        Mask { batch: idx.len(), time: self.time, keep }
    }
}

/// What a forward call knows besides its input.
pub struct Ctx<'a, T> {
    /// Training mode: dropout is active.
    pub training: bool,
    /// The timestep mask flowing with the tensor; layers consume, keep or replace it.
    pub mask: Option<Mask>,
    /// Initial states for the next recurrent layer (taken by the first one that runs).
    pub initial_state: Option<Vec<Tensor<T>>>,
    /// Generator for dropout masks and noise.
    pub rng: &'a mut ChaCha8Rng,
    /// Keep what backward needs. False in inference (`predict`, `evaluate`): layers may then
    /// keep nothing, and a recurrent layer holds one step of scratch instead of all of them.
    pub for_backward: bool,
}

/// The rest of a layer's backward pass after [`Layer::backward_split`]: it finishes the
/// parameter gradients and returns the parameters (in [`Layer::params_mut`] order).
pub type ParamJob<'a, T> = Box<dyn FnOnce() -> Vec<&'a mut Param<T>> + Send + 'a>;

/// A layer: forward keeps what backward needs; backward adds parameter gradients into the
/// gradient buffers (zeroing is the training loop's business) and returns the input gradient.
/// [`Layer::backward_split`] is the same pass in two parts, overwriting the gradients, for
/// `fit`'s training steps.
pub trait Layer<T: Scalar>: Send {
    /// The layer's name (weights are saved as `<name>/<variable>`).
    fn name(&self) -> &str;
    /// Renames the layer (a model makes names unique as Keras does: `dense`, `dense_1`, ...).
    fn set_name(&mut self, name: &str);
    /// The Keras class name, e.g. `"LSTM"`.
    fn class_name(&self) -> &'static str;
    /// Creates the weights for inputs of shape `input` (without the batch axis) and returns the
    /// output shape. Fails with a message when the input shape does not fit the layer.
    fn build(&mut self, input: &[usize], rng: &mut ChaCha8Rng) -> Result<Vec<usize>>;
    /// Forward pass over a batch.
    fn forward(&mut self, x: &Tensor<T>, ctx: &mut Ctx<T>) -> Result<Tensor<T>>;
    /// Backward pass: `dy` has the shape of the last output; returns the input gradient.
    fn backward(&mut self, dy: &Tensor<T>) -> Tensor<T>;
    /// [`Layer::backward`] without the input gradient (the first layer of a model in `fit`,
    /// whose input is data): layers with a costly one (Dense, recurrent) skip its product.
    fn backward_params(&mut self, dy: &Tensor<T>) {
        let _ = self.backward(dy);
    }
    /// [`Layer::backward`] in two parts, for `fit`'s training steps (which may overlap the
    /// parameter updates with the rest of the backward pass): the input gradient at once (an
    /// empty tensor when not `need_dx`), and a job that finishes the parameter gradients and
    /// returns the parameters (for the optimizer's update). Layers whose weight gradients are
    /// products off the input gradient's path (recurrent layers) leave those to the job; the
    /// default computes everything at once. The gradients come out the same either way.
    ///
    /// With `overwrite`, the gradient buffers may hold anything beforehand: the gradients
    /// replace their contents instead of being added (the step then need not zero them).
    fn backward_split<'a>(
        &'a mut self,
        dy: &Tensor<T>,
        need_dx: bool,
        overwrite: bool,
    ) -> (Tensor<T>, ParamJob<'a, T>) {
        if overwrite {
            for p in self.params_mut() {
                p.zero_grad();
            }
        }
        let dx = if need_dx {
            self.backward(dy)
        } else {
            self.backward_params(dy);
            Tensor::zeros(&[0])
        };
        (dx, Box::new(move || self.params_mut()))
    }
    /// The trainable variables, in Keras's order.
    fn params(&self) -> Vec<&Param<T>> {
        Vec::new()
    }
    /// The trainable variables, mutable.
    fn params_mut(&mut self) -> Vec<&mut Param<T>> {
        Vec::new()
    }
    /// Full weight names in [`Layer::params`] order: `<layer>/<variable>` (Bidirectional:
    /// `<layer>/<forward or backward layer>/<variable>`).
    fn weight_names(&self) -> Vec<String> {
        self.params().iter().map(|p| format!("{}/{}", self.name(), p.name)).collect()
    }
    /// The Keras config (`get_config()` keys that matter).
    fn config(&self) -> serde_json::Value;
    /// States returned by the last forward call (`return_state`), in Keras's order.
    fn states(&self) -> Vec<Tensor<T>> {
        Vec::new()
    }
    /// Whether this layer returns its states (Keras `return_state`).
    fn returns_state(&self) -> bool {
        false
    }
    /// Gradients with respect to the initial states given in the last forward call.
    fn initial_state_grads(&self) -> Vec<Tensor<T>> {
        Vec::new()
    }
    /// Forgets the carried states of a stateful layer.
    fn reset_state(&mut self) {}
    /// Penalty from the activity regularizer on the last output (already scaled as Keras does).
    fn activity_penalty(&self) -> f64 {
        0.0
    }
    /// This layer as one time step of a stack of recurrent layers that inference runs a step
    /// at a time ([`recurrent::StackStep`]); `None` for layers that are not recurrent.
    fn stack_step(&self) -> Option<&dyn recurrent::StackStep<T>> {
        None
    }
    /// [`Layer::stack_step`], mutable.
    fn stack_step_mut(&mut self) -> Option<&mut dyn recurrent::StackStep<T>> {
        None
    }
}

/// Parses `units` from a config: a positive integer, or an integral float such as the seed's
/// `Dense(hidden_neurons/2)` = 125.0 (accepted, as Keras accepts it).
pub fn parse_units(layer: &str, v: Option<&serde_json::Value>) -> Result<usize> {
    let v = v.ok_or_else(|| Error::config(format!("layer '{layer}': missing 'units'")))?;
    if let Some(u) = v.as_u64() {
        if u > 0 {
            return Ok(u as usize);
        }
    }
    if let Some(f) = v.as_f64() {
        if f.is_finite() && f > 0.0 && f.fract() == 0.0 && f < 1e9 {
            return Ok(f as usize);
        }
    }
    Err(Error::config(format!("layer '{layer}': units must be a positive integer, got {v}")))
}

/// Checks a rate in [0, 1).
pub fn check_rate(layer: &str, what: &str, r: f64) -> Result<f64> {
    if r.is_finite() && (0.0..1.0).contains(&r) {
        Ok(r)
    } else {
        Err(Error::config(format!("layer '{layer}': {what} must be in [0, 1), got {r}")))
    }
}
