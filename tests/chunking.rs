//! Large batches run their recurrences in chunks of rows (in parallel where it pays). The
//! chunked result must be the same computation: outputs, states and gradients of a batch of
//! 70 or 2100 rows (2 and 8 chunks) agree (f64, to rounding) with the same rows run one at a time, for every
//! cell and the options that touch the time loop (masks, go_backwards, initial states,
//! stateful carry-over, return_sequences), on 1 and 2 threads.

use memcell::layers::config::layer_from_config;
use memcell::layers::recurrent::mask_from_u8;
use memcell::model::Sequential;
use memcell::tensor::{Scalar, Tensor};
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

fn model(layers: &[Value], input: &[usize]) -> Sequential<f64> {
    model_of::<f64>(layers, input)
}

fn model_of<T: Scalar>(layers: &[Value], input: &[usize]) -> Sequential<T> {
    let mut m = Sequential::<T>::new().input(input).seed(5);
    for l in layers {
        m.push(layer_from_config::<T>(l["class_name"].as_str().unwrap(), &l["config"]).unwrap());
    }
    m.build().unwrap();
    m
}

struct Out {
    y: Vec<f64>,
    grads: Vec<Vec<f64>>,
    dx: Vec<f64>,
    init_grads: Vec<Vec<f64>>,
}

#[allow(clippy::too_many_arguments)]
fn run(
    m: &mut Sequential<f64>,
    x: &Tensor<f64>,
    g: &Tensor<f64>,
    mask: Option<&[u8]>,
    init: Option<Vec<Tensor<f64>>>,
    t: usize,
) -> Out {
    m.reset_states();
    let mk = mask.map(|mk| mask_from_u8(x.batch(), t, mk));
    if m.layers()[0].config()["stateful"] == json!(true) {
        // A first call whose final state the second one starts from.
        m.call(x, false, mk.clone(), None).unwrap();
    }
    let y = m.call(x, false, mk, init).unwrap();
    m.zero_grad();
    let dx = m.backward(g).unwrap();
    Out {
        y: y.data,
        grads: m.named_params().into_iter().map(|(_, p)| p.grad.clone()).collect(),
        dx: dx.data,
        init_grads: m.initial_state_grads().into_iter().map(|t| t.data).collect(),
    }
}

fn close(a: &[f64], b: &[f64], what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!((x - y).abs() <= 1e-11 * (1.0 + y.abs()), "{what}[{i}]: {x} vs {y}");
    }
}

fn check(name: &str, layers: Vec<Value>, b: usize, t: usize, f: usize, masked: bool, init_states: usize) {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
    let mut m = model(&layers, &[t, f]);
    let x = Tensor::new(&[b, t, f], (0..b * t * f).map(|_| rng.gen_range(-1.0..1.0)).collect()).unwrap();
    let mask: Option<Vec<u8>> = masked.then(|| (0..b * t).map(|_| (rng.gen::<f64>() > 0.3) as u8).collect());
    let units = m.layers()[0].config()["units"].as_u64().unwrap() as usize;
    let init: Vec<Tensor<f64>> = (0..init_states)
        .map(|_| Tensor::new(&[b, units], (0..b * units).map(|_| rng.gen_range(-0.5..0.5)).collect()).unwrap())
        .collect();
    let y0 = m
        .call(&x, false, mask.as_ref().map(|mk| mask_from_u8(b, t, mk)), (!init.is_empty()).then(|| init.clone()))
        .unwrap();
    let g = Tensor::new(&y0.shape, (0..y0.len()).map(|_| rng.gen_range(-1.0..1.0)).collect()).unwrap();
    let row = y0.len() / b;

    memcell::tensor::set_parallel_threshold(0.0);
    for threads in [1, 2] {
        memcell::tensor::set_threads(threads);
        let whole = run(&mut m, &x, &g, mask.as_deref(), (!init.is_empty()).then(|| init.clone()), t);
        // Row by row: one chunk each.
        let mut y = Vec::new();
        let mut dx = Vec::new();
        let mut grads: Vec<Vec<f64>> = whole.grads.iter().map(|v| vec![0.0; v.len()]).collect();
        let mut init_grads: Vec<Vec<f64>> = vec![Vec::new(); init_states];
        for i in 0..b {
            let xi = x.slice_batch(i, i + 1);
            let gi = g.slice_batch(i, i + 1);
            let mi = mask.as_ref().map(|mk| mk[i * t..(i + 1) * t].to_vec());
            let ii = (!init.is_empty()).then(|| init.iter().map(|s| s.slice_batch(i, i + 1)).collect());
            let o = run(&mut m, &xi, &gi, mi.as_deref(), ii, t);
            y.extend_from_slice(&o.y);
            dx.extend_from_slice(&o.dx);
            for (acc, gr) in grads.iter_mut().zip(&o.grads) {
                for (a, v) in acc.iter_mut().zip(gr) {
                    *a += v;
                }
            }
            for (acc, ig) in init_grads.iter_mut().zip(&o.init_grads) {
                acc.extend_from_slice(ig);
            }
        }
        assert_eq!(y.len(), b * row);
        close(&whole.y, &y, &format!("{name} ({threads} threads) output"));
        close(&whole.dx, &dx, &format!("{name} ({threads} threads) input gradient"));
        for (k, (a, e)) in whole.grads.iter().zip(&grads).enumerate() {
            close(a, e, &format!("{name} ({threads} threads) weight gradient {k}"));
        }
        for (a, e) in whole.init_grads.iter().zip(&init_grads) {
            close(a, e, &format!("{name} ({threads} threads) initial-state gradient"));
        }
    }
    memcell::tensor::set_threads(0);
}

fn l(class: &str, cfg: Value) -> Value {
    json!({"class_name": class, "config": cfg})
}

#[test]
fn chunked_recurrences_equal_row_by_row() {
    for (class, extra) in
        [("SimpleRNN", json!({})), ("LSTM", json!({})), ("GRU", json!({})), ("GRU", json!({"reset_after": false}))]
    {
        let cfg = |kv: Value| {
            let mut c = json!({"units": 16});
            for (k, v) in extra.as_object().unwrap().iter().chain(kv.as_object().unwrap()) {
                c[k] = v.clone();
            }
            c
        };
        check(&format!("{class} last"), vec![l(class, cfg(json!({})))], 70, 6, 3, false, 0);
        check(
            &format!("{class} sequences masked backwards"),
            vec![l(class, cfg(json!({"return_sequences": true, "go_backwards": true})))],
            70,
            5,
            2,
            true,
            0,
        );
        let n_states = if class == "LSTM" { 2 } else { 1 };
        check(&format!("{class} initial state"), vec![l(class, cfg(json!({})))], 2100, 3, 2, false, n_states);
        check(&format!("{class} stateful"), vec![l(class, cfg(json!({"stateful": true})))], 70, 4, 2, false, 0);
    }
    // A stack, as the medium workloads have it.
    check(
        "LSTM -> LSTM -> Dense",
        vec![
            l("LSTM", json!({"units": 12, "return_sequences": true})),
            l("LSTM", json!({"units": 12})),
            l("Dense", json!({"units": 1})),
        ],
        96,
        7,
        1,
        false,
        0,
    );
}

/// Inference keeps nothing for backward (rolling slots in the recurrences, and a large input
/// projection computed a block of steps at a time): `predict` gives the same bits as the
/// training-ready `call`, masks (from a Masking layer), direction, returned sequences and
/// stateful carry-over included, in float64 and float32; a backward after it is an error.
/// Serialises the tests that set the (global) projection blocking, so that each runs the
/// paths it names.
static BLOCKING: std::sync::Mutex<()> = std::sync::Mutex::new(());
/// `set_projection_blocking`'s arguments: the defaults, never, and blocks of 2-3 steps here.
const DEFAULT_BLOCKING: (usize, usize) = (1 << 20, 1 << 18);
const NO_BLOCKING: (usize, usize) = (usize::MAX, 1 << 18);
const SMALL_BLOCKS: (usize, usize) = (0, 500);

fn set_blocking((min, block): (usize, usize)) {
    memcell::layers::recurrent::set_projection_blocking(min, block);
}

#[test]
fn inference_without_saved_steps_gives_the_same_bits() {
    let _serial = BLOCKING.lock().unwrap_or_else(|e| e.into_inner());
    // Default sizes (these problems are too small to block), then blocks of 2-3 steps.
    for blocking in [DEFAULT_BLOCKING, SMALL_BLOCKS] {
        inference_same_bits::<f64>(&format!("f64 blocking {blocking:?}"), blocking);
        inference_same_bits::<f32>(&format!("f32 blocking {blocking:?}"), blocking);
    }
    // M1's shapes at the default sizes: two chunks of 256 rows, blocks of 2 steps, through
    // the general GEMM (k = 128 in the second layer), against the whole projection.
    let layers = vec![
        l("LSTM", json!({"units": 128, "return_sequences": true})),
        l("LSTM", json!({"units": 128})),
        l("Dense", json!({"units": 1})),
    ];
    let mut m = model_of::<f32>(&layers, &[16, 1]);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(4);
    let x = Tensor::<f32>::new(&[512, 16, 1], (0..512 * 16).map(|_| rng.gen_range(-1.0..1.0)).collect()).unwrap();
    set_blocking(NO_BLOCKING);
    let a = m.call(&x, false, None, None).unwrap();
    set_blocking(DEFAULT_BLOCKING);
    assert!(a.data == m.predict(&x, 512).unwrap().data, "M1-sized stack in inference");
}

/// Training computes a large input projection a block of steps at a time too (backward
/// needs only the gate values, not P): outputs, input gradients and weight gradients are
/// the same bits as with the whole projection stored, for every cell, with masks,
/// go_backwards, no bias, initial states and two chunks, in float64 and float32.
#[test]
fn training_with_a_blocked_projection_gives_the_same_bits() {
    let _serial = BLOCKING.lock().unwrap_or_else(|e| e.into_inner());
    training_same_bits::<f64>("f64");
    training_same_bits::<f32>("f32");
    set_blocking(DEFAULT_BLOCKING);
}

fn training_same_bits<T: Scalar>(what: &str) {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(6);
    let tensor = |shape: &[usize], v: &[f64]| Tensor::<T>::from_f64(shape, v).unwrap();
    for (class, extra) in
        [("SimpleRNN", json!({})), ("LSTM", json!({})), ("GRU", json!({})), ("GRU", json!({"reset_after": false}))]
    {
        for (back, bias, init) in [(false, true, false), (true, true, true), (false, false, false)] {
            let mut cfg = json!({"units": 8, "return_sequences": true, "go_backwards": back, "use_bias": bias});
            for (k, v) in extra.as_object().unwrap() {
                cfg[k] = v.clone();
            }
            let mut cfg2 = cfg.clone();
            cfg2["units"] = json!(5);
            cfg2["go_backwards"] = json!(false);
            let layers = vec![l("Masking", json!({"mask_value": 0.0})), l(class, cfg), l(class, cfg2)];
            let (b, t, f) = (70, 7, 3); // two chunks of 35 rows, blocks of steps 0-1, 2-3, 4-6
            let mut m = model_of::<T>(&layers, &[t, f]);
            for p in m.params_mut() {
                for v in p.value.iter_mut() {
                    *v += T::of(rng.gen_range(-0.3..0.3));
                }
            }
            let mut x: Vec<f64> = (0..b * t * f).map(|_| rng.gen_range(-1.0..1.0)).collect();
            for step in [(0usize, 2usize), (5, 0), (5, 5), (40, 3)] {
                x[(step.0 * t + step.1) * f..(step.0 * t + step.1 + 1) * f].fill(0.0);
            }
            let x = tensor(&[b, t, f], &x);
            let n_states = if class == "LSTM" { 2 } else { 1 };
            let init: Option<Vec<Tensor<T>>> = init.then(|| {
                (0..n_states)
                    .map(|_| tensor(&[b, 8], &(0..b * 8).map(|_| rng.gen_range(-0.5..0.5)).collect::<Vec<_>>()))
                    .collect()
            });
            let g: Vec<f64> = (0..b * t * 5).map(|_| rng.gen_range(-1.0..1.0)).collect();
            let g = tensor(&[b, t, 5], &g);
            let mut runs = Vec::new();
            for blocking in [NO_BLOCKING, SMALL_BLOCKS] {
                set_blocking(blocking);
                let y = m.call(&x, false, None, init.clone()).unwrap();
                m.zero_grad();
                let dx = m.backward(&g).unwrap();
                let grads: Vec<Vec<T>> = m.named_params().into_iter().map(|(_, p)| p.grad.clone()).collect();
                runs.push((y.data, dx.data, grads));
            }
            let name = format!("{what}: {class} {extra} back={back} bias={bias} init={init:?}", init = init.is_some());
            assert!(runs[0].0 == runs[1].0, "{name}: output");
            assert!(runs[0].1 == runs[1].1, "{name}: input gradient");
            for (k, (a, e)) in runs[0].2.iter().zip(&runs[1].2).enumerate() {
                assert!(a == e, "{name}: weight gradient {k}");
            }
        }
    }
}

fn inference_same_bits<T: Scalar>(what: &str, blocking: (usize, usize)) {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
    let tensor = |shape: &[usize], v: &[f64]| Tensor::<T>::from_f64(shape, v).unwrap();
    for class in ["SimpleRNN", "LSTM", "GRU"] {
        for rs in [false, true] {
            for (back, bias) in [(false, true), (true, true), (false, false)] {
                let layers = vec![
                    l("Masking", json!({"mask_value": 0.0})),
                    l(class, json!({"units": 8, "return_sequences": true, "go_backwards": back, "use_bias": bias})),
                    l(class, json!({"units": 5, "return_sequences": rs})),
                ];
                let (b, t, f) = (70, 7, 3); // blocks of steps 0-1, 2-3, 4-6 (a 1-step tail joins)
                let mut m = model_of::<T>(&layers, &[t, f]);
                // Biases away from their zero initial values, so that each one shows.
                for p in m.params_mut() {
                    for v in p.value.iter_mut() {
                        *v += T::of(rng.gen_range(-0.3..0.3));
                    }
                }
                let mut x: Vec<f64> = (0..b * t * f).map(|_| rng.gen_range(-1.0..1.0)).collect();
                for step in [(0usize, 2usize), (5, 0), (5, 5), (40, 3)] {
                    x[(step.0 * t + step.1) * f..(step.0 * t + step.1 + 1) * f].fill(0.0);
                }
                let x = tensor(&[b, t, f], &x);
                set_blocking(NO_BLOCKING);
                let a = m.call(&x, false, None, None).unwrap();
                set_blocking(blocking);
                let p = m.predict(&x, 1000).unwrap();
                assert!(a.data == p.data, "{what}: {class} rs={rs} back={back} bias={bias}");
                let g = Tensor::zeros(&p.shape);
                assert!(m.backward(&g).unwrap_err().to_string().contains("backward needs"));
            }
        }
        let mut m = model_of::<T>(&[l(class, json!({"units": 4, "stateful": true}))], &[3, 2]);
        let x = tensor(&[70, 3, 2], &(0..420).map(|_| rng.gen_range(-1.0..1.0)).collect::<Vec<_>>());
        let first = m.call(&x, false, None, None).unwrap();
        let second = m.call(&x, false, None, None).unwrap();
        m.reset_states();
        assert!(m.predict(&x, 1000).unwrap().data == first.data, "{what}: {class} stateful");
        assert!(m.predict(&x, 1000).unwrap().data == second.data, "{what}: {class}: carried state in inference");
    }
}

/// Inference runs consecutive recurrent layers together, a time step at a time, when nothing
/// needs the whole sequence between them (no mask, no initial state, forwards, not stateful):
/// `predict` gives the same bits as the training-ready `call`, which runs them layer by layer,
/// for stacks of two and three mixed cells with or without bias, returning the last step or
/// the sequence, one input feature or three, one chunk (9 rows: the few-row kernels) or
/// several (70 rows: two chunks of 35; 600: three of 200 through the general GEMM), in f64
/// and f32, with the same final states. A layer that cannot take part ends the stack there;
/// a single row runs layer by layer.
#[test]
fn stacked_inference_gives_the_bits_of_layer_by_layer() {
    let _serial = BLOCKING.lock().unwrap_or_else(|e| e.into_inner());
    set_blocking(DEFAULT_BLOCKING);
    stacked_same_bits::<f64>("f64");
    stacked_same_bits::<f32>("f32");
}

fn stacked_same_bits<T: Scalar>(what: &str) {
    use memcell::layers::recurrent::stacks_run;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(8);
    let cells = [
        ("SimpleRNN", json!({})),
        ("LSTM", json!({})),
        ("GRU", json!({})),
        ("GRU", json!({"reset_after": false})),
        ("SimpleRNN", json!({"activation": "relu"})),
    ];
    let cfg = |c: usize, units: usize, rs: bool, bias: bool| {
        let mut cfg = json!({"units": units, "return_sequences": rs, "use_bias": bias});
        for (k, v) in cells[c].1.as_object().unwrap() {
            cfg[k] = v.clone();
        }
        l(cells[c].0, cfg)
    };
    let mut case = 0;
    for (b, f) in [(1, 1), (9, 3), (70, 1), (600, 3)] {
        for (stack, last_rs, bias) in
            [(vec![1, 1], false, true), (vec![0, 2, 1], true, true), (vec![3, 4], false, false)]
        {
            let (t, n) = (5, stack.len());
            let mut layers: Vec<Value> =
                stack.iter().enumerate().map(|(i, &c)| cfg(c, 6 + 2 * i, i + 1 < n || last_rs, bias)).collect();
            layers.push(l("Dense", json!({"units": 2})));
            case += 1;
            // Every other case: a layer that cannot take part (go_backwards) after the stack.
            if case % 2 == 0 && last_rs {
                layers.insert(n, l("LSTM", json!({"units": 3, "go_backwards": true, "return_sequences": true})));
            }
            let mut m = model_of::<T>(&layers, &[t, f]);
            for p in m.params_mut() {
                for v in p.value.iter_mut() {
                    *v += T::of(rng.gen_range(-0.3..0.3));
                }
            }
            let x = Tensor::<T>::from_f64(
                &[b, t, f],
                &(0..b * t * f).map(|_| rng.gen_range(-1.0..1.0)).collect::<Vec<_>>(),
            )
            .unwrap();
            let a = m.call(&x, false, None, None).unwrap();
            let states_a: Vec<Vec<Vec<T>>> =
                m.layers().iter().map(|l| l.states().into_iter().map(|s| s.data).collect()).collect();
            let before = stacks_run();
            let p = m.predict(&x, 1000).unwrap();
            let name = format!("{what}: b={b} f={f} stack={stack:?} last_rs={last_rs} bias={bias} case {case}");
            // One row: only a one-feature layer can step (the second layer has 6 features).
            let stacked = u64::from(b > 1);
            assert_eq!(stacks_run() - before, stacked, "{name}: stacks run");
            assert!(a.data == p.data, "{name}: output");
            let states_p: Vec<Vec<Vec<T>>> =
                m.layers().iter().map(|l| l.states().into_iter().map(|s| s.data).collect()).collect();
            assert!(states_a == states_p, "{name}: final states {states_a:?} vs {states_p:?}");
            let g = Tensor::zeros(&p.shape);
            assert!(m.backward(&g).unwrap_err().to_string().contains("backward needs"), "{name}: backward");
        }
    }
}
