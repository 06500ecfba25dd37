//! From the default (zero) initial state, a recurrent layer's first step multiplies nothing by
//! U, and its recurrent weight gradient leaves out the first step's rows (their hr is zero;
//! see `zero_leading_rows`). Given the same zeros as explicit initial states, the layer takes
//! the general path and multiplies them all. Both must give the same bits: outputs, input
//! gradient and every weight gradient, for every cell, with masks and reversed time, in one
//! chunk (where rows are left out) and in several (where they are not). Four steps: from
//! three on, both paths multiply by Uᵀ the same way (see `Recurrent::backward_steps`).

use memcell::layers::config::layer_from_config;
use memcell::layers::recurrent::mask_from_u8;
use memcell::model::Sequential;
use memcell::tensor::Tensor;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

fn run(layer: &Value, b: usize, t: usize, masked: bool, explicit_zeros: bool) -> Vec<Vec<f32>> {
    let f = 3;
    let mut m = Sequential::<f32>::new().input(&[t, f]).seed(7);
    m.push(layer_from_config::<f32>(layer["class_name"].as_str().unwrap(), &layer["config"]).unwrap());
    m.build().unwrap();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
    let x = Tensor::new(&[b, t, f], (0..b * t * f).map(|_| rng.gen_range(-1.0..1.0)).collect()).unwrap();
    let mask = masked.then(|| {
        let mk: Vec<u8> = (0..b * t).map(|_| (rng.gen::<f32>() > 0.25) as u8).collect();
        mask_from_u8(b, t, &mk)
    });
    let units = layer["config"]["units"].as_u64().unwrap() as usize;
    let states = if layer["class_name"] == "LSTM" { 2 } else { 1 };
    let init = explicit_zeros.then(|| vec![Tensor::zeros(&[b, units]); states]);
    let y = m.call(&x, true, mask, init).unwrap();
    let g = Tensor::new(&y.shape, (0..y.len()).map(|_| rng.gen_range(-1.0..1.0)).collect()).unwrap();
    m.zero_grad();
    let dx = m.backward(&g).unwrap();
    let mut out = vec![y.data, dx.data];
    out.extend(m.named_params().into_iter().map(|(_, p)| p.grad.clone()));
    out
}

#[test]
fn the_zero_initial_state_shortcuts_give_the_general_bits() {
    for (class, extra) in
        [("SimpleRNN", json!({})), ("LSTM", json!({})), ("GRU", json!({})), ("GRU", json!({"reset_after": false}))]
    {
        for (seqs, backwards, masked) in [(true, false, false), (false, true, true)] {
            // 9 rows: one chunk, the first step's rows left out; 130 rows: two chunks.
            for b in [9, 130] {
                let mut cfg = json!({"units": 40, "return_sequences": seqs, "go_backwards": backwards});
                for (k, v) in extra.as_object().unwrap() {
                    cfg[k] = v.clone();
                }
                let layer = json!({"class_name": class, "config": cfg});
                let name = format!("{class} {extra} seqs={seqs} backwards={backwards} masked={masked} b={b}");
                let short = run(&layer, b, 4, masked, false);
                let general = run(&layer, b, 4, masked, true);
                let what = |i: usize| match i {
                    0 => "output".to_string(),
                    1 => "input gradient".to_string(),
                    k => format!("weight gradient {}", k - 2),
                };
                for (i, (p, q)) in short.iter().zip(&general).enumerate() {
                    assert_eq!(p.len(), q.len());
                    for (j, (x, y)) in p.iter().zip(q).enumerate() {
                        assert_eq!(x.to_bits(), y.to_bits(), "{name}: {}[{j}]: {x} vs {y}", what(i));
                    }
                }
                // The weight gradients are not all zero: the comparison means something.
                assert!(short[2..].iter().all(|g| g.iter().any(|&v| v != 0.0)), "{name}: a zero gradient");
            }
        }
    }
}
