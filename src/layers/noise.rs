//! Layers that are random in training: Keras's `GaussianNoise` (the corruption of a denoising
//! autoencoder) and the variational autoencoder's `Sampling` layer with its KL term.

use super::{Ctx, Layer};
use crate::error::{Error, Result};
use crate::tensor::{Scalar, Tensor};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

/// Keras `GaussianNoise(stddev)`: adds N(0, stddev²) noise to every value in training; the
/// identity at inference. Placed first, it turns an autoencoder into a denoising one.
pub struct GaussianNoise {
    pub name: String,
    pub stddev: f64,
}

impl GaussianNoise {
    pub fn new(stddev: f64) -> Self {
        GaussianNoise { name: "gaussian_noise".into(), stddev }
    }
}

impl<T: Scalar> Layer<T> for GaussianNoise {
    fn name(&self) -> &str {
        &self.name
    }
    fn set_name(&mut self, name: &str) {
        self.name = name.to_string();
    }
    fn class_name(&self) -> &'static str {
        "GaussianNoise"
    }
    fn build(&mut self, input: &[usize], _rng: &mut ChaCha8Rng) -> Result<Vec<usize>> {
        if !(self.stddev.is_finite() && self.stddev >= 0.0) {
            return Err(Error::config(format!(
                "layer '{}': stddev must be finite and >= 0, got {}",
                self.name, self.stddev
            )));
        }
        Ok(input.to_vec())
    }
    fn forward(&mut self, x: &Tensor<T>, ctx: &mut Ctx<T>) -> Result<Tensor<T>> {
        let mut y = x.clone();
        if ctx.training && self.stddev > 0.0 {
            for v in y.data.iter_mut() {
                let n: f64 = StandardNormal.sample(ctx.rng);
                *v += T::of(self.stddev * n);
            }
        }
        Ok(y)
    }
    // y = x + noise
    fn backward(&mut self, dy: &Tensor<T>) -> Tensor<T> {
        dy.clone()
    }
    fn config(&self) -> serde_json::Value {
        serde_json::json!({"name": self.name, "stddev": self.stddev})
    }
}

/// The reparameterisation trick of a variational autoencoder (Kingma & Welling 2014).
///
/// Input (batch, 2k): the means `mu` in the first k columns and the log-variances `lv` in the
/// last k (one `Dense(2k)` in front produces both). Output (batch, k):
///
/// ```text
/// training:   z = mu + exp(lv / 2) ⊙ eps,   eps ~ N(0, I)
/// inference:  z = mu                         (deterministic codes; sample the prior to generate)
/// KL term:    kl_weight · (1/batch) Σ_b Σ_j −½ (1 + lv − mu² − exp(lv))
/// ```
///
/// The KL term is added to the loss like an activity penalty (in training and evaluation).
/// With a loss averaged over D output values, `kl_weight = 1/D` makes the objective the
/// negative ELBO per output value.
pub struct Sampling<T> {
    pub name: String,
    pub kl_weight: f64,
    k: usize,
    x: Vec<T>,
    eps: Option<Vec<T>>,
    kl: f64,
}

impl<T: Scalar> Sampling<T> {
    pub fn new(kl_weight: f64) -> Self {
        Sampling { name: "sampling".into(), kl_weight, k: 0, x: Vec::new(), eps: None, kl: 0.0 }
    }
}

impl<T: Scalar> Layer<T> for Sampling<T> {
    fn name(&self) -> &str {
        &self.name
    }
    fn set_name(&mut self, name: &str) {
        self.name = name.to_string();
    }
    fn class_name(&self) -> &'static str {
        "Sampling"
    }
    fn build(&mut self, input: &[usize], _rng: &mut ChaCha8Rng) -> Result<Vec<usize>> {
        if input.len() != 1 || !input[0].is_multiple_of(2) || input[0] == 0 {
            return Err(Error::shape(
                &self.name,
                "(batch, 2k): k means then k log-variances",
                format!("(batch, {})", input.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(", ")),
            ));
        }
        if !(self.kl_weight.is_finite() && self.kl_weight >= 0.0) {
            return Err(Error::config(format!(
                "layer '{}': kl_weight must be finite and >= 0, got {}",
                self.name, self.kl_weight
            )));
        }
        self.k = input[0] / 2;
        Ok(vec![self.k])
    }
    fn forward(&mut self, x: &Tensor<T>, ctx: &mut Ctx<T>) -> Result<Tensor<T>> {
        let k = self.k;
        if x.ndim() != 2 || x.last_dim() != 2 * k {
            return Err(Error::shape(&self.name, format!("(batch, {})", 2 * k), format!("{:?}", x.shape)));
        }
        let b = x.batch();
        let mut z = Tensor::zeros(&[b, k]);
        let half = T::of(0.5);
        let mut kl = 0.0;
        let mut eps = if ctx.training { Some(Vec::with_capacity(b * k)) } else { None };
        for (row, zr) in x.data.chunks_exact(2 * k).zip(z.data.chunks_exact_mut(k)) {
            let (mu, lv) = row.split_at(k);
            for j in 0..k {
                kl += -0.5 * (1.0 + lv[j].f64() - mu[j].f64().powi(2) - lv[j].f64().exp());
                zr[j] = match eps.as_mut() {
                    Some(e) => {
                        let n: f64 = StandardNormal.sample(ctx.rng);
                        e.push(T::of(n));
                        mu[j] + (lv[j] * half).exp() * T::of(n)
                    }
                    None => mu[j],
                };
            }
        }
        self.kl = self.kl_weight * kl / b as f64;
        self.eps = eps;
        self.x = x.data.clone();
        Ok(z)
    }
    fn backward(&mut self, dz: &Tensor<T>) -> Tensor<T> {
        let k = self.k;
        let b = dz.batch();
        let mut dx = Tensor::zeros(&[b, 2 * k]);
        let w = T::of(self.kl_weight / b as f64);
        let half = T::of(0.5);
        for (r, (row, dxr)) in self.x.chunks_exact(2 * k).zip(dx.data.chunks_exact_mut(2 * k)).enumerate() {
            let (mu, lv) = row.split_at(k);
            for j in 0..k {
                let g = dz.data[r * k + j];
                // KL: d/dmu = w mu;  d/dlv = w (exp(lv) - 1) / 2
                dxr[j] = g + w * mu[j];
                dxr[k + j] = w * half * (lv[j].exp() - T::one());
                // z = mu + exp(lv / 2) eps
                if let Some(e) = &self.eps {
                    dxr[k + j] += g * half * (lv[j] * half).exp() * e[r * k + j];
                }
            }
        }
        dx
    }
    fn config(&self) -> serde_json::Value {
        serde_json::json!({"name": self.name, "kl_weight": self.kl_weight})
    }
    fn activity_penalty(&self) -> f64 {
        self.kl
    }
}
