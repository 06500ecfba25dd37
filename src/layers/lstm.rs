//! LSTM, Keras's equations (gate blocks in the order i, f, c, o):
//!
//! ```text
//! z = x_t · W + b + h_{t-1} · U                 (B, 4H)
//! i = σ(z_i)   f = σ(z_f)   g = tanh(z_c)   o = σ(z_o)      (σ = recurrent_activation,
//! c_t = f ⊙ c_{t-1} + i ⊙ g                                  tanh = activation)
//! h_t = o ⊙ tanh(c_t)
//! ```
//!
//! `unit_forget_bias` (default true) initialises the forget block of the bias to 1.
//! Keras `LSTM(250, return_sequences=True)` is `Lstm::new(250).return_sequences(true)`.

use super::recurrent::{Cell, RecWeights, Recurrent};
use crate::activation::Activation;
use crate::tensor::{gemm, Acc, Scalar};

/// The LSTM layer.
pub type Lstm<T> = Recurrent<T, LstmCell>;

/// One LSTM step.
#[derive(Clone, Debug)]
pub struct LstmCell {
    pub units: usize,
    pub activation: Activation,
    pub recurrent_activation: Activation,
    pub unit_forget_bias: bool,
}

impl<T: Scalar> Lstm<T> {
    /// `LSTM(units)` with Keras's defaults (tanh, sigmoid, unit forget bias).
    pub fn new(units: usize) -> Self {
        Recurrent::from_cell(LstmCell {
            units,
            activation: Activation::Tanh,
            recurrent_activation: Activation::Sigmoid,
            unit_forget_bias: true,
        })
    }
    pub fn activation(mut self, name: &str) -> Self {
        self.cell.activation = Activation::parse(name).expect("unknown activation");
        self
    }
    pub fn recurrent_activation(mut self, name: &str) -> Self {
        self.cell.recurrent_activation = Activation::parse(name).expect("unknown activation");
        self
    }
}

// cache layout per step: z (B, 4H) | a = (i, f, g, o) (B, 4H) | c_t (B, H) | tanh(c_t) (B, H)
impl<T: Scalar> Cell<T> for LstmCell {
    const CLASS: &'static str = "LSTM";
    const DEFAULT_NAME: &'static str = "lstm";
    fn units(&self) -> usize {
        self.units
    }
    fn gates(&self) -> usize {
        4
    }
    fn n_states(&self) -> usize {
        2
    }
    fn cache_width(&self) -> usize {
        10 * self.units
    }
    fn init_bias(&self, bias: &mut [T]) {
        if self.unit_forget_bias {
            bias[self.units..2 * self.units].fill(T::one());
        }
    }
    fn config(&self, cfg: &mut serde_json::Map<String, serde_json::Value>) {
        cfg.insert("activation".into(), self.activation.name().into());
        cfg.insert("recurrent_activation".into(), self.recurrent_activation.name().into());
        cfg.insert("unit_forget_bias".into(), self.unit_forget_bias.into());
    }

    fn forward_step(
        &self,
        w: &RecWeights<T>,
        b: usize,
        p: &[T],
        hr: &[T],
        prev: &[&[T]],
        next: &mut [&mut [T]],
        cache: &mut [T],
    ) {
        let h = self.units;
        let g4 = 4 * h;
        let (z, rest) = cache.split_at_mut(b * g4);
        let (a, rest) = rest.split_at_mut(b * g4);
        let (cs, tc) = rest.split_at_mut(b * h);
        // z = p + hr · U
        z.copy_from_slice(p);
        gemm(b, g4, h, hr, h, false, w.recurrent_kernel, g4, false, z, g4, Acc::Add);
        let (ra, act) = (self.recurrent_activation, self.activation);
        let c_prev = prev[1];
        let (hn, cn) = next.split_at_mut(1);
        let (hn, cn) = (&mut *hn[0], &mut *cn[0]);
        for r in 0..b {
            let zr = &z[r * g4..(r + 1) * g4];
            let ar = &mut a[r * g4..(r + 1) * g4];
            for j in 0..h {
                let i = ra.f(zr[j]);
                let f = ra.f(zr[h + j]);
                let g = act.f(zr[2 * h + j]);
                let o = ra.f(zr[3 * h + j]);
                ar[j] = i;
                ar[h + j] = f;
                ar[2 * h + j] = g;
                ar[3 * h + j] = o;
                let k = r * h + j;
                let c = f * c_prev[k] + i * g;
                let t = act.f(c);
                cs[k] = c;
                tc[k] = t;
                cn[k] = c;
                hn[k] = o * t;
            }
        }
    }

    fn backward_step(
        &self,
        w: &RecWeights<T>,
        b: usize,
        _hr: &[T],
        prev: &[&[T]],
        cache: &[T],
        dnext: &[&[T]],
        dp: &mut [T],
        drec: &mut [T],
        dhr: &mut [T],
        dprev: &mut [&mut [T]],
    ) {
        let h = self.units;
        let g4 = 4 * h;
        let (z, rest) = cache.split_at(b * g4);
        let (a, rest) = rest.split_at(b * g4);
        let (cs, tc) = rest.split_at(b * h);
        let (ra, act) = (self.recurrent_activation, self.activation);
        let (dh, dcn, c_prev) = (dnext[0], dnext[1], prev[1]);
        let (dp0, dp1) = dprev.split_at_mut(1);
        let (dh_prev, dc_prev) = (&mut *dp0[0], &mut *dp1[0]);
        for r in 0..b {
            let zr = &z[r * g4..(r + 1) * g4];
            let ar = &a[r * g4..(r + 1) * g4];
            let dz = &mut dp[r * g4..(r + 1) * g4];
            for j in 0..h {
                let k = r * h + j;
                let (i, f, g, o) = (ar[j], ar[h + j], ar[2 * h + j], ar[3 * h + j]);
                // h = o ⊙ tanh(c)
                let d_o = dh[k] * tc[k];
                // c_t = f ⊙ c_{t-1} + i ⊙ g, plus the path through h
                let dc = dcn[k] + dh[k] * o * act.df(cs[k], tc[k]);
                dz[j] = dc * g * ra.df(zr[j], i);
                dz[h + j] = dc * c_prev[k] * ra.df(zr[h + j], f);
                dz[2 * h + j] = dc * i * act.df(zr[2 * h + j], g);
                dz[3 * h + j] = d_o * ra.df(zr[3 * h + j], o);
                dc_prev[k] = dc * f;
                dh_prev[k] = T::zero();
            }
        }
        drec.copy_from_slice(dp);
        // z = p + hr · U  =>  dhr = dz · Uᵀ
        gemm(b, h, g4, dp, g4, false, w.recurrent_kernel, g4, true, dhr, h, Acc::Overwrite);
    }
}
