//! Autoencoders over the same layers, optimizers and fit loop as every other model: an
//! encoder stack and a decoder stack in one [`Sequential`], trained to reproduce their input.
//!
//! What makes each variant is a small piece, not a new engine:
//!
//! | variant | piece |
//! |---|---|
//! | undercomplete | a code narrower than the input (any depth, any activations) |
//! | denoising | `GaussianNoise(stddev)` or `Dropout(rate)` as the first encoder layer: active in training only, the target stays the clean input |
//! | sparse | `Dense(..., activity_sparsity = {rho, beta})` (UFLDL's KL penalty) or an L1 `activity_regularizer` on the code |
//! | stacked | tied weights ([`Sequential::tie`]: decoder kernels are the encoder's, transposed) and [`Autoencoder::pretrain_layerwise`] before fine-tuning |
//! | variational | `Dense(2k)` then `Sampling` (means, log-variances, the reparameterisation trick, the KL term); [`Autoencoder::generate`] samples the prior |
//! | sequence | `LSTM(h)` -> `RepeatVector(T)` -> `LSTM(h, return_sequences)` -> `Dense(F)` on every step |
//!
//! `memcell autoencoder CONFIG.toml` runs them from a config file ([`config`]) on generated,
//! bundled or user data ([`data`]), scores them against PCA ([`run`]) and writes results,
//! figures and a report ([`output`]).
//!
//! ```
//! use memcell::autoencoder::Autoencoder;
//! use memcell::layers::{Dense, Layer};
//! use memcell::loss::Loss;
//! use memcell::model::FitOptions;
//! use memcell::optim::Optimizer;
//! use memcell::tensor::Tensor;
//! let enc: Vec<Box<dyn Layer<f32>>> = vec![Box::new(Dense::new(16).activation("relu")), Box::new(Dense::new(2))];
//! let dec: Vec<Box<dyn Layer<f32>>> = vec![Box::new(Dense::new(16).activation("relu")), Box::new(Dense::new(8))];
//! let mut ae = Autoencoder::new(&[8], enc, dec, 0).unwrap();
//! ae.compile(Loss::Mse, Optimizer::adam(1e-3)).unwrap();
//! let x = Tensor::<f32>::from_f64(&[4, 8], &[0.5; 32]).unwrap();
//! ae.fit(&x, &FitOptions::default().epochs(2).verbose(false), &mut []).unwrap();
//! assert_eq!(ae.encode(&x).unwrap().shape, vec![4, 2]);
//! ```

pub mod config;
pub mod data;
pub mod output;
pub mod pca;
pub mod run;

pub use pca::Pca;

use crate::error::{Error, Result};
use crate::layers::config::{layer_from_config, layer_to_config};
use crate::layers::Layer;
use crate::loss::Loss;
use crate::model::{Callback, FitOptions, History, Sequential};
use crate::optim::Optimizer;
use crate::tensor::{Scalar, Tensor};
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};

/// An autoencoder: `model.layers()[..n_encoder]` map an input to its code, the rest map a
/// code back to the input space.
pub struct Autoencoder<T: Scalar> {
    pub model: Sequential<T>,
    n_encoder: usize,
}

const PREDICT_BATCH: usize = 256;

impl<T: Scalar> Autoencoder<T> {
    /// Stacks `encoder` then `decoder` on inputs of shape `input` (without the batch axis) and
    /// builds the weights from `seed`. The decoder must give back the input's shape.
    pub fn new(
        input: &[usize],
        encoder: Vec<Box<dyn Layer<T>>>,
        decoder: Vec<Box<dyn Layer<T>>>,
        seed: u64,
    ) -> Result<Self> {
        let mut m = Sequential::new().input(input).seed(seed);
        m.name = "autoencoder".into();
        let n_encoder = encoder.len();
        for l in encoder {
            m.push(l);
        }
        for l in decoder {
            m.push(l);
        }
        Self::from_model(m, n_encoder)
    }

    /// Wraps a built-or-not model whose first `n_encoder` layers are the encoder.
    pub fn from_model(mut model: Sequential<T>, n_encoder: usize) -> Result<Self> {
        let n = model.layers().len();
        if n_encoder == 0 || n_encoder >= n {
            return Err(Error::config(format!(
                "an autoencoder needs at least one encoder and one decoder layer, got {n_encoder} of {n} layers as encoder"
            )));
        }
        model.build()?;
        let input = model.input_shape().expect("built").to_vec();
        let out = model.output_shape().expect("built").to_vec();
        if input != out {
            return Err(Error::config(format!(
                "the decoder must reconstruct the input shape {input:?}, but the model outputs {out:?}"
            )));
        }
        Ok(Autoencoder { model, n_encoder })
    }

    /// Number of encoder layers.
    pub fn n_encoder(&self) -> usize {
        self.n_encoder
    }

    /// Shape of one code (without the batch axis).
    pub fn code_shape(&self) -> Vec<usize> {
        self.model.layer_output_shapes()[self.n_encoder - 1].clone()
    }

    /// Number of values in one code.
    pub fn code_size(&self) -> usize {
        self.code_shape().iter().product()
    }

    /// Ties decoder layer `target`'s kernel to the transpose of encoder layer `source`'s. The
    /// weights are kept (a tie added after pretraining does not re-initialise the model); from
    /// now on the target kernel is the source's, transposed.
    pub fn tie(&mut self, target: &str, source: &str) -> Result<()> {
        let weights = self.model.get_weights();
        let m = std::mem::take(&mut self.model);
        self.model = m.tie(target, source);
        self.model.build()?;
        self.model.set_weights(&weights)?;
        // Re-sync the target from the source: a build (then the first call) does it.
        self.model.sync_tied_kernels();
        Ok(())
    }

    /// Sets the loss and the optimizer.
    pub fn compile(&mut self, loss: Loss, optimizer: Optimizer) -> Result<()> {
        self.model.compile(loss, optimizer)
    }

    /// Trains the model to reproduce `x` (the target is always the clean input).
    pub fn fit(
        &mut self,
        x: &Tensor<T>,
        opts: &FitOptions<T>,
        callbacks: &mut [&mut dyn Callback<T>],
    ) -> Result<History> {
        self.model.fit(x, x, opts, callbacks)
    }

    fn in_batches(&mut self, x: &Tensor<T>, from: usize, to: usize) -> Result<Tensor<T>> {
        let n = x.batch();
        if n == 0 {
            return Err(Error::data("no samples"));
        }
        let mut parts = Vec::new();
        for start in (0..n).step_by(PREDICT_BATCH) {
            let xb = x.slice_batch(start, (start + PREDICT_BATCH).min(n));
            parts.push(self.model.call_range(&xb, false, from, to)?);
        }
        Ok(Tensor::concat_batch(&parts))
    }

    /// The codes of `x` (inference: no noise, no dropout; a variational code is its mean).
    pub fn encode(&mut self, x: &Tensor<T>) -> Result<Tensor<T>> {
        self.in_batches(x, 0, self.n_encoder)
    }

    /// Maps codes back to the input space.
    pub fn decode(&mut self, z: &Tensor<T>) -> Result<Tensor<T>> {
        let n = self.model.layers().len();
        self.in_batches(z, self.n_encoder, n)
    }

    /// `decode(encode(x))`.
    pub fn reconstruct(&mut self, x: &Tensor<T>) -> Result<Tensor<T>> {
        let n = self.model.layers().len();
        self.in_batches(x, 0, n)
    }

    /// Mean squared difference between `target` and the reconstruction of `input` (pass the
    /// same tensor twice for the plain reconstruction error, a corrupted `input` and the
    /// clean `target` for the denoising error).
    pub fn reconstruction_mse(&mut self, input: &Tensor<T>, target: &Tensor<T>) -> Result<f64> {
        if input.shape != target.shape {
            return Err(Error::shape(
                "reconstruction_mse",
                format!("{:?}", input.shape),
                format!("{:?}", target.shape),
            ));
        }
        let r = self.reconstruct(input)?;
        Ok(mse(&r.data, &target.data))
    }

    /// New data from the prior: decodes `n` codes drawn from N(0, I) with `seed` (the
    /// generative use of a variational autoencoder).
    pub fn generate(&mut self, n: usize, seed: u64) -> Result<Tensor<T>> {
        let shape = self.code_shape();
        let k: usize = shape.iter().product();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let z: Vec<T> = (0..n * k)
            .map(|_| {
                let v: f64 = StandardNormal.sample(&mut rng);
                T::of(v)
            })
            .collect();
        let mut full = vec![n];
        full.extend(shape);
        self.decode(&Tensor::new(&full, z)?)
    }

    /// Greedy layer-wise pretraining (Hinton & Salakhutdinov 2006; Bengio et al. 2007) of a
    /// stack of Dense layers: encoder layer k and its mirror, decoder layer K-1-k, are trained
    /// as a shallow autoencoder on the codes of the layers below (with their tie, if the
    /// full model ties them), then copied into the full model, which `fit` then fine-tunes.
    /// Returns one History per level.
    pub fn pretrain_layerwise(
        &mut self,
        x: &Tensor<T>,
        loss: Loss,
        optimizer: &Optimizer,
        opts: &FitOptions<T>,
    ) -> Result<Vec<History>> {
        let n = self.model.layers().len();
        let k = self.n_encoder;
        if n != 2 * k || self.model.layers().iter().any(|l| l.class_name() != "Dense") {
            return Err(Error::config(
                "layer-wise pretraining needs an encoder and a mirrored decoder of Dense layers only \
                 (as many decoder as encoder layers)",
            ));
        }
        let ties: Vec<(String, String)> = self.model.ties().to_vec();
        let mut h = x.clone();
        // Validation data, if any, goes through the same trained levels as the training data.
        let mut hv = opts.validation_data.as_ref().map(|(xv, _)| xv.clone());
        let mut histories = Vec::new();
        for level in 0..k {
            let (ei, di) = (level, n - 1 - level);
            let enc_cfg = layer_to_config(self.model.layers()[ei].as_ref());
            let dec_cfg = layer_to_config(self.model.layers()[di].as_ref());
            let (en, dn) = (self.model.layers()[ei].name().to_string(), self.model.layers()[di].name().to_string());
            let mut shallow =
                Sequential::<T>::new().input(&h.shape[1..]).seed(self.model.get_seed() + 1 + level as u64);
            for c in [&enc_cfg, &dec_cfg] {
                shallow.push(layer_from_config::<T>(c["class_name"].as_str().unwrap_or("Dense"), &c["config"])?);
            }
            if ties.iter().any(|(t, s)| *t == dn && *s == en) {
                shallow = shallow.tie(&dn, &en);
            }
            shallow.build()?;
            let mut sub = Autoencoder::from_model(shallow, 1)?;
            sub.compile(loss, optimizer.clone())?;
            let mut level_opts = opts.clone();
            level_opts.validation_data = hv.as_ref().map(|v| (v.clone(), v.clone()));
            histories.push(sub.fit(&h, &level_opts, &mut [])?);
            // Copy the trained pair into the full model.
            for (from_layer, to_layer) in [(0usize, ei), (1usize, di)] {
                let names = sub.model.layers()[from_layer].weight_names();
                let values: Vec<(Vec<usize>, Vec<f64>)> = sub.model.layers()[from_layer]
                    .params()
                    .iter()
                    .map(|p| (p.shape.clone(), p.value.iter().map(|v| v.f64()).collect()))
                    .collect();
                let target = self.model.layers()[to_layer].name().to_string();
                for (name, (shape, vals)) in names.iter().zip(values) {
                    let var = name.rsplit('/').next().unwrap_or("");
                    self.model.set_weight_f64(&format!("{target}/{var}"), &shape, &vals)?;
                }
            }
            h = sub.encode(&h)?;
            if let Some(v) = hv.take() {
                hv = Some(sub.encode(&v)?);
            }
        }
        Ok(histories)
    }
}

/// Mean of squared differences.
pub fn mse<T: Scalar>(a: &[T], b: &[T]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x.f64() - y.f64()).powi(2)).sum::<f64>() / a.len().max(1) as f64
}

/// Pearson correlation of two equally long series (NaN when either is constant).
pub fn pearson(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len().min(b.len()) as f64;
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        sab += (x - ma) * (y - mb);
        saa += (x - ma) * (x - ma);
        sbb += (y - mb) * (y - mb);
    }
    sab / (saa * sbb).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::{Dense, GaussianNoise};

    fn data(n: usize, d: usize) -> Tensor<f64> {
        // Points near a 2-D manifold in d dimensions.
        let mut v = Vec::new();
        for i in 0..n {
            let (a, b) = ((i as f64 * 0.37).sin(), (i as f64 * 0.11).cos());
            for j in 0..d {
                v.push(0.5 + 0.3 * (a * (j as f64 + 1.0)).sin() * b);
            }
        }
        Tensor::new(&[n, d], v).unwrap()
    }

    #[test]
    fn shapes_halves_and_errors() {
        let enc: Vec<Box<dyn Layer<f64>>> = vec![Box::new(GaussianNoise::new(0.1)), Box::new(Dense::new(3))];
        let dec: Vec<Box<dyn Layer<f64>>> = vec![Box::new(Dense::new(6))];
        let mut ae = Autoencoder::new(&[6], enc, dec, 1).unwrap();
        let x = data(10, 6);
        assert_eq!(ae.code_size(), 3);
        let z = ae.encode(&x).unwrap();
        let r = ae.decode(&z).unwrap();
        assert_eq!(r.data, ae.reconstruct(&x).unwrap().data);
        assert!(ae.decode(&x).unwrap_err().to_string().contains("(batch, 3)"));
        let bad = Autoencoder::new(&[6], vec![Box::new(Dense::<f64>::new(3))], vec![Box::new(Dense::<f64>::new(5))], 0);
        assert!(bad.err().unwrap().to_string().contains("reconstruct the input shape [6]"));
    }

    #[test]
    fn layerwise_pretraining_then_fine_tuning_lowers_the_error() {
        let x = data(64, 8);
        let make = || {
            let enc: Vec<Box<dyn Layer<f64>>> =
                vec![Box::new(Dense::new(6).activation("tanh").name("e1")), Box::new(Dense::new(2).name("e2"))];
            let dec: Vec<Box<dyn Layer<f64>>> =
                vec![Box::new(Dense::new(6).activation("tanh").name("d2")), Box::new(Dense::new(8).name("d1"))];
            let mut ae = Autoencoder::new(&[8], enc, dec, 5).unwrap();
            ae.tie("d2", "e2").unwrap();
            ae.tie("d1", "e1").unwrap();
            ae
        };
        let mut ae = make();
        let before = ae.reconstruction_mse(&x, &x).unwrap();
        let opts = FitOptions::default().epochs(60).batch_size(16).verbose(false);
        let hs = ae.pretrain_layerwise(&x, Loss::Mse, &Optimizer::adam(1e-2), &opts).unwrap();
        assert_eq!(hs.len(), 2);
        let pretrained = ae.reconstruction_mse(&x, &x).unwrap();
        assert!(pretrained < before, "{pretrained} vs {before}");
        ae.compile(Loss::Mse, Optimizer::adam(1e-2)).unwrap();
        ae.fit(&x, &opts, &mut []).unwrap();
        let tuned = ae.reconstruction_mse(&x, &x).unwrap();
        assert!(tuned < pretrained, "{tuned} vs {pretrained}");
        // Tied: the decoder kernels are the encoder's, transposed, after training too.
        let w = ae.model.named_params();
        let get = |n: &str| w.iter().find(|(k, _)| k == n).unwrap().1.value.clone();
        let (e1, d1) = (get("e1/kernel"), get("d1/kernel"));
        assert_eq!(e1[6 + 2], d1[2 * 8 + 1]);
        assert_eq!(ae.model.param_count(), (8 * 6 + 6) + (6 * 2 + 2) + 6 + 8);
    }

    fn two_level(seed: u64) -> Autoencoder<f64> {
        let enc: Vec<Box<dyn Layer<f64>>> =
            vec![Box::new(Dense::new(6).activation("tanh").name("e1")), Box::new(Dense::new(2).name("e2"))];
        let dec: Vec<Box<dyn Layer<f64>>> =
            vec![Box::new(Dense::new(6).activation("tanh").name("d2")), Box::new(Dense::new(8).name("d1"))];
        Autoencoder::new(&[8], enc, dec, seed).unwrap()
    }

    #[test]
    fn tying_after_training_keeps_the_trained_weights() {
        let x = data(64, 8);
        let mut ae = two_level(3);
        ae.compile(Loss::Mse, Optimizer::adam(1e-2)).unwrap();
        ae.fit(&x, &FitOptions::default().epochs(5).verbose(false), &mut []).unwrap();
        let get = |ae: &Autoencoder<f64>, n: &str| {
            ae.model.named_params().into_iter().find(|(k, _)| k == n).unwrap().1.value.clone()
        };
        let (e1, e2_bias) = (get(&ae, "e1/kernel"), get(&ae, "e2/bias"));
        ae.tie("d1", "e1").unwrap();
        // Before the fix, tie() rebuilt the model and so re-initialised every weight.
        assert_eq!(get(&ae, "e1/kernel"), e1);
        assert_eq!(get(&ae, "e2/bias"), e2_bias);
        let d1 = get(&ae, "d1/kernel");
        for i in 0..8 {
            for j in 0..6 {
                assert_eq!(d1[j * 8 + i], e1[i * 6 + j]);
            }
        }
    }

    #[test]
    fn layerwise_pretraining_carries_validation_data_through_the_levels() {
        let (x, xv) = (data(64, 8), data(16, 8));
        let mut ae = two_level(5);
        let opts =
            FitOptions::default().epochs(4).batch_size(16).verbose(false).validation_data(xv.clone(), xv.clone());
        // Level 2 trains on 6-value codes: the 8-value validation inputs must be encoded too
        // (they used to reach it as they were, a shape error).
        let hs = ae.pretrain_layerwise(&x, Loss::Mse, &Optimizer::adam(1e-2), &opts).unwrap();
        assert_eq!(hs.len(), 2);
        assert!(hs.iter().all(|h| h.val_loss().len() == 4 && h.val_loss().iter().all(|v| v.is_finite())));
    }

    #[test]
    fn pearson_is_one_for_a_line_and_sign_aware() {
        let a = [1.0, 2.0, 3.0, 4.0];
        assert!((pearson(&a, &[3.0, 5.0, 7.0, 9.0]) - 1.0).abs() < 1e-15);
        assert!((pearson(&a, &[-1.0, -2.0, -3.0, -4.0]) + 1.0).abs() < 1e-15);
    }
}
