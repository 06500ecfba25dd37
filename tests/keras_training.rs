//! End-to-end against Keras: from the same initial weights, memcell's `fit` follows Keras's
//! training trajectory for the seed note's set-up (150 epochs of Adam, batch 32,
//! validation_split 0.05, float32), and the recursive extrapolation ends where Keras's does.
//! Fixtures: tests/fixtures/keras_train (made by tools/gen_training_fixtures.py).

use memcell::loss::Loss;
use memcell::model::{read_safetensors, FitOptions, Sequential};
use memcell::optim::Optimizer;
use memcell::tensor::Tensor;
use std::path::Path;

struct Run {
    loss: Vec<f64>,
    val_loss: Vec<f64>,
    extrapolation: Vec<f64>,
}

fn keras_and_memcell(name: &str) -> (Run, Run) {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/keras_train").join(format!("{name}.safetensors"));
    let bytes = std::fs::read(&path).unwrap();
    let f = read_safetensors(&path, &bytes).unwrap();
    let meta = |k: &str| f.metadata.get(k).unwrap_or_else(|| panic!("metadata {k}")).clone();
    let cfg: serde_json::Value = serde_json::from_str(&meta("model")).unwrap();
    let shape: Vec<usize> = serde_json::from_str(&meta("input_shape")).unwrap();
    let mut m = Sequential::<f32>::from_config(&cfg).unwrap().input(&shape);
    m.build().unwrap();
    let names: Vec<String> = m.named_params().into_iter().map(|(n, _)| n).collect();
    for n in &names {
        let (s, v) = &f.tensors[&format!("weight/{n}")];
        m.set_weight_f64(n, s, v).unwrap();
    }
    let t = |k: &str| f.tensors[k].clone();
    let (xs, xv) = t("x");
    let (ys, yv) = t("y");
    let x = Tensor::<f32>::from_f64(&xs, &xv).unwrap();
    let y = Tensor::<f32>::from_f64(&ys, &yv).unwrap();
    m.compile(Loss::Mse, Optimizer::adam(1e-3)).unwrap();
    let epochs: usize = meta("epochs").parse().unwrap();
    let opts = FitOptions::default().epochs(epochs).batch_size(32).validation_split(0.05).verbose(false);
    let h = m.fit(&x, &y, &opts, &mut []).unwrap();
    let series = memcell::datasets::seed_series().y0();
    let x_all = memcell::datasets::seed_series().x;
    let train: usize = meta("train").parse().unwrap();
    let mut ext = Vec::new();
    if meta("kind") == "xy" {
        let q = Tensor::<f32>::from_f64(&[20 - train, 1, 1], &x_all[train..]).unwrap();
        ext = m.predict(&q, 32).unwrap().to_f64();
    } else {
        let mut ctx = vec![series[train - 2], series[train - 1]];
        for _ in train..20 {
            let p = m.predict(&Tensor::<f32>::from_f64(&[1, 2, 1], &ctx).unwrap(), 1).unwrap().to_f64()[0];
            ctx = vec![ctx[1], p];
            ext.push(p);
        }
    }
    let keras = Run { loss: t("loss").1, val_loss: t("val_loss").1, extrapolation: t("extrapolation").1 };
    let ours = Run { loss: h.loss().to_vec(), val_loss: h.val_loss().to_vec(), extrapolation: ext };
    (keras, ours)
}

/// Worst of |a - b| / (|b| + floor) and where it is: relative error, with a floor for values
/// that pass near zero (a validation loss crossing 1e-6 has float32 noise of its own size).
fn worst_rel(a: &[f64], b: &[f64], floor: f64) -> (f64, usize) {
    assert_eq!(a.len(), b.len());
    let mut w = (0.0, 0);
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        let r = (x - y).abs() / (y.abs() + floor);
        if r > w.0 {
            w = (r, i);
        }
    }
    w
}

/// The trajectory agrees epoch by epoch; float32 rounding differences (summation order in
/// matrix products) grow slowly over 150 Adam steps, hence the looser tolerance over all
/// epochs. (S1's loss passes through 2.3e-4 at epoch 5, where float32 noise is 1e-4 relative;
/// measured: worst 1e-4 relative there, 4e-5 elsewhere, extrapolation within 1e-6.)
fn check(name: &str, first_epochs_rtol: f64, all_rtol: f64, extrap_atol: f64) {
    let (k, m) = keras_and_memcell(name);
    let (r10, e10) = worst_rel(&m.loss[..10], &k.loss[..10], 0.0);
    assert!(
        r10 < first_epochs_rtol,
        "{name}: loss of epoch {} differs by {r10:.2e} relative in the first 10 epochs",
        e10 + 1
    );
    let (r, e) = worst_rel(&m.loss, &k.loss, 1e-6);
    assert!(
        r < all_rtol,
        "{name}: loss of epoch {} differs by {r:.2e} relative ({} vs Keras {})",
        e + 1,
        m.loss[e],
        k.loss[e]
    );
    let (rv, ev) = worst_rel(&m.val_loss, &k.val_loss, 1e-6);
    assert!(
        rv < all_rtol,
        "{name}: val_loss of epoch {} differs by {rv:.2e} relative ({} vs Keras {})",
        ev + 1,
        m.val_loss[ev],
        k.val_loss[ev]
    );
    for (i, (a, b)) in m.extrapolation.iter().zip(&k.extrapolation).enumerate() {
        assert!((a - b).abs() < extrap_atol, "{name}: extrapolated point {} is {a}, Keras {b}", i + 13);
    }
}

#[test]
fn s1_simple_rnn_follows_keras_fit() {
    check("s1_simple_rnn200", 1e-3, 1e-2, 1e-3);
}

#[test]
fn s5_xy_regression_follows_keras_fit() {
    check("s5_xy_simple_rnn200", 1e-5, 1e-2, 1e-3);
}

#[test]
fn s3_lstm_stack_follows_keras_fit() {
    check("s3_lstm32x2", 1e-5, 1e-2, 1e-3);
}

#[test]
fn s4_dense_gru_stack_follows_keras_fit() {
    check("s4_dense16x2_gru32x2", 1e-5, 1e-2, 1e-3);
}

#[test]
fn s2_sigmoid_rnn_stack_follows_keras_fit() {
    check("s2_simple_rnn_sigmoid32x2", 1e-5, 1e-2, 1e-3);
}
