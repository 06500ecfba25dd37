//! Run-time selection of vector instructions for the element-wise kernels (gate arithmetic,
//! activations, optimizer updates), and the fast float32 `tanh` / `sigmoid` they use.
//!
//! A kernel is written once as plain Rust over slices, `#[inline(always)]`; [`dispatch!`]
//! compiles it three times, for AVX-512 (x86-64-v4), AVX2+FMA (x86-64-v3) and the baseline,
//! and picks the best version the CPU has when it is first called. The loops contain no
//! calls and no branches that the compiler cannot turn into selects, so they vectorise at the
//! full width of each target. Results do not depend on the version chosen: the compiler does
//! not reassociate or contract floating-point arithmetic, so every version performs the same
//! operations in the same order.
//!
//! `tanh` in float32 is the rational approximation that Eigen (and so TensorFlow, hence
//! Keras) uses on the CPU: odd degree-13 over even degree-6 polynomial on [-7.905, 7.905],
//! clamped outside, the identity below 4e-4; measured against libm its error is below 4e-7
//! absolute (largest near |x| = 5.9, where tanh is within 2e-5 of ±1). `sigmoid(x) = 0.5 + 0.5 tanh(x / 2)`. float64 uses libm.

use std::sync::atomic::{AtomicU8, Ordering};

/// Instruction-set level chosen at run time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    /// x86-64 baseline (SSE2), or any other architecture.
    Base,
    /// AVX2 + FMA (x86-64-v3).
    V3,
    /// AVX-512 F/VL/DQ/BW (x86-64-v4).
    V4,
}

static LEVEL: AtomicU8 = AtomicU8::new(0);

/// The best level this CPU supports (set `MEMCELL_SIMD=base|v3|v4` to force a lower one).
pub fn level() -> Level {
    match LEVEL.load(Ordering::Relaxed) {
        1 => Level::Base,
        2 => Level::V3,
        3 => Level::V4,
        _ => {
            let l = detect();
            LEVEL.store(
                match l {
                    Level::Base => 1,
                    Level::V3 => 2,
                    Level::V4 => 3,
                },
                Ordering::Relaxed,
            );
            l
        }
    }
}

fn detect() -> Level {
    #[cfg(target_arch = "x86_64")]
    {
        let cap = match std::env::var("MEMCELL_SIMD").as_deref() {
            Ok("base") => Level::Base,
            Ok("v3") => Level::V3,
            _ => Level::V4,
        };
        let v4 = is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx512vl")
            && is_x86_feature_detected!("avx512dq")
            && is_x86_feature_detected!("avx512bw")
            && is_x86_feature_detected!("avx2")
            && is_x86_feature_detected!("fma");
        let v3 = is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma");
        if v4 && cap == Level::V4 {
            return Level::V4;
        }
        if v3 && cap != Level::Base {
            return Level::V3;
        }
    }
    Level::Base
}

/// Compiles an `#[inline(always)]` kernel for AVX-512, AVX2 and the baseline and calls the
/// best one for this CPU:
///
/// ```ignore
/// dispatch! { pub fn scale<T: Scalar>(x: &mut [T], s: T) => scale_kernel }
/// ```
macro_rules! dispatch {
    ($(#[$m:meta])* $vis:vis fn $name:ident $(<$($g:ident : $b:path),*>)? ($($a:ident : $t:ty),* $(,)?) $(-> $r:ty)? => $kernel:ident) => {
        $(#[$m])*
        #[allow(clippy::too_many_arguments)]
        $vis fn $name $(<$($g: $b),*>)? ($($a: $t),*) $(-> $r)? {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512vl,avx512dq,avx512bw,avx2,fma")]
                #[allow(clippy::too_many_arguments)]
                unsafe fn v4 $(<$($g: $b),*>)? ($($a: $t),*) $(-> $r)? {
                    $kernel($($a),*)
                }
                #[target_feature(enable = "avx2,fma")]
                #[allow(clippy::too_many_arguments)]
                unsafe fn v3 $(<$($g: $b),*>)? ($($a: $t),*) $(-> $r)? {
                    $kernel($($a),*)
                }
                match $crate::simd::level() {
                    // SAFETY: the CPU supports the features these versions were compiled for.
                    $crate::simd::Level::V4 => return unsafe { v4($($a),*) },
                    $crate::simd::Level::V3 => return unsafe { v3($($a),*) },
                    $crate::simd::Level::Base => {}
                }
            }
            $kernel($($a),*)
        }
    };
}
pub(crate) use dispatch;

// Eigen's `generic_fast_tanh_float` coefficients.
const TANH_CLAMP: f32 = 7.905_311;
const TANH_TINY: f32 = 0.0004;
const A1: f32 = 4.893_524_6e-3;
const A3: f32 = 6.372_619_3e-4;
const A5: f32 = 1.485_722_4e-5;
const A7: f32 = 5.122_297e-8;
const A9: f32 = -8.604_672e-11;
const A11: f32 = 2.000_188e-13;
const A13: f32 = -2.760_768_5e-16;
const B0: f32 = 4.893_525e-3;
const B2: f32 = 2.268_434_6e-3;
const B4: f32 = 1.185_347_1e-4;
const B6: f32 = 1.198_258_4e-6;

/// Fast float32 tanh (Eigen's rational approximation); NaN stays NaN.
#[inline(always)]
pub fn tanh_f32(x: f32) -> f32 {
    // Comparisons rather than min/max, so that NaN passes through.
    #[allow(clippy::manual_clamp)]
    let xc = if x > TANH_CLAMP {
        TANH_CLAMP
    } else if x < -TANH_CLAMP {
        -TANH_CLAMP
    } else {
        x
    };
    let x2 = xc * xc;
    let mut p = x2 * A13 + A11;
    p = x2 * p + A9;
    p = x2 * p + A7;
    p = x2 * p + A5;
    p = x2 * p + A3;
    p = x2 * p + A1;
    p *= xc;
    let mut q = x2 * B6 + B4;
    q = x2 * q + B2;
    q = x2 * q + B0;
    let t = p / q;
    if x.abs() < TANH_TINY {
        x
    } else {
        t
    }
}

/// Fast float32 logistic sigmoid, `0.5 + 0.5 tanh(x / 2)`.
#[inline(always)]
pub fn sigmoid_f32(x: f32) -> f32 {
    0.5 + 0.5 * tanh_f32(0.5 * x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_tanh_and_sigmoid_are_accurate_everywhere() {
        let (mut wt, mut ws) = (0.0f64, 0.0f64);
        let mut x = -12.0f64;
        while x <= 12.0 {
            let xf = x as f32;
            wt = wt.max((tanh_f32(xf) as f64 - (xf as f64).tanh()).abs());
            ws = ws.max((sigmoid_f32(xf) as f64 - 1.0 / (1.0 + (-(xf as f64)).exp())).abs());
            x += 1e-4;
        }
        assert!(wt < 4.5e-7, "tanh error {wt}");
        assert!(ws < 3e-7, "sigmoid error {ws}");
        assert!(tanh_f32(f32::NAN).is_nan() && sigmoid_f32(f32::NAN).is_nan());
        assert_eq!(tanh_f32(f32::INFINITY), tanh_f32(100.0));
        assert!((tanh_f32(1e-5) - 1e-5).abs() < 1e-12);
    }

    fn add_one_kernel(x: &mut [f32]) {
        for v in x.iter_mut() {
            *v = tanh_f32(*v) + 1.0;
        }
    }
    dispatch! { fn add_one(x: &mut [f32]) => add_one_kernel }

    #[test]
    fn every_level_gives_the_same_bits() {
        let base: Vec<f32> = (0..1000).map(|i| (i as f32 - 500.0) * 0.013).collect();
        let mut a = base.clone();
        add_one(&mut a);
        let mut b = base.clone();
        add_one_kernel(&mut b);
        assert_eq!(a, b);
    }
}
