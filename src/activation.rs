//! Keras's element-wise activations, each with its derivative.
//!
//! Names follow `keras.activations`; `None`/`"linear"` is the identity. `softmax` is accepted by
//! [`crate::layers::Dense`] only (it acts on the last axis, not element-wise).

use crate::error::{Error, Result};
use crate::tensor::Scalar;
use std::mem::MaybeUninit;

/// An element-wise activation function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    Linear,
    Tanh,
    Sigmoid,
    /// Keras 3: `relu6(x + 3) / 6`.
    HardSigmoid,
    Relu,
    Relu6,
    /// `negative_slope` 0.2 (Keras's default).
    LeakyRelu,
    /// alpha 1.
    Elu,
    Selu,
    Softplus,
    Softsign,
    /// `x * sigmoid(x)` (Keras also calls it `swish`).
    Silu,
    /// `x * hard_sigmoid(x)`.
    HardSilu,
    /// Exact GELU, `0.5 x (1 + erf(x / sqrt 2))` (Keras's default, `approximate=False`).
    Gelu,
    Exponential,
    /// `x * tanh(softplus(x))`.
    Mish,
    /// `max(0, x) + min(0, exp(x) - 1)` (alpha 1).
    Celu,
    /// `clip(x, -1, 1)`.
    HardTanh,
    /// `x` where `|x| > 0.5`, else 0.
    HardShrink,
    /// `x - 0.5 sign(x)` where `|x| > 0.5`, else 0.
    SoftShrink,
    /// `x - tanh(x)`.
    TanhShrink,
    /// `-softplus(-x)`.
    LogSigmoid,
    /// 0 below -1, `(x + 1)^2 / 4` on (-1, 1), `x` above 1.
    SparsePlus,
    /// 0 below -1, `(x + 1) / 2` on (-1, 1), 1 above 1.
    SparseSigmoid,
    /// `(x + sqrt(x^2 + 4)) / 2` (b = 4).
    Squareplus,
    /// Only for Dense: normalised exponentials over the last axis.
    Softmax,
}

/// TensorFlow rounds these constants to float32 even in float64 graphs; so do we, to match
/// Keras to the last bit.
const LEAKY_SLOPE: f64 = 0.2f32 as f64;
const GELU_INV_SQRT2: f64 = std::f32::consts::FRAC_1_SQRT_2 as f64;

const SELU_ALPHA: f64 = 1.673_263_242_354_377_3;
const SELU_SCALE: f64 = 1.050_700_987_355_480_5;

impl Activation {
    /// Parses a Keras activation name (or JSON `null`, which is linear).
    pub fn parse(name: &str) -> Result<Self> {
        Ok(match name {
            "linear" | "None" | "none" | "" => Activation::Linear,
            "tanh" => Activation::Tanh,
            "sigmoid" => Activation::Sigmoid,
            "hard_sigmoid" => Activation::HardSigmoid,
            "relu" => Activation::Relu,
            "relu6" => Activation::Relu6,
            "leaky_relu" => Activation::LeakyRelu,
            "elu" => Activation::Elu,
            "selu" => Activation::Selu,
            "softplus" => Activation::Softplus,
            "softsign" => Activation::Softsign,
            "silu" | "swish" => Activation::Silu,
            "hard_silu" | "hard_swish" => Activation::HardSilu,
            "gelu" => Activation::Gelu,
            "exponential" => Activation::Exponential,
            "mish" => Activation::Mish,
            "softmax" => Activation::Softmax,
            "celu" => Activation::Celu,
            "hard_tanh" => Activation::HardTanh,
            "hard_shrink" => Activation::HardShrink,
            "soft_shrink" => Activation::SoftShrink,
            "tanh_shrink" => Activation::TanhShrink,
            "log_sigmoid" => Activation::LogSigmoid,
            "sparse_plus" => Activation::SparsePlus,
            "sparse_sigmoid" => Activation::SparseSigmoid,
            "squareplus" => Activation::Squareplus,
            other => {
                return Err(Error::unsupported(
                    "activation",
                    format!(
                        "'{other}' (known: linear, tanh, sigmoid, hard_sigmoid, relu, relu6, leaky_relu, elu, selu, \
                         softplus, softsign, silu/swish, hard_silu, gelu, exponential, mish, celu, hard_tanh, hard_shrink, \
                         soft_shrink, tanh_shrink, log_sigmoid, sparse_plus, sparse_sigmoid, squareplus, softmax)"
                    ),
                ))
            }
        })
    }

    /// The Keras name.
    pub fn name(self) -> &'static str {
        match self {
            Activation::Linear => "linear",
            Activation::Tanh => "tanh",
            Activation::Sigmoid => "sigmoid",
            Activation::HardSigmoid => "hard_sigmoid",
            Activation::Relu => "relu",
            Activation::Relu6 => "relu6",
            Activation::LeakyRelu => "leaky_relu",
            Activation::Elu => "elu",
            Activation::Selu => "selu",
            Activation::Softplus => "softplus",
            Activation::Softsign => "softsign",
            Activation::Silu => "silu",
            Activation::HardSilu => "hard_silu",
            Activation::Gelu => "gelu",
            Activation::Exponential => "exponential",
            Activation::Mish => "mish",
            Activation::Softmax => "softmax",
            Activation::Celu => "celu",
            Activation::HardTanh => "hard_tanh",
            Activation::HardShrink => "hard_shrink",
            Activation::SoftShrink => "soft_shrink",
            Activation::TanhShrink => "tanh_shrink",
            Activation::LogSigmoid => "log_sigmoid",
            Activation::SparsePlus => "sparse_plus",
            Activation::SparseSigmoid => "sparse_sigmoid",
            Activation::Squareplus => "squareplus",
        }
    }

    /// True for every activation except softmax.
    pub fn is_elementwise(self) -> bool {
        self != Activation::Softmax
    }

    /// `y = f(z)`.
    #[inline(always)]
    pub fn f<T: Scalar>(self, z: T) -> T {
        let one = T::one();
        let zero = T::zero();
        match self {
            Activation::Linear | Activation::Softmax => z,
            Activation::Tanh => z.tanh_act(),
            Activation::Sigmoid => z.sigmoid_act(),
            Activation::HardSigmoid => hard_sigmoid(z),
            Activation::Relu => z.max(zero),
            Activation::Relu6 => z.max(zero).min(T::of(6.0)),
            Activation::LeakyRelu => {
                if z > zero {
                    z
                } else {
                    T::of(LEAKY_SLOPE) * z
                }
            }
            Activation::Elu | Activation::Celu => {
                if z > zero {
                    z
                } else {
                    z.exp_m1()
                }
            }
            Activation::Selu => {
                if z > zero {
                    T::of(SELU_SCALE) * z
                } else {
                    T::of(SELU_SCALE * SELU_ALPHA) * z.exp_m1()
                }
            }
            Activation::Softplus => softplus(z),
            Activation::Softsign => z / (one + z.abs()),
            Activation::Silu => z * sigmoid(z),
            Activation::HardSilu => z * hard_sigmoid(z),
            Activation::Gelu => T::of(0.5) * z * (one + erf(z * T::of(GELU_INV_SQRT2))),
            Activation::Exponential => z.exp(),
            Activation::Mish => z * softplus(z).tanh(),
            Activation::HardTanh => z.max(-one).min(one),
            Activation::HardShrink => {
                if z.abs() > T::of(0.5) {
                    z
                } else {
                    zero
                }
            }
            Activation::SoftShrink => {
                if z > T::of(0.5) {
                    z - T::of(0.5)
                } else if z < T::of(-0.5) {
                    z + T::of(0.5)
                } else {
                    zero
                }
            }
            Activation::TanhShrink => z - z.tanh(),
            Activation::LogSigmoid => -softplus(-z),
            Activation::SparsePlus => {
                if z <= -one {
                    zero
                } else if z >= one {
                    z
                } else {
                    (z + one) * (z + one) * T::of(0.25)
                }
            }
            Activation::SparseSigmoid => {
                if z <= -one {
                    zero
                } else if z >= one {
                    one
                } else {
                    (z + one) * T::of(0.5)
                }
            }
            Activation::Squareplus => (z + (z * z + T::of(4.0)).sqrt()) * T::of(0.5),
        }
    }

    /// `dy/dz`, given both the input `z` and the output `y = f(z)` (each function uses the
    /// cheaper of the two).
    #[inline(always)]
    pub fn df<T: Scalar>(self, z: T, y: T) -> T {
        let one = T::one();
        let zero = T::zero();
        match self {
            Activation::Linear | Activation::Softmax => one,
            Activation::Tanh => one - y * y,
            Activation::Sigmoid => y * (one - y),
            Activation::HardSigmoid => {
                if z > T::of(-3.0) && z < T::of(3.0) {
                    T::of(1.0 / 6.0)
                } else {
                    zero
                }
            }
            Activation::Relu => {
                if z > zero {
                    one
                } else {
                    zero
                }
            }
            Activation::Relu6 => {
                if z > zero && z < T::of(6.0) {
                    one
                } else {
                    zero
                }
            }
            Activation::LeakyRelu => {
                if z > zero {
                    one
                } else {
                    T::of(LEAKY_SLOPE)
                }
            }
            Activation::Elu | Activation::Celu => {
                if z > zero {
                    one
                } else {
                    y + one
                }
            }
            Activation::Selu => {
                if z > zero {
                    T::of(SELU_SCALE)
                } else {
                    y + T::of(SELU_SCALE * SELU_ALPHA)
                }
            }
            Activation::Softplus => sigmoid(z),
            Activation::Softsign => {
                let d = one + z.abs();
                one / (d * d)
            }
            Activation::Silu => {
                let s = sigmoid(z);
                s * (one + z * (one - s))
            }
            Activation::HardSilu => {
                let h = hard_sigmoid(z);
                let dh = if z > T::of(-3.0) && z < T::of(3.0) { T::of(1.0 / 6.0) } else { zero };
                h + z * dh
            }
            Activation::Gelu => {
                let c = T::of(GELU_INV_SQRT2);
                let cdf = T::of(0.5) * (one + erf(z * c));
                // d erf(cz)/dz = 2c/sqrt(pi) exp(-(cz)^2)
                let pdf = (-(z * c) * (z * c)).exp() * c * T::of(std::f64::consts::FRAC_2_SQRT_PI) * T::of(0.5);
                cdf + z * pdf
            }
            Activation::Exponential => y,
            Activation::Mish => {
                let sp = softplus(z);
                let t = sp.tanh();
                t + z * (one - t * t) * sigmoid(z)
            }
            Activation::HardTanh => {
                if z > -one && z < one {
                    one
                } else {
                    zero
                }
            }
            Activation::HardShrink | Activation::SoftShrink => {
                if z.abs() > T::of(0.5) {
                    one
                } else {
                    zero
                }
            }
            Activation::TanhShrink => {
                let t = z.tanh();
                t * t
            }
            Activation::LogSigmoid => sigmoid(-z),
            Activation::SparsePlus => {
                if z <= -one {
                    zero
                } else if z >= one {
                    one
                } else {
                    (z + one) * T::of(0.5)
                }
            }
            Activation::SparseSigmoid => {
                if z <= -one || z >= one {
                    zero
                } else {
                    T::of(0.5)
                }
            }
            Activation::Squareplus => (one + z / (z * z + T::of(4.0)).sqrt()) * T::of(0.5),
        }
    }
}

/// The logistic sigmoid (see [`Scalar::sigmoid_act`]).
#[inline(always)]
pub fn sigmoid<T: Scalar>(z: T) -> T {
    z.sigmoid_act()
}

/// An activation as the fused kernels see it: [`Activation`] itself (chosen at run time, a
/// `match` per value), or the zero-sized [`TanhFn`] and [`SigmoidFn`], for which a kernel
/// monomorphised on them has no branch left and vectorises. Both give identical values.
pub trait Act: Copy + Send + Sync {
    fn f<T: Scalar>(self, z: T) -> T;
    /// `dy/dz` from `z` and `y = f(z)`.
    fn df<T: Scalar>(self, z: T, y: T) -> T;
}

impl Act for Activation {
    #[inline(always)]
    fn f<T: Scalar>(self, z: T) -> T {
        Activation::f(self, z)
    }
    #[inline(always)]
    fn df<T: Scalar>(self, z: T, y: T) -> T {
        Activation::df(self, z, y)
    }
}

/// `tanh`, statically.
#[derive(Clone, Copy, Debug)]
pub struct TanhFn;
impl Act for TanhFn {
    #[inline(always)]
    fn f<T: Scalar>(self, z: T) -> T {
        z.tanh_act()
    }
    #[inline(always)]
    fn df<T: Scalar>(self, _z: T, y: T) -> T {
        T::one() - y * y
    }
}

/// The logistic sigmoid, statically.
#[derive(Clone, Copy, Debug)]
pub struct SigmoidFn;
impl Act for SigmoidFn {
    #[inline(always)]
    fn f<T: Scalar>(self, z: T) -> T {
        z.sigmoid_act()
    }
    #[inline(always)]
    fn df<T: Scalar>(self, _z: T, y: T) -> T {
        y * (T::one() - y)
    }
}

/// ReLU, statically (the same values as [`Activation::Relu`]).
#[derive(Clone, Copy, Debug)]
pub struct ReluFn;
impl Act for ReluFn {
    #[inline(always)]
    fn f<T: Scalar>(self, z: T) -> T {
        Activation::Relu.f(z)
    }
    #[inline(always)]
    fn df<T: Scalar>(self, z: T, y: T) -> T {
        Activation::Relu.df(z, y)
    }
}

#[inline(always)]
fn map_kernel<T: Scalar, A: Act>(a: A, z: &[T], y: &mut [T]) {
    for (yv, &zv) in y.iter_mut().zip(z) {
        *yv = a.f(zv);
    }
}
crate::simd::dispatch! { fn map_fast<T: Scalar, A: Act>(a: A, z: &[T], y: &mut [T]) => map_kernel }

#[inline(always)]
fn dmap_kernel<T: Scalar, A: Act>(a: A, z: &[T], y: &[T], d: &mut [T]) {
    for ((dv, &zv), &yv) in d.iter_mut().zip(z).zip(y) {
        *dv *= a.df(zv, yv);
    }
}
crate::simd::dispatch! { fn dmap_fast<T: Scalar, A: Act>(a: A, z: &[T], y: &[T], d: &mut [T]) => dmap_kernel }

/// `d = dy ⊙ f'(z)`: [`dmap_kernel`] from a separate incoming gradient (one pass, no copy).
#[inline(always)]
fn dmap_from_kernel<T: Scalar, A: Act>(a: A, z: &[T], y: &[T], dy: &[T], d: &mut [MaybeUninit<T>]) {
    for (((dv, &gv), &zv), &yv) in d.iter_mut().zip(dy).zip(z).zip(y) {
        dv.write(gv * a.df(zv, yv));
    }
}
crate::simd::dispatch! { fn dmap_from_fast<T: Scalar, A: Act>(a: A, z: &[T], y: &[T], dy: &[T],
d: &mut [MaybeUninit<T>]) => dmap_from_kernel }

#[inline(always)]
fn hard_sigmoid<T: Scalar>(z: T) -> T {
    ((z + T::of(3.0)).max(T::zero()).min(T::of(6.0))) / T::of(6.0)
}

/// `log(1 + exp(z))`, stable for large |z|.
#[inline(always)]
fn softplus<T: Scalar>(z: T) -> T {
    z.max(T::zero()) + (-z.abs()).exp().ln_1p()
}

#[inline(always)]
fn erf<T: Scalar>(z: T) -> T {
    T::of(libm::erf(z.f64()))
}

/// Applies `f` to `z` in place over the last axis of width `cols` (softmax normalises rows).
pub fn apply_rows<T: Scalar>(act: Activation, z: &[T], y: &mut [T], cols: usize) {
    if act == Activation::Softmax {
        for (zr, yr) in z.chunks_exact(cols).zip(y.chunks_exact_mut(cols)) {
            let m = zr.iter().copied().fold(T::neg_infinity(), T::max);
            let mut s = T::zero();
            for (yv, &zv) in yr.iter_mut().zip(zr) {
                *yv = (zv - m).exp();
                s += *yv;
            }
            for yv in yr.iter_mut() {
                *yv = *yv / s;
            }
        }
    } else {
        let n = z.len().min(y.len());
        crate::tensor::share_parts(&mut y[..n], 64, |start, y| {
            let z = &z[start..start + y.len()];
            match act {
                Activation::Tanh => map_fast(TanhFn, z, y),
                Activation::Sigmoid => map_fast(SigmoidFn, z, y),
                Activation::Relu => map_fast(ReluFn, z, y),
                other => map_kernel(other, z, y),
            }
        });
    }
}

/// Turns `dy` into `dz` in place, given the saved `z` and `y` (rows of width `cols`).
pub fn backprop_rows<T: Scalar>(act: Activation, z: &[T], y: &[T], d: &mut [T], cols: usize) {
    match act {
        Activation::Linear => {}
        Activation::Softmax => {
            for (yr, dr) in y.chunks_exact(cols).zip(d.chunks_exact_mut(cols)) {
                let dot: T = yr.iter().zip(dr.iter()).map(|(&a, &b)| a * b).sum();
                for (dv, &yv) in dr.iter_mut().zip(yr) {
                    *dv = yv * (*dv - dot);
                }
            }
        }
        _ => {
            let n = d.len().min(z.len()).min(y.len());
            crate::tensor::share_parts(&mut d[..n], 64, |start, d| {
                let (z, y) = (&z[start..start + d.len()], &y[start..start + d.len()]);
                match act {
                    Activation::Tanh => dmap_fast(TanhFn, z, y, d),
                    Activation::Sigmoid => dmap_fast(SigmoidFn, z, y, d),
                    Activation::Relu => dmap_fast(ReluFn, z, y, d),
                    other => dmap_kernel(other, z, y, d),
                }
            });
        }
    }
}

/// [`backprop_rows`] from `dy` into `d` (resized; its allocation reused): `d = dy ⊙ f'(z)` in
/// one pass over both, the same values as copying `dy` into `d` and calling [`backprop_rows`].
pub fn backprop_rows_from<T: Scalar>(act: Activation, z: &[T], y: &[T], dy: &[T], d: &mut Vec<T>, cols: usize) {
    if act == Activation::Linear || act == Activation::Softmax {
        crate::tensor::copy_shared(dy, d);
        backprop_rows(act, z, y, d, cols);
        return;
    }
    let n = dy.len();
    assert!(z.len() >= n && y.len() >= n, "backprop_rows_from: {} values of z, {} of y for {n}", z.len(), y.len());
    d.clear();
    d.reserve(n);
    crate::tensor::share_parts(&mut d.spare_capacity_mut()[..n], 64, |start, d| {
        let r = start..start + d.len();
        let (z, y, dy) = (&z[r.clone()], &y[r.clone()], &dy[r]);
        match act {
            Activation::Tanh => dmap_from_fast(TanhFn, z, y, dy, d),
            Activation::Sigmoid => dmap_from_fast(SigmoidFn, z, y, dy, d),
            Activation::Relu => dmap_from_fast(ReluFn, z, y, dy, d),
            other => dmap_from_kernel(other, z, y, dy, d),
        }
    });
    // SAFETY: the parts cover all n values, each written just above (the kernels write every
    // value of their part: the four slices have the part's length).
    unsafe { d.set_len(n) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_passes_shared_between_threads_give_the_same_bits() {
        // Long enough to be shared out, not a multiple of 64 (a short last range).
        let n = crate::tensor::ELEMENTWISE_SHARE_MIN * 3 + 37;
        let z: Vec<f32> = (0..n).map(|i| (i as f32 * 0.013).sin() * 9.0).collect();
        let d0: Vec<f32> = (0..n).map(|i| (i as f32 * 0.7).cos()).collect();
        for act in [Activation::Sigmoid, Activation::Tanh, Activation::Relu, Activation::Elu, Activation::Linear] {
            let mut out = Vec::new();
            for threads in [1, 2] {
                crate::tensor::set_threads(threads);
                let mut y = vec![0.0f32; n];
                apply_rows(act, &z, &mut y, 100);
                let mut d = d0.clone();
                backprop_rows(act, &z, &y, &mut d, 100);
                // From a separate incoming gradient, into a reused buffer: the same values.
                let mut from = vec![7.0f32; 3];
                backprop_rows_from(act, &z, &y, &d0, &mut from, 100);
                out.push((y, d, from));
            }
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert!(bits(&out[0].0) == bits(&out[1].0), "{act:?}: activations differ between 1 and 2 threads");
            assert!(bits(&out[0].1) == bits(&out[1].1), "{act:?}: derivatives differ between 1 and 2 threads");
            for (y, d, from) in &out {
                // Every value was written (the ranges cover all of them), each as the
                // run-time-chosen function computes it one by one.
                let want: Vec<u32> = z.iter().map(|&v| act.f(v).to_bits()).collect();
                assert!(bits(y) == want, "{act:?}: not every value computed as one by one");
                let dwant: Vec<u32> = (0..n).map(|i| (d0[i] * act.df(z[i], y[i])).to_bits()).collect();
                assert!(bits(d) == dwant, "{act:?}: not every derivative computed as one by one");
                assert!(bits(from) == dwant, "{act:?}: backprop_rows_from differs");
            }
        }
        crate::tensor::set_threads(0);
    }

    #[test]
    fn derivatives_match_central_differences() {
        let all = [
            Activation::Linear,
            Activation::Tanh,
            Activation::Sigmoid,
            Activation::HardSigmoid,
            Activation::Relu,
            Activation::Relu6,
            Activation::LeakyRelu,
            Activation::Elu,
            Activation::Selu,
            Activation::Softplus,
            Activation::Softsign,
            Activation::Silu,
            Activation::HardSilu,
            Activation::Gelu,
            Activation::Exponential,
            Activation::Mish,
            Activation::Celu,
            Activation::HardTanh,
            Activation::HardShrink,
            Activation::SoftShrink,
            Activation::TanhShrink,
            Activation::LogSigmoid,
            Activation::SparsePlus,
            Activation::SparseSigmoid,
            Activation::Squareplus,
        ];
        for act in all {
            for &z in &[-4.1f64, -2.3, -0.7, -0.1, 0.13, 0.9, 2.2, 3.7, 6.4] {
                let h = 1e-6;
                let num = (act.f(z + h) - act.f(z - h)) / (2.0 * h);
                let ana = act.df(z, act.f(z));
                assert!((num - ana).abs() < 1e-7 * (1.0 + ana.abs()), "{act:?} at {z}: numeric {num} analytic {ana}");
            }
        }
    }

    #[test]
    fn unknown_activation_is_named_in_the_error() {
        let e = Activation::parse("tanhh").unwrap_err().to_string();
        assert!(e.contains("tanhh"), "{e}");
    }

    #[test]
    fn names_round_trip() {
        for n in ["tanh", "sigmoid", "relu", "gelu", "hard_sigmoid", "softmax", "linear", "selu"] {
            assert_eq!(Activation::parse(n).unwrap().name(), n);
        }
    }
}
