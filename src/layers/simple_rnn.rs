//! SimpleRNN (Elman network): `h_t = f(x_t · W + b + h_{t-1} · U)`.
//!
//! Keras `SimpleRNN(200, activation="tanh")` is `SimpleRnn::new(200)`; weights `kernel` (F, H),
//! `recurrent_kernel` (H, H), `bias` (H).

use super::recurrent::{Cell, RecWeights, Recurrent};
use crate::activation::{apply_rows, backprop_rows, Activation};
use crate::tensor::{Acc, Scalar};

/// The SimpleRNN layer.
pub type SimpleRnn<T> = Recurrent<T, SimpleRnnCell>;

/// One SimpleRNN step.
#[derive(Clone, Debug)]
pub struct SimpleRnnCell {
    pub units: usize,
    pub activation: Activation,
}

impl<T: Scalar> SimpleRnn<T> {
    /// `SimpleRNN(units)` with Keras's defaults (tanh).
    pub fn new(units: usize) -> Self {
        Recurrent::from_cell(SimpleRnnCell { units, activation: Activation::Tanh })
    }
    /// Sets the activation by Keras name; panics on an unknown name.
    pub fn activation(mut self, name: &str) -> Self {
        self.cell.activation = Activation::parse(name).expect("unknown activation");
        self
    }
}

// cache layout per step: z (B, H) | h (B, H)
impl<T: Scalar> Cell<T> for SimpleRnnCell {
    const CLASS: &'static str = "SimpleRNN";
    const DEFAULT_NAME: &'static str = "simple_rnn";
    fn units(&self) -> usize {
        self.units
    }
    fn gates(&self) -> usize {
        1
    }
    fn cache_width(&self) -> usize {
        2 * self.units
    }
    fn drec_is_dp(&self) -> bool {
        true
    }
    fn config(&self, cfg: &mut serde_json::Map<String, serde_json::Value>) {
        cfg.insert("activation".into(), self.activation.name().into());
    }

    fn forward_step(
        &self,
        w: &RecWeights<T>,
        b: usize,
        p: &[T],
        hr: &[T],
        _prev: &[&[T]],
        next: &mut [&mut [T]],
        cache: &mut [T],
        zero_prev: bool,
    ) {
        let h = self.units;
        let (z, hs) = cache.split_at_mut(b * h);
        // z = p + hr · U
        z.copy_from_slice(p);
        if !zero_prev {
            w.times_u(b, h, hr, h, z, h, Acc::Add);
        }
        // h = f(z), vectorised for tanh and sigmoid
        apply_rows(self.activation, z, hs, h);
        next[0].copy_from_slice(hs);
    }

    fn backward_step(
        &self,
        w: &RecWeights<T>,
        b: usize,
        _hr: &[T],
        _prev: &[&[T]],
        cache: &[T],
        dnext: &[&[T]],
        dp: &mut [T],
        _drec: &mut [T],
        dhr: &mut [T],
        dprev: &mut [&mut [T]],
        need_dprev: bool,
    ) {
        let h = self.units;
        let (z, hs) = cache.split_at(b * h);
        // h = f(z)  =>  dz = dh · f'(z)
        dp.copy_from_slice(dnext[0]);
        backprop_rows(self.activation, z, hs, dp, h);
        // z = p + hr · U  =>  dhr = dz · Uᵀ
        if need_dprev {
            w.times_ut(b, h, 0, h, dp, h, dhr, h, Acc::Overwrite);
        }
        dprev[0].fill(T::zero());
    }
}
