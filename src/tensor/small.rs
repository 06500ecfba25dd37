//! Matrix products with few rows (m ≤ 48) in float32, without packing.
//!
//! A recurrent step multiplies the batch's hidden states (a few rows: the seed note trains on
//! 9 windows) by the recurrent kernel (250 x 1000 for its LSTM). A general GEMM first copies
//! ("packs") the whole right-hand matrix into its own layout, which here costs four times the
//! arithmetic; these kernels stream the matrix once, straight from where it lies, and keep
//! every partial sum of a row block in AVX-512 registers.
//!
//! - [`nn`]: `C (m, n) [+]= A (m, k) · B (k, n)`, both row-major: for a block of up to 12 rows
//!   and 32 columns, each row of B is loaded once (two registers) and multiplied by every
//!   row's broadcast value.
//! - [`nt`]: `C (m, n) [+]= A (m, k) · Bᵀ` with B stored (n, k) row-major: for two columns
//!   of C at a time, every row of A and both rows of B are read along k, 16 values a step,
//!   then each partial vector is summed.
//!
//! Used only on CPUs with AVX-512 (elsewhere the general GEMM runs); the tests compare them
//! with a naive product.

#![allow(clippy::too_many_arguments)]

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

/// Largest row count these kernels take.
pub const MAX_ROWS: usize = 48;

/// Calls `kernel::<MR>(args)` with the const row count MR = `rows` (1 to 12).
macro_rules! by_rows {
    ($rows:expr, $kernel:ident($($arg:expr),*)) => {
        match $rows {
            1 => $kernel::<1>($($arg),*),
            2 => $kernel::<2>($($arg),*),
            3 => $kernel::<3>($($arg),*),
            4 => $kernel::<4>($($arg),*),
            5 => $kernel::<5>($($arg),*),
            6 => $kernel::<6>($($arg),*),
            7 => $kernel::<7>($($arg),*),
            8 => $kernel::<8>($($arg),*),
            9 => $kernel::<9>($($arg),*),
            10 => $kernel::<10>($($arg),*),
            11 => $kernel::<11>($($arg),*),
            _ => $kernel::<12>($($arg),*),
        }
    };
}

/// Splits m rows into blocks of at most `max` (even sizes).
fn row_blocks(m: usize, max: usize) -> impl Iterator<Item = (usize, usize)> {
    let nb = m.div_ceil(max).max(1);
    (0..nb).map(move |i| (i * m / nb, (i + 1) * m / nb))
}

/// `C [+]= A · B` (see the module docs). The caller checked the extents and AVX-512.
#[cfg(target_arch = "x86_64")]
pub fn nn(
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    lda: usize,
    b: &[f32],
    ldb: usize,
    c: &mut [f32],
    ldc: usize,
    add: bool,
) {
    for (r0, r1) in row_blocks(m, 12) {
        let (a, c) = (&a[r0 * lda..], &mut c[r0 * ldc..]);
        // SAFETY: AVX-512F is present (checked by the caller) and every access below stays
        // inside rows r0..r1 of A and C, and rows 0..k of B, columns 0..n.
        unsafe { by_rows!(r1 - r0, nn_block(n, k, a, lda, b, ldb, c, ldc, add)) }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn nn_block<const MR: usize>(
    n: usize,
    k: usize,
    a: &[f32],
    lda: usize,
    b: &[f32],
    ldb: usize,
    c: &mut [f32],
    ldc: usize,
    add: bool,
) {
    let (ap, bp, cp) = (a.as_ptr(), b.as_ptr(), c.as_mut_ptr());
    let mut j0 = 0;
    while j0 < n {
        let w = (n - j0).min(32);
        // Masks for a tail narrower than 32 columns.
        let m0: __mmask16 = if w >= 16 { 0xffff } else { ((1u32 << w) - 1) as __mmask16 };
        let m1: __mmask16 = if w >= 32 {
            0xffff
        } else if w > 16 {
            ((1u32 << (w - 16)) - 1) as __mmask16
        } else {
            0
        };
        let mut acc0 = [_mm512_setzero_ps(); MR];
        let mut acc1 = [_mm512_setzero_ps(); MR];
        for p in 0..k {
            let row = bp.add(p * ldb + j0);
            if p + PF < k {
                _mm_prefetch::<_MM_HINT_T0>(row.add(PF * ldb) as *const i8);
                _mm_prefetch::<_MM_HINT_T0>(row.add(PF * ldb + 16) as *const i8);
            }
            let b0 = _mm512_maskz_loadu_ps(m0, row);
            let b1 = _mm512_maskz_loadu_ps(m1, row.add(16));
            for i in 0..MR {
                let av = _mm512_set1_ps(*ap.add(i * lda + p));
                acc0[i] = _mm512_fmadd_ps(av, b0, acc0[i]);
                acc1[i] = _mm512_fmadd_ps(av, b1, acc1[i]);
            }
        }
        for i in 0..MR {
            let out = cp.add(i * ldc + j0);
            let (mut v0, mut v1) = (acc0[i], acc1[i]);
            if add {
                v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(m0, out));
                v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(m1, out.add(16)));
            }
            _mm512_mask_storeu_ps(out, m0, v0);
            _mm512_mask_storeu_ps(out.add(16), m1, v1);
        }
        j0 += 32;
    }
}

/// Rows ahead that [`nn_block`] asks the cache for: it reads B 32 columns down all k rows
/// (two lines a row), a stride the hardware prefetchers do not follow.
const PF: usize = 48;

/// `C [+]= A · Bᵀ`, B stored (n, k) (see the module docs). The caller checked the extents
/// and AVX-512.
#[cfg(target_arch = "x86_64")]
pub fn nt(
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    lda: usize,
    b: &[f32],
    ldb: usize,
    c: &mut [f32],
    ldc: usize,
    add: bool,
) {
    // Blocks of at most 6 rows: 12 accumulators (more spill to the stack, measured 2x slower).
    for (r0, r1) in row_blocks(m, 6) {
        let (a, c) = (&a[r0 * lda..], &mut c[r0 * ldc..]);
        // SAFETY: as in `nn`.
        unsafe { by_rows!(r1 - r0, nt_block(n, k, a, lda, b, ldb, c, ldc, add)) }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn nt_block<const MR: usize>(
    n: usize,
    k: usize,
    a: &[f32],
    lda: usize,
    b: &[f32],
    ldb: usize,
    c: &mut [f32],
    ldc: usize,
    add: bool,
) {
    let (ap, bp, cp) = (a.as_ptr(), b.as_ptr(), c.as_mut_ptr());
    let mut j = 0;
    while j < n {
        let two = j + 1 < n;
        let mut acc0 = [_mm512_setzero_ps(); MR];
        let mut acc1 = [_mm512_setzero_ps(); MR];
        let (b0p, b1p) = (bp.add(j * ldb), bp.add(if two { (j + 1) * ldb } else { j * ldb }));
        let mut p = 0;
        while p < k {
            let w = (k - p).min(16);
            let mk: __mmask16 = if w == 16 { 0xffff } else { ((1u32 << w) - 1) as __mmask16 };
            let b0 = _mm512_maskz_loadu_ps(mk, b0p.add(p));
            let b1 = _mm512_maskz_loadu_ps(mk, b1p.add(p));
            for i in 0..MR {
                let av = _mm512_maskz_loadu_ps(mk, ap.add(i * lda + p));
                acc0[i] = _mm512_fmadd_ps(av, b0, acc0[i]);
                acc1[i] = _mm512_fmadd_ps(av, b1, acc1[i]);
            }
            p += 16;
        }
        for i in 0..MR {
            let out = cp.add(i * ldc + j);
            let s0 = _mm512_reduce_add_ps(acc0[i]);
            *out = if add { *out + s0 } else { s0 };
            if two {
                let s1 = _mm512_reduce_add_ps(acc1[i]);
                *out.add(1) = if add { *out.add(1) + s1 } else { s1 };
            }
        }
        j += 2;
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;

    fn naive(m: usize, n: usize, k: usize, a: &[f32], b: &[f32], tb: bool) -> Vec<f64> {
        let mut c = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                for p in 0..k {
                    let bv = if tb { b[j * k + p] } else { b[p * n + j] };
                    c[i * n + j] += a[i * k + p] as f64 * bv as f64;
                }
            }
        }
        c
    }

    #[test]
    fn small_products_match_naive_for_every_shape_edge() {
        if !is_x86_feature_detected!("avx512f") {
            eprintln!("no AVX-512 on this CPU: the kernels are not used here, nothing to test");
            return;
        }
        for &(m, n, k) in &[
            (1, 1, 1),
            (9, 1000, 250),
            (9, 250, 1000),
            (13, 47, 33),
            (24, 17, 5),
            (5, 31, 16),
            (12, 64, 17),
            (18, 500, 500),
        ] {
            let a: Vec<f32> = (0..m * k).map(|i| ((i * 7 % 13) as f32 - 6.0) * 0.1).collect();
            let b: Vec<f32> = (0..k * n).map(|i| ((i * 5 % 11) as f32 - 5.0) * 0.1).collect();
            for tb in [false, true] {
                let want = naive(m, n, k, &a, &b, tb);
                for add in [false, true] {
                    let mut c = vec![0.5f32; m * n];
                    if tb {
                        nt(m, n, k, &a, k, &b, k, &mut c, n, add);
                    } else {
                        nn(m, n, k, &a, k, &b, n, &mut c, n, add);
                    }
                    for (x, y) in c.iter().zip(&want) {
                        let y = if add { y + 0.5 } else { *y };
                        assert!(
                            (*x as f64 - y).abs() < 1e-3 * (1.0 + y.abs()),
                            "{m}x{n}x{k} tb={tb} add={add}: {x} vs {y}"
                        );
                    }
                }
            }
        }
    }
}
