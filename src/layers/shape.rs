//! Layers without weights: Masking, Dropout, RepeatVector, Flatten, Reshape.

use super::{check_rate, Ctx, Layer, Mask};
use crate::error::{Error, Result};
use crate::tensor::{Scalar, Tensor};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// Keras `Masking(mask_value)`: a time step whose features all equal `mask_value` is masked
/// for the layers below, and its values are set to zero.
pub struct Masking {
    pub name: String,
    pub mask_value: f64,
    keep: Vec<bool>,
    f: usize,
}

impl Masking {
    pub fn new(mask_value: f64) -> Self {
        Masking { name: "masking".into(), mask_value, keep: Vec::new(), f: 0 }
    }
}

impl<T: Scalar> Layer<T> for Masking {
    fn name(&self) -> &str {
        &self.name
    }
    fn set_name(&mut self, name: &str) {
        self.name = name.to_string();
    }
    fn class_name(&self) -> &'static str {
        "Masking"
    }
    fn build(&mut self, input: &[usize], _rng: &mut ChaCha8Rng) -> Result<Vec<usize>> {
        if input.len() != 2 {
            return Err(Error::shape(
                &self.name,
                "3-D input (batch, time, features)",
                format!("{} axes", input.len() + 1),
            ));
        }
        self.f = input[1];
        Ok(input.to_vec())
    }
    fn forward(&mut self, x: &Tensor<T>, ctx: &mut Ctx<T>) -> Result<Tensor<T>> {
        if x.ndim() != 3 {
            return Err(Error::shape(&self.name, "(batch, time, features)", format!("{:?}", x.shape)));
        }
        let (b, t, f) = (x.shape[0], x.shape[1], x.shape[2]);
        let mv = T::of(self.mask_value);
        self.keep = x.data.chunks_exact(f).map(|row| row.iter().any(|&v| v != mv)).collect();
        let mut y = x.clone();
        for (row, &k) in y.data.chunks_exact_mut(f).zip(&self.keep) {
            if !k {
                row.fill(T::zero());
            }
        }
        // Keras combines nothing here: the Masking layer's mask replaces any incoming one.
        ctx.mask = Some(Mask { batch: b, time: t, keep: self.keep.clone() });
        Ok(y)
    }
    fn backward(&mut self, dy: &Tensor<T>) -> Tensor<T> {
        let mut dx = dy.clone();
        let f = dy.last_dim();
        for (row, &k) in dx.data.chunks_exact_mut(f).zip(&self.keep) {
            if !k {
                row.fill(T::zero());
            }
        }
        dx
    }
    fn config(&self) -> serde_json::Value {
        serde_json::json!({"name": self.name, "mask_value": self.mask_value})
    }
}

/// Keras `Dropout(rate)`: in training, zeroes each value with probability `rate` and scales
/// the rest by 1/(1 - rate); the identity at inference.
pub struct Dropout<T> {
    pub name: String,
    pub rate: f64,
    scale: Option<Vec<T>>,
}

impl<T: Scalar> Dropout<T> {
    pub fn new(rate: f64) -> Self {
        Dropout { name: "dropout".into(), rate, scale: None }
    }
}

impl<T: Scalar> Layer<T> for Dropout<T> {
    fn name(&self) -> &str {
        &self.name
    }
    fn set_name(&mut self, name: &str) {
        self.name = name.to_string();
    }
    fn class_name(&self) -> &'static str {
        "Dropout"
    }
    fn build(&mut self, input: &[usize], _rng: &mut ChaCha8Rng) -> Result<Vec<usize>> {
        check_rate(&self.name, "rate", self.rate)?;
        Ok(input.to_vec())
    }
    fn forward(&mut self, x: &Tensor<T>, ctx: &mut Ctx<T>) -> Result<Tensor<T>> {
        if !ctx.training || self.rate == 0.0 {
            self.scale = None;
            return Ok(x.clone());
        }
        let keep = T::of(1.0 / (1.0 - self.rate));
        let m: Vec<T> = (0..x.len()).map(|_| if ctx.rng.gen::<f64>() < self.rate { T::zero() } else { keep }).collect();
        let mut y = x.clone();
        for (v, &s) in y.data.iter_mut().zip(&m) {
            *v *= s;
        }
        self.scale = Some(m);
        Ok(y)
    }
    fn backward(&mut self, dy: &Tensor<T>) -> Tensor<T> {
        let mut dx = dy.clone();
        if let Some(m) = &self.scale {
            for (v, &s) in dx.data.iter_mut().zip(m) {
                *v *= s;
            }
        }
        dx
    }
    fn config(&self) -> serde_json::Value {
        serde_json::json!({"name": self.name, "rate": self.rate})
    }
}

/// Keras `RepeatVector(n)`: (batch, features) -> (batch, n, features).
pub struct RepeatVector {
    pub name: String,
    pub n: usize,
}

impl RepeatVector {
    pub fn new(n: usize) -> Self {
        RepeatVector { name: "repeat_vector".into(), n }
    }
}

impl<T: Scalar> Layer<T> for RepeatVector {
    fn name(&self) -> &str {
        &self.name
    }
    fn set_name(&mut self, name: &str) {
        self.name = name.to_string();
    }
    fn class_name(&self) -> &'static str {
        "RepeatVector"
    }
    fn build(&mut self, input: &[usize], _rng: &mut ChaCha8Rng) -> Result<Vec<usize>> {
        if input.len() != 1 {
            return Err(Error::shape(&self.name, "2-D input (batch, features)", format!("{} axes", input.len() + 1)));
        }
        if self.n == 0 {
            return Err(Error::config(format!("layer '{}': n must be a positive integer, got 0", self.name)));
        }
        Ok(vec![self.n, input[0]])
    }
    fn forward(&mut self, x: &Tensor<T>, ctx: &mut Ctx<T>) -> Result<Tensor<T>> {
        if x.ndim() != 2 {
            return Err(Error::shape(&self.name, "(batch, features)", format!("{:?}", x.shape)));
        }
        let (b, f) = (x.shape[0], x.shape[1]);
        let mut y = Tensor::zeros(&[b, self.n, f]);
        for bi in 0..b {
            for t in 0..self.n {
                y.data[(bi * self.n + t) * f..(bi * self.n + t + 1) * f].copy_from_slice(&x.data[bi * f..(bi + 1) * f]);
            }
        }
        ctx.mask = None;
        Ok(y)
    }
    fn backward(&mut self, dy: &Tensor<T>) -> Tensor<T> {
        let (b, n, f) = (dy.shape[0], dy.shape[1], dy.shape[2]);
        let mut dx = Tensor::zeros(&[b, f]);
        for bi in 0..b {
            for t in 0..n {
                for j in 0..f {
                    dx.data[bi * f + j] += dy.data[(bi * n + t) * f + j];
                }
            }
        }
        dx
    }
    fn config(&self) -> serde_json::Value {
        serde_json::json!({"name": self.name, "n": self.n})
    }
}

/// Keras `Flatten`: (batch, ...) -> (batch, product of the rest).
pub struct Flatten {
    pub name: String,
    in_shape: Vec<usize>,
}

impl Flatten {
    pub fn new() -> Self {
        Flatten { name: "flatten".into(), in_shape: Vec::new() }
    }
}

impl Default for Flatten {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Scalar> Layer<T> for Flatten {
    fn name(&self) -> &str {
        &self.name
    }
    fn set_name(&mut self, name: &str) {
        self.name = name.to_string();
    }
    fn class_name(&self) -> &'static str {
        "Flatten"
    }
    fn build(&mut self, input: &[usize], _rng: &mut ChaCha8Rng) -> Result<Vec<usize>> {
        Ok(vec![input.iter().product()])
    }
    fn forward(&mut self, x: &Tensor<T>, ctx: &mut Ctx<T>) -> Result<Tensor<T>> {
        self.in_shape = x.shape.clone();
        ctx.mask = None;
        let b = x.batch();
        Ok(Tensor { shape: vec![b, x.len() / b.max(1)], data: x.data.clone() })
    }
    fn backward(&mut self, dy: &Tensor<T>) -> Tensor<T> {
        Tensor { shape: self.in_shape.clone(), data: dy.data.clone() }
    }
    fn config(&self) -> serde_json::Value {
        serde_json::json!({"name": self.name})
    }
}

/// Keras `Reshape(target_shape)` (without the batch axis; one entry may be -1).
pub struct Reshape {
    pub name: String,
    pub target_shape: Vec<i64>,
    out: Vec<usize>,
    in_shape: Vec<usize>,
}

impl Reshape {
    pub fn new(target_shape: &[i64]) -> Self {
        Reshape { name: "reshape".into(), target_shape: target_shape.to_vec(), out: Vec::new(), in_shape: Vec::new() }
    }
}

impl<T: Scalar> Layer<T> for Reshape {
    fn name(&self) -> &str {
        &self.name
    }
    fn set_name(&mut self, name: &str) {
        self.name = name.to_string();
    }
    fn class_name(&self) -> &'static str {
        "Reshape"
    }
    fn build(&mut self, input: &[usize], _rng: &mut ChaCha8Rng) -> Result<Vec<usize>> {
        let n: usize = input.iter().product();
        let unknown = self.target_shape.iter().filter(|&&d| d == -1).count();
        let known: i64 = self.target_shape.iter().filter(|&&d| d != -1).product();
        let bad = || {
            Error::config(format!(
                "layer '{}': cannot reshape {input:?} ({n} values) to {:?}",
                self.name, self.target_shape
            ))
        };
        if unknown > 1 || self.target_shape.iter().any(|&d| d == 0 || d < -1) || known <= 0 {
            return Err(bad());
        }
        let out: Vec<usize> = if unknown == 1 {
            if n as i64 % known != 0 {
                return Err(bad());
            }
            self.target_shape.iter().map(|&d| if d == -1 { (n as i64 / known) as usize } else { d as usize }).collect()
        } else {
            if known as usize != n {
                return Err(bad());
            }
            self.target_shape.iter().map(|&d| d as usize).collect()
        };
        self.out = out.clone();
        Ok(out)
    }
    fn forward(&mut self, x: &Tensor<T>, ctx: &mut Ctx<T>) -> Result<Tensor<T>> {
        self.in_shape = x.shape.clone();
        ctx.mask = None;
        let mut shape = vec![x.batch()];
        shape.extend_from_slice(&self.out);
        Tensor::new(&shape, x.data.clone())
    }
    fn backward(&mut self, dy: &Tensor<T>) -> Tensor<T> {
        Tensor { shape: self.in_shape.clone(), data: dy.data.clone() }
    }
    fn config(&self) -> serde_json::Value {
        serde_json::json!({"name": self.name, "target_shape": self.target_shape})
    }
}
