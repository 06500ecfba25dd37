//! Dense: `y = f(x · kernel + bias)` on the last axis (2-D or 3-D input, as Keras).
//!
//! Keras `Dense(125, activation="relu")` is `Dense::new(125).activation("relu")`.

use super::{Ctx, KlSparsity, Layer, Param, ParamJob, Regularizer};
use crate::activation::{apply_rows, backprop_rows, backprop_rows_from, Activation};
use crate::error::{Error, Result};
use crate::init::glorot_uniform;
use crate::tensor::{add_col_sums, gemm, gemm_bias, Acc, Scalar, Tensor};
use rand_chacha::ChaCha8Rng;

/// A fully connected layer acting on the last axis.
pub struct Dense<T> {
    pub name: String,
    pub units: usize,
    pub activation: Activation,
    pub use_bias: bool,
    pub kernel_regularizer: Option<Regularizer>,
    pub bias_regularizer: Option<Regularizer>,
    pub activity_regularizer: Option<Regularizer>,
    /// The sparse-autoencoder KL penalty on the activations (memcell's `activity_sparsity`).
    pub activity_sparsity: Option<KlSparsity>,
    in_features: usize,
    kernel: Param<T>,
    bias: Param<T>,
    // Saved by forward for backward.
    x: Tensor<T>,
    z: Vec<T>,
    y: Vec<T>,
    /// Backward scratch (the gradient through the activation), reused between calls.
    dz: Vec<T>,
    activity: f64,
}

impl<T: Scalar> Dense<T> {
    /// A Dense layer with `units` outputs, linear activation and a bias (Keras's defaults).
    pub fn new(units: usize) -> Self {
        Dense {
            name: "dense".into(),
            units,
            activation: Activation::Linear,
            use_bias: true,
            kernel_regularizer: None,
            bias_regularizer: None,
            activity_regularizer: None,
            activity_sparsity: None,
            in_features: 0,
            kernel: Param::new("kernel", &[0, units], Vec::new()),
            bias: Param::new("bias", &[units], Vec::new()),
            x: Tensor::zeros(&[0]),
            z: Vec::new(),
            y: Vec::new(),
            dz: Vec::new(),
            activity: 0.0,
        }
    }
    /// Sets the activation by its Keras name; panics on an unknown name (use
    /// [`Activation::parse`] to handle the error).
    pub fn activation(mut self, name: &str) -> Self {
        self.activation = Activation::parse(name).expect("unknown activation");
        self
    }
    pub fn name(mut self, name: &str) -> Self {
        self.name = name.into();
        self
    }
    pub fn use_bias(mut self, b: bool) -> Self {
        self.use_bias = b;
        self
    }
    /// Adds the sparse-autoencoder KL penalty toward mean activation `rho` with weight `beta`.
    pub fn sparsity(mut self, s: KlSparsity) -> Self {
        self.activity_sparsity = Some(s);
        self
    }
}

impl<T: Scalar> Layer<T> for Dense<T> {
    fn name(&self) -> &str {
        &self.name
    }
    fn set_name(&mut self, name: &str) {
        self.name = name.to_string();
    }
    fn class_name(&self) -> &'static str {
        "Dense"
    }

    fn build(&mut self, input: &[usize], rng: &mut ChaCha8Rng) -> Result<Vec<usize>> {
        let f = *input.last().ok_or_else(|| Error::shape(&self.name, "an input with a feature axis", "a scalar"))?;
        if f == 0 {
            return Err(Error::shape(&self.name, "at least one input feature", "0"));
        }
        self.in_features = f;
        self.kernel = Param::new("kernel", &[f, self.units], glorot_uniform(&[f, self.units], rng));
        self.kernel.regularizer = self.kernel_regularizer;
        if self.use_bias {
            self.bias = Param::new("bias", &[self.units], vec![T::zero(); self.units]);
            self.bias.regularizer = self.bias_regularizer;
        }
        let mut out = input.to_vec();
        *out.last_mut().unwrap() = self.units;
        Ok(out)
    }

    fn forward(&mut self, x: &Tensor<T>, ctx: &mut Ctx<T>) -> Result<Tensor<T>> {
        let f = self.in_features;
        if x.last_dim() != f || x.ndim() < 2 {
            return Err(Error::shape(&self.name, format!("(..., {f})"), format!("{:?}", x.shape)));
        }
        let rows = x.len() / f;
        let u = self.units;
        // z (rows, u) = x (rows, f) · kernel (f, u) + bias
        self.z.resize(rows * u, T::zero());
        if self.use_bias {
            gemm_bias(rows, u, f, &x.data, f, false, &self.kernel.value, u, false, &mut self.z, u, &self.bias.value);
        } else {
            gemm(rows, u, f, &x.data, f, false, &self.kernel.value, u, false, &mut self.z, u, Acc::Overwrite);
        }
        // The activations into the kept buffer (reused between calls: no allocation or zeroing
        // of fresh pages per batch), the output a copy of it.
        self.y.resize(rows * u, T::zero());
        apply_rows(self.activation, &self.z, &mut self.y, u);
        let mut y = Vec::new();
        crate::tensor::copy_shared(&self.y, &mut y);
        self.activity = match &self.activity_regularizer {
            // Keras 3 adds the penalty of the whole output, not divided by the batch size.
            Some(r) => r.penalty(&y),
            None => 0.0,
        };
        if let Some(sp) = &self.activity_sparsity {
            self.activity += sp.penalty(&y, u);
        }
        if ctx.for_backward {
            self.x.shape.clone_from(&x.shape);
            crate::tensor::copy_shared(&x.data, &mut self.x.data);
        }
        let mut shape = x.shape.clone();
        *shape.last_mut().unwrap() = u;
        Ok(Tensor { shape, data: y })
    }

    fn backward(&mut self, dy: &Tensor<T>) -> Tensor<T> {
        self.backward_impl(dy, true, false).expect("asked for the input gradient")
    }

    fn backward_params(&mut self, dy: &Tensor<T>) {
        self.backward_impl(dy, false, false);
    }

    fn backward_split<'a>(
        &'a mut self,
        dy: &Tensor<T>,
        need_dx: bool,
        overwrite: bool,
    ) -> (Tensor<T>, ParamJob<'a, T>) {
        let dx = self.backward_impl(dy, need_dx, overwrite).unwrap_or_else(|| Tensor::zeros(&[0]));
        (dx, Box::new(move || self.params_mut()))
    }

    fn params(&self) -> Vec<&Param<T>> {
        if self.use_bias {
            vec![&self.kernel, &self.bias]
        } else {
            vec![&self.kernel]
        }
    }
    fn params_mut(&mut self) -> Vec<&mut Param<T>> {
        if self.use_bias {
            vec![&mut self.kernel, &mut self.bias]
        } else {
            vec![&mut self.kernel]
        }
    }

    fn config(&self) -> serde_json::Value {
        serde_json::json!({
            "name": self.name,
            "units": self.units,
            "activation": self.activation.name(),
            "use_bias": self.use_bias,
            "kernel_regularizer": self.kernel_regularizer.map(|r| r.to_json()),
            "bias_regularizer": self.bias_regularizer.map(|r| r.to_json()),
            "activity_regularizer": self.activity_regularizer.map(|r| r.to_json()),
            "activity_sparsity": self.activity_sparsity.map(|r| r.to_json()),
        })
    }

    fn activity_penalty(&self) -> f64 {
        self.activity
    }
}

impl<T: Scalar> Dense<T> {
    /// The backward pass; the input gradient only if `want_dx`. With `overwrite`, the
    /// gradients replace what their buffers hold instead of being added to it.
    fn backward_impl(&mut self, dy: &Tensor<T>, want_dx: bool, overwrite: bool) -> Option<Tensor<T>> {
        let (f, u) = (self.in_features, self.units);
        let rows = self.z.len() / u;
        let mut dz = std::mem::take(&mut self.dz); // (rows, u)
        if self.activity_regularizer.is_none() && self.activity_sparsity.is_none() {
            // y = f(z): dz = dy ⊙ f'(z), one pass from dy.
            backprop_rows_from(self.activation, &self.z, &self.y, &dy.data, &mut dz, u);
        } else {
            crate::tensor::copy_shared(&dy.data, &mut dz);
            if let Some(r) = &self.activity_regularizer {
                r.add_grad(&self.y, &mut dz, 1.0);
            }
            if let Some(sp) = &self.activity_sparsity {
                sp.add_grad(&self.y, &mut dz, u);
            }
            // y = f(z)
            backprop_rows(self.activation, &self.z, &self.y, &mut dz, u);
        }
        // z = x · kernel + bias
        let acc = if overwrite { Acc::Overwrite } else { Acc::Add };
        gemm(f, u, rows, &self.x.data, f, true, &dz, u, false, &mut self.kernel.grad, u, acc);
        if self.use_bias {
            if overwrite {
                self.bias.zero_grad();
            }
            add_col_sums(&dz, u, &mut self.bias.grad);
        }
        let dx = want_dx.then(|| {
            let mut dx = Tensor::zeros(&self.x.shape);
            gemm(rows, f, u, &dz, u, false, &self.kernel.value, u, true, &mut dx.data, f, Acc::Overwrite);
            dx
        });
        self.dz = dz;
        dx
    }
}
