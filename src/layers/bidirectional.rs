//! Keras `Bidirectional(layer, merge_mode)`: the layer runs forwards and a copy runs
//! backwards (`go_backwards` flipped); with `return_sequences` the backward outputs are
//! re-reversed to line up in time, then the two are merged.

use super::{Ctx, Layer, Param};
use crate::error::{Error, Result};
use crate::tensor::{Scalar, Tensor};
use rand_chacha::ChaCha8Rng;

/// How the two directions' outputs are combined.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MergeMode {
    Concat,
    Sum,
    Mul,
    Ave,
}

impl MergeMode {
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "concat" => Ok(MergeMode::Concat),
            "sum" => Ok(MergeMode::Sum),
            "mul" => Ok(MergeMode::Mul),
            "ave" => Ok(MergeMode::Ave),
            other => {
                Err(Error::unsupported("Bidirectional merge_mode", format!("'{other}' (known: concat, sum, mul, ave)")))
            }
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            MergeMode::Concat => "concat",
            MergeMode::Sum => "sum",
            MergeMode::Mul => "mul",
            MergeMode::Ave => "ave",
        }
    }
}

/// A bidirectional wrapper around two recurrent layers.
pub struct Bidirectional<T> {
    pub name: String,
    pub merge_mode: MergeMode,
    pub forward_layer: Box<dyn Layer<T>>,
    pub backward_layer: Box<dyn Layer<T>>,
    return_sequences: bool,
    inner_config: serde_json::Value,
    yf: Tensor<T>,
    yb: Tensor<T>,
}

impl<T: Scalar> Bidirectional<T> {
    /// `forward_layer` and `backward_layer` must be the same recurrent layer with opposite
    /// `go_backwards`; `return_sequences` is the inner layers' setting.
    pub fn new(
        name: &str,
        forward_layer: Box<dyn Layer<T>>,
        backward_layer: Box<dyn Layer<T>>,
        merge_mode: MergeMode,
        return_sequences: bool,
        inner_config: serde_json::Value,
    ) -> Self {
        Bidirectional {
            name: name.into(),
            merge_mode,
            forward_layer,
            backward_layer,
            return_sequences,
            inner_config,
            yf: Tensor::zeros(&[0]),
            yb: Tensor::zeros(&[0]),
        }
    }
}

fn reverse_time<T: Scalar>(x: &Tensor<T>) -> Tensor<T> {
    let (b, t, f) = (x.shape[0], x.shape[1], x.shape[2]);
    let mut y = Tensor::zeros(&x.shape);
    for bi in 0..b {
        for ti in 0..t {
            y.data[(bi * t + ti) * f..(bi * t + ti + 1) * f]
                .copy_from_slice(&x.data[(bi * t + t - 1 - ti) * f..(bi * t + t - ti) * f]);
        }
    }
    y
}

impl<T: Scalar> Layer<T> for Bidirectional<T> {
    fn name(&self) -> &str {
        &self.name
    }
    fn set_name(&mut self, name: &str) {
        self.name = name.to_string();
    }
    fn class_name(&self) -> &'static str {
        "Bidirectional"
    }
    fn build(&mut self, input: &[usize], rng: &mut ChaCha8Rng) -> Result<Vec<usize>> {
        let mut out = self.forward_layer.build(input, rng)?;
        self.backward_layer.build(input, rng)?;
        if self.merge_mode == MergeMode::Concat {
            *out.last_mut().unwrap() *= 2;
        }
        Ok(out)
    }
    fn forward(&mut self, x: &Tensor<T>, ctx: &mut Ctx<T>) -> Result<Tensor<T>> {
        let mask = ctx.mask.clone();
        let (init_f, init_b) = match ctx.initial_state.take() {
            Some(mut s) => {
                if s.len() % 2 != 0 {
                    return Err(Error::shape(
                        format!("{} initial_state", self.name),
                        "an even number of states (forward then backward)",
                        s.len().to_string(),
                    ));
                }
                let b = s.split_off(s.len() / 2);
                (Some(s), Some(b))
            }
            None => (None, None),
        };
        ctx.initial_state = init_f;
        let yf = self.forward_layer.forward(x, ctx)?;
        ctx.mask = mask;
        ctx.initial_state = init_b;
        let mut yb = self.backward_layer.forward(x, ctx)?;
        if self.return_sequences {
            yb = reverse_time(&yb);
        }
        let y = match self.merge_mode {
            MergeMode::Concat => {
                let (hf, hb) = (yf.last_dim(), yb.last_dim());
                let rows = yf.len() / hf;
                let mut shape = yf.shape.clone();
                *shape.last_mut().unwrap() = hf + hb;
                let mut data = Vec::with_capacity(rows * (hf + hb));
                for r in 0..rows {
                    data.extend_from_slice(&yf.data[r * hf..(r + 1) * hf]);
                    data.extend_from_slice(&yb.data[r * hb..(r + 1) * hb]);
                }
                Tensor { shape, data }
            }
            mode => {
                let mut y = yf.clone();
                for (a, &v) in y.data.iter_mut().zip(&yb.data) {
                    *a = match mode {
                        MergeMode::Sum => *a + v,
                        MergeMode::Mul => *a * v,
                        _ => (*a + v) * T::of(0.5),
                    };
                }
                y
            }
        };
        self.yf = yf;
        self.yb = yb;
        Ok(y)
    }
    fn backward(&mut self, dy: &Tensor<T>) -> Tensor<T> {
        let (dyf, dyb) = match self.merge_mode {
            MergeMode::Concat => {
                let (hf, hb) = (self.yf.last_dim(), self.yb.last_dim());
                let rows = dy.len() / (hf + hb);
                let mut f = Tensor::zeros(&self.yf.shape);
                let mut b = Tensor::zeros(&self.yb.shape);
                for r in 0..rows {
                    f.data[r * hf..(r + 1) * hf].copy_from_slice(&dy.data[r * (hf + hb)..r * (hf + hb) + hf]);
                    b.data[r * hb..(r + 1) * hb].copy_from_slice(&dy.data[r * (hf + hb) + hf..(r + 1) * (hf + hb)]);
                }
                (f, b)
            }
            MergeMode::Sum => (dy.clone(), dy.clone()),
            MergeMode::Ave => {
                let mut d = dy.clone();
                d.data.iter_mut().for_each(|v| *v *= T::of(0.5));
                (d.clone(), d)
            }
            MergeMode::Mul => {
                let mut f = dy.clone();
                let mut b = dy.clone();
                for ((fv, bv), (&yf, &yb)) in
                    f.data.iter_mut().zip(b.data.iter_mut()).zip(self.yf.data.iter().zip(&self.yb.data))
                {
                    *fv *= yb;
                    *bv *= yf;
                }
                (f, b)
            }
        };
        let dyb = if self.return_sequences { reverse_time(&dyb) } else { dyb };
        let mut dx = self.forward_layer.backward(&dyf);
        let dxb = self.backward_layer.backward(&dyb);
        for (a, &v) in dx.data.iter_mut().zip(&dxb.data) {
            *a += v;
        }
        dx
    }
    fn params(&self) -> Vec<&Param<T>> {
        let mut v = self.forward_layer.params();
        v.extend(self.backward_layer.params());
        v
    }
    fn params_mut(&mut self) -> Vec<&mut Param<T>> {
        let mut v = self.forward_layer.params_mut();
        v.extend(self.backward_layer.params_mut());
        v
    }
    fn weight_names(&self) -> Vec<String> {
        let mut v: Vec<String> =
            self.forward_layer.weight_names().into_iter().map(|n| format!("{}/{n}", self.name)).collect();
        v.extend(self.backward_layer.weight_names().into_iter().map(|n| format!("{}/{n}", self.name)));
        v
    }
    fn config(&self) -> serde_json::Value {
        serde_json::json!({
            "name": self.name,
            "merge_mode": self.merge_mode.name(),
            "layer": {"class_name": self.forward_layer.class_name(), "config": self.inner_config},
        })
    }
    fn states(&self) -> Vec<Tensor<T>> {
        let mut s = self.forward_layer.states();
        s.extend(self.backward_layer.states());
        s
    }
    fn returns_state(&self) -> bool {
        self.forward_layer.returns_state()
    }
    fn initial_state_grads(&self) -> Vec<Tensor<T>> {
        let mut s = self.forward_layer.initial_state_grads();
        s.extend(self.backward_layer.initial_state_grads());
        s
    }
    fn reset_state(&mut self) {
        self.forward_layer.reset_state();
        self.backward_layer.reset_state();
    }
    fn activity_penalty(&self) -> f64 {
        self.forward_layer.activity_penalty() + self.backward_layer.activity_penalty()
    }
}

impl<T: Scalar> Bidirectional<T> {
    /// Weight names are `<forward layer name>/<variable>` and `<backward layer name>/<variable>`.
    pub fn sublayer_names(&self) -> (String, String) {
        (self.forward_layer.name().to_string(), self.backward_layer.name().to_string())
    }
}
