//! Optimizers as Keras 3 computes them, gradient clipping and learning-rate schedules.
//!
//! Every hyper-parameter enters the arithmetic the way Keras's does, so that a run in f64
//! matches Keras's float64 numbers: Keras keeps the learning rate in a float32 variable and
//! converts python floats like `beta_1` through float32 where it casts them to the
//! variable's dtype (see `adam_steps` in the fixtures README).

use crate::error::{Error, Result};
use crate::layers::Param;
use crate::tensor::{Scalar, Slots};

/// One Adam step over a variable: `m += (g - m)(1 - β1)`, `v += (g² - v)(1 - β2)`,
/// `w -= m·α / (sqrt(v) + ε)`, with `g` the gradient times the clipping scale `sc`; with
/// `zero`, the gradient is set to zero in the same pass (the fit loop's next backward adds
/// into it: one sweep over the variable instead of two).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn adam_kernel<T: Scalar>(
    w: &mut [T],
    g: &mut [T],
    m: &mut [T],
    v: &mut [T],
    sc: T,
    c1: T,
    c2: T,
    alpha: T,
    eps: T,
    zero: bool,
) {
    let n = w.len();
    let (g, m, v) = (&mut g[..n], &mut m[..n], &mut v[..n]);
    for i in 0..n {
        let gi = g[i] * sc;
        if zero {
            g[i] = T::zero();
        }
        let mi = m[i] + (gi - m[i]) * c1;
        let vi = v[i] + (gi * gi - v[i]) * c2;
        m[i] = mi;
        v[i] = vi;
        w[i] -= mi * alpha / (vi.sqrt() + eps);
    }
}
crate::simd::dispatch! { fn adam_update<T: Scalar>(w: &mut [T], g: &mut [T], m: &mut [T], v: &mut [T], sc: T, c1: T,
c2: T, alpha: T, eps: T, zero: bool) => adam_kernel }

/// Rounds through f32, as Keras does for values it stores in float32 variables.
fn r32(v: f64) -> f64 {
    v as f32 as f64
}

/// A learning-rate schedule (Keras `keras.optimizers.schedules`).
#[derive(Clone, Debug, PartialEq)]
pub enum Schedule {
    Constant(f64),
    /// `lr = initial * decay_rate ^ (step / decay_steps)` (floored when `staircase`).
    ExponentialDecay {
        initial: f64,
        decay_steps: f64,
        decay_rate: f64,
        staircase: bool,
    },
}

impl Schedule {
    /// The learning rate at optimizer step `step` (0 before the first update).
    pub fn at(&self, step: u64) -> f64 {
        match *self {
            Schedule::Constant(lr) => lr,
            Schedule::ExponentialDecay { initial, decay_steps, decay_rate, staircase } => {
                let mut p = step as f64 / decay_steps;
                if staircase {
                    p = p.floor();
                }
                initial * decay_rate.powf(p)
            }
        }
    }
}

/// Which update rule.
#[derive(Clone, Debug, PartialEq)]
pub enum Rule {
    Adam {
        beta_1: f64,
        beta_2: f64,
        epsilon: f64,
        amsgrad: bool,
    },
    /// Adam with decoupled weight decay: `w -= w * weight_decay * lr` before the Adam step.
    AdamW {
        beta_1: f64,
        beta_2: f64,
        epsilon: f64,
        amsgrad: bool,
        weight_decay: f64,
    },
    Sgd {
        momentum: f64,
        nesterov: bool,
    },
    RmsProp {
        rho: f64,
        momentum: f64,
        epsilon: f64,
        centered: bool,
    },
}

/// Gradient clipping (Keras allows one kind at a time).
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct Clip {
    /// Each variable's gradient is rescaled to norm at most this.
    pub clipnorm: Option<f64>,
    /// Each gradient value is clipped to [-v, v].
    pub clipvalue: Option<f64>,
    /// All gradients together are rescaled to global norm at most this.
    pub global_clipnorm: Option<f64>,
}

/// An optimizer with its per-variable slots.
#[derive(Clone, Debug)]
pub struct Optimizer {
    pub rule: Rule,
    pub schedule: Schedule,
    pub clip: Clip,
    /// Optimizer steps taken (Keras `iterations`).
    pub iterations: u64,
    /// A multiplier set by callbacks such as ReduceLROnPlateau (1 by default).
    pub lr_override: Option<f64>,
    slots: Slots,
}

impl Optimizer {
    fn with(rule: Rule, lr: f64) -> Self {
        Optimizer {
            rule,
            schedule: Schedule::Constant(lr),
            clip: Clip::default(),
            iterations: 0,
            lr_override: None,
            slots: Slots::default(),
        }
    }
    /// Keras `Adam(learning_rate=lr)` with beta_1 0.9, beta_2 0.999, epsilon 1e-7.
    pub fn adam(lr: f64) -> Self {
        Self::with(Rule::Adam { beta_1: 0.9, beta_2: 0.999, epsilon: 1e-7, amsgrad: false }, lr)
    }
    /// Keras `AdamW(learning_rate=lr, weight_decay=0.004)`.
    pub fn adamw(lr: f64, weight_decay: f64) -> Self {
        Self::with(Rule::AdamW { beta_1: 0.9, beta_2: 0.999, epsilon: 1e-7, amsgrad: false, weight_decay }, lr)
    }
    /// Keras `SGD(learning_rate=lr, momentum, nesterov)`.
    pub fn sgd(lr: f64, momentum: f64, nesterov: bool) -> Self {
        Self::with(Rule::Sgd { momentum, nesterov }, lr)
    }
    /// Keras `RMSprop(learning_rate=lr)` with rho 0.9, no momentum, epsilon 1e-7.
    pub fn rmsprop(lr: f64) -> Self {
        Self::with(Rule::RmsProp { rho: 0.9, momentum: 0.0, epsilon: 1e-7, centered: false }, lr)
    }

    /// Builds from a name and options, as in a config file (`{type = "adam", learning_rate = 1e-3}`).
    pub fn from_json(v: &serde_json::Value) -> Result<Self> {
        let name = match v {
            serde_json::Value::String(s) => s.as_str(),
            _ => v.get("type").or_else(|| v.get("class_name")).and_then(|t| t.as_str()).unwrap_or(""),
        };
        let cfg = v.get("config").unwrap_or(v);
        let num = |k: &str, d: f64| -> Result<f64> {
            match cfg.get(k) {
                None | Some(serde_json::Value::Null) => Ok(d),
                Some(x) => x
                    .as_f64()
                    .ok_or_else(|| Error::config(format!("optimizer '{name}': '{k}' must be a number, got {x}"))),
            }
        };
        let flag = |k: &str| cfg.get(k).and_then(|x| x.as_bool()).unwrap_or(false);
        let lr_default = match name.to_lowercase().as_str() {
            "sgd" => 0.01,
            _ => 0.001,
        };
        // learning_rate: a number, or a schedule
        // ({"class_name": "ExponentialDecay", "config": {...}} as Keras serialises it, or
        // {type = "exponential_decay", initial_learning_rate, decay_steps, decay_rate, staircase}).
        let mut schedule = None;
        let lr = match cfg.get("learning_rate") {
            Some(sv @ serde_json::Value::Object(_)) => {
                let kind = sv.get("class_name").or_else(|| sv.get("type")).and_then(|t| t.as_str()).unwrap_or("");
                let sc = sv.get("config").unwrap_or(sv);
                let g = |k: &str| -> Result<f64> {
                    sc.get(k).and_then(|x| x.as_f64()).ok_or_else(|| {
                        Error::config(format!("learning-rate schedule '{kind}': '{k}' must be a number"))
                    })
                };
                match kind {
                    "ExponentialDecay" | "exponential_decay" => {
                        let (initial, decay_steps, decay_rate) =
                            (g("initial_learning_rate")?, g("decay_steps")?, g("decay_rate")?);
                        if !(decay_steps > 0.0 && decay_rate > 0.0) {
                            return Err(Error::config(format!(
                                "exponential_decay needs decay_steps > 0 and decay_rate > 0, got {decay_steps} and {decay_rate}"
                            )));
                        }
                        let staircase = sc.get("staircase").and_then(|x| x.as_bool()).unwrap_or(false);
                        schedule = Some(Schedule::ExponentialDecay { initial, decay_steps, decay_rate, staircase });
                        initial
                    }
                    other => {
                        return Err(Error::unsupported(
                            "learning-rate schedule",
                            format!("'{other}' (known: exponential_decay)"),
                        ))
                    }
                }
            }
            _ => num("learning_rate", lr_default)?,
        };
        let (b1, b2, eps) = (num("beta_1", 0.9)?, num("beta_2", 0.999)?, num("epsilon", 1e-7)?);
        let mut o = match name.to_lowercase().as_str() {
            "adam" => Self::with(Rule::Adam { beta_1: b1, beta_2: b2, epsilon: eps, amsgrad: flag("amsgrad") }, lr),
            "adamw" => Self::with(
                Rule::AdamW {
                    beta_1: b1,
                    beta_2: b2,
                    epsilon: eps,
                    amsgrad: flag("amsgrad"),
                    weight_decay: num("weight_decay", 0.004)?,
                },
                lr,
            ),
            "sgd" => Self::with(Rule::Sgd { momentum: num("momentum", 0.0)?, nesterov: flag("nesterov") }, lr),
            "rmsprop" => Self::with(
                Rule::RmsProp {
                    rho: num("rho", 0.9)?,
                    momentum: num("momentum", 0.0)?,
                    epsilon: eps,
                    centered: flag("centered"),
                },
                lr,
            ),
            other => {
                return Err(Error::unsupported("optimizer", format!("'{other}' (known: adam, adamw, sgd, rmsprop)")))
            }
        };
        if let Some(sch) = schedule {
            o.schedule = sch;
        }
        o.clip = Clip {
            clipnorm: cfg.get("clipnorm").and_then(|x| x.as_f64()),
            clipvalue: cfg.get("clipvalue").and_then(|x| x.as_f64()),
            global_clipnorm: cfg.get("global_clipnorm").and_then(|x| x.as_f64()),
        };
        o.validate()?;
        Ok(o)
    }

    /// Checks the hyper-parameters once.
    pub fn validate(&self) -> Result<()> {
        let lr = self.schedule.at(0);
        if !(lr.is_finite() && lr >= 0.0) {
            return Err(Error::config(format!("learning_rate must be a finite number >= 0, got {lr}")));
        }
        let set =
            [self.clip.clipnorm, self.clip.clipvalue, self.clip.global_clipnorm].iter().filter(|c| c.is_some()).count();
        if set > 1 {
            return Err(Error::config("only one of clipnorm, clipvalue and global_clipnorm may be set (as in Keras)"));
        }
        for c in [self.clip.clipnorm, self.clip.clipvalue, self.clip.global_clipnorm].into_iter().flatten() {
            if !(c.is_finite() && c > 0.0) {
                return Err(Error::config(format!("clipping thresholds must be positive, got {c}")));
            }
        }
        Ok(())
    }

    /// The learning rate the next step will use.
    pub fn learning_rate(&self) -> f64 {
        self.lr_override.unwrap_or_else(|| self.schedule.at(self.iterations))
    }

    /// Sets a fixed learning rate (used by ReduceLROnPlateau).
    pub fn set_learning_rate(&mut self, lr: f64) {
        self.lr_override = Some(lr);
    }

    /// Applies one update to `params` from their `grad` buffers (left unchanged).
    ///
    /// The slots (Adam's m and v, momenta) live in the variables' dtype, as in Keras; the
    /// update of each variable is one fused pass over value, gradient and slots.
    pub fn step<T: Scalar>(&mut self, params: &mut [&mut Param<T>]) {
        self.step_inner(params, false)
    }

    /// [`Optimizer::step`], leaving every gradient at zero afterwards (what `fit` does before
    /// its next batch; for Adam the zeroing rides on the update pass).
    pub fn step_and_zero_grads<T: Scalar>(&mut self, params: &mut [&mut Param<T>]) {
        self.step_inner(params, true)
    }

    fn step_inner<T: Scalar>(&mut self, params: &mut [&mut Param<T>], zero: bool) {
        let lens: Vec<usize> = params.iter().map(|p| p.value.len()).collect();
        let (rule, slots) = self.begin_step::<T>(&lens);
        let global = rule.global_scale(params);
        rule.update(params, slots, global, zero);
        self.end_step();
    }

    /// Starts one step over variables of lengths `lens` (in the order they will be updated):
    /// the step's rule and hyper-parameters, and one slot set per variable (created, zeroed, on
    /// the first step or when the variables change). [`StepRule::update`] then updates the
    /// variables, all at once or group by group (each variable once), and
    /// [`Optimizer::end_step`] counts the step.
    pub(crate) fn begin_step<T: Scalar>(&mut self, lens: &[usize]) -> (StepRule<T>, &mut [Vec<Vec<T>>]) {
        let nslots = match self.rule {
            Rule::Adam { amsgrad, .. } | Rule::AdamW { amsgrad, .. } => 2 + amsgrad as usize,
            Rule::Sgd { momentum, .. } => (momentum != 0.0) as usize,
            Rule::RmsProp { momentum, centered, .. } => 1 + (momentum > 0.0) as usize + centered as usize,
        };
        let lr = T::of(r32(self.learning_rate()));
        let t = self.iterations + 1;
        let rule = StepRule { rule: self.rule.clone(), clip: self.clip, lr, t };
        let slots: &mut Vec<Vec<Vec<T>>> = T::slots(&mut self.slots);
        if slots.len() != lens.len()
            || slots.iter().zip(lens).any(|(s, &n)| s.len() != nslots || s.iter().any(|v| v.len() != n))
        {
            *slots = lens.iter().map(|&n| vec![vec![T::zero(); n]; nslots]).collect();
        }
        (rule, slots.as_mut_slice())
    }

    /// Counts the step begun by [`Optimizer::begin_step`].
    pub(crate) fn end_step(&mut self) {
        self.iterations += 1;
    }
}

/// One step's rule and hyper-parameters (learning rate, step number), from
/// [`Optimizer::begin_step`]. Each variable's update depends only on its own gradient and
/// slots (and, with `global_clipnorm`, on the global norm given to it), so variables may be
/// updated in any grouping and order, on any thread, with the same result.
#[derive(Clone, Debug)]
pub(crate) struct StepRule<T> {
    rule: Rule,
    clip: Clip,
    lr: T,
    t: u64,
}

impl<T: Scalar> StepRule<T> {
    /// The gradient scale of global-norm clipping over all `params` (1 without it).
    pub(crate) fn global_scale(&self, params: &[&mut Param<T>]) -> T {
        if let Some(c) = self.clip.global_clipnorm {
            let n = params.iter().flat_map(|p| p.grad.iter()).map(|v| v.f64() * v.f64()).sum::<f64>().sqrt();
            if n > c {
                return T::of(c / n);
            }
        }
        T::one()
    }

    /// Updates `params` from their `grad` buffers, `slots[i]` being `params[i]`'s slots;
    /// `global` is [`StepRule::global_scale`] of the whole step. With `zero`, every gradient is
    /// left at zero (for Adam in the same pass). The pieces (see [`StepRule::pieces`]) are
    /// shared out over the threads when there are many.
    pub(crate) fn update(&self, params: &mut [&mut Param<T>], slots: &mut [Vec<Vec<T>>], global: T, zero: bool) {
        let pieces = self.pieces(params.iter_mut().map(|p| &mut **p), slots, global);
        // Weighted so that updates of more than ~128k values are shared out (measured: 0.3-0.5 ns
        // a value on one thread, so ~60 µs, well above the cost of handing half to a worker).
        let total: usize = pieces.iter().map(|pc| pc.value.len()).sum();
        crate::tensor::parallel_chunks(pieces, 160.0 * total as f64, |pc| self.update_piece(pc, zero));
    }

    /// Cuts the variables into pieces of at most 32k values, each with its slots' matching
    /// parts and the variable's gradient scale (clipping by norm: the whole variable's norm;
    /// else `global`). The update is element-wise, so pieces may be updated in any order, on
    /// any thread.
    pub(crate) fn pieces<'p>(
        &self,
        params: impl IntoIterator<Item = &'p mut Param<T>>,
        slots: &'p mut [Vec<Vec<T>>],
        global: T,
    ) -> Vec<Piece<'p, T>> {
        const PIECE: usize = 1 << 15;
        let mut out = Vec::new();
        let mut params = params.into_iter();
        for sl in slots.iter_mut() {
            let p = params.next().expect("one variable per slot set");
            let mut scale = global;
            if let Some(c) = self.clip.clipnorm {
                let n = p.grad.iter().map(|v| v.f64() * v.f64()).sum::<f64>().sqrt();
                if n > c {
                    scale = T::of(c / n);
                }
            }
            let n = p.value.len();
            let Param { value, grad, .. } = p;
            let mut slot_chunks: Vec<_> = sl.iter_mut().map(|v| v[..n].chunks_mut(PIECE)).collect();
            for (value, grad) in value.chunks_mut(PIECE).zip(grad[..n].chunks_mut(PIECE)) {
                let slots = slot_chunks.iter_mut().map(|c| c.next().expect("same length")).collect();
                out.push(Piece { value, grad, slots, scale });
            }
        }
        assert!(params.next().is_none(), "one slot set per variable");
        out
    }

    /// Updates one piece (see [`StepRule::pieces`]); with `zero`, leaves its gradient at zero.
    pub(crate) fn update_piece(&self, pc: Piece<'_, T>, zero: bool) {
        let Piece { value, grad, slots: mut sl, scale: sc } = pc;
        let n = value.len();
        let lr = self.lr;
        let clamp = self.clip.clipvalue.map(|c| (T::of(-c), T::of(c)));
        let grad_at = |g: T| -> T {
            let g = g * sc;
            match clamp {
                Some((lo, hi)) => g.max(lo).min(hi),
                None => g,
            }
        };
        match self.rule {
            Rule::Adam { beta_1, beta_2, epsilon, amsgrad } | Rule::AdamW { beta_1, beta_2, epsilon, amsgrad, .. } => {
                if let Rule::AdamW { weight_decay, .. } = self.rule {
                    // Keras: variable -= variable * weight_decay * learning_rate
                    let wd = T::of(r32(weight_decay)) * lr;
                    value.iter_mut().for_each(|w| *w -= *w * wd);
                }
                let b1 = T::of(r32(beta_1));
                let b2 = T::of(r32(beta_2));
                let t = self.t as i32;
                let alpha = lr * (T::one() - b2.powi(t)).sqrt() / (T::one() - b1.powi(t));
                let (c1, c2, eps) = (T::of(1.0 - beta_1), T::of(1.0 - beta_2), T::of(epsilon));
                let mut it = sl.iter_mut();
                let (ms, vs) = (it.next().expect("m"), it.next().expect("v"));
                if amsgrad {
                    let vh = it.next().expect("v_hat");
                    for i in 0..n {
                        let gi = grad_at(grad[i]);
                        ms[i] += (gi - ms[i]) * c1;
                        vs[i] += (gi * gi - vs[i]) * c2;
                        vh[i] = vh[i].max(vs[i]);
                        value[i] -= ms[i] * alpha / (vh[i].sqrt() + eps);
                    }
                } else if clamp.is_none() {
                    // The hot path: one vectorised pass, zeroing included.
                    adam_update(value, grad, ms, vs, sc, c1, c2, alpha, eps, zero);
                    return;
                } else {
                    for i in 0..n {
                        let gi = grad_at(grad[i]);
                        ms[i] += (gi - ms[i]) * c1;
                        vs[i] += (gi * gi - vs[i]) * c2;
                        value[i] -= ms[i] * alpha / (vs[i].sqrt() + eps);
                    }
                }
            }
            Rule::Sgd { momentum, nesterov } => {
                if momentum == 0.0 {
                    for i in 0..n {
                        value[i] -= grad_at(grad[i]) * lr;
                    }
                } else {
                    let mu = T::of(r32(momentum));
                    let mom = &mut sl[0];
                    for i in 0..n {
                        let gi = grad_at(grad[i]);
                        // m = -g·lr + m·μ
                        let m = -gi * lr + mom[i] * mu;
                        mom[i] = m;
                        if nesterov {
                            value[i] += -gi * lr + m * mu;
                        } else {
                            value[i] += m;
                        }
                    }
                }
            }
            Rule::RmsProp { rho, momentum, epsilon, centered } => {
                let (rh, one_m_rho, eps) = (T::of(rho), T::of(1.0 - rho), T::of(epsilon));
                let k = sl.len() - 1;
                for i in 0..n {
                    let gi = grad_at(grad[i]);
                    let vel = rh * sl[0][i] + one_m_rho * gi * gi;
                    sl[0][i] = vel;
                    let denom = if centered {
                        let ag = rh * sl[k][i] + one_m_rho * gi;
                        sl[k][i] = ag;
                        vel - ag * ag + eps
                    } else {
                        vel + eps
                    };
                    let inc = lr * gi / denom.sqrt();
                    if momentum > 0.0 {
                        let mv = T::of(momentum) * sl[1][i] + inc;
                        sl[1][i] = mv;
                        value[i] -= mv;
                    } else {
                        value[i] -= inc;
                    }
                }
            }
        }
        if zero {
            grad.fill(T::zero());
        }
    }
}

/// A piece of a variable with its slots' matching parts (see [`StepRule::pieces`]).
pub(crate) struct Piece<'p, T> {
    value: &'p mut [T],
    grad: &'p mut [T],
    slots: Vec<&'p mut [T]>,
    scale: T,
}
