//! A right-hand matrix packed once and multiplied many times.
//!
//! A recurrent layer multiplies every step's hidden states by the same recurrent kernel U
//! (and, in backward, by Uᵀ). The gemm crate copies ("packs") its operand into panels at
//! every call: for L1's LSTM(512) that is the whole 4 MB U, once per step and per thread,
//! about a tenth of the epoch. [`Packed`] holds U in the crate's own panel layout, made once
//! per forward or backward pass, and [`gemm_packed`] calls the crate's microkernels on it
//! directly: the same kernels over the same depth blocks, so every value has the bits the
//! crate's [`super::gemm`] gives (tested below, for every edge and depth split).
//!
//! Only float32 on AVX-512 (the crate's 64 x 6 kernel); elsewhere [`Packed::pack`] leaves
//! nothing packed and callers multiply as before.

use super::{fill_rows, Acc, Scalar};

/// Output columns per panel: the rows of the crate's 64 x 6 microkernel (its output is our
/// Cᵀ, column-major).
const MR: usize = 64;
/// Rows of A (and C) per microkernel call.
const NR: usize = 6;
/// Packed panels swept per row block: about 1 MB, half this CPU family's L2, as the crate
/// sizes its own blocks.
const BLOCK_BYTES: usize = 1 << 20;

/// B (k, n) in panels of 64 columns (the microkernel's rows), each (k, 64) row-major, the last
/// one zero-padded.
#[derive(Default)]
pub struct Packed<T> {
    k: usize,
    n: usize,
    data: Vec<T>,
    ready: bool,
}

/// Whether this build and CPU multiply by packed matrices of `T` (float32 on AVX-512).
pub fn available<T: Scalar>() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::any::TypeId::of::<T>() == std::any::TypeId::of::<f32>() && crate::simd::level() == crate::simd::Level::V4
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

thread_local! {
    static PACKING: std::cell::Cell<bool> = const { std::cell::Cell::new(true) };
    static PACKS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Turns packing on or off for the calling thread (on by default). Off, `Packed::pack`
/// packs nothing and every product takes the plain GEMM: the results are the same bits
/// either way, which the tests check by running a layer both ways.
pub fn set_packing(on: bool) {
    PACKING.with(|c| c.set(on));
}

/// How many times `Packed::pack` has packed a matrix on the calling thread.
pub fn packs_made() -> usize {
    PACKS.with(|c| c.get())
}

impl<T: Scalar> Packed<T> {
    /// Packs B (k, n), stored (k, n) row-major with row stride `ldb`, or (n, k) when `tb`
    /// (B is then the transpose of what is stored). Keeps its buffer between calls. Where
    /// [`packing_available`](crate::tensor::packing_available) is false nothing is packed and [`Packed::ready`] stays false.
    pub(crate) fn pack(&mut self, k: usize, n: usize, b: &[T], ldb: usize, tb: bool) {
        self.ready = false;
        if !available::<T>() || !PACKING.with(|c| c.get()) || k == 0 || n == 0 {
            return;
        }
        let need = if tb { (n - 1) * ldb + k } else { (k - 1) * ldb + n };
        assert!(b.len() >= need, "pack: {} values for ({k}, {n}) with stride {ldb}", b.len());
        let panels = n.div_ceil(MR);
        self.data.resize(panels * k * MR, T::zero());
        let work: Vec<(usize, &mut [T])> = self.data.chunks_mut(k * MR).enumerate().collect();
        let copy = if panels * k * MR >= super::ELEMENTWISE_SHARE_MIN { f64::INFINITY } else { 0.0 };
        super::parallel_chunks(work, copy, |(p, dst)| {
            let j0 = p * MR;
            let w = MR.min(n - j0);
            if tb {
                for jj in 0..w {
                    let src = &b[(j0 + jj) * ldb..(j0 + jj) * ldb + k];
                    for (kk, &v) in src.iter().enumerate() {
                        dst[kk * MR + jj] = v;
                    }
                }
                for kk in 0..k {
                    dst[kk * MR + w..(kk + 1) * MR].fill(T::zero());
                }
            } else {
                for kk in 0..k {
                    let row = &mut dst[kk * MR..(kk + 1) * MR];
                    row[..w].copy_from_slice(&b[kk * ldb + j0..kk * ldb + j0 + w]);
                    row[w..].fill(T::zero());
                }
            }
        });
        self.k = k;
        self.n = n;
        self.ready = true;
        PACKS.with(|c| c.set(c.get() + 1));
    }

    /// Whether the last `pack` packed B (so that `gemm_packed` may multiply by it).
    pub fn ready(&self) -> bool {
        self.ready
    }

    /// Forgets what was packed (the weights it came from changed).
    pub(crate) fn clear(&mut self) {
        self.ready = false;
    }

    /// (k, n) of the packed B.
    pub fn dims(&self) -> (usize, usize) {
        (self.k, self.n)
    }
}

/// Whether [`super::gemm`] multiplies (m, k) · (k, n) in a way [`gemm_packed`] reproduces:
/// few rows by the unpacked kernels (one sum over all of k), more by the gemm crate's
/// microkernel path (its depth blocks), but not its special paths (k ≤ 2, a single row or
/// column, outputs of at most 16 x 16) nor a product cut in two along k (see
/// [`super::splits_k`]).
pub(crate) fn fits(m: usize, n: usize, k: usize) -> bool {
    if m <= super::small::MAX_ROWS {
        k >= 2 && m >= 1 && n >= 1
    } else {
        k >= 3 && n >= 2 && m * n > 256 && !super::splits_k(m, n, k)
    }
}

/// `C (m, n) [+]= A (m, k) · B` with B packed, or `C = bias + A · B` when `bias` is given (then
/// `acc` is ignored): the bits of [`super::gemm`] / [`super::gemm_bias`] on B laid out (k, n)
/// (not on a transposed operand, which few rows sum in another order). On the calling
/// thread. The caller checks [`Packed::ready`] and that the shape takes this path (`fits`).
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm_packed<T: Scalar>(
    m: usize,
    a: &[T],
    lda: usize,
    b: &Packed<T>,
    c: &mut [T],
    ldc: usize,
    acc: Acc,
    bias: Option<&[T]>,
) {
    gemm_packed_rows(m, a, lda, b, 0, b.k, c, ldc, acc, bias)
}

/// [`gemm_packed`] with only rows `k0..k1` of B: `C [+]= A (m, k1 - k0) · B[k0..k1, :]`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm_packed_rows<T: Scalar>(
    m: usize,
    a: &[T],
    lda: usize,
    b: &Packed<T>,
    k0: usize,
    k1: usize,
    c: &mut [T],
    ldc: usize,
    acc: Acc,
    bias: Option<&[T]>,
) {
    let (k, n) = (k1 - k0, b.n);
    assert!(
        b.ready && k0 < k1 && k1 <= b.k && fits(m, n, k),
        "gemm_packed: ({m}, {n}, {k0}..{k1}) not packed or not the packed path"
    );
    assert!(a.len() >= (m - 1) * lda + k && c.len() >= (m - 1) * ldc + n, "gemm_packed extents");
    if let Some(bias) = bias {
        fill_rows(&mut *c, m, ldc, &bias[..n]);
    }
    let add = acc == Acc::Add || bias.is_some();
    #[cfg(target_arch = "x86_64")]
    {
        // `ready` means T is f32 and the CPU has AVX-512 (see `available`).
        let (Some(a), Some(bd), Some(c)) = (super::as_f32(a), super::as_f32(&b.data), super::as_f32_mut(c)) else {
            unreachable!("a packed matrix is float32")
        };
        kernel_loop(m, n, k, a, lda, &bd[k0 * MR..], b.k, c, ldc, add);
    }
    #[cfg(not(target_arch = "x86_64"))]
    unreachable!("packed products need AVX-512 ({m}, {lda}, {ldc}, {add})");
}

/// The depth block [`super::gemm`] sums in: all of k for few rows (the unpacked kernels),
/// else the gemm crate's (its output is our Cᵀ: n x m).
fn depth_block(m: usize, n: usize, k: usize) -> usize {
    if m <= super::small::MAX_ROWS {
        k
    } else if n <= 64 && m <= 64 {
        k.min(512)
    } else {
        gemm_common::cache::kernel_params(n, m, k, MR, NR, 4).kc
    }
}

#[cfg(target_arch = "x86_64")]
#[allow(clippy::too_many_arguments)]
fn kernel_loop(
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    lda: usize,
    b: &[f32],
    b_depth: usize,
    c: &mut [f32],
    ldc: usize,
    add: bool,
) {
    use gemm_f32::microkernel::avx512f::f32::UKR;
    let kc = depth_block(m, n, k).max(1);
    let panels = n.div_ceil(MR);
    let per_block = (BLOCK_BYTES / (kc * MR * 4)).max(1);
    debug_assert!(b.len() >= (panels - 1) * b_depth * MR + k * MR);
    let (ap, bp, cp) = (a.as_ptr(), b.as_ptr(), c.as_mut_ptr());
    let mut d0 = 0;
    while d0 < k {
        let kb = kc.min(k - d0);
        // The crate's "alpha status": 0 overwrites C with the sum, 1 adds the sum to C (one
        // rounding: an FMA by 1), as for every depth block after the first.
        let status = if d0 == 0 && !add { 0 } else { 1 };
        for q0 in (0..panels).step_by(per_block) {
            for i0 in (0..m).step_by(NR) {
                let nr = NR.min(m - i0);
                for p in q0..(q0 + per_block).min(panels) {
                    let j0 = p * MR;
                    let mr = MR.min(n - j0);
                    let f = UKR[mr.div_ceil(16) - 1][nr - 1];
                    // SAFETY: the caller checked the extents of A (rows i0..i0+nr, depth
                    // d0..d0+kb) and C (rows i0..i0+nr, columns j0..j0+mr); each panel holds
                    // b_depth x MR values, of which rows d0..d0+kb (after the caller's offset) are read; the kernels write only the mr x nr block they are given.
                    unsafe {
                        f(
                            mr,
                            nr,
                            kb,
                            cp.add(i0 * ldc + j0),
                            bp.add(p * b_depth * MR + d0 * MR),
                            ap.add(i0 * lda + d0),
                            ldc as isize,
                            1,
                            MR as isize,
                            1,
                            lda as isize,
                            1.0,
                            1.0,
                            status,
                            false,
                            false,
                            false,
                            std::ptr::null(),
                        );
                    }
                }
            }
        }
        d0 += kb;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::{gemm, gemm_bias};

    #[test]
    fn packed_products_give_the_gemm_bits() {
        if !available::<f32>() {
            eprintln!("no AVX-512 here: nothing is packed, the plain GEMM runs");
            let mut p = Packed::<f32>::default();
            p.pack(3, 3, &[0.0; 9], 3, false);
            assert!(!p.ready());
            return;
        }
        let mut rng = 0x2545F4914F6CDD1Du64;
        let mut val = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            (rng >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        };
        let mut packed = Packed::<f32>::default();
        // Tails of panels and row blocks, depth split (k > 512), transposed storage.
        for &(m, n, k) in &[
            (7, 70, 5),
            (1, 40, 2),
            (13, 512, 128),
            (128, 2048, 512),
            (32, 128, 2048),
            (9, 300, 700),
            (64, 64, 600),
            (100, 300, 1000),
            (49, 17, 3),
        ] {
            assert!(fits(m, n, k), "({m}, {n}, {k})");
            for tb in [false, true] {
                let lda = k + 3;
                let ldb = if tb { k + 1 } else { n + 2 };
                let ldc = n + 5;
                let a: Vec<f32> = (0..m * lda).map(|_| val()).collect();
                let b: Vec<f32> = (0..if tb { n * ldb } else { k * ldb }).map(|_| val()).collect();
                let bias: Vec<f32> = (0..n).map(|_| val()).collect();
                let c0: Vec<f32> = (0..m * ldc).map(|_| val()).collect();
                packed.pack(k, n, &b, ldb, tb);
                assert!(packed.ready());
                // The reference multiplies B laid out (k, n): with few rows, `gemm` sums a
                // transposed operand in an order of its own.
                let (b, ldb) =
                    if tb { ((0..k * n).map(|i| b[(i % n) * ldb + i / n]).collect::<Vec<f32>>(), n) } else { (b, ldb) };
                for case in 0..3 {
                    let (mut want, mut got) = (c0.clone(), c0.clone());
                    match case {
                        0 => {
                            gemm(m, n, k, &a, lda, false, &b, ldb, false, &mut want, ldc, Acc::Overwrite);
                            gemm_packed(m, &a, lda, &packed, &mut got, ldc, Acc::Overwrite, None);
                        }
                        1 => {
                            gemm(m, n, k, &a, lda, false, &b, ldb, false, &mut want, ldc, Acc::Add);
                            gemm_packed(m, &a, lda, &packed, &mut got, ldc, Acc::Add, None);
                        }
                        _ => {
                            gemm_bias(m, n, k, &a, lda, false, &b, ldb, false, &mut want, ldc, &bias);
                            gemm_packed(m, &a, lda, &packed, &mut got, ldc, Acc::Overwrite, Some(&bias));
                        }
                    }
                    for (i, (x, y)) in got.iter().zip(&want).enumerate() {
                        assert_eq!(x.to_bits(), y.to_bits(), "({m}, {n}, {k}) tb={tb} case {case} at {i}: {x} vs {y}");
                    }
                }
            }
        }
    }

    #[test]
    fn a_range_of_packed_rows_gives_the_gemm_bits_of_those_rows() {
        // Backward multiplies by one gate's rows of Uᵀ (G·H, H) at a time.
        if !available::<f32>() {
            return;
        }
        for &(m, h, g) in &[(32, 70, 4), (128, 512, 4), (40, 33, 3), (256, 128, 3)] {
            let gh = g * h;
            let u: Vec<f32> = (0..h * gh).map(|i| ((i * 29 % 113) as f32 - 56.0) * 0.017).collect();
            let ut: Vec<f32> = (0..gh * h).map(|i| u[(i % h) * gh + i / h]).collect();
            let a: Vec<f32> = (0..m * gh).map(|i| ((i * 41 % 89) as f32 - 44.0) * 0.021).collect();
            let mut packed = Packed::default();
            packed.pack(gh, h, &u, gh, true);
            for gate in 0..g {
                let (c0, c1) = (gate * h, (gate + 1) * h);
                if !fits(m, h, c1 - c0) {
                    continue;
                }
                for acc in [Acc::Overwrite, Acc::Add] {
                    let c_init: Vec<f32> = (0..m * h).map(|i| (i % 7) as f32 * 0.1).collect();
                    let (mut want, mut got) = (c_init.clone(), c_init);
                    gemm(m, h, c1 - c0, &a[c0..], gh, false, &ut[c0 * h..], h, false, &mut want, h, acc);
                    gemm_packed_rows(m, &a[c0..], gh, &packed, c0, c1, &mut got, h, acc, None);
                    assert!(
                        got.iter().zip(&want).all(|(x, y)| x.to_bits() == y.to_bits()),
                        "({m}, {h}, gate {gate}) {acc:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn packing_turned_off_packs_nothing() {
        let mut p = Packed::<f32>::default();
        let before = packs_made();
        set_packing(false);
        p.pack(4, 4, &[1.0; 16], 4, false);
        set_packing(true);
        assert!(!p.ready());
        assert_eq!(packs_made(), before);
        p.pack(4, 4, &[1.0; 16], 4, false);
        assert_eq!(p.ready(), available::<f32>());
        assert_eq!(packs_made(), before + available::<f32>() as usize);
    }

    #[test]
    fn a_naive_sum_is_not_what_the_packed_product_gives() {
        // The bit test above can fail: summing in another order (here, one pass in f64)
        // differs from the GEMM in some values of a long product.
        if !available::<f32>() {
            return;
        }
        let (m, n, k) = (8, 64, 1000);
        let a: Vec<f32> = (0..m * k).map(|i| ((i * 37 % 101) as f32 - 50.0) * 0.013).collect();
        let b: Vec<f32> = (0..k * n).map(|i| ((i * 53 % 97) as f32 - 48.0) * 0.011).collect();
        let mut packed = Packed::default();
        packed.pack(k, n, &b, n, false);
        let mut got = vec![0.0f32; m * n];
        gemm_packed(m, &a, k, &packed, &mut got, n, Acc::Overwrite, None);
        let naive: Vec<f32> = (0..m * n)
            .map(|ij| (0..k).map(|p| a[(ij / n) * k + p] as f64 * b[p * n + ij % n] as f64).sum::<f64>() as f32)
            .collect();
        assert!(got.iter().zip(&naive).any(|(x, y)| x.to_bits() != y.to_bits()));
        assert!(got.iter().zip(&naive).all(|(x, y)| (x - y).abs() < 1e-3));
    }
}
