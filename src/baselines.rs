//! Classical baselines for extrapolating a series, scored exactly like the networks (the
//! first `train` points keep their true values, the rest are predicted), so a physicist sees
//! at a glance whether a network beats a straight line.
//!
//! - `ar{w}_ols`: sequential (autoregressive) least squares on windows of `w`,
//!   `y_{t} = c + Σ_k a_k y_{t-w+k}`, fitted on the training windows the networks see and
//!   predicted recursively from the last `w` training points (the networks' protocol).
//! - `ar{w}_ridge`: the same with an L2 penalty λ‖a‖² on the standardised window values (the
//!   intercept is not penalised); λ is chosen from 10⁻⁸..10² by exact leave-one-out
//!   cross-validation on the training windows.
//! - `poly{d}`: least-squares polynomial of degree d in x over the training points
//!   (x centred and scaled for conditioning), evaluated at the later x.
//! - `second_difference`: y_{t+1} = 2 y_t − y_{t−1} + Δ², with Δ² the last training second
//!   difference (quadratic continuation of the last three points; needs evenly spaced x).
//!
//! Least squares go through nalgebra's SVD.

use crate::error::{Error, Result};
use nalgebra::{DMatrix, DVector};

/// One baseline's prediction over every point.
#[derive(Clone, Debug)]
pub struct Baseline {
    pub id: String,
    pub description: String,
    pub prediction: Vec<f64>,
}

/// Least squares `min ‖A c − b‖` (minimum-norm solution when rank-deficient).
fn lstsq(a: &DMatrix<f64>, b: &DVector<f64>) -> Result<DVector<f64>> {
    let svd = a.clone().svd(true, true);
    let tol = 1e-12 * svd.singular_values.max().max(f64::MIN_POSITIVE);
    svd.solve(b, tol).map_err(|e| Error::data(format!("least squares failed: {e}")))
}

/// Design matrix of the training windows: rows (y_i .. y_{i+w-1}), targets y_{i+w}.
fn window_design(y: &[f64], w: usize) -> (DMatrix<f64>, DVector<f64>) {
    let n = y.len() - w;
    let a = DMatrix::from_fn(n, w, |i, j| y[i + j]);
    let b = DVector::from_fn(n, |i, _| y[i + w]);
    (a, b)
}

/// A fitted autoregressive predictor: y_next = c0 + Σ coef_k window_k.
struct Ar {
    intercept: f64,
    coef: Vec<f64>,
}

impl Ar {
    fn extrapolate(&self, y: &[f64], train: usize, n: usize) -> Vec<f64> {
        let w = self.coef.len();
        let mut p = y[..train].to_vec();
        for t in train..n {
            let next = self.intercept + (0..w).map(|k| self.coef[k] * p[t - w + k]).sum::<f64>();
            p.push(next);
        }
        p
    }
}

fn ar_ols(y: &[f64], w: usize) -> Result<Ar> {
    let (x, b) = window_design(y, w);
    let a = x.clone().insert_column(w, 1.0);
    let c = lstsq(&a, &b)?;
    Ok(Ar { intercept: c[w], coef: c.rows(0, w).iter().copied().collect() })
}

/// Ridge on standardised columns with λ by leave-one-out CV; returns the predictor and λ.
fn ar_ridge(y: &[f64], w: usize) -> Result<(Ar, f64)> {
    let (x, b) = window_design(y, w);
    let n = x.nrows();
    let mean: Vec<f64> = (0..w).map(|j| x.column(j).mean()).collect();
    let sd: Vec<f64> = (0..w).map(|j| x.column(j).variance().sqrt().max(1e-300)).collect();
    let z = DMatrix::from_fn(n, w, |i, j| (x[(i, j)] - mean[j]) / sd[j]);
    let bm = b.mean();
    let bc = b.add_scalar(-bm);
    let mut best: Option<(f64, f64, DVector<f64>)> = None;
    for k in 0..=40 {
        let lambda = 10f64.powf(-8.0 + 0.25 * k as f64);
        // Centred ridge: beta = (ZᵀZ + λI)⁻¹ Zᵀ b; the hat matrix includes the intercept's 1/n.
        let g = z.transpose() * &z + DMatrix::identity(w, w) * lambda;
        let Some(gi) = g.try_inverse() else { continue };
        let beta = &gi * z.transpose() * &bc;
        let h = &z * &gi * z.transpose();
        let resid = &bc - &z * &beta;
        let mut loo = 0.0;
        for i in 0..n {
            let hii = h[(i, i)] + 1.0 / n as f64;
            loo += (resid[i] / (1.0 - hii).max(1e-12)).powi(2);
        }
        if best.as_ref().is_none_or(|(l, _, _)| loo < *l) {
            best = Some((loo, lambda, beta));
        }
    }
    let (_, lambda, beta) = best.ok_or_else(|| Error::data("ridge regression failed for every λ"))?;
    let coef: Vec<f64> = (0..w).map(|j| beta[j] / sd[j]).collect();
    let intercept = bm - (0..w).map(|j| coef[j] * mean[j]).sum::<f64>();
    Ok((Ar { intercept, coef }, lambda))
}

fn poly(x: &[f64], y: &[f64], train: usize, d: usize) -> Result<Vec<f64>> {
    let (xt, yt) = (&x[..train], &y[..train]);
    let mu = xt.iter().sum::<f64>() / train as f64;
    let s = xt.iter().map(|v| (v - mu).abs()).fold(0.0, f64::max).max(1e-300);
    let u = |v: f64| (v - mu) / s;
    let a = DMatrix::from_fn(train, d + 1, |i, j| u(xt[i]).powi(j as i32));
    let c = lstsq(&a, &DVector::from_column_slice(yt))?;
    let mut p = yt.to_vec();
    for &xv in &x[train..] {
        p.push((0..=d).map(|j| c[j] * u(xv).powi(j as i32)).sum());
    }
    Ok(p)
}

/// Every baseline that the training size allows, for the series `y(x)` with `train` points
/// known. Baselines that need more points than there are are left out.
pub fn all_baselines(x: &[f64], y: &[f64], train: usize) -> Result<Vec<Baseline>> {
    let n = y.len();
    if train > n || x.len() != n {
        return Err(Error::data(format!("baselines: train = {train} with {n} points")));
    }
    let yt = &y[..train];
    let mut out = Vec::new();
    for w in [2usize, 3] {
        // OLS needs more windows than unknowns (w + 1).
        if train >= 2 * w + 2 {
            let ar = ar_ols(yt, w)?;
            out.push(Baseline {
                id: format!("ar{w}_ols"),
                description: format!("sequential least squares on windows of {w} (with intercept), recursive"),
                prediction: ar.extrapolate(y, train, n),
            });
            let (ar, lambda) = ar_ridge(yt, w)?;
            out.push(Baseline {
                id: format!("ar{w}_ridge"),
                description: format!(
                    "sequential ridge on windows of {w}, λ = {lambda:.1e} by leave-one-out CV, recursive"
                ),
                prediction: ar.extrapolate(y, train, n),
            });
        }
    }
    for d in 1..=3usize {
        if train > d + 1 {
            out.push(Baseline {
                id: format!("poly{d}"),
                description: format!("least-squares polynomial of degree {d} in x"),
                prediction: poly(x, y, train, d)?,
            });
        }
    }
    if train >= 3 {
        let d2 = yt[train - 1] - 2.0 * yt[train - 2] + yt[train - 3];
        let mut p = yt.to_vec();
        for t in train..n {
            p.push(2.0 * p[t - 1] - p[t - 2] + d2);
        }
        out.push(Baseline {
            id: "second_difference".into(),
            description: "constant second difference (quadratic continuation of the last 3 training points)".into(),
            prediction: p,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mse(a: &[f64], b: &[f64]) -> f64 {
        a.iter().zip(b).map(|(p, q)| (p - q) * (p - q)).sum::<f64>() / a.len() as f64
    }

    #[test]
    fn ar3_ols_on_the_seed_series_gives_the_known_error() {
        // numpy.linalg.lstsq on the same windows gives mse_all = 5.5414e-7 (the issue's ~5.5e-7).
        let s = crate::datasets::seed_series();
        let y = s.y0();
        let b = all_baselines(&s.x, &y, 12).unwrap();
        let ar3 = b.iter().find(|b| b.id == "ar3_ols").unwrap();
        let e = mse(&ar3.prediction, &y);
        assert!((e - 5.5414e-7).abs() < 1e-10, "{e}");
        let ar2 = b.iter().find(|b| b.id == "ar2_ols").unwrap();
        assert!((mse(&ar2.prediction, &y) - 1.00816e-5).abs() < 1e-9);
        let p2 = b.iter().find(|b| b.id == "poly2").unwrap();
        assert!((mse(&p2.prediction, &y) - 3.72895e-4).abs() < 1e-8);
        let d2 = b.iter().find(|b| b.id == "second_difference").unwrap();
        assert!((mse(&d2.prediction, &y) - 2.49089e-6).abs() < 1e-10);
    }

    #[test]
    fn exact_models_are_recovered() {
        // y = 3 + 2x - 0.5x² is followed exactly by poly2 and by the second difference, and an
        // AR(2) recursion y_t = 1.5 y_{t-1} - 0.6 y_{t-2} + 0.1 by ar2_ols.
        let x: Vec<f64> = (0..15).map(|i| i as f64).collect();
        let y: Vec<f64> = x.iter().map(|v| 3.0 + 2.0 * v - 0.5 * v * v).collect();
        let b = all_baselines(&x, &y, 8).unwrap();
        for id in ["poly2", "poly3", "second_difference"] {
            let p = &b.iter().find(|b| b.id == id).unwrap().prediction;
            assert!(mse(p, &y) < 1e-18, "{id}: {}", mse(p, &y));
        }
        let mut ar = vec![1.0, 2.0];
        for t in 2..15 {
            ar.push(1.5 * ar[t - 1] - 0.6 * ar[t - 2] + 0.1);
        }
        let b = all_baselines(&x, &ar, 8).unwrap();
        let p = &b.iter().find(|b| b.id == "ar2_ols").unwrap().prediction;
        assert!(mse(p, &ar) < 1e-16, "{}", mse(p, &ar));
        // Ridge picks a small λ on noiseless data and stays close.
        let p = &b.iter().find(|b| b.id == "ar2_ridge").unwrap().prediction;
        assert!(mse(p, &ar) < 1e-6, "{}", mse(p, &ar));
    }

    #[test]
    fn short_training_sets_leave_out_what_they_cannot_fit() {
        let x: Vec<f64> = (0..6).map(|i| i as f64).collect();
        let y = x.clone();
        let ids: Vec<String> = all_baselines(&x, &y, 3).unwrap().into_iter().map(|b| b.id).collect();
        assert_eq!(ids, vec!["poly1", "second_difference"]);
    }
}
