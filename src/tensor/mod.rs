//! The scalar trait, the one dense tensor type that flows between layers, and the single place
//! that calls the matrix-multiply kernel.

mod pool;
pub use pool::groups_shared_with_idle_workers;
pub(crate) use pool::{keep_watching, run_queue, Queue};
mod packed;
mod small;

/// Products with at most this many rows take the few-row kernels (float32 on AVX-512), which
/// sum in their own order: callers that need the same bits as a larger product keep above it.
pub(crate) const SMALL_MAX_ROWS: usize = small::MAX_ROWS;

use crate::error::{Error, Result};
pub(crate) use packed::fits as packed_fits;
pub use packed::{available as packing_available, packs_made, set_packing, Packed};
pub(crate) use packed::{gemm_packed, gemm_packed_rows};
use std::fmt::{Debug, Display};

/// The floating-point types memcell computes in: `f32` (the default, as Keras) and `f64` (for
/// precise physics work and gradient checks). One trait, not two copies of the code.
pub trait Scalar:
    num_traits::Float
    + num_traits::FromPrimitive
    + num_traits::ToPrimitive
    + std::iter::Sum
    + std::ops::AddAssign
    + std::ops::SubAssign
    + std::ops::MulAssign
    + Default
    + Debug
    + Display
    + Send
    + Sync
    + 'static
{
    /// The Keras dtype name: `"float32"` or `"float64"`.
    const DTYPE: &'static str;
    /// Converts from `f64`, rounding to the nearest representable value.
    fn of(v: f64) -> Self;
    /// Converts to `f64` exactly.
    fn f64(self) -> f64;
    /// The optimizer's slot storage of this dtype.
    fn slots(s: &mut Slots) -> &mut Vec<Vec<Vec<Self>>>;
    /// `tanh` for activations: float32 uses the vectorisable approximation TensorFlow uses
    /// ([`crate::simd::tanh_f32`]), float64 the exact libm value.
    fn tanh_act(self) -> Self;
    /// The logistic sigmoid for activations (float32: [`crate::simd::sigmoid_f32`]; float64:
    /// `1 / (1 + exp(-z))` evaluated stably).
    fn sigmoid_act(self) -> Self;
}

/// Optimizer slots (per variable, per slot, per element) in the variables' dtype.
#[derive(Clone, Debug, Default)]
pub struct Slots {
    pub f32: Vec<Vec<Vec<f32>>>,
    pub f64: Vec<Vec<Vec<f64>>>,
}

impl Scalar for f32 {
    const DTYPE: &'static str = "float32";
    #[inline(always)]
    fn of(v: f64) -> Self {
        v as f32
    }
    #[inline(always)]
    fn f64(self) -> f64 {
        self as f64
    }
    fn slots(s: &mut Slots) -> &mut Vec<Vec<Vec<Self>>> {
        &mut s.f32
    }
    #[inline(always)]
    fn tanh_act(self) -> Self {
        crate::simd::tanh_f32(self)
    }
    #[inline(always)]
    fn sigmoid_act(self) -> Self {
        crate::simd::sigmoid_f32(self)
    }
}

impl Scalar for f64 {
    const DTYPE: &'static str = "float64";
    #[inline(always)]
    fn of(v: f64) -> Self {
        v
    }
    #[inline(always)]
    fn f64(self) -> f64 {
        self
    }
    fn slots(s: &mut Slots) -> &mut Vec<Vec<Vec<Self>>> {
        &mut s.f64
    }
    #[inline(always)]
    fn tanh_act(self) -> Self {
        self.tanh()
    }
    #[inline(always)]
    fn sigmoid_act(self) -> Self {
        if self >= 0.0 {
            1.0 / (1.0 + (-self).exp())
        } else {
            let e = self.exp();
            e / (1.0 + e)
        }
    }
}

/// A dense row-major tensor: the values that flow between layers.
///
/// Shapes follow Keras: `(batch, features)` or `(batch, time, features)`.
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor<T> {
    pub shape: Vec<usize>,
    pub data: Vec<T>,
}

impl<T: Scalar> Tensor<T> {
    /// A tensor of zeros.
    pub fn zeros(shape: &[usize]) -> Self {
        Tensor { shape: shape.to_vec(), data: vec![T::zero(); shape.iter().product()] }
    }

    /// Wraps `data` with `shape`; fails if the element count does not match.
    pub fn new(shape: &[usize], data: Vec<T>) -> Result<Self> {
        let n: usize = shape.iter().product();
        if n != data.len() {
            return Err(Error::shape(
                "Tensor::new",
                format!("{n} values for shape {shape:?}"),
                format!("{} values", data.len()),
            ));
        }
        Ok(Tensor { shape: shape.to_vec(), data })
    }

    /// Builds from `f64` values (converted to `T`).
    pub fn from_f64(shape: &[usize], data: &[f64]) -> Result<Self> {
        Self::new(shape, data.iter().map(|&v| T::of(v)).collect())
    }

    /// The values as `f64`.
    pub fn to_f64(&self) -> Vec<f64> {
        self.data.iter().map(|v| v.f64()).collect()
    }

    /// Number of dimensions.
    pub fn ndim(&self) -> usize {
        self.shape.len()
    }

    /// Size of the first (batch) axis.
    pub fn batch(&self) -> usize {
        self.shape.first().copied().unwrap_or(0)
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// True when the tensor holds no elements.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Size of the last axis.
    pub fn last_dim(&self) -> usize {
        self.shape.last().copied().unwrap_or(1)
    }

    /// Rows `start..end` of the first axis, copied.
    pub fn slice_batch(&self, start: usize, end: usize) -> Self {
        let row: usize = self.shape[1..].iter().product();
        let mut shape = self.shape.clone();
        shape[0] = end - start;
        Tensor { shape, data: self.data[start * row..end * row].to_vec() }
    }

    /// The rows named by `idx` along the first axis, in that order.
    pub fn gather_batch(&self, idx: &[usize]) -> Self {
        let row: usize = self.shape[1..].iter().product();
        let n = idx.len() * row;
        let mut data: Vec<T> = Vec::with_capacity(n);
        // Rows shared out between threads for a large batch (an autoencoder's 128 x 784,
        // scattered over its data set).
        share_parts(&mut data.spare_capacity_mut()[..n], row.max(1), |start, part| {
            for (dst, &i) in part.chunks_exact_mut(row.max(1)).zip(&idx[start / row.max(1)..]) {
                for (d, &v) in dst.iter_mut().zip(&self.data[i * row..(i + 1) * row]) {
                    d.write(v);
                }
            }
        });
        // SAFETY: the parts cover all n values, each row written just above (the slice
        // indexing checked every i).
        unsafe { data.set_len(n) };
        let mut shape = self.shape.clone();
        shape[0] = idx.len();
        Tensor { shape, data }
    }

    /// Concatenates tensors along the first axis.
    pub fn concat_batch(parts: &[Tensor<T>]) -> Self {
        let mut shape = parts[0].shape.clone();
        shape[0] = parts.iter().map(|p| p.shape[0]).sum();
        let data = parts.iter().flat_map(|p| p.data.iter().copied()).collect();
        Tensor { shape, data }
    }

    /// The first value that is NaN or infinite, with its flat index.
    pub fn first_non_finite(&self) -> Option<(usize, f64)> {
        // Blocks checked with a branch-free fold (it vectorises; `fit` checks its whole data
        // set on every call), the index found inside the first bad block.
        const BLOCK: usize = 1024;
        let bad = self.data.chunks(BLOCK).position(|c| !c.iter().fold(true, |ok, v| ok & v.is_finite()))?;
        let i = bad * BLOCK + self.data[bad * BLOCK..].iter().position(|v| !v.is_finite()).expect("in this block");
        Some((i, self.data[i].f64()))
    }

    /// Converts between precisions.
    pub fn cast<U: Scalar>(&self) -> Tensor<U> {
        Tensor { shape: self.shape.clone(), data: self.data.iter().map(|v| U::of(v.f64())).collect() }
    }
}

/// Whether a GEMM overwrites its destination or adds into it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Acc {
    /// `C = A·B`
    Overwrite,
    /// `C += A·B`
    Add,
}

/// Number of threads the GEMM may use for large products (set with `MEMCELL_THREADS` or
/// [`set_threads`]); small products always run on one thread.
static THREADS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Sets the number of threads large matrix products may use (0 = all cores).
pub fn set_threads(n: usize) {
    THREADS.store(n, std::sync::atomic::Ordering::Relaxed);
}

pub(crate) fn threads() -> usize {
    let n = THREADS.load(std::sync::atomic::Ordering::Relaxed);
    if n > 0 {
        return n;
    }
    let n = std::env::var("MEMCELL_THREADS")
        .ok()
        .and_then(|s| s.parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1));
    THREADS.store(n, std::sync::atomic::Ordering::Relaxed);
    n
}

thread_local! {
    /// Set while a thread runs one share of [`parallel_chunks`]: its GEMMs stay on it.
    static IN_PARALLEL: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether work started on this thread may be shared out: outside parallel work, or on a
/// queue's producer whose worker waits idle (see `pool::share_with_idle`).
fn may_share() -> bool {
    !IN_PARALLEL.with(|c| c.get()) || pool::idle_helper()
}

/// Work below this many floating-point operations runs on the calling thread: starting a
/// thread costs about as much as 10 µs of arithmetic, and the seed note's tiny models would
/// only lose.
static PARALLEL_MIN_FLOPS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(2.0e7f64.to_bits());

/// Sets the work (floating-point operations) below which [`parallel_chunks`] stays on the
/// calling thread (default 2e7). Results do not depend on it; tests lower it to exercise the
/// threaded path on small problems.
pub fn set_parallel_threshold(flops: f64) {
    PARALLEL_MIN_FLOPS.store(flops.to_bits(), std::sync::atomic::Ordering::Relaxed);
}

/// Runs `f` on every item: on the calling thread when the work (`flops` in all) is small, when
/// one thread is allowed, or when already inside a parallel region; otherwise the items are
/// dealt out in contiguous groups to up to [`set_threads`] threads (the calling thread takes
/// the first group, pooled workers that sleep between jobs the others). Each item must be
/// independent of the others, so the results do not depend on how they are dealt out.
pub fn parallel_chunks<I: Send, F: Fn(I) + Sync>(items: Vec<I>, flops: f64, f: F) {
    let n = items.len();
    let workers = threads().min(n);
    if workers <= 1 || flops < f64::from_bits(PARALLEL_MIN_FLOPS.load(std::sync::atomic::Ordering::Relaxed)) {
        for it in items {
            f(it);
        }
        return;
    }
    if IN_PARALLEL.with(|c| c.get()) {
        // Already on a share of parallel work: shared further only with a worker that waits
        // idle for the producer of a queue (see `pool::share_with_idle`).
        if let Err(items) = pool::share_with_idle(items, &f) {
            for it in items {
                f(it);
            }
        }
        return;
    }
    let groups: Vec<std::sync::Mutex<Vec<I>>> = deal(items, workers).into_iter().map(std::sync::Mutex::new).collect();
    pool::run(workers, threads() - 1, &|part: usize| {
        let g = std::mem::take(&mut *groups[part].lock().unwrap_or_else(|e| e.into_inner()));
        for it in g {
            f(it);
        }
    });
}

/// The items dealt out into `parts` contiguous groups of nearly equal sizes, in order.
pub(crate) fn deal<I>(items: Vec<I>, parts: usize) -> Vec<Vec<I>> {
    let n = items.len();
    let mut groups: Vec<Vec<I>> = (0..parts).map(|_| Vec::new()).collect();
    for (i, it) in items.into_iter().enumerate() {
        groups[i * parts / n].push(it);
    }
    groups
}

/// Element-wise passes over at least this many values are shared out between threads (a
/// dense autoencoder's 128 x 784 activations: ~40 µs on one thread, where handing half to a
/// watching worker costs about a microsecond). Shorter ones, every recurrent step's, stay on
/// the calling thread.
pub(crate) const ELEMENTWISE_SHARE_MIN: usize = 1 << 15;

/// Runs `f(start, part)` over consecutive parts of `out` that cover it (`part` is
/// `out[start..start + part.len()]`): one part per thread when `out` holds at least
/// [`ELEMENTWISE_SHARE_MIN`] values, part edges at multiples of `align` values; else
/// `f(0, out)` on the calling thread. For element-wise passes, whose values do not depend on
/// where a part starts: the result is the same bits either way.
pub(crate) fn share_parts<U: Send, F: Fn(usize, &mut [U]) + Sync>(out: &mut [U], align: usize, f: F) {
    let (n, parts) = (out.len(), threads());
    if parts <= 1 || n < ELEMENTWISE_SHARE_MIN || n < 2 * align || !may_share() {
        f(0, out);
        return;
    }
    let mut items = Vec::with_capacity(parts);
    let (mut rest, mut at) = (out, 0);
    for i in 1..=parts {
        let end = if i == parts { n } else { (i * n / parts) / align * align };
        let (part, tail) = std::mem::take(&mut rest).split_at_mut(end - at);
        items.push((at, part));
        (rest, at) = (tail, end);
    }
    parallel_chunks(items, f64::INFINITY, |(start, part)| f(start, part));
}

/// `dst = src` (resized, its allocation reused), copied in parts shared out between the
/// threads as [`share_parts`]: a thread copies what it just computed in the same parts.
pub(crate) fn copy_shared<T: Copy + Send + Sync>(src: &[T], dst: &mut Vec<T>) {
    let n = src.len();
    dst.clear();
    dst.reserve(n);
    share_parts(&mut dst.spare_capacity_mut()[..n], 64, |start, part| {
        for (d, &v) in part.iter_mut().zip(&src[start..]) {
            d.write(v);
        }
    });
    // SAFETY: the parts cover all n values, each written just above.
    unsafe { dst.set_len(n) };
}

/// `s` as float32 values when `T` is f32, for the kernels written for float32 alone.
pub(crate) fn as_f32<T: Scalar>(s: &[T]) -> Option<&[f32]> {
    // SAFETY: T is f32 here, so the slice has the same layout.
    (std::any::TypeId::of::<T>() == std::any::TypeId::of::<f32>())
        .then(|| unsafe { &*(s as *const [T] as *const [f32]) })
}

/// [`as_f32`] for a mutable slice.
pub(crate) fn as_f32_mut<T: Scalar>(s: &mut [T]) -> Option<&mut [f32]> {
    // SAFETY: as in `as_f32`.
    (std::any::TypeId::of::<T>() == std::any::TypeId::of::<f32>())
        .then(|| unsafe { &mut *(s as *mut [T] as *mut [f32]) })
}

/// Few-row products of at least this many operations are shared out between the threads by
/// columns (a worker watches through `fit`'s forward pass, so handing it half costs about a
/// microsecond). Measured on the seed's 0.7M-weight models, medians of 6 alternating runs:
/// S3 and S4 5-8 % faster, S2 unchanged (its update after the split forward pass slows by
/// about what the forward pass gains).
const SMALL_SPLIT_FLOPS: f64 = 1.5e6;

/// Few-row products whose B holds at least this many values (512 KB in float32) are shared
/// out too, below [`SMALL_SPLIT_FLOPS`], while the workers are asked to watch (in `fit`):
/// with one or two rows such a product streams B from cache or memory, and two cores
/// stream it twice as fast. The seed's per-epoch validation pass (one row through 0.7M
/// weights) takes 5.7-7.3 ms of S2's and S3's 150 epochs instead of 8.6-9.8 ms (4
/// alternating runs each). Outside such a window a worker may be asleep, and waking it (50-70
/// µs) would cost more than the product.
const SMALL_SPLIT_B_VALUES: usize = 1 << 17;

/// Row-major matrix product, the one call into the GEMM kernel:
/// `C (m, n) [+]= op(A) · op(B)` with `op(A)` of shape (m, k) and `op(B)` of shape (k, n).
///
/// `a` is stored as (m, k) row-major, or as (k, m) when `ta` (it is then transposed); likewise
/// `b` as (k, n), or (n, k) when `tb`. `lda`, `ldb`, `ldc` are the row strides of the stored
/// matrices. Products above ~4 MFLOP use up to [`set_threads`] threads; smaller ones run on
/// the calling thread (threads cost more than they give on the seed's tiny models).
#[allow(clippy::too_many_arguments)]
pub fn gemm<T: Scalar>(
    m: usize,
    n: usize,
    k: usize,
    a: &[T],
    lda: usize,
    ta: bool,
    b: &[T],
    ldb: usize,
    tb: bool,
    c: &mut [T],
    ldc: usize,
    acc: Acc,
) {
    gemm_from(m, n, k, a, lda, ta, b, ldb, tb, c, ldc, acc, None)
}

/// `C (m, n) = bias + op(A) · op(B)`, `bias` (n) on every row: the bits of filling C's rows
/// with `bias` and then calling [`gemm`] with [`Acc::Add`], but each thread fills the rows or
/// columns of C that its part of the product is about to add into (one pass over C fewer on
/// the calling thread, and no cache lines handed between cores).
#[allow(clippy::too_many_arguments)]
pub fn gemm_bias<T: Scalar>(
    m: usize,
    n: usize,
    k: usize,
    a: &[T],
    lda: usize,
    ta: bool,
    b: &[T],
    ldb: usize,
    tb: bool,
    c: &mut [T],
    ldc: usize,
    bias: &[T],
) {
    assert!(bias.len() >= n, "gemm_bias: bias of {} for {n} columns", bias.len());
    gemm_from(m, n, k, a, lda, ta, b, ldb, tb, c, ldc, Acc::Add, Some(bias))
}

/// Sets rows `0..m`, columns `0..bias.len()` of `c` (rows `ldc` apart) to `bias`.
fn fill_rows<T: Copy>(c: &mut [T], m: usize, ldc: usize, bias: &[T]) {
    for i in 0..m {
        c[i * ldc..i * ldc + bias.len()].copy_from_slice(bias);
    }
}

/// [`gemm`], with C's rows first set to `bias` where it is given (then `acc` is `Add`).
#[allow(clippy::too_many_arguments)]
fn gemm_from<T: Scalar>(
    m: usize,
    n: usize,
    k: usize,
    a: &[T],
    lda: usize,
    ta: bool,
    b: &[T],
    ldb: usize,
    tb: bool,
    c: &mut [T],
    ldc: usize,
    acc: Acc,
    bias: Option<&[T]>,
) {
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        for i in 0..m {
            let row = &mut c[i * ldc..i * ldc + n];
            match (bias, acc) {
                (Some(bias), _) => row.copy_from_slice(&bias[..n]),
                (None, Acc::Overwrite) => row.fill(T::zero()),
                (None, Acc::Add) => {}
            }
        }
        return;
    }
    // Bounds: the kernel reads raw pointers, so check the extents once here.
    let a_need = if ta { (k - 1) * lda + m } else { (m - 1) * lda + k };
    let b_need = if tb { (n - 1) * ldb + k } else { (k - 1) * ldb + n };
    assert!(a.len() >= a_need && b.len() >= b_need && c.len() >= (m - 1) * ldc + n, "gemm extents");
    if k == 1 {
        // An outer product (a recurrent layer's projection of one input feature): one pass
        // over C, the bias or C's value plus a_i·b_j, where the GEMM would fill C with the bias
        // and then read and write it again. The same bits: the GEMM's sum of one product is
        // that product rounded, added to what C holds.
        let b_row: std::borrow::Cow<[T]> =
            if tb { (0..n).map(|j| b[j * ldb]).collect::<Vec<T>>().into() } else { (&b[..n]).into() };
        // Rows dealt out to the threads in contiguous groups by `parallel_chunks`.
        let rows: Vec<(usize, &mut [T])> = c.chunks_mut(ldc).take(m).enumerate().collect();
        parallel_chunks(rows, 2.0 * m as f64 * n as f64, |(i, row)| {
            let ai = if ta { a[i] } else { a[i * lda] };
            outer_row(ai, &b_row, bias.map(|v| &v[..n]), acc == Acc::Add, &mut row[..n]);
        });
        return;
    }
    let flops = 2.0 * m as f64 * n as f64 * k as f64;
    // Few rows in float32 on AVX-512: the unpacked kernels (see `small`).
    #[cfg(target_arch = "x86_64")]
    if !ta
        && m <= small::MAX_ROWS
        && std::any::TypeId::of::<T>() == std::any::TypeId::of::<f32>()
        && crate::simd::level() == crate::simd::Level::V4
    {
        let (Some(a), Some(b), Some(c)) = (as_f32(a), as_f32(b), as_f32_mut(c)) else { unreachable!("T is f32") };
        let bias = bias.and_then(as_f32);
        let add = acc == Acc::Add;
        let workers = threads();
        let streams = n * k >= SMALL_SPLIT_B_VALUES && pool::watch_requested();
        if (flops >= SMALL_SPLIT_FLOPS || streams) && n >= 64 && workers > 1 && may_share() {
            // Columns shared out between threads (each column's arithmetic is unchanged).
            let parts = workers.min(n / 32);
            let cp = SendPtr(c.as_mut_ptr());
            let c_len = c.len();
            let cols: Vec<(usize, usize)> =
                (0..parts).map(|i| (i * n / parts / 16 * 16, (i + 1) * n / parts / 16 * 16)).collect();
            let cols: Vec<(usize, usize)> =
                cols.iter().enumerate().map(|(i, &(j0, j1))| (j0, if i + 1 == parts { n } else { j1 })).collect();
            parallel_chunks(cols, f64::INFINITY, move |(j0, j1)| {
                let cp = cp;
                // SAFETY: columns j0..j1 of C are this part's alone; the kernels write nothing
                // outside their m rows and the columns they are given.
                let c_part = unsafe { std::slice::from_raw_parts_mut(cp.0.add(j0), c_len - j0) };
                if let Some(bias) = bias {
                    fill_rows(&mut *c_part, m, ldc, &bias[j0..j1]);
                }
                if tb {
                    small::nt(m, j1 - j0, k, a, lda, &b[j0 * ldb..], ldb, c_part, ldc, add);
                } else {
                    small::nn(m, j1 - j0, k, a, lda, &b[j0..], ldb, c_part, ldc, add);
                }
            });
        } else if tb {
            if let Some(bias) = bias {
                fill_rows(&mut *c, m, ldc, &bias[..n]);
            }
            small::nt(m, n, k, a, lda, b, ldb, c, ldc, add);
        } else {
            if let Some(bias) = bias {
                fill_rows(&mut *c, m, ldc, &bias[..n]);
            }
            small::nn(m, n, k, a, lda, b, ldb, c, ldc, add);
        }
        return;
    }
    // A long inner dimension with a small output (the weight gradients Xᵀ·dZ over all T·B
    // rows): the GEMM cannot share out a few output tiles, so the sum over k is cut in two
    // halves instead, computed apart and added. The cut depends on the shape only, so the
    // result is the same on one thread or two.
    if splits_k(m, n, k) {
        if let Some(bias) = bias {
            fill_rows(&mut *c, m, ldc, &bias[..n]);
        }
        let kh = k / 2;
        let (a1, a2) = if ta { (a, &a[kh * lda..]) } else { (a, &a[kh..]) };
        let (b1, b2) = if tb { (b, &b[kh..]) } else { (b, &b[kh * ldb..]) };
        let mut tmp = vec![T::zero(); m * n];
        {
            let c_ref = &mut *c;
            let tmp_ref = &mut tmp;
            let halves: Vec<Box<dyn FnOnce() + Send + '_>> = vec![
                Box::new(move || {
                    gemm_kernel(m, n, kh, a1, lda, ta, b1, ldb, tb, c_ref, ldc, acc, gemm::Parallelism::None)
                }),
                Box::new(move || {
                    gemm_kernel(
                        m,
                        n,
                        k - kh,
                        a2,
                        lda,
                        ta,
                        b2,
                        ldb,
                        tb,
                        tmp_ref,
                        n,
                        Acc::Overwrite,
                        gemm::Parallelism::None,
                    )
                }),
            ];
            parallel_chunks(halves, flops, |f| f());
        }
        for i in 0..m {
            for (cv, &t) in c[i * ldc..i * ldc + n].iter_mut().zip(&tmp[i * n..(i + 1) * n]) {
                *cv += t;
            }
        }
        return;
    }
    // Threads pay for products above ~15 MFLOP, or above ~6 MFLOP with enough rows to share
    // (measured here: a 9 x 1000 x 250 product is 20 % slower on two threads, 64 x 512 x 128
    // is 50 % faster).
    let big = flops >= 1.5e7 || (flops >= 6.0e6 && m >= 48 && k >= 64);
    let workers = threads();
    if !(big && workers > 1 && may_share()) {
        if let Some(bias) = bias {
            fill_rows(&mut *c, m, ldc, &bias[..n]);
        }
        gemm_kernel(m, n, k, a, lda, ta, b, ldb, tb, c, ldc, acc, gemm::Parallelism::None);
        return;
    }
    // Share the output between scoped threads, by rows when there are enough of them, else by
    // columns; each part is an ordinary single-threaded product (the same arithmetic per
    // element, so the same bits as on one thread). Our own threads rather than the GEMM's
    // pool: a pool that spins between products would fight the recurrences' threads.
    // Each part packs its share of B and all of A (or the reverse): split the larger one.
    let by_rows = m >= 16 * workers && m >= n;
    let parts = workers.min(if by_rows { m / 16 } else { n / 16 }).max(1);
    let len = if by_rows { m } else { n };
    let cp = SendPtr(c.as_mut_ptr());
    let items: Vec<(usize, usize)> = (0..parts).map(|i| (i * len / parts, (i + 1) * len / parts)).collect();
    let c_len = c.len();
    parallel_chunks(items, f64::INFINITY, move |(s0, s1)| {
        let cp = cp;
        if by_rows {
            let a_part = if ta { &a[s0..] } else { &a[s0 * lda..] };
            // SAFETY: rows s0..s1 of C are this part's alone.
            let c_part = unsafe { std::slice::from_raw_parts_mut(cp.0.add(s0 * ldc), c_len - s0 * ldc) };
            if let Some(bias) = bias {
                fill_rows(&mut *c_part, s1 - s0, ldc, &bias[..n]);
            }
            gemm_kernel(s1 - s0, n, k, a_part, lda, ta, b, ldb, tb, c_part, ldc, acc, gemm::Parallelism::None);
        } else {
            let b_part = if tb { &b[s0 * ldb..] } else { &b[s0..] };
            // SAFETY: columns s0..s1 of C are this part's alone; the kernel writes nothing else.
            unsafe {
                if let Some(bias) = bias {
                    for i in 0..m {
                        std::slice::from_raw_parts_mut(cp.0.add(i * ldc + s0), s1 - s0).copy_from_slice(&bias[s0..s1]);
                    }
                }
                gemm_raw(m, s1 - s0, k, a, lda, ta, b_part, ldb, tb, cp.0.add(s0), ldc, acc, gemm::Parallelism::None);
            }
        }
    });
}

/// Whether [`gemm`] cuts a product of more than [`small::MAX_ROWS`] rows in two along k: a
/// long inner dimension with a small output.
pub(crate) fn splits_k(m: usize, n: usize, k: usize) -> bool {
    k >= 2048 && m * n <= 1 << 18 && 2.0 * m as f64 * n as f64 * k as f64 >= 5.0e7
}

/// One row of an outer product: `c = base + a·b` with base the bias (given), `c` (`add`) or
/// nothing. `a·b + 0` is what a GEMM's sum of one product is (an FMA onto a zero accumulator:
/// a product of -0 comes out +0).
#[inline(always)]
fn outer_row_kernel<T: Scalar>(a: T, b: &[T], bias: Option<&[T]>, add: bool, c: &mut [T]) {
    let b = &b[..c.len()];
    match bias {
        Some(bias) => {
            let bias = &bias[..c.len()];
            for j in 0..c.len() {
                c[j] = bias[j] + (a * b[j] + T::zero());
            }
        }
        None if add => {
            for j in 0..c.len() {
                c[j] += a * b[j] + T::zero();
            }
        }
        None => {
            for j in 0..c.len() {
                c[j] = a * b[j] + T::zero();
            }
        }
    }
}
crate::simd::dispatch! { fn outer_row<T: Scalar>(a: T, b: &[T], bias: Option<&[T]>, add: bool, c: &mut [T]) => outer_row_kernel }

/// A pointer that may cross to another thread (each thread writes its own part).
#[derive(Clone, Copy)]
struct SendPtr<T>(*mut T);
unsafe impl<T> Send for SendPtr<T> {}
unsafe impl<T> Sync for SendPtr<T> {}

/// The gemm crate's product on a raw destination (rows of `ldc` values, `n` columns used).
///
/// # Safety
/// `c` must be valid for writes at `i * ldc + j` for i < m, j < n, and no other thread may
/// touch those elements meanwhile.
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_raw<T: Scalar>(
    m: usize,
    n: usize,
    k: usize,
    a: &[T],
    lda: usize,
    ta: bool,
    b: &[T],
    ldb: usize,
    tb: bool,
    c: *mut T,
    ldc: usize,
    acc: Acc,
    par: gemm::Parallelism,
) {
    let (a_rs, a_cs) = if ta { (1isize, lda as isize) } else { (lda as isize, 1isize) };
    let (b_rs, b_cs) = if tb { (1isize, ldb as isize) } else { (ldb as isize, 1isize) };
    gemm::gemm(
        m,
        n,
        k,
        c,
        1,
        ldc as isize,
        acc == Acc::Add,
        a.as_ptr(),
        a_cs,
        a_rs,
        b.as_ptr(),
        b_cs,
        b_rs,
        T::one(),
        T::one(),
        false,
        false,
        false,
        par,
    );
}

/// The one call into the gemm crate, on a checked destination slice.
#[allow(clippy::too_many_arguments)]
fn gemm_kernel<T: Scalar>(
    m: usize,
    n: usize,
    k: usize,
    a: &[T],
    lda: usize,
    ta: bool,
    b: &[T],
    ldb: usize,
    tb: bool,
    c: &mut [T],
    ldc: usize,
    acc: Acc,
    par: gemm::Parallelism,
) {
    // SAFETY: the caller checked the extents of `c`, which this call borrows whole.
    unsafe { gemm_raw(m, n, k, a, lda, ta, b, ldb, tb, c.as_mut_ptr(), ldc, acc, par) }
}

/// Writes the transpose of `src` (rows, cols) into `dst` (cols, rows), in 16 x 16 tiles so
/// that both sides are read and written a cache line at a time.
pub fn transpose_into<T: Scalar>(src: &[T], rows: usize, cols: usize, dst: &mut [T]) {
    const B: usize = 16;
    for i0 in (0..rows).step_by(B) {
        for j0 in (0..cols).step_by(B) {
            for i in i0..(i0 + B).min(rows) {
                for j in j0..(j0 + B).min(cols) {
                    dst[j * rows + i] = src[i * cols + j];
                }
            }
        }
    }
}

/// Adds the column sums of `x` (rows, cols) into `out` (cols): the bias gradient.
pub fn add_col_sums<T: Scalar>(x: &[T], cols: usize, out: &mut [T]) {
    for row in x.chunks_exact(cols) {
        for (o, &v) in out.iter_mut().zip(row) {
            *o += v;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_gathers_and_copies_write_every_value_in_place() {
        // Large enough to be shared out between threads, with an odd row count and length.
        let (rows, row) = (301, 157);
        let t = Tensor::<f32>::new(&[rows, row], (0..rows * row).map(|i| i as f32).collect()).unwrap();
        let idx: Vec<usize> = (0..233).map(|i| (i * 97 + 5) % rows).collect();
        for threads in [1, 2] {
            set_threads(threads);
            let g = t.gather_batch(&idx);
            assert_eq!(g.shape, vec![idx.len(), row]);
            for (k, &i) in idx.iter().enumerate() {
                assert_eq!(
                    &g.data[k * row..(k + 1) * row],
                    &t.data[i * row..(i + 1) * row],
                    "row {k} on {threads} threads"
                );
            }
            let mut dst = vec![-1.0f32; 7];
            copy_shared(&g.data, &mut dst);
            assert_eq!(dst, g.data, "copy on {threads} threads");
        }
        set_threads(0);
    }

    #[test]
    fn first_non_finite_finds_the_first_bad_value_in_any_block() {
        let n = 5000;
        assert_eq!(Tensor::<f32>::zeros(&[n]).first_non_finite(), None);
        for &(i, v) in &[(0, f32::NAN), (1023, f32::INFINITY), (1024, f32::NEG_INFINITY), (4999, f32::NAN)] {
            let mut t = Tensor::<f32>::zeros(&[n]);
            t.data[i] = v;
            // A later bad value does not hide the first.
            if i + 7 < n {
                t.data[i + 7] = f32::NAN;
            }
            let (at, got) = t.first_non_finite().expect("a bad value");
            assert_eq!(at, i);
            assert!(got.is_nan() == v.is_nan() && (v.is_nan() || got == v as f64));
        }
    }

    fn naive(m: usize, n: usize, k: usize, a: &[f64], ta: bool, b: &[f64], tb: bool) -> Vec<f64> {
        let mut c = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                for p in 0..k {
                    let av = if ta { a[p * m + i] } else { a[i * k + p] };
                    let bv = if tb { b[j * k + p] } else { b[p * n + j] };
                    c[i * n + j] += av * bv;
                }
            }
        }
        c
    }

    #[test]
    fn overwriting_gives_the_bits_of_adding_into_zeros() {
        // fit's steps overwrite the weight gradients instead of zeroing and adding: the same
        // numbers for the weight-gradient shapes (Xᵀ·dZ) of every path: the gemm crate on one
        // thread and shared out, its k blocks, the long-k halves, the few-row kernels.
        for &(m, n, k) in &[(784, 256, 128), (256, 784, 128), (64, 512, 4096), (40, 33, 700), (7, 300, 40)] {
            let a: Vec<f32> = (0..k * m).map(|i| ((i as f32 * 0.7311).sin() * 3.1).tan() * 0.01).collect();
            let b: Vec<f32> = (0..k * n).map(|i| ((i as f32 * 1.913).cos() * 2.3).tan() * 0.01).collect();
            for threads in [1, 2] {
                set_threads(threads);
                for ta in [true, false] {
                    let lda = if ta { m } else { k };
                    let mut added = vec![0.0f32; m * n];
                    gemm(m, n, k, &a, lda, ta, &b, n, false, &mut added, n, Acc::Add);
                    let mut over = vec![f32::NAN; m * n];
                    gemm(m, n, k, &a, lda, ta, &b, n, false, &mut over, n, Acc::Overwrite);
                    // -0 and +0 aside (0 + -0 is +0): equal values, so equal bits otherwise.
                    let same =
                        added.iter().zip(&over).all(|(x, y)| x == y && (x.to_bits() == y.to_bits() || *x == 0.0));
                    assert!(same, "{m}x{n}x{k} ta={ta} on {threads} threads");
                }
            }
        }
        set_threads(0);
    }

    #[test]
    fn outer_products_give_the_gemm_kernels_bits() {
        // k = 1 (a recurrent layer's single input feature) takes its own pass: the bits of the
        // gemm crate and of the few-row kernels, with and without bias, overwriting and adding,
        // on one and two threads, zero products included.
        for &(m, n) in &[(9, 500), (100, 37), (4096, 512), (48, 17)] {
            let a: Vec<f32> = (0..m).map(|i| if i % 7 == 0 { 0.0 } else { (i as f32 * 0.77).sin() }).collect();
            let b: Vec<f32> = (0..n).map(|j| if j % 5 == 0 { -0.0 } else { (j as f32 * 1.3).cos() }).collect();
            let bias: Vec<f32> = (0..n).map(|j| if j % 3 == 0 { -0.0 } else { (j as f32 * 0.1).sin() }).collect();
            let start: Vec<f32> =
                (0..m * n).map(|i| if i % 11 == 0 { -0.0 } else { (i as f32 * 0.01).cos() }).collect();
            for tb in [false, true] {
                for (acc, with_bias) in [(Acc::Overwrite, false), (Acc::Add, false), (Acc::Add, true)] {
                    let mut want = start.clone();
                    if with_bias {
                        fill_rows(&mut want, m, n, &bias);
                    }
                    if m <= small::MAX_ROWS && crate::simd::level() == crate::simd::Level::V4 {
                        small::nn(m, n, 1, &a, 1, &b, n, &mut want, n, acc == Acc::Add);
                    } else {
                        gemm_kernel(m, n, 1, &a, 1, false, &b, n, false, &mut want, n, acc, gemm::Parallelism::None);
                    }
                    for threads in [1, 2] {
                        set_threads(threads);
                        set_parallel_threshold(0.0);
                        let mut got = start.clone();
                        if with_bias {
                            gemm_bias(m, n, 1, &a, 1, false, &b, if tb { 1 } else { n }, tb, &mut got, n, &bias);
                        } else {
                            gemm(m, n, 1, &a, 1, false, &b, if tb { 1 } else { n }, tb, &mut got, n, acc);
                        }
                        // The sign of an exact zero aside (the gemm crate's overwriting sum of
                        // one product keeps a -0 that an FMA onto zero makes +0).
                        let bad = want
                            .iter()
                            .zip(&got)
                            .position(|(x, y)| x != y || (x.to_bits() != y.to_bits() && *x != 0.0));
                        assert!(
                            bad.is_none(),
                            "{m}x{n} tb={tb} {acc:?} bias={with_bias} on {threads} threads: at {bad:?} {:?} vs {:?}",
                            bad.map(|i| want[i]),
                            bad.map(|i| got[i])
                        );
                    }
                }
            }
        }
        set_parallel_threshold(2.0e7);
        set_threads(0);
    }

    #[test]
    fn bias_products_give_the_bits_of_filling_then_adding() {
        // gemm_bias fills each part's rows as it goes: the same bits as filling all of C with
        // the bias and adding the product, on every path (the few-row kernels on one thread
        // and shared by columns, the long-k halves, the gemm crate on one thread and shared
        // by rows or by columns, k = 0), and nothing written outside the n of ldc columns.
        let shapes =
            [(7, 40, 30), (9, 500, 500), (64, 512, 4096), (40, 33, 700), (784, 256, 128), (128, 784, 256), (5, 7, 0)];
        for &(m, n, k) in &shapes {
            let a: Vec<f32> = (0..k * m).map(|i| ((i as f32 * 0.7311).sin() * 3.1).tan() * 0.01).collect();
            let b: Vec<f32> = (0..k * n).map(|i| ((i as f32 * 1.913).cos() * 2.3).tan() * 0.01).collect();
            let bias: Vec<f32> = (0..n).map(|j| (j as f32 * 0.37).sin()).collect();
            let ldc = n + 3;
            for threads in [1, 2] {
                set_threads(threads);
                for ta in [false, true] {
                    let lda = if ta { m } else { k };
                    let mut want = vec![-7.0f32; m * ldc];
                    for i in 0..m {
                        want[i * ldc..i * ldc + n].copy_from_slice(&bias);
                    }
                    gemm(m, n, k, &a, lda, ta, &b, n, false, &mut want, ldc, Acc::Add);
                    let mut got = vec![-7.0f32; m * ldc];
                    gemm_bias(m, n, k, &a, lda, ta, &b, n, false, &mut got, ldc, &bias);
                    let same = want.iter().zip(&got).all(|(x, y)| x.to_bits() == y.to_bits());
                    assert!(same, "{m}x{n}x{k} ta={ta} on {threads} threads");
                }
            }
        }
        set_threads(0);
    }

    #[test]
    fn shared_out_products_give_the_same_bits_on_one_and_two_threads() {
        // Split by rows (m >= n) and by columns (m < n), with and without transposes.
        for &(m, n, k) in &[(512, 256, 300), (64, 700, 333), (200, 200, 1000)] {
            let a: Vec<f32> = (0..m * k).map(|i| ((i * 7 % 13) as f32 - 6.0) * 0.01).collect();
            let b: Vec<f32> = (0..k * n).map(|i| ((i * 5 % 11) as f32 - 5.0) * 0.01).collect();
            for (ta, tb) in [(false, false), (true, false), (false, true)] {
                let mut out = Vec::new();
                for threads in [1, 2] {
                    set_threads(threads);
                    let mut c = vec![0.25f32; m * n];
                    let (lda, ldb) = (if ta { m } else { k }, if tb { k } else { n });
                    gemm(m, n, k, &a, lda, ta, &b, ldb, tb, &mut c, n, Acc::Add);
                    out.push(c);
                }
                assert_eq!(out[0], out[1], "{m}x{n}x{k} ta={ta} tb={tb}");
            }
        }
        set_threads(0);
    }

    #[test]
    fn split_k_products_match_naive_on_one_and_two_threads() {
        // 128 x 128 x 2048: the long-k path (two halves of the sum, added).
        let (m, n, k) = (128, 96, 2100);
        let a: Vec<f64> = (0..m * k).map(|i| ((i * 7 % 13) as f64 - 6.0) * 0.1).collect();
        let b: Vec<f64> = (0..k * n).map(|i| ((i * 5 % 11) as f64 - 5.0) * 0.1).collect();
        for ta in [false, true] {
            let want = naive(m, n, k, &a, ta, &b, false);
            let mut results = Vec::new();
            for threads in [1, 2] {
                set_threads(threads);
                let mut c = vec![1.0; m * n];
                gemm(m, n, k, &a, if ta { m } else { k }, ta, &b, n, false, &mut c, n, Acc::Add);
                for (x, y) in c.iter().zip(&want) {
                    assert!((x - 1.0 - y).abs() < 1e-9, "{x} vs {y}");
                }
                results.push(c);
            }
            assert_eq!(results[0], results[1], "the thread count changed the result");
        }
        set_threads(0);
    }

    #[test]
    fn gemm_matches_naive_for_every_transpose_and_accumulate() {
        let (m, n, k) = (7, 5, 3);
        let a: Vec<f64> = (0..m * k).map(|i| (i as f64 * 0.37).sin()).collect();
        let b: Vec<f64> = (0..k * n).map(|i| (i as f64 * 0.91).cos()).collect();
        for ta in [false, true] {
            for tb in [false, true] {
                let want = naive(m, n, k, &a, ta, &b, tb);
                let mut c = vec![1.0; m * n];
                gemm(
                    m,
                    n,
                    k,
                    &a,
                    if ta { m } else { k },
                    ta,
                    &b,
                    if tb { k } else { n },
                    tb,
                    &mut c,
                    n,
                    Acc::Overwrite,
                );
                for (x, y) in c.iter().zip(&want) {
                    assert!((x - y).abs() < 1e-12);
                }
                gemm(m, n, k, &a, if ta { m } else { k }, ta, &b, if tb { k } else { n }, tb, &mut c, n, Acc::Add);
                for (x, y) in c.iter().zip(&want) {
                    assert!((x - 2.0 * y).abs() < 1e-12);
                }
            }
        }
    }
}
