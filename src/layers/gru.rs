//! GRU, Keras's equations (gate blocks in the order z, r, h):
//!
//! ```text
//! x_z, x_r, x_h = x_t · W + b_in                                  (B, 3H)
//! reset_after = true (Keras's default, cuDNN-compatible; bias is (2, 3H)):
//!   m = h_{t-1} · U + b_rec;   z = σ(x_z + m_z);   r = σ(x_r + m_r)
//!   hh = tanh(x_h + r ⊙ m_h)
//! reset_after = false (bias is (3H)):
//!   z = σ(x_z + h_{t-1} · U_z);   r = σ(x_r + h_{t-1} · U_r)
//!   hh = tanh(x_h + (r ⊙ h_{t-1}) · U_h)
//! h_t = z ⊙ h_{t-1} + (1 - z) ⊙ hh
//! ```
//!
//! With recurrent dropout, the mask multiplies h_{t-1} where it enters a matmul; the mix
//! `z ⊙ h_{t-1}` uses the undropped state.

use super::recurrent::{Cell, RecWeights, Recurrent};
use crate::activation::{Act, Activation, SigmoidFn, TanhFn};
use crate::simd::dispatch;
use crate::tensor::{add_col_sums, gemm, Acc, Scalar};

/// The GRU layer.
pub type Gru<T> = Recurrent<T, GruCell>;

/// One GRU step.
#[derive(Clone, Debug)]
pub struct GruCell {
    pub units: usize,
    pub activation: Activation,
    pub recurrent_activation: Activation,
    pub reset_after: bool,
}

impl<T: Scalar> Gru<T> {
    /// `GRU(units)` with Keras's defaults (tanh, sigmoid, reset_after).
    pub fn new(units: usize) -> Self {
        Recurrent::from_cell(GruCell {
            units,
            activation: Activation::Tanh,
            recurrent_activation: Activation::Sigmoid,
            reset_after: true,
        })
    }
    pub fn reset_after(mut self, v: bool) -> Self {
        self.cell.reset_after = v;
        self
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

// cache layout per step: pre = (z, r, hh) pre-activations (B, 3H) | a = (z, r, hh) (B, 3H) |
// e (B, H): reset_after: m_h = (h_{t-1} · U + b_rec)_h;  reset_before: r ⊙ hr
impl<T: Scalar> Cell<T> for GruCell {
    const CLASS: &'static str = "GRU";
    const DEFAULT_NAME: &'static str = "gru";
    fn units(&self) -> usize {
        self.units
    }
    fn gates(&self) -> usize {
        3
    }
    fn cache_width(&self) -> usize {
        7 * self.units
    }
    fn steps_use_whole_u(&self) -> bool {
        // Keras's original GRU multiplies the reset state by the candidate's columns alone.
        self.reset_after
    }
    fn bias_shape(&self) -> Vec<usize> {
        if self.reset_after {
            vec![2, 3 * self.units]
        } else {
            vec![3 * self.units]
        }
    }
    fn config(&self, cfg: &mut serde_json::Map<String, serde_json::Value>) {
        cfg.insert("activation".into(), self.activation.name().into());
        cfg.insert("recurrent_activation".into(), self.recurrent_activation.name().into());
        cfg.insert("reset_after".into(), self.reset_after.into());
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
        let g3 = 3 * h;
        let (pre, rest) = cache.split_at_mut(b * g3);
        let (a, e) = rest.split_at_mut(b * g3);
        let (ra, act) = (self.recurrent_activation, self.activation);
        let u = w.recurrent_kernel;
        let hp = prev[0];
        let hn = &mut *next[0];
        if self.reset_after {
            // m = hr · U + b_rec, into pre
            match w.bias {
                Some(bias) => {
                    for row in pre.chunks_exact_mut(g3) {
                        row.copy_from_slice(&bias[g3..]);
                    }
                    if !zero_prev {
                        w.times_u(b, h, hr, h, pre, g3, Acc::Add);
                    }
                }
                None if zero_prev => pre.fill(T::zero()),
                None => w.times_u(b, h, hr, h, pre, g3, Acc::Overwrite),
            }
            match (ra, act) {
                (Activation::Sigmoid, Activation::Tanh) => after_forward(SigmoidFn, TanhFn, h, p, pre, a, e, hp, hn),
                (ra, act) => after_forward_kernel(ra, act, h, p, pre, a, e, hp, hn),
            }
        } else {
            // (z, r) pre = hr · U_zr + x_zr
            if zero_prev {
                pre.fill(T::zero());
            } else {
                gemm(b, 2 * h, h, hr, h, false, u, g3, false, pre, g3, Acc::Overwrite);
            }
            for r in 0..b {
                for j in 0..2 * h {
                    let v = pre[r * g3 + j] + p[r * g3 + j];
                    pre[r * g3 + j] = v;
                    a[r * g3 + j] = ra.f(v);
                }
                for j in 0..h {
                    e[r * h + j] = a[r * g3 + h + j] * hr[r * h + j];
                }
            }
            // hh pre = x_h + (r ⊙ hr) · U_h
            if !zero_prev {
                gemm(b, h, h, e, h, false, &u[2 * h..], g3, false, &mut pre[2 * h..], g3, Acc::Overwrite);
            }
            for r in 0..b {
                for j in 0..h {
                    let k = r * h + j;
                    let v = pre[r * g3 + 2 * h + j] + p[r * g3 + 2 * h + j];
                    pre[r * g3 + 2 * h + j] = v;
                    let hh = act.f(v);
                    a[r * g3 + 2 * h + j] = hh;
                    let z = a[r * g3 + j];
                    hn[k] = z * hp[k] + (T::one() - z) * hh;
                }
            }
        }
    }

    fn backward_step(
        &self,
        w: &RecWeights<T>,
        b: usize,
        hr: &[T],
        prev: &[&[T]],
        cache: &[T],
        dnext: &[&[T]],
        dp: &mut [T],
        drec: &mut [T],
        dhr: &mut [T],
        dprev: &mut [&mut [T]],
        need_dprev: bool,
    ) {
        let h = self.units;
        let g3 = 3 * h;
        let (pre, rest) = cache.split_at(b * g3);
        let (a, e) = rest.split_at(b * g3);
        let (ra, act) = (self.recurrent_activation, self.activation);
        let (dh, hp) = (dnext[0], prev[0]);
        let dh_prev = &mut *dprev[0];
        if self.reset_after {
            match (ra, act) {
                (Activation::Sigmoid, Activation::Tanh) => {
                    after_backward(SigmoidFn, TanhFn, h, pre, a, e, hp, dh, dp, drec, dh_prev)
                }
                (ra, act) => after_backward_kernel(ra, act, h, pre, a, e, hp, dh, dp, drec, dh_prev),
            }
            // m = hr · U + b_rec
            if need_dprev {
                w.times_ut(b, h, 0, g3, drec, g3, dhr, h, Acc::Overwrite);
            }
            return;
        }
        // h = z ⊙ h_{t-1} + (1 - z) ⊙ hh, hh = act(pre_h)
        for r in 0..b {
            for j in 0..h {
                let k = r * h + j;
                let (z, hh) = (a[r * g3 + j], a[r * g3 + 2 * h + j]);
                dp[r * g3 + 2 * h + j] = dh[k] * (T::one() - z) * act.df(pre[r * g3 + 2 * h + j], hh);
                dh_prev[k] = dh[k] * z;
            }
        }
        {
            // hh pre = x_h + (r ⊙ hr) · U_h  =>  d(r ⊙ hr) = dhh_pre · U_hᵀ
            w.times_ut(b, h, 2 * h, g3, &dp[2 * h..], g3, dhr, h, Acc::Overwrite);
            for r in 0..b {
                for j in 0..h {
                    let k = r * h + j;
                    let (z, rr, hh) = (a[r * g3 + j], a[r * g3 + h + j], a[r * g3 + 2 * h + j]);
                    let drh = dhr[k];
                    let dz = dh[k] * (hp[k] - hh);
                    let dr = drh * hr[k];
                    dhr[k] = drh * rr;
                    dp[r * g3 + j] = dz * ra.df(pre[r * g3 + j], z);
                    dp[r * g3 + h + j] = dr * ra.df(pre[r * g3 + h + j], rr);
                }
            }
            drec.copy_from_slice(dp);
            // (z, r) pre = hr · U_zr + x_zr
            w.times_ut(b, h, 0, 2 * h, dp, g3, dhr, h, Acc::Add);
        }
    }

    fn recurrent_weight_grads(
        &self,
        blocks: &[usize],
        rows: usize,
        zero_rows: usize,
        hr: &[T],
        cache: &[T],
        drec: &[T],
        drk: &mut [T],
        dbias: Option<&mut [T]>,
        acc: Acc,
    ) {
        let h = self.units;
        let g3 = 3 * h;
        // Products over hr leave out its zero rows; the recurrent bias sums all of drec.
        let (z, zh, zg) = (zero_rows, zero_rows * h, zero_rows * g3);
        if self.reset_after {
            gemm(h, g3, rows - z, &hr[zh..], h, true, &drec[zg..], g3, false, drk, g3, acc);
            if let Some(db) = dbias {
                add_col_sums(drec, g3, &mut db[g3..]);
            }
        } else {
            // dU_zr = hrᵀ · drec_zr;  dU_h = (r ⊙ hr)ᵀ · drec_h
            // (Two products on disjoint columns: each value of drk is written once.)
            gemm(h, 2 * h, rows - z, &hr[zh..], h, true, &drec[zg..], g3, false, drk, g3, acc);
            // r ⊙ hr of every block, gathered from its cache (rows·7H; the e block last).
            let mut rh = vec![T::zero(); rows * h];
            let (mut off, mut row) = (0, 0);
            for &bc in blocks {
                let chunk = &cache[off..off + bc * 7 * h];
                rh[row * h..(row + bc) * h].copy_from_slice(&chunk[6 * bc * h..]);
                off += bc * 7 * h;
                row += bc;
            }
            gemm(h, h, rows - z, &rh[zh..], h, true, &drec[zg + 2 * h..], g3, false, &mut drk[2 * h..], g3, acc);
        }
    }
}

/// Reset-after gate arithmetic of one step, for every row, after `pre = hr · U + b_rec` (B, 3H):
/// `e = m_h`, `pre_z += x_z`, `pre_r += x_r`, `pre_h = x_h + r ⊙ m_h`, activations into `a`,
/// `h_t = z ⊙ h_{t-1} + (1 - z) ⊙ hh` into `hn`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn after_forward_kernel<T: Scalar, R: Act, A: Act>(
    ra: R,
    act: A,
    h: usize,
    p: &[T],
    pre: &mut [T],
    a: &mut [T],
    e: &mut [T],
    hp: &[T],
    hn: &mut [T],
) {
    let g3 = 3 * h;
    let rows = hp.len() / h;
    for r in 0..rows {
        let (pr, ar, pp) = (&mut pre[r * g3..(r + 1) * g3], &mut a[r * g3..(r + 1) * g3], &p[r * g3..(r + 1) * g3]);
        let rh = r * h..(r + 1) * h;
        let (er, hpr, hnr) = (&mut e[rh.clone()], &hp[rh.clone()], &mut hn[rh]);
        let (pz, rest) = pr.split_at_mut(h);
        let (prr, ph) = rest.split_at_mut(h);
        let (az, rest) = ar.split_at_mut(h);
        let (arr, ah) = rest.split_at_mut(h);
        let (xz, xr, xh) = (&pp[..h], &pp[h..2 * h], &pp[2 * h..3 * h]);
        // Gate by gate, each a simple loop over h values that vectorises.
        er.copy_from_slice(ph);
        // z = σ(x_z + m_z);  r = σ(x_r + m_r)
        for ((pv, av), &xv) in pz.iter_mut().zip(az.iter_mut()).zip(xz) {
            *pv += xv;
            *av = ra.f(*pv);
        }
        for ((pv, av), &xv) in prr.iter_mut().zip(arr.iter_mut()).zip(xr) {
            *pv += xv;
            *av = ra.f(*pv);
        }
        // hh = tanh(x_h + r ⊙ m_h);  h_t = z ⊙ h_{t-1} + (1 - z) ⊙ hh
        for (((((pv, av), &xv), &rv), &zv), (&hpv, hnv)) in
            ph.iter_mut().zip(ah.iter_mut()).zip(xh).zip(&*arr).zip(&*az).zip(hpr.iter().zip(hnr.iter_mut()))
        {
            let vh = xv + rv * *pv;
            *pv = vh;
            let hh = act.f(vh);
            *av = hh;
            *hnv = zv * hpv + (T::one() - zv) * hh;
        }
    }
}
dispatch! { fn after_forward<T: Scalar, R: Act, A: Act>(ra: R, act: A, h: usize, p: &[T], pre: &mut [T], a: &mut [T],
e: &mut [T], hp: &[T], hn: &mut [T]) => after_forward_kernel }

/// Backward of [`after_forward_kernel`]: `dp` (B, 3H) the input projection's gradient,
/// `drec` (B, 3H) the recurrent matmul's (the h block scaled by r), `dh_prev` through z.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn after_backward_kernel<T: Scalar, R: Act, A: Act>(
    ra: R,
    act: A,
    h: usize,
    pre: &[T],
    a: &[T],
    e: &[T],
    hp: &[T],
    dh: &[T],
    dp: &mut [T],
    drec: &mut [T],
    dh_prev: &mut [T],
) {
    let g3 = 3 * h;
    let rows = hp.len() / h;
    for r in 0..rows {
        let (pr, ar) = (&pre[r * g3..(r + 1) * g3], &a[r * g3..(r + 1) * g3]);
        let (dpr, drr) = (&mut dp[r * g3..(r + 1) * g3], &mut drec[r * g3..(r + 1) * g3]);
        let rh = r * h..(r + 1) * h;
        let (er, hpr, dhr, dhp) = (&e[rh.clone()], &hp[rh.clone()], &dh[rh.clone()], &mut dh_prev[rh]);
        let (pz, pr_, ph) = (&pr[..h], &pr[h..2 * h], &pr[2 * h..]);
        let (az, ar_, ah) = (&ar[..h], &ar[h..2 * h], &ar[2 * h..]);
        let (dz_, rest) = dpr.split_at_mut(h);
        let (dr_, dh_) = rest.split_at_mut(h);
        let (rz, rest) = drr.split_at_mut(h);
        let (rr_, rh_) = rest.split_at_mut(h);
        // Exactly h values each: no bounds checks in the loop, which then vectorises.
        let (pz, pr_, ph, az, ar_, ah) = (&pz[..h], &pr_[..h], &ph[..h], &az[..h], &ar_[..h], &ah[..h]);
        let (er, hpr, dhr, dhp) = (&er[..h], &hpr[..h], &dhr[..h], &mut dhp[..h]);
        let (dz_, dr_, dh_, rz, rr_, rh_) =
            (&mut dz_[..h], &mut dr_[..h], &mut dh_[..h], &mut rz[..h], &mut rr_[..h], &mut rh_[..h]);
        for j in 0..h {
            let (z, rr, hh) = (az[j], ar_[j], ah[j]);
            // h = z ⊙ h_{t-1} + (1 - z) ⊙ hh
            let dhh_pre = dhr[j] * (T::one() - z) * act.df(ph[j], hh);
            dhp[j] = dhr[j] * z;
            // hh pre = x_h + r ⊙ m_h
            let dz = dhr[j] * (hpr[j] - hh);
            let dr = dhh_pre * er[j];
            let (gz, gr) = (dz * ra.df(pz[j], z), dr * ra.df(pr_[j], rr));
            dz_[j] = gz;
            dr_[j] = gr;
            dh_[j] = dhh_pre;
            rz[j] = gz;
            rr_[j] = gr;
            rh_[j] = dhh_pre * rr;
        }
    }
}
dispatch! { fn after_backward<T: Scalar, R: Act, A: Act>(ra: R, act: A, h: usize, pre: &[T], a: &[T], e: &[T], hp: &[T],
dh: &[T], dp: &mut [T], drec: &mut [T], dh_prev: &mut [T]) => after_backward_kernel }
