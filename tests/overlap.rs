//! A training step whose products are small overlaps the optimizer's update with the backward
//! pass on a second thread (see `Sequential::train_step`). It must be the same computation:
//! after a few epochs of `fit`, every weight is the same bits as with the plain order, for
//! every layer kind with weight penalties, and every optimizer and clipping option; and the
//! gradients are left at zero (the overlapped steps overwrite them instead of zeroing them).

use memcell::layers::config::layer_from_config;
use memcell::loss::Loss;
use memcell::model::{set_step_overlap, steps_overlapped, FitOptions, Sequential};
use memcell::optim::Optimizer;
use memcell::tensor::Tensor;
use serde_json::{json, Value};

/// The step-overlap switch is global: the tests take turns.
static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn l(class: &str, cfg: Value) -> Value {
    json!({"class_name": class, "config": cfg})
}

/// The weights before and after 3 epochs of `fit` (21 samples, batches of 8).
fn trained(layers: &[Value], input: &[usize], opt: &Value, overlap: bool) -> (Vec<Vec<f32>>, Vec<Vec<f32>>) {
    set_step_overlap(Some(overlap));
    let mut m = Sequential::<f32>::new().input(input).seed(3);
    for c in layers {
        m.push(layer_from_config::<f32>(c["class_name"].as_str().unwrap(), &c["config"]).unwrap());
    }
    m.build().unwrap();
    m.compile(Loss::Mse, Optimizer::from_json(opt).unwrap()).unwrap();
    let init = m.get_weights();
    let n = 21;
    let mut shape = vec![n];
    shape.extend_from_slice(input);
    let len: usize = shape.iter().product();
    let x = Tensor::new(&shape, (0..len).map(|i| ((i * 37 % 101) as f32 / 50.0 - 1.0) * 0.8).collect()).unwrap();
    let out = *m.output_shape().unwrap().last().unwrap();
    let y = Tensor::new(&[n, out], (0..n * out).map(|i| ((i * 13 % 29) as f32 / 29.0) - 0.4).collect()).unwrap();
    // Batches of 8: two full ones and a short one, shuffled, with a validation split.
    let fo = FitOptions::default().epochs(3).batch_size(8).validation_split(0.1).verbose(false);
    m.fit(&x, &y, &fo, &mut []).unwrap();
    // fit leaves every gradient at zero, however its steps ran.
    for (name, p) in m.named_params() {
        assert!(p.grad.iter().all(|&g| g == 0.0), "{name}: gradient not zero after fit (overlap {overlap})");
    }
    (init, m.get_weights())
}

#[test]
fn overlapped_update_gives_the_same_bits() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    memcell::tensor::set_threads(2);
    let reg = json!({"class_name": "L1L2", "config": {"l1": 1e-3, "l2": 1e-2}});
    let models: Vec<(&str, Vec<Value>, Vec<usize>)> = vec![
        (
            "SimpleRNN stack",
            vec![
                l("SimpleRNN", json!({"units": 6, "return_sequences": true, "kernel_regularizer": reg})),
                l("SimpleRNN", json!({"units": 5, "activation": "sigmoid", "recurrent_regularizer": reg})),
                l("Dense", json!({"units": 2})),
            ],
            vec![4, 3],
        ),
        (
            "LSTM stack",
            vec![
                l("LSTM", json!({"units": 5, "return_sequences": true, "bias_regularizer": reg})),
                l("LSTM", json!({"units": 4})),
                l("Dense", json!({"units": 1, "kernel_regularizer": reg})),
            ],
            vec![3, 2],
        ),
        (
            "Dense + GRU stack",
            vec![
                l("Dense", json!({"units": 6, "activation": "relu"})),
                l("GRU", json!({"units": 5, "return_sequences": true})),
                l("GRU", json!({"units": 4, "reset_after": false})),
                l("Dense", json!({"units": 1})),
            ],
            vec![3, 2],
        ),
        (
            "Bidirectional LSTM",
            vec![
                l("Bidirectional", json!({"layer": l("LSTM", json!({"units": 3})), "merge_mode": "concat"})),
                l("Dense", json!({"units": 1})),
            ],
            vec![4, 2],
        ),
        (
            "Dense autoencoder",
            vec![
                l("Dense", json!({"units": 3, "activation": "relu"})),
                l("Dense", json!({"units": 6, "activation": "sigmoid"})),
            ],
            vec![6],
        ),
    ];
    let opts = [
        json!({"class_name": "adam", "learning_rate": 0.01}),
        json!({"class_name": "adam", "learning_rate": 0.01, "clipnorm": 0.05}),
        json!({"class_name": "adam", "learning_rate": 0.01, "clipvalue": 0.01}),
        json!({"class_name": "adamw", "learning_rate": 0.01, "amsgrad": true}),
        json!({"class_name": "sgd", "learning_rate": 0.05, "momentum": 0.9, "nesterov": true}),
        json!({"class_name": "rmsprop", "learning_rate": 0.01, "momentum": 0.5, "centered": true}),
    ];
    for (name, layers, input) in &models {
        for opt in &opts {
            let before = steps_overlapped();
            let (init, a) = trained(layers, input, opt, true);
            let overlapped = steps_overlapped() - before;
            assert_eq!(overlapped, 9, "{name}, {opt}: 3 epochs of 3 batches should all overlap");
            let (_, b) = trained(layers, input, opt, false);
            assert_eq!(steps_overlapped() - before, overlapped, "{name}, {opt}: the plain run overlapped");
            for (i, (wa, wb)) in a.iter().zip(&b).enumerate() {
                let same = wa.iter().zip(wb).all(|(p, q)| p.to_bits() == q.to_bits());
                assert!(same, "{name}, {opt}: weight {i} differs between the overlapped and the plain step");
            }
            // Every weight moved: the comparison is between trained models.
            for (i, (wi, wa)) in init.iter().zip(&a).enumerate() {
                assert!(wi != wa, "{name}, {opt}: weight {i} did not change in training");
            }
        }
    }
    set_step_overlap(None);
}

#[test]
fn products_shared_with_the_idle_worker_give_the_same_bits() {
    // Seed-sized layers (21 rows, 0.3M weights): while the backward pass computes the first
    // layers' gradients no update job exists yet, and the products of that stretch are
    // shared with the waiting worker. Same bits as the plain step, which shares nothing.
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    memcell::tensor::set_threads(2);
    let layers = vec![
        l("SimpleRNN", json!({"units": 300, "return_sequences": true, "activation": "sigmoid"})),
        l("LSTM", json!({"units": 160})),
        l("Dense", json!({"units": 1})),
    ];
    let opt = json!({"class_name": "adam", "learning_rate": 0.001});
    let shared = memcell::tensor::groups_shared_with_idle_workers();
    let (_, a) = trained(&layers, &[2, 1], &opt, true);
    assert!(
        memcell::tensor::groups_shared_with_idle_workers() > shared,
        "no product of the overlapped backward pass was shared with the idle worker"
    );
    let (init, b) = trained(&layers, &[2, 1], &opt, false);
    for (i, (wa, wb)) in a.iter().zip(&b).enumerate() {
        assert!(wa.iter().zip(wb).all(|(p, q)| p.to_bits() == q.to_bits()), "weight {i} differs");
    }
    assert!(init.iter().zip(&a).all(|(wi, wa)| wi != wa), "a weight did not change in training");
    set_step_overlap(None);
}
