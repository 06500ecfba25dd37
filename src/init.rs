//! Keras's weight initializers, driven by a seeded generator so that a seed fixes every weight.

use crate::tensor::Scalar;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

/// Keras's `compute_fans` for 2-D shapes `(fan_in, fan_out)`; 1-D shapes use the one size twice.
fn fans(shape: &[usize]) -> (f64, f64) {
    match shape.len() {
        0 => (1.0, 1.0),
        1 => (shape[0] as f64, shape[0] as f64),
        2 => (shape[0] as f64, shape[1] as f64),
        _ => {
            let receptive: usize = shape[..shape.len() - 2].iter().product();
            ((shape[shape.len() - 2] * receptive) as f64, (shape[shape.len() - 1] * receptive) as f64)
        }
    }
}

/// `glorot_uniform`: U(-l, l) with l = sqrt(6 / (fan_in + fan_out)).
pub fn glorot_uniform<T: Scalar>(shape: &[usize], rng: &mut ChaCha8Rng) -> Vec<T> {
    let (fi, fo) = fans(shape);
    let limit = (6.0 / (fi + fo)).sqrt();
    let n: usize = shape.iter().product();
    (0..n).map(|_| T::of(rng.gen_range(-limit..limit))).collect()
}

/// `orthogonal` (gain 1) as Keras builds it: QR of a normal matrix of shape
/// (max(rows, cols), min(rows, cols)), columns signed by diag(R), transposed when rows < cols.
/// The QR is nalgebra's Householder factorisation.
pub fn orthogonal<T: Scalar>(shape: &[usize], rng: &mut ChaCha8Rng) -> Vec<T> {
    let cols = *shape.last().unwrap_or(&1);
    let rows: usize = shape[..shape.len().saturating_sub(1)].iter().product::<usize>().max(1);
    let (m, n) = (rows.max(cols), rows.min(cols));
    // Drawn column by column, as the weights always were.
    let mut a = nalgebra::DMatrix::<f64>::zeros(m, n);
    for j in 0..n {
        for i in 0..m {
            a[(i, j)] = StandardNormal.sample(rng);
        }
    }
    let qr = a.qr();
    let r = qr.r();
    let mut q = qr.q();
    for j in 0..n {
        if r[(j, j)] < 0.0 {
            q.column_mut(j).neg_mut();
        }
    }
    // Q is (m, n); the weight is Q (rows >= cols) or Q^T (rows < cols), row-major (rows, cols).
    let mut out = vec![T::zero(); rows * cols];
    for r in 0..rows {
        for c in 0..cols {
            let v = if rows >= cols { q[(r, c)] } else { q[(c, r)] };
            out[r * cols + c] = T::of(v);
        }
    }
    out
}

/// A generator for one model: every layer draws its weights from it in build order.
pub fn rng_from_seed(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orthogonal_is_orthogonal_for_square_wide_and_tall() {
        let mut rng = rng_from_seed(3);
        for (r, c) in [(5, 5), (3, 12), (12, 3)] {
            let w: Vec<f64> = orthogonal(&[r, c], &mut rng);
            // rows <= cols: W W^T = I; rows > cols: W^T W = I.
            let (k, inner, row_major) = if r <= c { (r, c, true) } else { (c, r, false) };
            for i in 0..k {
                for j in 0..k {
                    let d: f64 = (0..inner)
                        .map(|p| if row_major { w[i * c + p] * w[j * c + p] } else { w[p * c + i] * w[p * c + j] })
                        .sum();
                    let want = if i == j { 1.0 } else { 0.0 };
                    assert!((d - want).abs() < 1e-10, "({r},{c}) [{i},{j}] = {d}");
                }
            }
        }
    }

    #[test]
    fn glorot_stays_inside_its_limit_and_is_seeded() {
        let a: Vec<f64> = glorot_uniform(&[10, 40], &mut rng_from_seed(1));
        let b: Vec<f64> = glorot_uniform(&[10, 40], &mut rng_from_seed(1));
        let lim = (6.0f64 / 50.0).sqrt();
        assert_eq!(a, b);
        assert!(a.iter().all(|v| v.abs() <= lim));
        assert!(a.iter().any(|v| v.abs() > 0.8 * lim));
    }
}
