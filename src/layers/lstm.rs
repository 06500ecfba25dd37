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
use crate::activation::{Act, Activation, SigmoidFn, TanhFn};
use crate::simd::dispatch;
use crate::tensor::{Acc, Scalar};

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
    fn drec_is_dp(&self) -> bool {
        true
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
        zero_prev: bool,
    ) {
        let h = self.units;
        let g4 = 4 * h;
        let (z, rest) = cache.split_at_mut(b * g4);
        let (a, rest) = rest.split_at_mut(b * g4);
        let (cs, tc) = rest.split_at_mut(b * h);
        // z = hr · U here; the gate pass adds p (one pass over z instead of a copy and an add).
        if !zero_prev {
            w.times_u(b, h, hr, h, z, g4, Acc::Overwrite);
        }
        let (hn, cn) = next.split_at_mut(1);
        let (hn, cn) = (&mut *hn[0], &mut *cn[0]);
        match (self.recurrent_activation, self.activation) {
            (Activation::Sigmoid, Activation::Tanh) => {
                gates_forward(SigmoidFn, TanhFn, h, p, !zero_prev, z, prev[1], a, cs, tc, hn, cn)
            }
            (ra, act) => gates_forward_kernel(ra, act, h, p, !zero_prev, z, prev[1], a, cs, tc, hn, cn),
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
        _drec: &mut [T],
        dhr: &mut [T],
        dprev: &mut [&mut [T]],
        need_dprev: bool,
    ) {
        let h = self.units;
        let g4 = 4 * h;
        let (z, rest) = cache.split_at(b * g4);
        let (a, rest) = rest.split_at(b * g4);
        let (cs, tc) = rest.split_at(b * h);
        let (dp0, dp1) = dprev.split_at_mut(1);
        let (dh_prev, dc_prev) = (&mut *dp0[0], &mut *dp1[0]);
        match (self.recurrent_activation, self.activation) {
            (Activation::Sigmoid, Activation::Tanh) => {
                gates_backward(SigmoidFn, TanhFn, h, z, a, cs, tc, prev[1], dnext[0], dnext[1], dp, dc_prev)
            }
            (ra, act) => gates_backward_kernel(ra, act, h, z, a, cs, tc, prev[1], dnext[0], dnext[1], dp, dc_prev),
        }
        dh_prev.fill(T::zero());
        // z = p + hr · U  =>  dhr = dz · Uᵀ
        if need_dprev {
            w.times_ut(b, h, 0, g4, dp, g4, dhr, h, Acc::Overwrite);
        }
    }
}

/// The gate arithmetic of one step for every row: `z = p + (hr · U if with_rec)` (B, 4H),
/// kept in `z`; activations into `a` (B, 4H), `c_t` into `cs` and `cn`, `tanh(c_t)` into
/// `tc`, `h_t` into `hn`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn gates_forward_kernel<T: Scalar, R: Act, A: Act>(
    ra: R,
    act: A,
    h: usize,
    p: &[T],
    with_rec: bool,
    z: &mut [T],
    c_prev: &[T],
    a: &mut [T],
    cs: &mut [T],
    tc: &mut [T],
    hn: &mut [T],
    cn: &mut [T],
) {
    let g4 = 4 * h;
    let rows = c_prev.len() / h;
    for r in 0..rows {
        let (zr, pr) = (&mut z[r * g4..(r + 1) * g4], &p[r * g4..(r + 1) * g4]);
        // z = p + hr · U
        if with_rec {
            for (zv, &pv) in zr.iter_mut().zip(pr) {
                *zv += pv;
            }
        } else {
            zr.copy_from_slice(pr);
        }
        let ar = &mut a[r * g4..(r + 1) * g4];
        let rh = r * h..(r + 1) * h;
        let (cp, csr, tcr) = (&c_prev[rh.clone()], &mut cs[rh.clone()], &mut tc[rh.clone()]);
        let (hnr, cnr) = (&mut hn[rh.clone()], &mut cn[rh]);
        let zr = &*zr;
        let (zi, zf, zg, zo) = (&zr[..h], &zr[h..2 * h], &zr[2 * h..3 * h], &zr[3 * h..]);
        let (ai, rest) = ar.split_at_mut(h);
        let (af, rest) = rest.split_at_mut(h);
        let (ag, ao) = rest.split_at_mut(h);
        for j in 0..h {
            // i = σ(z_i)  f = σ(z_f)  g = tanh(z_c)  o = σ(z_o)
            let (i, f, g, o) = (ra.f(zi[j]), ra.f(zf[j]), act.f(zg[j]), ra.f(zo[j]));
            ai[j] = i;
            af[j] = f;
            ag[j] = g;
            ao[j] = o;
            // c_t = f ⊙ c_{t-1} + i ⊙ g;  h_t = o ⊙ tanh(c_t)
            let c = f * cp[j] + i * g;
            let t = act.f(c);
            csr[j] = c;
            cnr[j] = c;
            tcr[j] = t;
            hnr[j] = o * t;
        }
    }
}
dispatch! { fn gates_forward<T: Scalar, R: Act, A: Act>(ra: R, act: A, h: usize, p: &[T], with_rec: bool, z: &mut [T],
c_prev: &[T], a: &mut [T], cs: &mut [T], tc: &mut [T], hn: &mut [T], cn: &mut [T]) => gates_forward_kernel }

/// Backward of [`gates_forward_kernel`]: from `dh` and `dc` (the gradients of h_t and c_t),
/// the gradient of z into `dz` (B, 4H) and of c_{t-1} into `dc_prev`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn gates_backward_kernel<T: Scalar, R: Act, A: Act>(
    ra: R,
    act: A,
    h: usize,
    z: &[T],
    a: &[T],
    cs: &[T],
    tc: &[T],
    c_prev: &[T],
    dh: &[T],
    dcn: &[T],
    dz: &mut [T],
    dc_prev: &mut [T],
) {
    let g4 = 4 * h;
    let rows = c_prev.len() / h;
    for r in 0..rows {
        let (zr, ar, dzr) = (&z[r * g4..(r + 1) * g4], &a[r * g4..(r + 1) * g4], &mut dz[r * g4..(r + 1) * g4]);
        let rh = r * h..(r + 1) * h;
        let (csr, tcr, cp) = (&cs[rh.clone()], &tc[rh.clone()], &c_prev[rh.clone()]);
        let (dhr, dcr, dcp) = (&dh[rh.clone()], &dcn[rh.clone()], &mut dc_prev[rh]);
        let (zi, zf, zg, zo) = (&zr[..h], &zr[h..2 * h], &zr[2 * h..3 * h], &zr[3 * h..]);
        let (ai, af, ag, ao) = (&ar[..h], &ar[h..2 * h], &ar[2 * h..3 * h], &ar[3 * h..]);
        let (dzi, rest) = dzr.split_at_mut(h);
        let (dzf, rest) = rest.split_at_mut(h);
        let (dzg, dzo) = rest.split_at_mut(h);
        for j in 0..h {
            let (i, f, g, o) = (ai[j], af[j], ag[j], ao[j]);
            // h = o ⊙ tanh(c)
            let d_o = dhr[j] * tcr[j];
            // c_t = f ⊙ c_{t-1} + i ⊙ g, plus the path through h
            let dc = dcr[j] + dhr[j] * o * act.df(csr[j], tcr[j]);
            dzi[j] = dc * g * ra.df(zi[j], i);
            dzf[j] = dc * cp[j] * ra.df(zf[j], f);
            dzg[j] = dc * i * act.df(zg[j], g);
            dzo[j] = d_o * ra.df(zo[j], o);
            dcp[j] = dc * f;
        }
    }
}
dispatch! { fn gates_backward<T: Scalar, R: Act, A: Act>(ra: R, act: A, h: usize, z: &[T], a: &[T], cs: &[T],
tc: &[T], c_prev: &[T], dh: &[T], dcn: &[T], dz: &mut [T], dc_prev: &mut [T]) => gates_backward_kernel }
