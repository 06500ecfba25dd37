//! What bounds Adam's update on this CPU: the square root and the division, or memory.
//!
//! A standalone microbenchmark (no dependencies) for the figures the README quotes under
//! Performance. It runs the arithmetic of memcell's Adam kernel (`src/optim.rs`,
//! `adam_kernel`: m += (g - m)·c1; v += (g² - v)·c2; w -= m·alpha / (sqrt(v) + eps)) in
//! AVX-512, once as written and once with the root and the division replaced by a multiply
//! (wrong numbers, the same loads and stores), over S2's 752k weights and over 8k weights
//! that stay in L1 cache, on one thread and on two (each thread half the weights).
//!
//! ```sh
//! rustc -O -C target-cpu=native bench/adam_bound.rs -o /tmp/adam_bound && /tmp/adam_bound
//! ```

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;
use std::time::Instant;

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn adam(w: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], exact: bool) {
    let (c1, c2, alpha, eps) = (_mm512_set1_ps(0.1), _mm512_set1_ps(0.001), _mm512_set1_ps(1e-3), _mm512_set1_ps(1e-7));
    let n = w.len() / 16 * 16;
    let mut i = 0;
    while i < n {
        let gi = _mm512_loadu_ps(g.as_ptr().add(i));
        let mo = _mm512_loadu_ps(m.as_ptr().add(i));
        let vo = _mm512_loadu_ps(v.as_ptr().add(i));
        let mi = _mm512_add_ps(mo, _mm512_mul_ps(_mm512_sub_ps(gi, mo), c1));
        let vi = _mm512_add_ps(vo, _mm512_mul_ps(_mm512_sub_ps(_mm512_mul_ps(gi, gi), vo), c2));
        _mm512_storeu_ps(m.as_mut_ptr().add(i), mi);
        _mm512_storeu_ps(v.as_mut_ptr().add(i), vi);
        let step = if exact {
            _mm512_div_ps(_mm512_mul_ps(mi, alpha), _mm512_add_ps(_mm512_sqrt_ps(vi), eps))
        } else {
            _mm512_mul_ps(_mm512_mul_ps(mi, alpha), _mm512_add_ps(vi, eps))
        };
        let wo = _mm512_loadu_ps(w.as_ptr().add(i));
        _mm512_storeu_ps(w.as_mut_ptr().add(i), _mm512_sub_ps(wo, step));
        i += 16;
    }
}

struct State {
    w: Vec<f32>,
    g: Vec<f32>,
    m: Vec<f32>,
    v: Vec<f32>,
}

fn state(n: usize) -> State {
    State {
        w: vec![0.1; n],
        g: (0..n).map(|i| (i % 7) as f32 * 0.01).collect(),
        m: vec![0.0; n],
        v: vec![0.01; n],
    }
}

fn run(s: &mut State, reps: usize, exact: bool) {
    for _ in 0..reps {
        // SAFETY: main checked AVX-512F.
        unsafe { adam(&mut s.w, &s.g, &mut s.m, &mut s.v, exact) }
    }
}

fn main() {
    if !std::arch::is_x86_feature_detected!("avx512f") {
        eprintln!("adam_bound: this CPU has no AVX-512F; the microbenchmark is written for it");
        std::process::exit(2);
    }
    for (n, reps) in [(752_000usize, 300usize), (8_000, 30_000)] {
        for exact in [true, false] {
            let mut one = state(n);
            run(&mut one, reps / 30, exact); // warm-up
            let t = Instant::now();
            run(&mut one, reps, exact);
            let t1 = t.elapsed().as_secs_f64();
            let (mut a, mut b) = (state(n / 2), state(n / 2));
            let t = Instant::now();
            std::thread::scope(|sc| {
                sc.spawn(|| run(&mut a, reps, exact));
                sc.spawn(|| run(&mut b, reps, exact));
            });
            let t2 = t.elapsed().as_secs_f64();
            println!(
                "{n:>7} weights, {}: one thread {:7.1} µs a step ({:.3} ns a weight); two threads {:7.1} µs",
                if exact { "sqrt and division   " } else { "multiply instead    " },
                t1 / reps as f64 * 1e6,
                t1 / (reps * n) as f64 * 1e9,
                t2 / reps as f64 * 1e6
            );
        }
    }
}
