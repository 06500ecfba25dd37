//! Inference through a stack of recurrent layers one time step at a time.
//!
//! `predict` on `LSTM(128, return_sequences=True) -> LSTM(128)` would otherwise run the first
//! layer over every step, lay its whole output sequence out in batch order (I1: 32 MB a batch
//! of 1024 windows), lay it out again in time order for the second layer and project all of it
//! before the second layer's first step. Here each chunk of rows runs step t of every layer of
//! the stack before step t + 1: the first layer's h_t goes straight into the second layer's
//! projection, nothing of the sequence is stored but what the last layer returns, and a
//! chunk's working set stays in cache.
//!
//! Every value is computed by the same operations as layer by layer ([`super::forward_chunk`]
//! in inference): each row's projection is the same product (where the kernels sum a row the
//! same way whatever the number of rows, see [`StackStep::stackable`]), each step the cell's
//! own [`Cell::forward_step`]. `tests/chunking.rs` compares the two.

use super::{chunk_ranges, project, split_lens, state_slots, Cell, RecWeights, Recurrent};
use crate::error::{Error, Result};
use crate::tensor::{Scalar, Tensor};

/// A recurrent layer seen one time step at a time (see the module docs). Implemented by
/// [`Recurrent`]; other layers do not take part.
pub trait StackStep<T: Scalar>: Sync {
    /// Whether this layer can run in a stack in inference, with chunks of at least
    /// `min_rows` rows: forwards, not stateful, returning no states and no activity penalty,
    /// and an input whose projection of one step's rows sums each value in the order of the
    /// product over all steps: one feature (an outer product, one pass), or 3 to 512 features
    /// and at least two rows (the gemm crate sums a single row, and an inner dimension of
    /// two, in orders of their own, and one of more than 512 in blocks that depend on the
    /// shape).
    fn stackable(&self, min_rows: usize) -> bool;
    /// The layer's name, for error messages.
    fn layer_name(&self) -> &str;
    /// Keras's `return_sequences`.
    fn returns_sequences(&self) -> bool;
    /// Input features.
    fn in_features(&self) -> usize;
    /// Units (the width of h).
    fn units(&self) -> usize;
    /// A chunk's buffers for `bc` rows, the states zero.
    fn scratch(&self, bc: usize) -> StepScratch<T>;
    /// Step `t` of one chunk: `x` (bc, in_features) in, the new states into `s`.
    fn step(&self, s: &mut StepScratch<T>, x: &[T], t: usize);
    /// After the last step: the final states (batch order), as `forward` leaves them.
    fn finish(&mut self, final_states: Vec<Tensor<T>>);
}

/// One chunk's buffers for one layer of a stack.
pub struct StepScratch<T> {
    bc: usize,
    h: usize,
    /// This step's input projection (bc, G·H).
    p: Vec<T>,
    /// The cell's step cache (scratch in inference).
    cache: Vec<T>,
    /// Each state in two slots of (bc, H): step t reads slot t % 2 and writes the other.
    states: Vec<Vec<T>>,
    /// Steps taken.
    t: usize,
}

impl<T: Scalar> StepScratch<T> {
    /// State `i` after the last step taken (slot 0 before the first).
    fn state(&self, i: usize) -> &[T] {
        let bh = self.bc * self.h;
        let slot = self.t % 2;
        &self.states[i][slot * bh..(slot + 1) * bh]
    }
}

impl<T: Scalar, C: Cell<T>> StackStep<T> for Recurrent<T, C> {
    fn stackable(&self, min_rows: usize) -> bool {
        !self.go_backwards
            && !self.stateful
            && !self.return_state
            && self.activity_regularizer.is_none()
            && (self.in_features == 1 || ((3..=512).contains(&self.in_features) && min_rows >= 2))
    }
    fn layer_name(&self) -> &str {
        &self.name
    }
    fn returns_sequences(&self) -> bool {
        self.return_sequences
    }
    fn in_features(&self) -> usize {
        self.in_features
    }
    fn units(&self) -> usize {
        self.cell.units()
    }
    fn scratch(&self, bc: usize) -> StepScratch<T> {
        let (h, gh) = (self.cell.units(), self.cell.gates() * self.cell.units());
        StepScratch {
            bc,
            h,
            p: vec![T::zero(); bc * gh],
            cache: vec![T::zero(); bc * self.cell.cache_width()],
            states: vec![vec![T::zero(); 2 * bc * h]; self.cell.n_states()],
            t: 0,
        }
    }
    fn step(&self, s: &mut StepScratch<T>, x: &[T], t: usize) {
        let (h, gh, f) = (self.cell.units(), self.cell.gates() * self.cell.units(), self.in_features);
        let (bc, bh) = (s.bc, s.bc * h);
        let bias = self.use_bias.then(|| &self.bias.value[..gh]);
        project(bc, gh, f, x, &self.kernel.value, bias, &mut s.p);
        let w = RecWeights {
            kernel: &self.kernel.value,
            recurrent_kernel: &self.recurrent_kernel.value,
            recurrent_kernel_t: &[],
            u_packed: None,
            ut_packed: None,
            bias: if self.use_bias { Some(&self.bias.value) } else { None },
        };
        let (st_prev, st_next) = (t % 2, (t + 1) % 2);
        let n_states = s.states.len();
        let (prev, mut next) = state_slots(&mut s.states, st_prev, st_next, bh);
        let p0 = prev[0];
        // The default (zero) initial state: no recurrent product at the first step.
        self.cell.forward_step(&w, bc, &s.p, p0, &prev[..n_states], &mut next[..n_states], &mut s.cache, t == 0);
        s.t = t + 1;
    }
    fn finish(&mut self, final_states: Vec<Tensor<T>>) {
        // Nothing kept for a backward pass, as after any inference forward.
        self.fwd.kept = false;
        self.activity = 0.0;
        self.final_states = final_states;
    }
}

/// Stacks run so far (in this process): a diagnostic for tests, which check that the path they
/// compare was taken.
static STACKS_RUN: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// How many times inference has run a stack of recurrent layers a step at a time.
pub fn stacks_run() -> u64 {
    STACKS_RUN.load(std::sync::atomic::Ordering::Relaxed)
}

/// Runs `layers` (each but the last returning sequences, all [`StackStep::stackable`]) on `x`
/// (batch, time, features) a step at a time, chunk by chunk (in parallel where it pays), and
/// returns what the last layer returns.
pub(crate) fn run_stack<T: Scalar>(layers: &mut [&mut dyn StackStep<T>], x: &Tensor<T>) -> Result<Tensor<T>> {
    let (f, name) = (layers[0].in_features(), layers[0].layer_name());
    if x.ndim() != 3 || x.shape[2] != f {
        return Err(Error::shape(name, format!("(batch, time, {f})"), format!("{:?}", x.shape)));
    }
    let (b, tl) = (x.shape[0], x.shape[1]);
    if tl == 0 {
        return Err(Error::shape(name, "at least one time step", "0"));
    }
    let (hl, seq) = (layers[layers.len() - 1].units(), layers[layers.len() - 1].returns_sequences());
    let chunks = chunk_ranges(b);
    let out_row = if seq { tl * hl } else { hl };
    let mut y = vec![T::zero(); b * out_row];
    let shared: Vec<&dyn StackStep<T>> = layers.iter().map(|l| &**l as &dyn StackStep<T>).collect();
    let finals: Vec<std::sync::Mutex<Vec<StepScratch<T>>>> =
        chunks.iter().map(|_| std::sync::Mutex::new(Vec::new())).collect();
    {
        let parts = split_lens(&mut y, chunks.iter().map(|(r0, r1)| (r1 - r0) * out_row));
        let work: Vec<_> = chunks.iter().copied().zip(parts).zip(&finals).collect();
        let flops: f64 =
            shared.iter().map(|l| 2.0 * (tl * b) as f64 * (l.units() * (l.in_features() + l.units())) as f64).sum();
        crate::tensor::parallel_chunks(work, flops, |(((r0, r1), out), fin)| {
            let bc = r1 - r0;
            let mut sc: Vec<StepScratch<T>> = shared.iter().map(|l| l.scratch(bc)).collect();
            let mut xt = vec![T::zero(); bc * f];
            for t in 0..tl {
                for (i, bi) in (r0..r1).enumerate() {
                    xt[i * f..(i + 1) * f].copy_from_slice(&x.data[(bi * tl + t) * f..(bi * tl + t + 1) * f]);
                }
                shared[0].step(&mut sc[0], &xt, t);
                for l in 1..shared.len() {
                    let (below, this) = sc.split_at_mut(l);
                    shared[l].step(&mut this[0], below[l - 1].state(0), t);
                }
                let hs = sc[sc.len() - 1].state(0);
                if seq {
                    for i in 0..bc {
                        out[(i * tl + t) * hl..(i * tl + t + 1) * hl].copy_from_slice(&hs[i * hl..(i + 1) * hl]);
                    }
                } else if t + 1 == tl {
                    out.copy_from_slice(hs);
                }
            }
            *fin.lock().unwrap_or_else(|e| e.into_inner()) = sc;
        });
    }
    // Each layer's final states, back in batch order.
    let finals: Vec<Vec<StepScratch<T>>> =
        finals.into_iter().map(|m| m.into_inner().unwrap_or_else(|e| e.into_inner())).collect();
    for (li, layer) in layers.iter_mut().enumerate() {
        let h = layer.units();
        let n_states = finals[0][li].states.len();
        let states = (0..n_states)
            .map(|i| {
                let mut data = Vec::with_capacity(b * h);
                for chunk in &finals {
                    data.extend_from_slice(chunk[li].state(i));
                }
                Tensor { shape: vec![b, h], data }
            })
            .collect();
        layer.finish(states);
    }
    STACKS_RUN.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let shape = if seq { vec![b, tl, hl] } else { vec![b, hl] };
    Ok(Tensor { shape, data: y })
}
