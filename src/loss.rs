//! Losses with Keras's reduction (`sum_over_batch_size`: the mean over every output value,
//! which for one output per sample is the mean over the batch).

use crate::error::{Error, Result};
use crate::tensor::{Scalar, Tensor};

/// A training loss.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Loss {
    /// Mean squared error (`"mse"`, `"mean_squared_error"`).
    Mse,
    /// Mean absolute error (`"mae"`, `"mean_absolute_error"`).
    Mae,
    /// Huber loss with threshold `delta` (Keras default 1.0).
    Huber { delta: f64 },
    /// Binary cross-entropy on probabilities, predictions clipped to [1e-7, 1 - 1e-7] as Keras.
    BinaryCrossentropy,
}

const BCE_EPS: f64 = 1e-7;

/// Outputs per batch from which the squared error is summed in 8 interleaved partial sums
/// (a dense autoencoder's 128 x 784): one running sum waits 4 cycles per value, 16 ms of a
/// 280 ms epoch. Shorter batches (every recurrent workload's) keep the one running sum, and
/// so the same bits as before.
const LONG: usize = 1024;

/// The sum of squared errors (and, with `grad`, `2·(p - y)·inv_n`) over a long batch: value
/// i goes to partial sum i mod 8, the partial sums are added pairwise. As accurate as one
/// running sum (more, for long ones), but a different last bit.
#[inline(always)]
fn mse_long_kernel<T: Scalar>(pred: &[T], target: &[T], grad: Option<&mut [T]>, inv_n: T) -> f64 {
    let mut acc = [0.0f64; 8];
    let two = T::of(2.0);
    let (pc, tc) = (pred.chunks_exact(8), target.chunks_exact(8));
    let (pr, tr) = (pc.remainder(), tc.remainder());
    match grad {
        Some(g) => {
            let gc = g.chunks_exact_mut(8);
            for ((p, y), g) in pc.zip(tc).zip(gc) {
                for j in 0..8 {
                    let e = p[j] - y[j];
                    acc[j] += (e * e).f64();
                    g[j] = two * e * inv_n;
                }
            }
            let k = pred.len() - pr.len();
            for (j, (&p, &y)) in pr.iter().zip(tr).enumerate() {
                let e = p - y;
                acc[j] += (e * e).f64();
                g[k + j] = two * e * inv_n;
            }
        }
        None => {
            for (p, y) in pc.zip(tc) {
                for j in 0..8 {
                    let e = p[j] - y[j];
                    acc[j] += (e * e).f64();
                }
            }
            for (j, (&p, &y)) in pr.iter().zip(tr).enumerate() {
                let e = p - y;
                acc[j] += (e * e).f64();
            }
        }
    }
    ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]))
}
// Compiled for AVX-512 and AVX2 too: the baseline build converts and adds two doubles at a
// time (A1: 66 µs of a batch's 128 x 784 values).
crate::simd::dispatch! { fn mse_long<T: Scalar>(pred: &[T], target: &[T], grad: Option<&mut [T]>, inv_n: T) -> f64 => mse_long_kernel }

impl Loss {
    /// Parses a Keras loss name.
    pub fn parse(name: &str) -> Result<Self> {
        Ok(match name {
            "mse" | "mean_squared_error" | "MeanSquaredError" => Loss::Mse,
            "mae" | "mean_absolute_error" | "MeanAbsoluteError" => Loss::Mae,
            "huber" | "huber_loss" | "Huber" => Loss::Huber { delta: 1.0 },
            "binary_crossentropy" | "bce" | "BinaryCrossentropy" => Loss::BinaryCrossentropy,
            other => {
                return Err(Error::unsupported(
                    "loss",
                    format!("'{other}' (known: mse, mae, huber, binary_crossentropy)"),
                ))
            }
        })
    }

    pub fn name(&self) -> &'static str {
        match self {
            Loss::Mse => "mse",
            Loss::Mae => "mae",
            Loss::Huber { .. } => "huber",
            Loss::BinaryCrossentropy => "binary_crossentropy",
        }
    }

    /// The loss (mean over all values) and, if `grad`, its gradient with respect to `pred`.
    pub fn compute<T: Scalar>(
        &self,
        pred: &Tensor<T>,
        target: &Tensor<T>,
        grad: Option<&mut Tensor<T>>,
    ) -> Result<f64> {
        if pred.shape != target.shape {
            return Err(Error::shape(
                "loss",
                format!("targets of the model's output shape {:?}", pred.shape),
                format!("{:?}", target.shape),
            ));
        }
        let n = pred.len().max(1) as f64;
        let mut total = 0.0f64;
        let inv_n = T::of(1.0 / n);
        let mut g = grad;
        if let Some(g) = g.as_deref_mut() {
            g.shape = pred.shape.clone();
            g.data.resize(pred.len(), T::zero());
        }
        if *self == Loss::Mse && pred.len() >= LONG {
            return Ok(mse_long(&pred.data, &target.data, g.map(|g| g.data.as_mut_slice()), inv_n) / n);
        }
        for i in 0..pred.len() {
            let (p, y) = (pred.data[i], target.data[i]);
            let (l, d) = match *self {
                Loss::Mse => {
                    let e = p - y;
                    (e * e, T::of(2.0) * e)
                }
                Loss::Mae => {
                    let e = p - y;
                    let s = if e > T::zero() {
                        T::one()
                    } else if e < T::zero() {
                        -T::one()
                    } else {
                        T::zero()
                    };
                    (e.abs(), s)
                }
                Loss::Huber { delta } => {
                    let e = p - y;
                    let dl = T::of(delta);
                    if e.abs() <= dl {
                        (T::of(0.5) * e * e, e)
                    } else {
                        (dl * (e.abs() - T::of(0.5) * dl), dl * e.signum())
                    }
                }
                Loss::BinaryCrossentropy => {
                    let (lo, hi) = (T::of(BCE_EPS), T::of(1.0 - BCE_EPS));
                    let pc = p.max(lo).min(hi);
                    let l = -(y * pc.ln() + (T::one() - y) * (T::one() - pc).ln());
                    let d = if p < lo || p > hi { T::zero() } else { -(y / pc) + (T::one() - y) / (T::one() - pc) };
                    (l, d)
                }
            };
            total += l.f64();
            if let Some(g) = g.as_deref_mut() {
                g.data[i] = d * inv_n;
            }
        }
        Ok(total / n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gradients_match_central_differences() {
        let pred = Tensor::<f64>::new(&[2, 3], vec![0.2, 0.7, 0.45, 0.9, 0.05, 0.6]).unwrap();
        let target = Tensor::<f64>::new(&[2, 3], vec![0.0, 1.0, 0.5, 1.0, 0.0, 2.9]).unwrap();
        for loss in [Loss::Mse, Loss::Mae, Loss::Huber { delta: 1.0 }, Loss::BinaryCrossentropy] {
            let mut g = Tensor::zeros(&[0]);
            loss.compute(&pred, &target, Some(&mut g)).unwrap();
            for i in 0..pred.len() {
                let h = 1e-6;
                let mut a = pred.clone();
                a.data[i] += h;
                let mut b = pred.clone();
                b.data[i] -= h;
                let num =
                    (loss.compute(&a, &target, None).unwrap() - loss.compute(&b, &target, None).unwrap()) / (2.0 * h);
                assert!((num - g.data[i]).abs() < 1e-6, "{loss:?}[{i}]: {num} vs {}", g.data[i]);
            }
        }
    }

    #[test]
    fn long_batches_sum_in_lanes_to_the_running_sums_value() {
        // Long enough for the 8 partial sums, with a remainder; values of mixed size.
        for n in [LONG, 3 * LONG + 5] {
            let pred =
                Tensor::<f32>::new(&[n, 1], (0..n).map(|i| ((i as f32 * 0.37).sin() * 7.0).exp()).collect()).unwrap();
            let target = Tensor::<f32>::new(&[n, 1], (0..n).map(|i| (i as f32 * 0.11).cos()).collect()).unwrap();
            let (mut running, inv_n) = (0.0f64, 1.0 / n as f32);
            for (p, y) in pred.data.iter().zip(&target.data) {
                running += ((p - y) * (p - y)) as f64;
            }
            let mut g = Tensor::zeros(&[0]);
            let l = Loss::Mse.compute(&pred, &target, Some(&mut g)).unwrap();
            assert!((l - running / n as f64).abs() <= 1e-14 * l, "{n}: {l} vs {}", running / n as f64);
            assert_eq!(l, Loss::Mse.compute(&pred, &target, None).unwrap(), "{n}: with and without the gradient");
            for (i, ((p, y), d)) in pred.data.iter().zip(&target.data).zip(&g.data).enumerate() {
                assert_eq!(d.to_bits(), (2.0 * (p - y) * inv_n).to_bits(), "{n}: gradient {i}");
            }
        }
    }

    #[test]
    fn a_nan_in_a_long_batch_makes_the_loss_nan() {
        // fit turns a non-finite loss into NonFiniteLoss: the lanes must not lose the NaN.
        let n = 3 * LONG + 5;
        for at in [0, 7, n - 1] {
            let mut pred = Tensor::<f32>::zeros(&[n, 1]);
            pred.data[at] = f32::NAN;
            let l = Loss::Mse.compute(&pred, &Tensor::zeros(&[n, 1]), None).unwrap();
            assert!(l.is_nan(), "NaN at {at}: loss {l}");
        }
    }

    #[test]
    fn shape_mismatch_names_both_shapes() {
        let p = Tensor::<f64>::zeros(&[4, 1]);
        let t = Tensor::<f64>::zeros(&[4, 2]);
        let e = Loss::Mse.compute(&p, &t, None).unwrap_err().to_string();
        assert!(e.contains("[4, 1]") && e.contains("[4, 2]"), "{e}");
    }
}
