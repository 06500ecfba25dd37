//! Recurrent layers multiply every step by a packed copy of U (and backward by a packed Uᵀ)
//! where float32 runs on AVX-512 (see `memcell::tensor::Packed`). Packing is a speed-up
//! only: a layer's outputs, input gradient and weight gradients must have the same bits with
//! it turned off, for every cell, with and without bias, one chunk of few rows (the unpacked
//! kernels' order) and several of many rows (the gemm crate's depth blocks), over masks and
//! reversed time.

use memcell::layers::config::layer_from_config;
use memcell::layers::recurrent::mask_from_u8;
use memcell::model::Sequential;
use memcell::tensor::{packing_available, packs_made, set_packing, Tensor};
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

struct Run {
    y: Vec<f32>,
    dx: Vec<f32>,
    grads: Vec<Vec<f32>>,
    packs: usize,
}

fn run(layer: &Value, b: usize, t: usize, f: usize, masked: bool, packing: bool) -> Run {
    let mut m = Sequential::<f32>::new().input(&[t, f]).seed(3);
    m.push(layer_from_config::<f32>(layer["class_name"].as_str().unwrap(), &layer["config"]).unwrap());
    m.build().unwrap();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
    let x = Tensor::new(&[b, t, f], (0..b * t * f).map(|_| rng.gen_range(-1.0..1.0)).collect()).unwrap();
    let mask = masked.then(|| {
        let mk: Vec<u8> = (0..b * t).map(|_| (rng.gen::<f32>() > 0.25) as u8).collect();
        mask_from_u8(b, t, &mk)
    });
    set_packing(packing);
    let before = packs_made();
    let y = m.call(&x, true, mask, None).unwrap();
    let g = Tensor::new(&y.shape, (0..y.len()).map(|_| rng.gen_range(-1.0..1.0)).collect()).unwrap();
    m.zero_grad();
    let dx = m.backward(&g).unwrap();
    let packs = packs_made() - before;
    set_packing(true);
    Run { y: y.data, dx: dx.data, grads: m.named_params().into_iter().map(|(_, p)| p.grad.clone()).collect(), packs }
}

fn same_bits(a: &[f32], b: &[f32], what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert_eq!(x.to_bits(), y.to_bits(), "{what}[{i}]: packed {x} vs plain {y}");
    }
}

#[test]
fn packed_recurrent_products_give_the_plain_bits() {
    let units = 70; // panels of 64 columns and a tail
    for (class, extra, packs_forward) in [
        ("LSTM", json!({}), true),
        ("SimpleRNN", json!({}), true),
        ("GRU", json!({}), true),
        // Keras's original GRU multiplies the candidate's reset state by its own columns of U:
        // its forward keeps the plain products.
        ("GRU", json!({"reset_after": false}), false),
    ] {
        for (use_bias, seqs, backwards, masked) in
            [(true, true, false, false), (false, false, true, false), (true, true, true, true)]
        {
            // 40 rows: one chunk (few rows); 300 and 1024 rows: 2 and 4 chunks of many.
            for b in [40, 300, 1024] {
                let mut cfg =
                    json!({"units": units, "use_bias": use_bias, "return_sequences": seqs, "go_backwards": backwards});
                for (k, v) in extra.as_object().unwrap() {
                    cfg[k] = v.clone();
                }
                let layer = json!({"class_name": class, "config": cfg});
                let name =
                    format!("{class} {extra} bias={use_bias} seqs={seqs} backwards={backwards} masked={masked} b={b}");
                let packed = run(&layer, b, 5, 3, masked, true);
                let plain = run(&layer, b, 5, 3, masked, false);
                assert_eq!(plain.packs, 0, "{name}: packing turned off still packed");
                if packing_available::<f32>() {
                    // Forward packs U, backward Uᵀ.
                    let want = 1 + packs_forward as usize;
                    assert_eq!(packed.packs, want, "{name}: packed products did not run");
                } else {
                    assert_eq!(packed.packs, 0, "{name}: packed without AVX-512");
                }
                same_bits(&packed.y, &plain.y, &format!("{name} output"));
                same_bits(&packed.dx, &plain.dx, &format!("{name} input gradient"));
                for (k, (p, q)) in packed.grads.iter().zip(&plain.grads).enumerate() {
                    same_bits(p, q, &format!("{name} weight gradient {k}"));
                }
            }
        }
    }
}
