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
//! A large P is not stored whole: each chunk computes it a few steps at a time into a
//! cache-sized buffer, by the same product row by row, so the numbers are the same (see
//! [`set_projection_blocking`]). Backward needs only the cell's cached gate values, not P.
//!
//! Backward runs t = T-1..0 with the state gradients, then
//! `dX = dP · kernelᵀ`, `dkernel = X_tmᵀ · dP`, `db_in = Σ dP` and the cell's
//! `drecurrent_kernel = Σ_t hr_tᵀ · dRec_t` as single GEMMs over all T·B rows.

mod stack;
pub(crate) use stack::run_stack;
pub use stack::{stacks_run, StackStep, StepScratch};

use super::{check_rate, Ctx, Layer, Mask, Param, ParamJob, Regularizer};
use crate::error::{Error, Result};
use crate::init::{glorot_uniform, orthogonal};
use crate::tensor::{
    add_col_sums, gemm, gemm_bias, gemm_packed, gemm_packed_rows, packed_fits, Acc, Packed, Scalar, Tensor,
};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// The weights a cell step reads, in Keras's layout.
pub struct RecWeights<'a, T> {
    /// (F, G·H)
    pub kernel: &'a [T],
    /// (H, G·H)
    pub recurrent_kernel: &'a [T],
    /// The transpose, (G·H, H) row-major, or empty: in backward over many steps the products
    /// with Uᵀ read it row by row, which the GEMM packs several times faster than a transposed
    /// operand; for one or two steps the transpose would cost more than it saves.
    pub recurrent_kernel_t: &'a [T],
    /// U packed once for every step's product (see [`Packed`]), where the layer packed it.
    pub u_packed: Option<&'a Packed<T>>,
    /// Uᵀ packed likewise (in place of `recurrent_kernel_t`, the same bits).
    pub ut_packed: Option<&'a Packed<T>>,
    /// Keras's bias (flattened), if `use_bias`.
    pub bias: Option<&'a [T]>,
}

impl<T: Scalar> RecWeights<'_, T> {
    /// `C (m, G·h) [+]= A (m, h) · U`: the recurrent product of a step, all gate columns.
    #[allow(clippy::too_many_arguments)]
    pub fn times_u(&self, m: usize, h: usize, a: &[T], lda: usize, c: &mut [T], ldc: usize, acc: Acc) {
        let gh = self.recurrent_kernel.len() / h;
        match self.u_packed {
            Some(p) if p.ready() && p.dims() == (h, gh) && packed_fits(m, gh, h) => {
                gemm_packed(m, a, lda, p, c, ldc, acc, None)
            }
            _ => gemm(m, gh, h, a, lda, false, self.recurrent_kernel, gh, false, c, ldc, acc),
        }
    }

    /// `C (m, h) [+]= A (m, c1 - c0) · (U[:, c0..c1])ᵀ` with U the recurrent kernel (h, G·h):
    /// the gradient through the recurrent matmul of the gate columns `c0..c1`.
    #[allow(clippy::too_many_arguments)]
    pub fn times_ut(
        &self,
        m: usize,
        h: usize,
        c0: usize,
        c1: usize,
        a: &[T],
        lda: usize,
        c: &mut [T],
        ldc: usize,
        acc: Acc,
    ) {
        let gh = self.recurrent_kernel.len() / h;
        match self.ut_packed {
            Some(p) if p.ready() && p.dims() == (gh, h) && packed_fits(m, h, c1 - c0) => {
                gemm_packed_rows(m, a, lda, p, c0, c1, c, ldc, acc, None)
            }
            _ if self.recurrent_kernel_t.is_empty() => {
                gemm(m, h, c1 - c0, a, lda, false, &self.recurrent_kernel[c0..], gh, true, c, ldc, acc)
            }
            _ => gemm(m, h, c1 - c0, a, lda, false, &self.recurrent_kernel_t[c0 * h..], h, false, c, ldc, acc),
        }
    }
}

/// One recurrent cell: the per-step equations and their exact derivative.
///
/// Buffers are row-major with `b` batch rows. `cache` is this step's private scratch of
/// `b * cache_width()` values, kept from forward for backward; its layout is the cell's own.
pub trait Cell<T: Scalar>: Send + Sync + Clone + 'static {
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
    /// True when the recurrent matmul's gradient equals the input projection's (`z = p +
    /// hr·U` feeds every gate, as in SimpleRNN and LSTM): `backward_step` then gets an empty
    /// `drec` and the weight gradient reads `dp`.
    fn drec_is_dp(&self) -> bool {
        false
    }
    /// True when every step multiplies h by all of U at once (through
    /// [`RecWeights::times_u`]), so that the layer packs U for its steps.
    fn steps_use_whole_u(&self) -> bool {
        true
    }
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
    /// `zero_prev`: `hr` and `prev` are all zeros (the first step from the default initial
    /// state), so the recurrent matmul may be skipped.
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
        zero_prev: bool,
    );

    /// Backward of one step. `dnext`: gradients of the new states. Overwrites `dp`
    /// (b, G·H, the gradient of the input projection), `drec` (b, G·H, the gradient of the
    /// recurrent matmul's outputs, for the weight gradient), `dhr` (b, H) and `dprev`
    /// (gradients of the previous states through paths other than the recurrent matmul).
    /// With `need_dprev` false (the first step from the default initial state, whose gradient
    /// nobody asks for) `dhr` and `dprev` may be left as they are.
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
        need_dprev: bool,
    );

    /// Weight gradients of the recurrent matmul over all `rows` = T·B rows at once. The rows
    /// come in blocks of one step of one chunk; `blocks` lists their sizes in order, and
    /// `cache` holds every block's cache (`rows_in_block * cache_width()` values each). By
    /// default `drecurrent_kernel += hrᵀ · drec`. `dbias` is the whole bias gradient (added
    /// into). `acc` says how the products enter `drk`: added, or replacing what it holds
    /// (every value of `drk` must then be written). The first `zero_rows` rows of `hr` are
    /// zero (the first step from the zero initial state): products over hr may leave them
    /// out (see `zero_leading_rows` in this module); sums over `drec` (a bias) may not.
    #[allow(clippy::too_many_arguments)]
    fn recurrent_weight_grads(
        &self,
        _blocks: &[usize],
        rows: usize,
        zero_rows: usize,
        hr: &[T],
        _cache: &[T],
        drec: &[T],
        drk: &mut [T],
        _dbias: Option<&mut [T]>,
        acc: Acc,
    ) {
        let (h, gh) = (self.units(), self.gates() * self.units());
        let z = zero_rows;
        gemm(h, gh, rows - z, &hr[z * h..], h, true, &drec[z * gh..], gh, false, drk, gh, acc);
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
    /// Set by `backward_params`: skip the input gradient.
    skip_dx: bool,
}

/// What forward keeps for backward (reused between calls of the same size).
///
/// The batch is cut into chunks of rows that run their time loops independently (and in
/// parallel where that pays, see [`crate::tensor::parallel_chunks`]). Every (T·B)-row buffer
/// is chunk-major: chunk c, holding rows `r0..r1`, occupies rows `T·r0..T·r1`, time-major
/// inside (T, r1 - r0). With one chunk this is the plain (T, B) layout. Per-step GEMMs see
/// one chunk; the input projection, `dX` and the weight gradients stay single GEMMs over all
/// T·B rows, whatever their order.
#[derive(Default)]
struct Saved<T> {
    b: usize,
    t: usize,
    chunks: Vec<(usize, usize)>, // row ranges r0..r1
    zero_init: bool,             // the default (zero) initial state: no initial-state gradient
    kept: bool,                  // the last forward kept every step (a backward may follow)
    x_tm: Vec<T>,                // (T·B, F), after input dropout
    dmask: Option<Vec<T>>,       // (B, F)
    rmask: Option<Vec<T>>,       // (B, H)
    mask_tm: Option<Vec<bool>>,  // (T·B)
    p: Vec<T>,                   // (T·B, G·H)
    hr: Vec<T>,                  // (T·B, H)
    states: Vec<Vec<T>>,         // S × ((T+1)·B, H); per chunk, slot 0 the initial state
    cache: Vec<T>,               // (T·B, cache_width)
    out: Vec<T>,                 // (T·B, H), processing order
    // Backward scratch.
    dp: Vec<T>,    // (T·B, G·H)
    drec: Vec<T>,  // (T·B, G·H)
    gy: Vec<T>,    // (T·B, H), the gradient reaching each step's output
    dx_tm: Vec<T>, // (T·B, F)
    ut: Vec<T>,    // (G·H, H), Uᵀ when it is not packed
    u_packed: Packed<T>,
    ut_packed: Packed<T>,
}

/// How many leading rows of the recurrent weight gradient's products (`hrᵀ · drec` over all
/// `rows` = T·B) may be left out: the first step's, when it started from the zero initial
/// state (its hr is zero) and the layer ran as one chunk (so those rows come first). Leaving
/// them out keeps the bits: the GEMM sums each value's products in order from zero, and a
/// zero product adds nothing to a zero sum (0·x + 0 is +0 or -0, and +0 + -0 is +0, where the
/// sum starts), provided the sum is not cut into depth blocks elsewhere than before. The GEMM
/// sums up to 512 products in one block (`gemm_common`'s `kernel_params`: kc is at least
/// min(k, 512)), so only products of at most 512 rows are shortened. The seed's models (18
/// rows: 9 windows, 2 steps) lose half of these products' work.
pub(crate) fn zero_leading_rows(zero_init: bool, chunks: &[(usize, usize)], rows: usize) -> usize {
    match chunks {
        // At least one row stays: with none, the GEMM would leave an added-into gradient as it
        // is, where adding the zero products turns a -0 into +0.
        [(r0, r1)] if zero_init && rows <= 512 && rows > r1 - r0 => r1 - r0,
        _ => 0,
    }
}

/// Rows per chunk: batches of 64 rows and more are cut into 2 to 8 chunks of at least 32 and
/// about 256 rows (a function of the batch size only, so results do not depend on the
/// number of threads); per-step products of 256 rows run near the GEMM's full speed.
pub(crate) fn chunk_ranges(b: usize) -> Vec<(usize, usize)> {
    let n = if b < 64 { 1 } else { (b / 256).clamp(2, 8) };
    (0..n).map(|c| (c * b / n, (c + 1) * b / n)).collect()
}

/// Input projections P of more values than this are computed a block of steps at a time
/// (default 2^20 values), blocks of about `PROJ_BLOCK` values each (default 2^18, 1 MB in
/// float32: a block stays in cache while its steps read it). In training too: M1's epoch
/// (two chunks of 32 rows, 16 steps a block) is about 9 % faster than with its 8 MB P
/// written whole and read back from memory.
static PROJ_BLOCK_MIN: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(1 << 20);
static PROJ_BLOCK: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(1 << 18);

/// Sets when the forward pass computes the input projection P = X·kernel + b a block of
/// steps at a time inside each chunk's time loop instead of as one stored product over all
/// steps: when P has more than `min_values` values, in blocks of about `block_values`. The
/// results are the same bits either way (each row of P is the same product); tests use this
/// to run both paths on small problems.
pub fn set_projection_blocking(min_values: usize, block_values: usize) {
    PROJ_BLOCK_MIN.store(min_values, std::sync::atomic::Ordering::Relaxed);
    PROJ_BLOCK.store(block_values.max(1), std::sync::atomic::Ordering::Relaxed);
}

/// Fewest rows of a block of P: above the few-row kernels' limit.
const BLOCK_MIN_ROWS: usize = crate::tensor::SMALL_MAX_ROWS + 1;

/// Where a chunk's time loop reads its input projection.
enum Proj<'a, T> {
    /// All T steps, computed before the loop.
    All(&'a [T]),
    /// `nt` steps at a time from the chunk's `x` (T·bc, f) into `buf`; a last block of 48
    /// rows or fewer joins the one before it, so every block goes through the same GEMM
    /// kernel as the one product over all steps would (few-row products have their own).
    Blocked { x: &'a [T], f: usize, nt: usize, buf: &'a mut [T] },
}

/// One chunk's view of the saved buffers.
struct ChunkFwd<'a, T> {
    bc: usize,
    p: Proj<'a, T>,
    hr: &'a mut [T],
    states: Vec<&'a mut [T]>,
    cache: &'a mut [T],
    out: &'a mut [T],
    rmask: Option<&'a [T]>,
    mask: Option<&'a [bool]>,
}

/// Splits `v` into consecutive pieces of the given lengths.
fn split_lens<T>(mut v: &mut [T], lens: impl Iterator<Item = usize>) -> Vec<&mut [T]> {
    let mut out = Vec::new();
    for l in lens {
        let (a, rest) = std::mem::take(&mut v).split_at_mut(l);
        out.push(a);
        v = rest;
    }
    out
}

fn split_lens_ref<T>(mut v: &[T], lens: impl Iterator<Item = usize>) -> Vec<&[T]> {
    let mut out = Vec::new();
    for l in lens {
        let (a, rest) = v.split_at(l);
        out.push(a);
        v = rest;
    }
    out
}

impl<T: Scalar, C: Cell<T>> Recurrent<T, C> {
    /// The backward pass through the time loop: every step's gate gradients (kept for
    /// [`Recurrent::weight_grads`]), the initial states' gradients, and the input gradient
    /// (when `need_dx`, else an empty tensor).
    fn backward_steps(&mut self, dy: &Tensor<T>, need_dx: bool) -> Tensor<T> {
        let sv = &mut self.fwd;
        assert!(sv.kept, "{}: backward after an inference-only forward (Sequential guards this)", self.name);
        let (b, tl, f) = (sv.b, sv.t, self.in_features);
        let (h, g, s, cw) = (self.cell.units(), self.cell.gates(), self.cell.n_states(), self.cell.cache_width());
        let gh = g * h;
        let chunks = sv.chunks.clone();
        let row_of = |t: usize, bi: usize| -> usize {
            let &(r0, r1) = chunks.iter().find(|(r0, r1)| (*r0..*r1).contains(&bi)).expect("row in a chunk");
            tl * r0 + t * (r1 - r0) + (bi - r0)
        };
        // The gradient reaching each step's output, in the chunk-major layout (the activity
        // penalty's included); each chunk's rows by a thread of its own for a long sequence.
        // The buffer is kept between calls: every value is written (the steps that return
        // nothing get zeros).
        let mut gy = std::mem::take(&mut sv.gy);
        gy.resize(tl * b * h, T::zero());
        {
            let parts = split_lens(&mut gy, chunks.iter().map(|(r0, r1)| tl * (r1 - r0) * h));
            let work: Vec<_> = chunks.iter().copied().zip(parts).collect();
            let rs = self.return_sequences;
            crate::tensor::parallel_chunks(work, copy_work(tl * b * h), |((r0, r1), part)| {
                let bc = r1 - r0;
                for t in 0..tl {
                    for bi in r0..r1 {
                        let dst = &mut part[(t * bc + bi - r0) * h..(t * bc + bi - r0 + 1) * h];
                        if rs {
                            dst.copy_from_slice(&dy.data[(bi * tl + t) * h..(bi * tl + t + 1) * h]);
                        } else if t == tl - 1 {
                            dst.copy_from_slice(&dy.data[bi * h..(bi + 1) * h]);
                        } else {
                            dst.fill(T::zero());
                        }
                    }
                }
            });
        }
        if let Some(reg) = &self.activity_regularizer {
            // The penalty is on the returned output: every step's, or the last one's.
            for bi in 0..b {
                for t in 0..tl {
                    if self.return_sequences || t == tl - 1 {
                        let r = row_of(t, bi);
                        reg.add_grad(&sv.out[r * h..(r + 1) * h], &mut gy[r * h..(r + 1) * h], 1.0);
                    }
                }
            }
        }

        // Uᵀ (G·H, H), once per backward pass, when enough steps use it: packed for the
        // steps' products where they take the packed path (the same bits), else transposed.
        let mut ut = std::mem::take(&mut sv.ut);
        ut.clear();
        sv.ut_packed.clear();
        if tl - sv.zero_init as usize >= 3 {
            if h >= 2 && chunks.iter().all(|&(r0, r1)| packed_fits(r1 - r0, h, gh)) {
                sv.ut_packed.pack(gh, h, &self.recurrent_kernel.value, gh, true);
            }
            if !sv.ut_packed.ready() {
                ut.resize(gh * h, T::zero());
                crate::tensor::transpose_into(&self.recurrent_kernel.value, h, gh, &mut ut);
            }
        }
        sv.dp.resize(tl * b * gh, T::zero());
        let drec_is_dp = self.cell.drec_is_dp();
        sv.drec.resize(if drec_is_dp { 0 } else { tl * b * gh }, T::zero());
        let mut init_grads: Vec<Vec<T>> = vec![vec![T::zero(); b * h]; s];
        {
            let lens = |w: usize| chunks.iter().map(move |(r0, r1)| tl * (r1 - r0) * w).collect::<Vec<_>>();
            let dps = split_lens(&mut sv.dp, lens(gh).into_iter());
            let drecs: Vec<&mut [T]> = if drec_is_dp {
                chunks.iter().map(|_| -> &mut [T] { &mut [] }).collect()
            } else {
                split_lens(&mut sv.drec, lens(gh).into_iter())
            };
            let gys = split_lens_ref(&gy, lens(h).into_iter());
            let hrs = split_lens_ref(&sv.hr, lens(h).into_iter());
            let caches = split_lens_ref(&sv.cache, lens(cw).into_iter());
            let mut states_by_chunk: Vec<Vec<&[T]>> = (0..chunks.len()).map(|_| Vec::new()).collect();
            for st in sv.states.iter() {
                let parts = split_lens_ref(st, chunks.iter().map(|(r0, r1)| (tl + 1) * (r1 - r0) * h));
                for (c, part) in parts.into_iter().enumerate() {
                    states_by_chunk[c].push(part);
                }
            }
            let mut ig_by_chunk: Vec<Vec<&mut [T]>> = (0..chunks.len()).map(|_| Vec::new()).collect();
            for ig in init_grads.iter_mut() {
                let parts = split_lens(ig, chunks.iter().map(|(r0, r1)| (r1 - r0) * h));
                for (c, part) in parts.into_iter().enumerate() {
                    ig_by_chunk[c].push(part);
                }
            }
            let masks: Vec<Option<&[bool]>> = match &sv.mask_tm {
                Some(m) => {
                    split_lens_ref(m, chunks.iter().map(|(r0, r1)| tl * (r1 - r0))).into_iter().map(Some).collect()
                }
                None => vec![None; chunks.len()],
            };
            let mut work = Vec::new();
            for (c, (((((((dp, drec), gy), hr), cache), states), ig), mask)) in dps
                .into_iter()
                .zip(drecs)
                .zip(gys)
                .zip(hrs)
                .zip(caches)
                .zip(states_by_chunk)
                .zip(ig_by_chunk)
                .zip(masks)
                .enumerate()
            {
                let (r0, r1) = chunks[c];
                work.push(ChunkBwd {
                    bc: r1 - r0,
                    dp,
                    drec,
                    gy,
                    hr,
                    cache,
                    states,
                    init_grads: ig,
                    rmask: sv.rmask.as_deref().map(|m| &m[r0 * h..r1 * h]),
                    mask,
                });
            }
            let w = RecWeights {
                kernel: &self.kernel.value,
                recurrent_kernel: &self.recurrent_kernel.value,
                recurrent_kernel_t: &ut,
                u_packed: None,
                ut_packed: Some(&sv.ut_packed),
                bias: if self.use_bias { Some(&self.bias.value) } else { None },
            };
            let (cell, zofm, zi) = (&self.cell, self.zero_output_for_mask, sv.zero_init);
            let flops = 2.0 * (tl * b * h * gh) as f64;
            crate::tensor::parallel_chunks(work, flops, |ch| backward_chunk(cell, &w, zofm, zi, tl, h, ch));
        }
        sv.ut = ut;

        sv.gy = gy;
        let rows = tl * b;
        self.init_grads = if sv.zero_init {
            Vec::new()
        } else {
            init_grads.into_iter().map(|d| Tensor { shape: vec![b, h], data: d }).collect()
        };
        if !need_dx {
            return Tensor::zeros(&[0]);
        }
        // dX = dP · kernelᵀ (into a buffer kept between calls), back to (B, T, F) in input
        // order, each chunk's rows by a thread of its own for a long sequence.
        sv.dx_tm.resize(rows * f, T::zero());
        gemm(rows, f, gh, &sv.dp, gh, false, &self.kernel.value, gh, true, &mut sv.dx_tm, f, Acc::Overwrite);
        let n = b * tl * f;
        let mut dx: Vec<T> = Vec::with_capacity(n);
        {
            let parts = split_lens(&mut dx.spare_capacity_mut()[..n], chunks.iter().map(|(r0, r1)| (r1 - r0) * tl * f));
            let srcs = split_lens_ref(&sv.dx_tm, chunks.iter().map(|(r0, r1)| tl * (r1 - r0) * f));
            let work: Vec<_> = chunks.iter().copied().zip(parts.into_iter().zip(srcs)).collect();
            let (dmask, back) = (sv.dmask.as_deref(), self.go_backwards);
            crate::tensor::parallel_chunks(work, copy_work(n), |((r0, r1), (dst, src))| {
                let bc = r1 - r0;
                for t in 0..tl {
                    let st = if back { tl - 1 - t } else { t };
                    for bi in r0..r1 {
                        let src = &src[(t * bc + bi - r0) * f..(t * bc + bi - r0 + 1) * f];
                        let d = &mut dst[((bi - r0) * tl + st) * f..((bi - r0) * tl + st + 1) * f];
                        match dmask {
                            Some(m) => {
                                for ((d, &v), &mv) in d.iter_mut().zip(src).zip(&m[bi * f..(bi + 1) * f]) {
                                    d.write(v * mv);
                                }
                            }
                            None => {
                                for (d, &v) in d.iter_mut().zip(src) {
                                    d.write(v);
                                }
                            }
                        }
                    }
                }
            });
        }
        // SAFETY: the chunks' parts cover all n values (every step of every row), each written
        // just above.
        unsafe { dx.set_len(n) };
        Tensor { shape: vec![b, tl, f], data: dx }
    }

    /// The weight gradients from the last [`Recurrent::backward_steps`]: single GEMMs over all
    /// T·B rows, added into the gradient buffers (`Acc::Add`) or replacing what they hold.
    fn weight_grads(&mut self, acc: Acc) {
        let sv = &self.fwd;
        let (tl, f) = (sv.t, self.in_features);
        let gh = self.cell.gates() * self.cell.units();
        let rows = tl * sv.b;
        gemm(f, gh, rows, &sv.x_tm, f, true, &sv.dp, gh, false, &mut self.kernel.grad, gh, acc);
        if self.use_bias {
            if acc == Acc::Overwrite {
                self.bias.zero_grad();
            }
            add_col_sums(&sv.dp, gh, &mut self.bias.grad[..gh]);
        }
        let dbias = if self.use_bias { Some(self.bias.grad.as_mut_slice()) } else { None };
        let blocks: Vec<usize> = sv.chunks.iter().flat_map(|&(r0, r1)| std::iter::repeat_n(r1 - r0, tl)).collect();
        let zero_rows = zero_leading_rows(sv.zero_init, &sv.chunks, rows);
        debug_assert!(sv.hr[..zero_rows * self.cell.units()].iter().all(|&v| v == T::zero()));
        self.cell.recurrent_weight_grads(
            &blocks,
            rows,
            zero_rows,
            &sv.hr,
            &sv.cache,
            if self.cell.drec_is_dp() { &sv.dp } else { &sv.drec },
            &mut self.recurrent_kernel.grad,
            dbias,
            acc,
        );
    }

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
            skip_dx: false,
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
        let src_t = |t: usize| if self.go_backwards { tl - 1 - t } else { t };

        // Validate what comes with the input before touching any buffer.
        if let Some(m) = &ctx.mask {
            if m.batch != b || m.time != tl {
                return Err(Error::shape(
                    format!("{} mask", self.name),
                    format!("({b}, {tl})"),
                    format!("({}, {})", m.batch, m.time),
                ));
            }
        }
        let init = ctx.initial_state.take();
        if let Some(init) = &init {
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
            }
        }
        let carried = match (&init, self.stateful, &self.carried) {
            (None, true, Some(c)) => {
                if c[0].len() != b * h {
                    return Err(Error::shape(
                        format!("stateful {}", self.name),
                        format!(
                            "batch {} (the batch of the carried state; call reset_state to change it)",
                            c[0].len() / h
                        ),
                        format!("batch {b}"),
                    ));
                }
                Some(c)
            }
            _ => None,
        };

        let sv = &mut self.fwd;
        sv.b = b;
        sv.t = tl;
        sv.chunks = chunk_ranges(b);
        let chunks = sv.chunks.clone();
        // Row index, in the chunk-major time-major layout, of batch row `bi` at step `t`.
        let row_of = |t: usize, bi: usize| -> usize {
            let &(r0, r1) = chunks.iter().find(|(r0, r1)| (*r0..*r1).contains(&bi)).expect("row in a chunk");
            tl * r0 + t * (r1 - r0) + (bi - r0)
        };

        // Dropout masks: one per sequence, the same at every step (Keras); drawn for the whole
        // batch in order, so they do not depend on the chunking.
        sv.dmask = (ctx.training && self.dropout > 0.0).then(|| Self::dropout_mask(ctx.rng, b * f, self.dropout));
        sv.rmask = (ctx.training && self.recurrent_dropout > 0.0)
            .then(|| Self::dropout_mask(ctx.rng, b * h, self.recurrent_dropout));

        // X chunk-major time-major, reversed for go_backwards; the mask likewise.
        // Each chunk's rows by the thread that runs its time loop (M1's second layer, I1's:
        // 2 and 32 MB a batch).
        sv.x_tm.resize(tl * b * f, T::zero());
        {
            let parts = split_lens(&mut sv.x_tm, chunks.iter().map(|(r0, r1)| tl * (r1 - r0) * f));
            let dmask = sv.dmask.as_deref();
            let work: Vec<_> = chunks.iter().copied().zip(parts).collect();
            crate::tensor::parallel_chunks(work, copy_work(tl * b * f), |((r0, r1), dst)| {
                let bc = r1 - r0;
                for t in 0..tl {
                    let st = src_t(t);
                    for bi in r0..r1 {
                        let src = &x.data[(bi * tl + st) * f..(bi * tl + st + 1) * f];
                        let d = &mut dst[(t * bc + bi - r0) * f..(t * bc + bi - r0 + 1) * f];
                        match dmask {
                            Some(m) => {
                                for ((d, &v), &mv) in d.iter_mut().zip(src).zip(&m[bi * f..(bi + 1) * f]) {
                                    *d = v * mv;
                                }
                            }
                            None => d.copy_from_slice(src),
                        }
                    }
                }
            });
        }
        sv.mask_tm = ctx.mask.as_ref().map(|m| {
            let mut v = vec![true; tl * b];
            for t in 0..tl {
                for bi in 0..b {
                    v[row_of(t, bi)] = m.get(bi, src_t(t));
                }
            }
            v
        });

        // P = X_tm · kernel + b_in: all steps in one GEMM, or (a large P) `nt`
        // steps at a time inside each chunk's loop (see `Proj::Blocked`): blocks of more than
        // 48 rows, a short last one joined to the one before.
        let max_bc = chunks.iter().map(|(r0, r1)| r1 - r0).max().unwrap_or(0);
        let min_bc = chunks.iter().map(|(r0, r1)| r1 - r0).min().unwrap_or(1).max(1);
        let blocked = tl > 1 && tl * b * gh > PROJ_BLOCK_MIN.load(std::sync::atomic::Ordering::Relaxed);
        let nt = if blocked {
            (PROJ_BLOCK.load(std::sync::atomic::Ordering::Relaxed) / (max_bc * gh))
                .max(BLOCK_MIN_ROWS.div_ceil(max_bc))
                .clamp(1, tl)
        } else {
            tl
        };
        // Steps a block can hold: nt, plus a short tail (fewer than 49 rows) joined to it.
        let cap = (nt + BLOCK_MIN_ROWS.div_ceil(min_bc) - 1).min(tl);
        if blocked {
            sv.p.resize(cap * b * gh, T::zero());
        } else {
            sv.p.resize(tl * b * gh, T::zero());
            project(
                tl * b,
                gh,
                f,
                &sv.x_tm,
                &self.kernel.value,
                self.use_bias.then(|| &self.bias.value[..gh]),
                &mut sv.p,
            );
        }

        // What is kept: every step for backward, or rolling slots in inference.
        let slots = Slots { keep: ctx.for_backward, all_out: ctx.for_backward || self.return_sequences };
        sv.kept = ctx.for_backward;
        let (n_step, n_state, n_out) = slots.counts(tl);

        // Initial states (given, carried for stateful layers, or zeros) in each chunk's slot 0.
        sv.states.resize_with(s, Vec::new);
        for st in sv.states.iter_mut() {
            st.clear();
            st.resize(n_state * b * h, T::zero());
        }
        sv.zero_init = init.is_none() && carried.is_none();
        let given: Option<Vec<&[T]>> = match (&init, carried) {
            (Some(i), _) => Some(i.iter().map(|t| t.data.as_slice()).collect()),
            (None, Some(c)) => Some(c.iter().map(|v| v.as_slice()).collect()),
            _ => None,
        };
        if let Some(given) = given {
            for (i, src) in given.iter().enumerate() {
                for &(r0, r1) in &chunks {
                    let o = n_state * r0 * h;
                    sv.states[i][o..o + (r1 - r0) * h].copy_from_slice(&src[r0 * h..r1 * h]);
                }
            }
        }
        sv.hr.resize(n_step * b * h, T::zero());
        sv.cache.resize(n_step * b * cw, T::zero());
        sv.out.resize(n_out * b * h, T::zero());

        // U packed once for the steps' products, when enough steps use it (see `Packed`).
        sv.u_packed.clear();
        if self.cell.steps_use_whole_u()
            && tl - sv.zero_init as usize >= 3
            && chunks.iter().all(|&(r0, r1)| packed_fits(r1 - r0, gh, h))
        {
            sv.u_packed.pack(h, gh, &self.recurrent_kernel.value, gh, false);
        }

        // The time loops, chunk by chunk (in parallel where it pays).
        {
            let lens = |n: usize, w: usize| chunks.iter().map(move |(r0, r1)| n * (r1 - r0) * w).collect::<Vec<_>>();
            let ps: Vec<Proj<T>> = if blocked {
                let xs = split_lens_ref(&sv.x_tm, lens(tl, f).into_iter());
                let bufs = split_lens(&mut sv.p, lens(cap, gh).into_iter());
                xs.into_iter().zip(bufs).map(|(x, buf)| Proj::Blocked { x, f, nt, buf }).collect()
            } else {
                split_lens_ref(&sv.p, lens(tl, gh).into_iter()).into_iter().map(Proj::All).collect()
            };
            let hrs = split_lens(&mut sv.hr, lens(n_step, h).into_iter());
            let caches = split_lens(&mut sv.cache, lens(n_step, cw).into_iter());
            let outs = split_lens(&mut sv.out, lens(n_out, h).into_iter());
            let mut states_by_chunk: Vec<Vec<&mut [T]>> = (0..chunks.len()).map(|_| Vec::new()).collect();
            for st in sv.states.iter_mut() {
                let parts = split_lens(st, chunks.iter().map(|(r0, r1)| n_state * (r1 - r0) * h));
                for (c, part) in parts.into_iter().enumerate() {
                    states_by_chunk[c].push(part);
                }
            }
            let masks: Vec<Option<&[bool]>> = match &sv.mask_tm {
                Some(m) => {
                    split_lens_ref(m, chunks.iter().map(|(r0, r1)| tl * (r1 - r0))).into_iter().map(Some).collect()
                }
                None => vec![None; chunks.len()],
            };
            let mut work: Vec<ChunkFwd<T>> = Vec::new();
            for (c, (((((p, hr), cache), out), states), mask)) in
                ps.into_iter().zip(hrs).zip(caches).zip(outs).zip(states_by_chunk).zip(masks).enumerate()
            {
                let (r0, r1) = chunks[c];
                work.push(ChunkFwd {
                    bc: r1 - r0,
                    p,
                    hr,
                    states,
                    cache,
                    out,
                    rmask: sv.rmask.as_deref().map(|m| &m[r0 * h..r1 * h]),
                    mask,
                });
            }
            let w = RecWeights {
                kernel: &self.kernel.value,
                recurrent_kernel: &self.recurrent_kernel.value,
                recurrent_kernel_t: &[],
                u_packed: Some(&sv.u_packed),
                ut_packed: None,
                bias: if self.use_bias { Some(&self.bias.value) } else { None },
            };
            let (cell, zofm, zi) = (&self.cell, self.zero_output_for_mask, sv.zero_init);
            let flops = 2.0 * (tl * b * h * gh) as f64;
            crate::tensor::parallel_chunks(work, flops, |ch| forward_chunk(cell, &w, zofm, zi, slots, tl, h, ch));
        }

        // Final states, back in batch order.
        self.final_states = (0..s)
            .map(|i| {
                let mut data = vec![T::zero(); b * h];
                for &(r0, r1) in &chunks {
                    let o = n_state * r0 * h + slots.state(tl) * (r1 - r0) * h;
                    data[r0 * h..r1 * h].copy_from_slice(&sv.states[i][o..o + (r1 - r0) * h]);
                }
                Tensor { shape: vec![b, h], data }
            })
            .collect();
        if self.stateful {
            self.carried = Some(self.final_states.iter().map(|t| t.data.clone()).collect());
        }
        // Keras: the output mask is the input mask when returning sequences, else none.
        if !self.return_sequences {
            ctx.mask = None;
        }
        let y = if self.return_sequences {
            // Back in batch order, each chunk's rows by the thread that computed them.
            let n = b * tl * h;
            let mut data: Vec<T> = Vec::with_capacity(n);
            {
                let parts =
                    split_lens(&mut data.spare_capacity_mut()[..n], chunks.iter().map(|(r0, r1)| (r1 - r0) * tl * h));
                let srcs = split_lens_ref(&sv.out, chunks.iter().map(|(r0, r1)| tl * (r1 - r0) * h));
                let work: Vec<_> = chunks.iter().copied().zip(parts.into_iter().zip(srcs)).collect();
                crate::tensor::parallel_chunks(work, copy_work(n), |((r0, r1), (dst, src))| {
                    let bc = r1 - r0;
                    for i in 0..bc {
                        for t in 0..tl {
                            let d = &mut dst[(i * tl + t) * h..(i * tl + t + 1) * h];
                            for (d, &v) in d.iter_mut().zip(&src[(t * bc + i) * h..(t * bc + i + 1) * h]) {
                                d.write(v);
                            }
                        }
                    }
                });
            }
            // SAFETY: the chunks' parts cover all n values, each written just above.
            unsafe { data.set_len(n) };
            Tensor { shape: vec![b, tl, h], data }
        } else {
            let mut y = Tensor::zeros(&[b, h]);
            for bi in 0..b {
                // One output slot per chunk in inference: (B, H) in batch order already.
                let r = if slots.all_out { row_of(tl - 1, bi) } else { bi };
                y.data[bi * h..(bi + 1) * h].copy_from_slice(&sv.out[r * h..(r + 1) * h]);
            }
            y
        };
        self.activity = match &self.activity_regularizer {
            // Keras 3: the penalty of the whole output, not divided by the batch size.
            Some(r) => r.penalty(&y.data),
            None => 0.0,
        };
        Ok(y)
    }

    fn backward(&mut self, dy: &Tensor<T>) -> Tensor<T> {
        let dx = self.backward_steps(dy, !self.skip_dx);
        self.weight_grads(Acc::Add);
        dx
    }

    fn backward_split<'a>(
        &'a mut self,
        dy: &Tensor<T>,
        need_dx: bool,
        overwrite: bool,
    ) -> (Tensor<T>, ParamJob<'a, T>) {
        let dx = self.backward_steps(dy, need_dx);
        let acc = if overwrite { Acc::Overwrite } else { Acc::Add };
        (
            dx,
            Box::new(move || {
                self.weight_grads(acc);
                self.params_mut()
            }),
        )
    }

    fn backward_params(&mut self, dy: &Tensor<T>) {
        self.skip_dx = true;
        let _ = self.backward(dy);
        self.skip_dx = false;
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
    fn stack_step(&self) -> Option<&dyn StackStep<T>> {
        Some(self)
    }
    fn stack_step_mut(&mut self) -> Option<&mut dyn StackStep<T>> {
        Some(self)
    }
}

/// One chunk's view for backward.
struct ChunkBwd<'a, T> {
    bc: usize,
    dp: &'a mut [T],
    drec: &'a mut [T],
    gy: &'a [T],
    hr: &'a [T],
    cache: &'a [T],
    states: Vec<&'a [T]>,
    init_grads: Vec<&'a mut [T]>,
    rmask: Option<&'a [T]>,
    mask: Option<&'a [bool]>,
}

/// Where step t lives in a chunk's buffers: every step (kept for backward), or rolling slots
/// (inference: one step of scratch, two alternating state slots).
#[derive(Clone, Copy)]
struct Slots {
    keep: bool,
    all_out: bool,
}

impl Slots {
    fn step(self, t: usize) -> usize {
        if self.keep {
            t
        } else {
            0
        }
    }
    fn state(self, t: usize) -> usize {
        if self.keep {
            t
        } else {
            t % 2
        }
    }
    fn out(self, t: usize) -> usize {
        if self.all_out {
            t
        } else {
            0
        }
    }
    /// Slots held per chunk: (hr and cache, states, out).
    fn counts(self, tl: usize) -> (usize, usize, usize) {
        if self.keep {
            (tl, tl + 1, tl)
        } else {
            (1, 2, if self.all_out { tl } else { 1 })
        }
    }
}

/// Every row of `p` (rows of `bias.len()` values) set to the bias, when there is one.
/// The input projection `p (rows, gh) = x (rows, f) · kernel (f, gh) [+ bias]`.
fn project<T: Scalar>(rows: usize, gh: usize, f: usize, x: &[T], kernel: &[T], bias: Option<&[T]>, p: &mut [T]) {
    match bias {
        Some(bias) => gemm_bias(rows, gh, f, x, f, false, kernel, gh, false, p, gh, bias),
        None => gemm(rows, gh, f, x, f, false, kernel, gh, false, p, gh, Acc::Overwrite),
    }
}

/// The work to give [`crate::tensor::parallel_chunks`] for a layout copy of `n` values:
/// shared out between the threads from [`crate::tensor::ELEMENTWISE_SHARE_MIN`] values, as the
/// element-wise passes are.
fn copy_work(n: usize) -> f64 {
    if n >= crate::tensor::ELEMENTWISE_SHARE_MIN {
        f64::INFINITY
    } else {
        0.0
    }
}

/// Slot `a` to read and slot `b` (≠ a) to write, of `len` values each.
fn read_write<T>(v: &mut [T], a: usize, b: usize, len: usize) -> (&[T], &mut [T]) {
    if a < b {
        let (lo, hi) = v.split_at_mut(b * len);
        (&lo[a * len..(a + 1) * len], &mut hi[..len])
    } else {
        let (lo, hi) = v.split_at_mut(a * len);
        (&hi[..len], &mut lo[b * len..(b + 1) * len])
    }
}

/// Slot `a` to read and slot `b` (≠ a) to write, of `len` values each, of every state (at
/// most two: h, or h and c), as a cell step's `prev` and `next` (unused entries empty).
fn state_slots<T, S: AsMut<[T]>>(states: &mut [S], a: usize, b: usize, len: usize) -> ([&[T]; 2], [&mut [T]; 2]) {
    let (mut prev, mut next): ([&[T]; 2], [&mut [T]; 2]) = ([&[], &[]], [&mut [], &mut []]);
    for ((st, p), n) in states.iter_mut().zip(prev.iter_mut()).zip(next.iter_mut()) {
        (*p, *n) = read_write(st.as_mut(), a, b, len);
    }
    (prev, next)
}

/// The forward time loop of one chunk of `bc` rows.
#[allow(clippy::too_many_arguments)]
fn forward_chunk<T: Scalar, C: Cell<T>>(
    cell: &C,
    w: &RecWeights<T>,
    zofm: bool,
    zero_init: bool,
    slots: Slots,
    tl: usize,
    h: usize,
    ch: ChunkFwd<T>,
) {
    let ChunkFwd { bc, mut p, hr, mut states, cache, out, rmask, mask } = ch;
    let (gh, cw, bh) = (cell.gates() * h, cell.cache_width(), bc * h);
    let s = states.len();
    let mut block_end = 0; // Proj::Blocked: the block in `buf` holds steps block_start..block_end
    let mut block_start = 0;
    for t in 0..tl {
        // This step's input projection.
        let p_t: &[T] = match &mut p {
            Proj::All(p) => &p[t * bc * gh..(t + 1) * bc * gh],
            Proj::Blocked { x, f, nt, buf } => {
                let f = *f;
                if t == block_end {
                    let mut n = (*nt).min(tl - t);
                    if (tl - t - n) * bc < BLOCK_MIN_ROWS {
                        n = tl - t;
                    }
                    (block_start, block_end) = (t, t + n);
                    let buf = &mut buf[..n * bc * gh];
                    project(n * bc, gh, f, &x[t * bc * f..], w.kernel, w.bias.map(|b| &b[..gh]), buf);
                }
                &buf[(t - block_start) * bc * gh..(t - block_start + 1) * bc * gh]
            }
        };
        let (st_prev, st_next, k) = (slots.state(t), slots.state(t + 1), slots.step(t));
        // hr_t = h_{t-1} (⊙ recurrent dropout mask), kept for backward; in inference without
        // the mask the step reads h_{t-1} where it lies.
        let copy_hr = slots.keep || rmask.is_some();
        if copy_hr {
            let hprev = &states[0][st_prev * bh..(st_prev + 1) * bh];
            let hrt = &mut hr[k * bh..(k + 1) * bh];
            match rmask {
                Some(m) => {
                    for ((d, &v), &mv) in hrt.iter_mut().zip(hprev).zip(m) {
                        *d = v * mv;
                    }
                }
                None => hrt.copy_from_slice(hprev),
            }
        }
        {
            let (prev_arr, mut next_arr) = state_slots(&mut states, st_prev, st_next, bh);
            let p0 = prev_arr[0];
            cell.forward_step(
                w,
                bc,
                p_t,
                if copy_hr { &hr[k * bh..(k + 1) * bh] } else { p0 },
                &prev_arr[..s],
                &mut next_arr[..s],
                &mut cache[k * bc * cw..(k + 1) * bc * cw],
                zero_init && t == 0,
            );
        }
        // Masked rows keep their states; the output is carried or zero.
        let o = slots.out(t);
        match mask {
            // One output slot (inference, the last step returned): only the last step's counts.
            None if !slots.all_out && t + 1 < tl => {}
            None => out[o * bh..(o + 1) * bh].copy_from_slice(&states[0][st_next * bh..(st_next + 1) * bh]),
            Some(m) => {
                for bi in 0..bc {
                    let r = bi * h..(bi + 1) * h;
                    if m[t * bc + bi] {
                        out[o * bh + r.start..o * bh + r.end]
                            .copy_from_slice(&states[0][st_next * bh + r.start..st_next * bh + r.end]);
                    } else {
                        for st in states.iter_mut() {
                            let (prev, next) = read_write(st, st_prev, st_next, bh);
                            next[r.clone()].copy_from_slice(&prev[r.clone()]);
                        }
                        if zofm || t == 0 {
                            out[o * bh + r.start..o * bh + r.end].fill(T::zero());
                        } else if slots.all_out {
                            let (prev, next) = read_write(out, o - 1, o, bh);
                            next[r.clone()].copy_from_slice(&prev[r]);
                        } // else: the one output slot still holds out_{t-1}
                    }
                }
            }
        }
    }
}

/// The backward time loop of one chunk: fills its `dp`, `drec` and initial-state gradients.
fn backward_chunk<T: Scalar, C: Cell<T>>(
    cell: &C,
    w: &RecWeights<T>,
    zofm: bool,
    zero_init: bool,
    tl: usize,
    h: usize,
    ch: ChunkBwd<T>,
) {
    let ChunkBwd { bc, dp, drec, gy, hr, cache, states, mut init_grads, rmask, mask } = ch;
    let (gh, cw, bh) = (cell.gates() * h, cell.cache_width(), bc * h);
    let s = states.len();
    let mut ds: Vec<Vec<T>> = vec![vec![T::zero(); bh]; s];
    let mut dnext: Vec<Vec<T>> = vec![vec![T::zero(); bh]; s];
    let mut dprev: Vec<Vec<T>> = vec![vec![T::zero(); bh]; s];
    let mut dhr = vec![T::zero(); bh];
    let mut dpo = vec![T::zero(); bh];
    let mut gout = vec![T::zero(); bh];
    for t in (0..tl).rev() {
        // Gradient reaching this step's output: from the layer's output and, for masked rows
        // that carried it forward, from the next step.
        for ((o, &a), &c) in gout.iter_mut().zip(&gy[t * bh..(t + 1) * bh]).zip(&dpo) {
            *o = a + c;
        }
        // Gradients of the new states: out_t = h_t for kept rows.
        for i in 0..s {
            dnext[i].copy_from_slice(&ds[i]);
        }
        for (a, &v) in dnext[0].iter_mut().zip(&gout) {
            *a += v;
        }
        if let Some(m) = mask {
            for bi in 0..bc {
                if !m[t * bc + bi] {
                    for dn in dnext.iter_mut() {
                        dn[bi * h..(bi + 1) * h].fill(T::zero());
                    }
                }
            }
        }
        {
            // At most two states (h, c): fixed arrays, nothing allocated per step.
            let mut prev_arr: [&[T]; 2] = [&[], &[]];
            let mut dnext_arr: [&[T]; 2] = [&[], &[]];
            for i in 0..s {
                prev_arr[i] = &states[i][t * bh..(t + 1) * bh];
                dnext_arr[i] = &dnext[i];
            }
            let (d0, d1) = dprev.split_at_mut(1);
            let mut dprev_arr: [&mut [T]; 2] =
                [&mut d0[0], d1.first_mut().map(|v| v.as_mut_slice()).unwrap_or(&mut [])];
            cell.backward_step(
                w,
                bc,
                &hr[t * bh..(t + 1) * bh],
                &prev_arr[..s],
                &cache[t * bc * cw..(t + 1) * bc * cw],
                &dnext_arr[..s],
                &mut dp[t * bc * gh..(t + 1) * bc * gh],
                if drec.is_empty() { &mut [] } else { &mut drec[t * bc * gh..(t + 1) * bc * gh] },
                &mut dhr,
                &mut dprev_arr[..s],
                !(zero_init && t == 0),
            );
        }
        if zero_init && t == 0 {
            // Nothing flows further back: the default initial state is a constant.
            break;
        }
        // hr = h_{t-1} ⊙ rmask
        if let Some(rm) = rmask {
            for (a, &mv) in dhr.iter_mut().zip(rm) {
                *a *= mv;
            }
        }
        for (a, &v) in dprev[0].iter_mut().zip(&dhr) {
            *a += v;
        }
        match mask {
            None => {
                for i in 0..s {
                    std::mem::swap(&mut ds[i], &mut dprev[i]);
                }
                dpo.fill(T::zero());
            }
            Some(m) => {
                for bi in 0..bc {
                    let r = bi * h..(bi + 1) * h;
                    if m[t * bc + bi] {
                        for i in 0..s {
                            ds[i][r.clone()].copy_from_slice(&dprev[i][r.clone()]);
                        }
                        dpo[r].fill(T::zero());
                    } else if zofm {
                        dpo[r].fill(T::zero());
                    } else {
                        dpo[r.clone()].copy_from_slice(&gout[r]);
                    }
                }
            }
        }
    }
    for (ig, d) in init_grads.iter_mut().zip(ds) {
        ig.copy_from_slice(&d);
    }
}

/// Builds a [`Mask`] from a (batch, time) 0/1 slice.
pub fn mask_from_u8(batch: usize, time: usize, m: &[u8]) -> Mask {
    Mask { batch, time, keep: m.iter().map(|&v| v != 0).collect() }
}
