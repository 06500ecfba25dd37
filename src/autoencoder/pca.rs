//! Principal component analysis, the linear baseline of every autoencoder: the k leading
//! eigenvectors of the sample covariance (nalgebra's symmetric eigensolver), and the
//! reconstruction `x̂ = mean + (x − mean) V Vᵀ`. A linear autoencoder trained with MSE reaches
//! the same reconstruction error at the same code size (it spans the same subspace).

use crate::error::{Error, Result};
use nalgebra::{DMatrix, SymmetricEigen};

/// A fitted PCA.
#[derive(Clone, Debug)]
pub struct Pca {
    /// Feature means (d).
    pub mean: Vec<f64>,
    /// The k components, row by row (k, d), by decreasing variance.
    pub components: Vec<Vec<f64>>,
    /// Variance along each component (k).
    pub explained_variance: Vec<f64>,
    /// Total variance of the data (sum over all d features).
    pub total_variance: f64,
}

impl Pca {
    /// Fits k components to `x` (n rows of d values, row-major).
    pub fn fit(x: &[f64], n: usize, d: usize, k: usize) -> Result<Pca> {
        if n < 2 || d == 0 || x.len() != n * d {
            return Err(Error::data(format!("PCA needs at least 2 samples of d > 0 values, got {n} x {d}")));
        }
        if k == 0 || k > d {
            return Err(Error::config(format!("PCA: {k} components requested for {d} features")));
        }
        if let Some(i) = x.iter().position(|v| !v.is_finite()) {
            return Err(Error::data(format!("PCA input holds a non-finite value {} at flat index {i}", x[i])));
        }
        let mut mean = vec![0.0; d];
        for row in x.chunks_exact(d) {
            for (m, &v) in mean.iter_mut().zip(row) {
                *m += v;
            }
        }
        mean.iter_mut().for_each(|m| *m /= n as f64);
        let xc = DMatrix::from_fn(n, d, |i, j| x[i * d + j] - mean[j]);
        let cov = (xc.transpose() * &xc) / (n as f64 - 1.0);
        let total_variance = cov.trace();
        let eig = SymmetricEigen::new(cov);
        let mut order: Vec<usize> = (0..d).collect();
        order.sort_by(|&a, &b| eig.eigenvalues[b].total_cmp(&eig.eigenvalues[a]));
        let components = order[..k].iter().map(|&c| eig.eigenvectors.column(c).iter().copied().collect()).collect();
        let explained_variance = order[..k].iter().map(|&c| eig.eigenvalues[c].max(0.0)).collect();
        Ok(Pca { mean, components, explained_variance, total_variance })
    }

    /// Number of features.
    pub fn dim(&self) -> usize {
        self.mean.len()
    }

    /// The codes (n, k) of `x` (n, d).
    pub fn transform(&self, x: &[f64]) -> Vec<f64> {
        let d = self.dim();
        let mut out = Vec::with_capacity(x.len() / d * self.components.len());
        for row in x.chunks_exact(d) {
            for c in &self.components {
                out.push(row.iter().zip(&self.mean).zip(c).map(|((v, m), w)| (v - m) * w).sum());
            }
        }
        out
    }

    /// Back from codes (n, k) to (n, d).
    pub fn inverse_transform(&self, codes: &[f64]) -> Vec<f64> {
        let (d, k) = (self.dim(), self.components.len());
        let mut out = Vec::with_capacity(codes.len() / k * d);
        for z in codes.chunks_exact(k) {
            for j in 0..d {
                out.push(self.mean[j] + (0..k).map(|c| z[c] * self.components[c][j]).sum::<f64>());
            }
        }
        out
    }

    /// Mean squared reconstruction error over every value of `x` (n, d).
    pub fn reconstruction_mse(&self, x: &[f64]) -> f64 {
        let r = self.inverse_transform(&self.transform(x));
        x.iter().zip(&r).map(|(a, b)| (a - b) * (a - b)).sum::<f64>() / x.len().max(1) as f64
    }
}

#[cfg(test)]
#[allow(clippy::needless_range_loop)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    #[test]
    fn recovers_a_planted_subspace_and_its_error() {
        // Points on a 2-D plane in 5-D plus small isotropic noise: 2 components leave only the
        // noise (variance s² per feature in the 3 other directions), 5 leave nothing.
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let (n, d, s) = (4000, 5, 0.01);
        let u = [[1.0, 2.0, 0.0, -1.0, 0.5], [0.0, 1.0, 1.0, 1.0, -2.0]];
        let mut x = Vec::new();
        for _ in 0..n {
            let (a, b): (f64, f64) = (rng.gen_range(-1.0..1.0), rng.gen_range(-1.0..1.0));
            for j in 0..d {
                x.push(3.0 + a * u[0][j] + b * u[1][j] + s * (rng.gen::<f64>() - 0.5) * 12f64.sqrt());
            }
        }
        let p2 = Pca::fit(&x, n, d, 2).unwrap();
        let want = s * s * 3.0 / 5.0;
        let got = p2.reconstruction_mse(&x);
        assert!((got / want - 1.0).abs() < 0.1, "{got} vs {want}");
        let p5 = Pca::fit(&x, n, d, 5).unwrap();
        assert!(p5.reconstruction_mse(&x) < 1e-20);
        assert!(p2.explained_variance[0] >= p2.explained_variance[1]);
        assert!(Pca::fit(&x, n, d, 6).unwrap_err().to_string().contains("6 components"));
    }
}
