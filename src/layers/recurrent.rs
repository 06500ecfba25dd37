//! The one recurrent time loop, shared by every cell (SimpleRNN, LSTM, GRU).
//!
//! The wrapper owns what Keras's `RNN` layer owns: the input projection of all time steps as
//! one GEMM, direction (`go_backwards`), masks (`zero_output_for_mask`), initial and returned
//! states, `stateful` carry-over, dropout masks, and the weight gradients as single GEMMs
//! over all steps. A [`Cell`] computes one step (its recurrent matmul and gate arithmetic)
//! and its exact backward.
//!
//! Forward, for processing step t (time reversed when `go_backwards`):
//!
//! ```text
//! P      = X_tm · kernel + b_in                    (T·B, G·H)   one GEMM
//! hr_t   = h_{t-1} ⊙ recurrent_dropout_mask        (B, H)
//! s_t    = cell(P_t, hr_t, s_{t-1})                states s = (h) or (h, c)
//! masked rows: s_t = s_{t-1};  out_t = 0 if zero_output_for_mask else out_{t-1} (out_{-1} = 0)
//! ```
//!
//! Backward runs t = T-1..0 with the state gradients, then
//! `dX = dP · kernelᵀ`, `dkernel = X_tmᵀ · dP`, `db_in = Σ dP` and the cell's
//! `drecurrent_kernel = Σ_t hr_tᵀ · dRec_t` as single GEMMs over all T·B rows.

use super::{check_rate, Ctx, Layer, Mask, Param, Regularizer};
use crate::error::{Error, Result};
use crate::init::{glorot_uniform, orthogonal};
use crate::tensor::{add_col_sums, gemm, Acc, Scalar, Tensor};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// The weights a cell step reads, in Keras's layout.
pub struct RecWeights<'a, T> {
    /// (F, G·H)
    pub kernel: &'a [T],
    /// (H, G·H)
    pub recurrent_kernel: &'a [T],
    /// Keras's bias (flattened), if `use_bias`.
    pub bias: Option<&'a [T]>,
}

/// One recurrent cell: the per-step equations and their exact derivative.
///
/// Buffers are row-major with `b` batch rows. `cache` is this step's private scratch of
/// `b * cache_width()` values, kept from forward for backward; its layout is the cell's own.
pub trait Cell<T: Scalar>: Send + Clone + 'static {
    /// The Keras class name of the layer (`"LSTM"`).
    const CLASS: &'static str;
    /// Default layer name (`"lstm"`).
    const DEFAULT_NAME: &'static str;
    fn units(&self) -> usize;
    /// G: the kernel has G·units columns.
    fn gates(&self) -> usize;
    /// Number of state tensors (1: h; 2: h, c). State 0 is always the output h.
    fn n_states(&self) -> usize {
        1
    }
    /// Values kept per batch row per step.
    fn cache_width(&self) -> usize;
    /// Keras's bias shape.
    fn bias_shape(&self) -> Vec<usize> {
        vec![self.gates() * self.units()]
    }
    /// Sets the initial bias (zeros, or LSTM's unit forget bias).
    fn init_bias(&self, _bias: &mut [T]) {}
    /// Adds the cell's own config keys (activations, flags).
    fn config(&self, cfg: &mut serde_json::Map<String, serde_json::Value>);

    /// One step. `p` (b, G·H): this step's input projection including the input bias.
    /// `hr` (b, H): h_{t-1} as the recurrent matmul sees it. `prev`/`next`: the states.
    #[allow(clippy::too_many_arguments)]
    fn forward_step(
        &self,
        w: &RecWeights<T>,
        b: usize,
        p: &[T],
        hr: &[T],
        prev: &[&[T]],
        next: &mut [&mut [T]],
        cache: &mut [T],
    );

    /// Backward of one step. `dnext`: gradients of the new states. Overwrites `dp`
    /// (b, G·H, the gradient of the input projection), `drec` (b, G·H, the gradient of the
    /// recurrent matmul's outputs, for the weight gradient), `dhr` (b, H) and `dprev`
    /// (gradients of the previous states through paths other than the recurrent matmul).
    #[allow(clippy::too_many_arguments)]
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
    );

    /// Weight gradients of the recurrent matmul over all `rows` = T·B rows at once (`b` rows
    /// per step; `cache` holds every step's cache, one chunk of `b * cache_width()` per step):
    /// by default `drecurrent_kernel += hrᵀ · drec`. `dbias` is the whole bias gradient.
    #[allow(clippy::too_many_arguments)]
    fn recurrent_weight_grads(
        &self,
        _b: usize,
        rows: usize,
        hr: &[T],
        _cache: &[T],
        drec: &[T],
        drk: &mut [T],
        _dbias: Option<&mut [T]>,
    ) {
        let (h, gh) = (self.units(), self.gates() * self.units());
        gemm(h, gh, rows, hr, h, true, drec, gh, false, drk, gh, Acc::Add);
    }
}

/// A recurrent layer: the time loop around a [`Cell`].
pub struct Recurrent<T, C> {
    pub name: String,
    pub cell: C,
    pub return_sequences: bool,
    pub return_state: bool,
    pub go_backwards: bool,
    pub stateful: bool,
    pub zero_output_for_mask: bool,
    pub use_bias: bool,
    pub dropout: f64,
    pub recurrent_dropout: f64,
    pub kernel_regularizer: Option<Regularizer>,
    pub recurrent_regularizer: Option<Regularizer>,
    pub bias_regularizer: Option<Regularizer>,
    pub activity_regularizer: Option<Regularizer>,
    in_features: usize,
    kernel: Param<T>,
    recurrent_kernel: Param<T>,
    bias: Param<T>,
    fwd: Saved<T>,
    carried: Option<Vec<Vec<T>>>,
    final_states: Vec<Tensor<T>>,
    init_grads: Vec<Tensor<T>>,
    activity: f64,
}

/// What forward keeps for backward (reused between calls of the same size).
#[derive(Default)]
struct Saved<T> {
    b: usize,
    t: usize,
    x_tm: Vec<T>,               // (T, B, F), after input dropout
    dmask: Option<Vec<T>>,      // (B, F)
    rmask: Option<Vec<T>>,      // (B, H)
    mask_tm: Option<Vec<bool>>, // (T, B)
    p: Vec<T>,                  // (T, B, G·H)
    hr: Vec<T>,                 // (T, B, H)
    states: Vec<Vec<T>>,        // S × (T+1, B, H); slot 0 the initial state
    cache: Vec<T>,              // (T, B·cache_width)
    out: Vec<T>,                // (T, B, H), processing order
}

impl<T: Scalar, C: Cell<T>> Recurrent<T, C> {
    /// Wraps a cell with Keras's defaults (return the last output only, forwards, not stateful).
    pub fn from_cell(cell: C) -> Self {
        Recurrent {
            name: C::DEFAULT_NAME.into(),
            cell,
            return_sequences: false,
            return_state: false,
            go_backwards: false,
            stateful: false,
            zero_output_for_mask: false,
            use_bias: true,
            dropout: 0.0,
            recurrent_dropout: 0.0,
            kernel_regularizer: None,
            recurrent_regularizer: None,
            bias_regularizer: None,
            activity_regularizer: None,
            in_features: 0,
            kernel: Param::new("kernel", &[0], Vec::new()),
            recurrent_kernel: Param::new("recurrent_kernel", &[0], Vec::new()),
            bias: Param::new("bias", &[0], Vec::new()),
            fwd: Saved::default(),
            carried: None,
            final_states: Vec::new(),
            init_grads: Vec::new(),
            activity: 0.0,
        }
    }
    pub fn name(mut self, name: &str) -> Self {
        self.name = name.into();
        self
    }
    pub fn return_sequences(mut self, v: bool) -> Self {
        self.return_sequences = v;
        self
    }
    pub fn return_state(mut self, v: bool) -> Self {
        self.return_state = v;
        self
    }
    pub fn go_backwards(mut self, v: bool) -> Self {
        self.go_backwards = v;
        self
    }
    pub fn stateful(mut self, v: bool) -> Self {
        self.stateful = v;
        self
    }
    pub fn use_bias(mut self, v: bool) -> Self {
        self.use_bias = v;
        self
    }
    pub fn zero_output_for_mask(mut self, v: bool) -> Self {
        self.zero_output_for_mask = v;
        self
    }
    /// Input dropout rate (training only), one mask per sequence as Keras.
    pub fn dropout(mut self, r: f64) -> Self {
        self.dropout = r;
        self
    }
    /// Recurrent dropout rate on h_{t-1} before the recurrent matmul (training only).
    pub fn recurrent_dropout(mut self, r: f64) -> Self {
        self.recurrent_dropout = r;
        self
    }

    fn weights(&self) -> RecWeights<'_, T> {
        RecWeights {
            kernel: &self.kernel.value,
            recurrent_kernel: &self.recurrent_kernel.value,
            bias: if self.use_bias { Some(&self.bias.value) } else { None },
        }
    }

    fn dropout_mask(rng: &mut ChaCha8Rng, n: usize, rate: f64) -> Vec<T> {
        let keep = T::of(1.0 / (1.0 - rate));
        (0..n).map(|_| if rng.gen::<f64>() < rate { T::zero() } else { keep }).collect()
    }
}

impl<T: Scalar, C: Cell<T>> Layer<T> for Recurrent<T, C> {
    fn name(&self) -> &str {
        &self.name
    }
    fn set_name(&mut self, name: &str) {
        self.name = name.to_string();
    }
    fn class_name(&self) -> &'static str {
        C::CLASS
    }

    fn build(&mut self, input: &[usize], rng: &mut ChaCha8Rng) -> Result<Vec<usize>> {
        if input.len() != 2 {
            return Err(Error::shape(
                &self.name,
                "3-D input (batch, time, features)",
                format!("(batch, {})", input.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ")),
            ));
        }
        check_rate(&self.name, "dropout", self.dropout)?;
        check_rate(&self.name, "recurrent_dropout", self.recurrent_dropout)?;
        let (f, h, g) = (input[1], self.cell.units(), self.cell.gates());
        if f == 0 {
            return Err(Error::shape(&self.name, "at least one input feature", "0"));
        }
        self.in_features = f;
        self.kernel = Param::new("kernel", &[f, g * h], glorot_uniform(&[f, g * h], rng));
        self.kernel.regularizer = self.kernel_regularizer;
        self.recurrent_kernel = Param::new("recurrent_kernel", &[h, g * h], orthogonal(&[h, g * h], rng));
        self.recurrent_kernel.regularizer = self.recurrent_regularizer;
        if self.use_bias {
            let shape = self.cell.bias_shape();
            let mut b = vec![T::zero(); shape.iter().product()];
            self.cell.init_bias(&mut b);
            self.bias = Param::new("bias", &shape, b);
            self.bias.regularizer = self.bias_regularizer;
        }
        self.carried = None;
        Ok(if self.return_sequences { vec![input[0], h] } else { vec![h] })
    }

    fn forward(&mut self, x: &Tensor<T>, ctx: &mut Ctx<T>) -> Result<Tensor<T>> {
        let f = self.in_features;
        if x.ndim() != 3 || x.shape[2] != f {
            return Err(Error::shape(&self.name, format!("(batch, time, {f})"), format!("{:?}", x.shape)));
        }
        let (b, tl) = (x.shape[0], x.shape[1]);
        if tl == 0 {
            return Err(Error::shape(&self.name, "at least one time step", "0"));
        }
        let (h, g, s, cw) = (self.cell.units(), self.cell.gates(), self.cell.n_states(), self.cell.cache_width());
        let gh = g * h;
        let bh = b * h;
        let src_t = |t: usize| if self.go_backwards { tl - 1 - t } else { t };

        // Dropout masks: one per sequence, the same at every step (Keras).
        let sv = &mut self.fwd;
        sv.b = b;
        sv.t = tl;
        sv.dmask = (ctx.training && self.dropout > 0.0).then(|| Self::dropout_mask(ctx.rng, b * f, self.dropout));
        sv.rmask = (ctx.training && self.recurrent_dropout > 0.0)
            .then(|| Self::dropout_mask(ctx.rng, bh, self.recurrent_dropout));

        // X time-major (T, B, F), reversed for go_backwards.
        sv.x_tm.resize(tl * b * f, T::zero());
        for t in 0..tl {
            let st = src_t(t);
            for bi in 0..b {
                let src = &x.data[(bi * tl + st) * f..(bi * tl + st + 1) * f];
                let dst = &mut sv.x_tm[(t * b + bi) * f..(t * b + bi + 1) * f];
                match &sv.dmask {
                    Some(m) => {
                        for ((d, &v), &mv) in dst.iter_mut().zip(src).zip(&m[bi * f..(bi + 1) * f]) {
                            *d = v * mv;
                        }
                    }
                    None => dst.copy_from_slice(src),
                }
            }
        }

        // The mask, time-major, in processing order.
        sv.mask_tm = match &ctx.mask {
            Some(m) => {
                if m.batch != b || m.time != tl {
                    return Err(Error::shape(
                        format!("{} mask", self.name),
                        format!("({b}, {tl})"),
                        format!("({}, {})", m.batch, m.time),
                    ));
                }
                let mut v = vec![true; tl * b];
                for t in 0..tl {
                    for bi in 0..b {
                        v[t * b + bi] = m.get(bi, src_t(t));
                    }
                }
                Some(v)
            }
            None => None,
        };

        // P = X_tm · kernel + b_in: all steps in one GEMM.
        sv.p.resize(tl * b * gh, T::zero());
        let acc = match (self.use_bias, &self.bias.value) {
            (true, bias) => {
                for row in sv.p.chunks_exact_mut(gh) {
                    row.copy_from_slice(&bias[..gh]);
                }
                Acc::Add
            }
            _ => Acc::Overwrite,
        };
        gemm(tl * b, gh, f, &sv.x_tm, f, false, &self.kernel.value, gh, false, &mut sv.p, gh, acc);

        // Initial states: given, carried (stateful) or zeros.
        sv.states.resize_with(s, Vec::new);
        for st in sv.states.iter_mut() {
            st.clear();
            st.resize((tl + 1) * bh, T::zero());
        }
        if let Some(init) = ctx.initial_state.take() {
            if init.len() != s {
                return Err(Error::shape(
                    format!("{} initial_state", self.name),
                    format!("{s} state tensor(s)"),
                    format!("{}", init.len()),
                ));
            }
            for (i, st) in init.iter().enumerate() {
                if st.shape != [b, h] {
                    return Err(Error::shape(
                        format!("{} initial_state[{i}]", self.name),
                        format!("({b}, {h})"),
                        format!("{:?}", st.shape),
                    ));
                }
                sv.states[i][..bh].copy_from_slice(&st.data);
            }
        } else if let (true, Some(c)) = (self.stateful, &self.carried) {
            if c[0].len() != bh {
                return Err(Error::shape(
                    format!("stateful {}", self.name),
                    format!("batch {} (the batch of the carried state; call reset_state to change it)", c[0].len() / h),
                    format!("batch {b}"),
                ));
            }
            for (i, st) in c.iter().enumerate() {
                sv.states[i][..bh].copy_from_slice(st);
            }
        }

        sv.hr.resize(tl * bh, T::zero());
        sv.cache.resize(tl * b * cw, T::zero());
        sv.out.resize(tl * bh, T::zero());
        let w = RecWeights {
            kernel: &self.kernel.value,
            recurrent_kernel: &self.recurrent_kernel.value,
            bias: if self.use_bias { Some(&self.bias.value) } else { None },
        };
        for t in 0..tl {
            // hr_t = h_{t-1} (⊙ recurrent dropout mask)
            {
                let hprev = &sv.states[0][t * bh..(t + 1) * bh];
                let hr = &mut sv.hr[t * bh..(t + 1) * bh];
                match &sv.rmask {
                    Some(m) => {
                        for ((d, &v), &mv) in hr.iter_mut().zip(hprev).zip(m) {
                            *d = v * mv;
                        }
                    }
                    None => hr.copy_from_slice(hprev),
                }
            }
            {
                let (mut a0, mut a1): (&mut [T], &mut [T]) = (&mut [], &mut []);
                let (mut p0, mut p1): (&[T], &[T]) = (&[], &[]);
                for (i, st) in sv.states.iter_mut().enumerate() {
                    let (before, after) = st.split_at_mut((t + 1) * bh);
                    let prev = &before[t * bh..];
                    let next = &mut after[..bh];
                    if i == 0 {
                        p0 = prev;
                        a0 = next;
                    } else {
                        p1 = prev;
                        a1 = next;
                    }
                }
                let prev_arr = [p0, p1];
                let mut next_arr = [a0, a1];
                self.cell.forward_step(
                    &w,
                    b,
                    &sv.p[t * b * gh..(t + 1) * b * gh],
                    &sv.hr[t * bh..(t + 1) * bh],
                    &prev_arr[..s],
                    &mut next_arr[..s],
                    &mut sv.cache[t * b * cw..(t + 1) * b * cw],
                );
            }
            // Masked rows keep their states; the output is carried or zero.
            match &sv.mask_tm {
                None => {
                    let (src, dst) = (&sv.states[0][(t + 1) * bh..(t + 2) * bh], &mut sv.out[t * bh..(t + 1) * bh]);
                    dst.copy_from_slice(src);
                }
                Some(m) => {
                    for bi in 0..b {
                        let r = bi * h..(bi + 1) * h;
                        if m[t * b + bi] {
                            let src = sv.states[0][(t + 1) * bh + r.start..(t + 1) * bh + r.end].to_vec();
                            sv.out[t * bh + r.start..t * bh + r.end].copy_from_slice(&src);
                        } else {
                            for st in sv.states.iter_mut() {
                                let (before, after) = st.split_at_mut((t + 1) * bh);
                                after[r.clone()].copy_from_slice(&before[t * bh + r.start..t * bh + r.end]);
                            }
                            if self.zero_output_for_mask || t == 0 {
                                sv.out[t * bh + r.start..t * bh + r.end].fill(T::zero());
                            } else {
                                let (before, after) = sv.out.split_at_mut(t * bh);
                                after[r.clone()].copy_from_slice(&before[(t - 1) * bh + r.start..(t - 1) * bh + r.end]);
                            }
                        }
                    }
                }
            }
        }

        self.final_states =
            sv.states.iter().map(|st| Tensor { shape: vec![b, h], data: st[tl * bh..].to_vec() }).collect();
        if self.stateful {
            self.carried = Some(self.final_states.iter().map(|t| t.data.clone()).collect());
        }
        // Keras: the output mask is the input mask when returning sequences, else none.
        if !self.return_sequences {
            ctx.mask = None;
        }
        let y = if self.return_sequences {
            let mut y = Tensor::zeros(&[b, tl, h]);
            for t in 0..tl {
                for bi in 0..b {
                    y.data[(bi * tl + t) * h..(bi * tl + t + 1) * h]
                        .copy_from_slice(&sv.out[t * bh + bi * h..t * bh + (bi + 1) * h]);
                }
            }
            y
        } else {
            Tensor { shape: vec![b, h], data: sv.out[(tl - 1) * bh..].to_vec() }
        };
        self.activity = match &self.activity_regularizer {
            // Keras 3: the penalty of the whole output, not divided by the batch size.
            Some(r) => r.penalty(&y.data),
            None => 0.0,
        };
        Ok(y)
    }

    fn backward(&mut self, dy: &Tensor<T>) -> Tensor<T> {
        let w = self.weights();
        let sv = &self.fwd;
        let (b, tl, f) = (sv.b, sv.t, self.in_features);
        let (h, g, s, cw) = (self.cell.units(), self.cell.gates(), self.cell.n_states(), self.cell.cache_width());
        let (gh, bh) = (g * h, b * h);
        let mut dyv = dy.data.clone();
        if let Some(r) = &self.activity_regularizer {
            let y: Vec<T> = if self.return_sequences {
                let mut y = vec![T::zero(); b * tl * h];
                for t in 0..tl {
                    for bi in 0..b {
                        y[(bi * tl + t) * h..(bi * tl + t + 1) * h]
                            .copy_from_slice(&sv.out[t * bh + bi * h..t * bh + (bi + 1) * h]);
                    }
                }
                y
            } else {
                sv.out[(tl - 1) * bh..].to_vec()
            };
            r.add_grad(&y, &mut dyv, 1.0);
        }

        let mut dp_all = vec![T::zero(); tl * b * gh];
        let mut drec_all = vec![T::zero(); tl * b * gh];
        let mut ds: Vec<Vec<T>> = vec![vec![T::zero(); bh]; s];
        let mut dnext: Vec<Vec<T>> = vec![vec![T::zero(); bh]; s];
        let mut dprev: Vec<Vec<T>> = vec![vec![T::zero(); bh]; s];
        let mut dhr = vec![T::zero(); bh];
        let mut dpo = vec![T::zero(); bh];
        let mut gout = vec![T::zero(); bh];

        for t in (0..tl).rev() {
            // Gradient reaching this step's output.
            for bi in 0..b {
                let go = &mut gout[bi * h..(bi + 1) * h];
                go.copy_from_slice(&dpo[bi * h..(bi + 1) * h]);
                if self.return_sequences {
                    for (a, &v) in go.iter_mut().zip(&dyv[(bi * tl + t) * h..(bi * tl + t + 1) * h]) {
                        *a += v;
                    }
                } else if t == tl - 1 {
                    for (a, &v) in go.iter_mut().zip(&dyv[bi * h..(bi + 1) * h]) {
                        *a += v;
                    }
                }
            }
            // Gradients of the new states: out_t = h_t for kept rows.
            for i in 0..s {
                dnext[i].copy_from_slice(&ds[i]);
            }
            for (a, &v) in dnext[0].iter_mut().zip(&gout) {
                *a += v;
            }
            if let Some(m) = &sv.mask_tm {
                for bi in 0..b {
                    if !m[t * b + bi] {
                        for dn in dnext.iter_mut() {
                            dn[bi * h..(bi + 1) * h].fill(T::zero());
                        }
                    }
                }
            }
            {
                let prev_arr: Vec<&[T]> = sv.states.iter().map(|st| &st[t * bh..(t + 1) * bh]).collect();
                let dnext_arr: Vec<&[T]> = dnext.iter().map(|v| v.as_slice()).collect();
                let mut dprev_arr: Vec<&mut [T]> = dprev.iter_mut().map(|v| v.as_mut_slice()).collect();
                self.cell.backward_step(
                    &w,
                    b,
                    &sv.hr[t * bh..(t + 1) * bh],
                    &prev_arr,
                    &sv.cache[t * b * cw..(t + 1) * b * cw],
                    &dnext_arr,
                    &mut dp_all[t * b * gh..(t + 1) * b * gh],
                    &mut drec_all[t * b * gh..(t + 1) * b * gh],
                    &mut dhr,
                    &mut dprev_arr,
                );
            }
            // hr = h_{t-1} ⊙ rmask
            if let Some(rm) = &sv.rmask {
                for (a, &mv) in dhr.iter_mut().zip(rm) {
                    *a *= mv;
                }
            }
            for (a, &v) in dprev[0].iter_mut().zip(&dhr) {
                *a += v;
            }
            match &sv.mask_tm {
                None => {
                    for i in 0..s {
                        std::mem::swap(&mut ds[i], &mut dprev[i]);
                    }
                    dpo.fill(T::zero());
                }
                Some(m) => {
                    for bi in 0..b {
                        let r = bi * h..(bi + 1) * h;
                        if m[t * b + bi] {
                            for i in 0..s {
                                ds[i][r.clone()].copy_from_slice(&dprev[i][r.clone()]);
                            }
                            dpo[r].fill(T::zero());
                        } else if self.zero_output_for_mask {
                            dpo[r].fill(T::zero());
                        } else {
                            dpo[r.clone()].copy_from_slice(&gout[r]);
                        }
                    }
                }
            }
        }

        // Weight gradients: single GEMMs over all T·B rows.
        let rows = tl * b;
        gemm(f, gh, rows, &sv.x_tm, f, true, &dp_all, gh, false, &mut self.kernel.grad, gh, Acc::Add);
        if self.use_bias {
            add_col_sums(&dp_all, gh, &mut self.bias.grad[..gh]);
        }
        let dbias = if self.use_bias { Some(self.bias.grad.as_mut_slice()) } else { None };
        self.cell.recurrent_weight_grads(b, rows, &sv.hr, &sv.cache, &drec_all, &mut self.recurrent_kernel.grad, dbias);

        // dX = dP · kernelᵀ, back to (B, T, F) in input order.
        let mut dx_tm = vec![T::zero(); rows * f];
        gemm(rows, f, gh, &dp_all, gh, false, &self.kernel.value, gh, true, &mut dx_tm, f, Acc::Overwrite);
        let mut dx = Tensor::zeros(&[b, tl, f]);
        for t in 0..tl {
            let st = if self.go_backwards { tl - 1 - t } else { t };
            for bi in 0..b {
                let src = &dx_tm[(t * b + bi) * f..(t * b + bi + 1) * f];
                let dst = &mut dx.data[(bi * tl + st) * f..(bi * tl + st + 1) * f];
                match &sv.dmask {
                    Some(m) => {
                        for ((d, &v), &mv) in dst.iter_mut().zip(src).zip(&m[bi * f..(bi + 1) * f]) {
                            *d = v * mv;
                        }
                    }
                    None => dst.copy_from_slice(src),
                }
            }
        }
        self.init_grads = ds.into_iter().map(|d| Tensor { shape: vec![b, h], data: d }).collect();
        dx
    }

    fn params(&self) -> Vec<&Param<T>> {
        let mut v = vec![&self.kernel, &self.recurrent_kernel];
        if self.use_bias {
            v.push(&self.bias);
        }
        v
    }
    fn params_mut(&mut self) -> Vec<&mut Param<T>> {
        let mut v = vec![&mut self.kernel, &mut self.recurrent_kernel];
        if self.use_bias {
            v.push(&mut self.bias);
        }
        v
    }

    fn config(&self) -> serde_json::Value {
        let mut m = serde_json::Map::new();
        m.insert("name".into(), self.name.clone().into());
        m.insert("units".into(), self.cell.units().into());
        self.cell.config(&mut m);
        m.insert("use_bias".into(), self.use_bias.into());
        m.insert("return_sequences".into(), self.return_sequences.into());
        m.insert("return_state".into(), self.return_state.into());
        m.insert("go_backwards".into(), self.go_backwards.into());
        m.insert("stateful".into(), self.stateful.into());
        m.insert("zero_output_for_mask".into(), self.zero_output_for_mask.into());
        m.insert("dropout".into(), self.dropout.into());
        m.insert("recurrent_dropout".into(), self.recurrent_dropout.into());
        for (k, r) in [
            ("kernel_regularizer", &self.kernel_regularizer),
            ("recurrent_regularizer", &self.recurrent_regularizer),
            ("bias_regularizer", &self.bias_regularizer),
            ("activity_regularizer", &self.activity_regularizer),
        ] {
            m.insert(k.into(), r.map(|r| r.to_json()).unwrap_or(serde_json::Value::Null));
        }
        serde_json::Value::Object(m)
    }

    fn states(&self) -> Vec<Tensor<T>> {
        self.final_states.clone()
    }
    fn returns_state(&self) -> bool {
        self.return_state
    }
    fn initial_state_grads(&self) -> Vec<Tensor<T>> {
        self.init_grads.clone()
    }
    fn reset_state(&mut self) {
        self.carried = None;
    }
    fn activity_penalty(&self) -> f64 {
        self.activity
    }
}

/// Builds a [`Mask`] from a (batch, time) 0/1 slice.
pub fn mask_from_u8(batch: usize, time: usize, m: &[u8]) -> Mask {
    Mask { batch, time, keep: m.iter().map(|&v| v != 0).collect() }
}
