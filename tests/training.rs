//! The optimizer against Keras's numbers, the fit loop's semantics, determinism, save/load and
//! the callbacks.

use memcell::layers::{Dense, Gru, Lstm, SimpleRnn};
use memcell::loss::Loss;
use memcell::model::{Callback, CsvLogger, EarlyStopping, FitOptions, ModelCheckpoint, ReduceLrOnPlateau, Sequential};
use memcell::optim::Optimizer;
use memcell::tensor::Tensor;
use memcell::Error;
use ndarray::{Array1, Array2};
use ndarray_npy::NpzReader;
use rand::{Rng, SeedableRng};

fn adam_fixture() -> NpzReader<std::fs::File> {
    let f = std::fs::File::open(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/keras/adam_steps.npz")).unwrap();
    NpzReader::new(f).unwrap()
}

#[test]
fn adam_five_steps_match_keras_f64_and_f32() {
    let mut z = adam_fixture();
    let w0: Array1<f64> = z.by_name("w0").unwrap();
    let grads: Array2<f64> = z.by_name("grads").unwrap();
    let w: Array2<f64> = z.by_name("w").unwrap();
    let w32: Array2<f32> = z.by_name("w_f32").unwrap();

    // f64
    let mut p = memcell::layers::Param::<f64>::new("w", &[10], w0.to_vec());
    let mut opt = Optimizer::adam(0.01);
    for k in 0..5 {
        p.grad = grads.row(k).to_vec();
        opt.step(&mut [&mut p]);
        for i in 0..10 {
            let err = (p.value[i] - w[[k, i]]).abs();
            assert!(err <= 1e-6, "f64 step {}: w[{i}] = {} vs Keras {} (err {err:e})", k + 1, p.value[i], w[[k, i]]);
        }
    }
    // f32
    let mut p = memcell::layers::Param::<f32>::new("w", &[10], w0.iter().map(|&v| v as f32).collect());
    let mut opt = Optimizer::adam(0.01);
    for k in 0..5 {
        p.grad = grads.row(k).iter().map(|&v| v as f32).collect();
        opt.step(&mut [&mut p]);
        for i in 0..10 {
            let err = (p.value[i] - w32[[k, i]]).abs();
            assert!(err <= 1e-6, "f32 step {}: w[{i}] = {} vs Keras {} (err {err:e})", k + 1, p.value[i], w32[[k, i]]);
        }
    }
}

#[test]
fn seed_models_have_keras_parameter_counts() {
    let mut s1 = Sequential::<f32>::new().input(&[2, 1]).add(SimpleRnn::new(200)).add(Dense::new(1));
    let mut s2 = Sequential::<f32>::new()
        .input(&[2, 1])
        .add(SimpleRnn::new(500).activation("sigmoid").return_sequences(true))
        .add(SimpleRnn::new(500).activation("sigmoid"))
        .add(Dense::new(1));
    let mut s3 = Sequential::<f32>::new()
        .input(&[2, 1])
        .add(Lstm::new(250).return_sequences(true))
        .add(Lstm::new(250))
        .add(Dense::new(1));
    let mut s4 = Sequential::<f32>::new()
        .input(&[2, 1])
        .add(Dense::new(125))
        .add(Dense::new(125).activation("relu"))
        .add(Gru::new(250).return_sequences(true))
        .add(Gru::new(250))
        .add(Dense::new(1));
    let mut s5 = Sequential::<f32>::new().input(&[1, 1]).add(SimpleRnn::new(200)).add(Dense::new(1));
    for (m, want) in [(&mut s1, 40_601), (&mut s2, 752_001), (&mut s3, 753_251), (&mut s4, 675_501), (&mut s5, 40_601)]
    {
        m.build().unwrap();
        assert_eq!(m.param_count(), want);
        let s = m.summary().unwrap();
        assert!(s.contains(&format!("Total params: {}", memcell::model::group(want))), "{s}");
    }
    // Keras-style unique names.
    let names: Vec<&str> = s4.layers().iter().map(|l| l.name()).collect();
    assert_eq!(names, ["dense", "dense_1", "gru", "gru_1", "dense_2"]);
}

/// Noisy sine, windows of 10 -> next value.
fn sine_windows(n: usize, seed: u64) -> (Tensor<f32>, Tensor<f32>) {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let series: Vec<f32> = (0..n + 10).map(|t| (0.2 * t as f32).sin() + rng.gen_range(-0.05..0.05)).collect();
    let mut x = Vec::new();
    let mut y = Vec::new();
    for i in 0..n {
        x.extend_from_slice(&series[i..i + 10]);
        y.push(series[i + 10]);
    }
    (Tensor::new(&[n, 10, 1], x).unwrap(), Tensor::new(&[n, 1], y).unwrap())
}

fn sine_model(seed: u64) -> Sequential<f32> {
    let mut m = Sequential::<f32>::new().input(&[10, 1]).seed(seed).add(Lstm::new(16)).add(Dense::new(1));
    m.compile(Loss::Mse, Optimizer::adam(0.01)).unwrap();
    m
}

#[test]
fn noisy_sine_trains_to_low_validation_loss() {
    let (x, y) = sine_windows(400, 1);
    let mut m = sine_model(0);
    let h = m.fit(&x, &y, &FitOptions::default().epochs(25).validation_split(0.2).verbose(false), &mut []).unwrap();
    let (first, last) = (h.val_loss()[0], *h.val_loss().last().unwrap());
    // Targets have variance 0.5; noise alone is 0.05^2/3 ~ 8e-4.
    assert!(last < 5e-3, "val_loss {last:e} after 25 epochs (first epoch {first:e})");
    assert!(last < first / 10.0, "val_loss only went from {first:e} to {last:e}");
    assert_eq!(h.loss().len(), 25);
}

#[test]
fn fixed_seed_gives_bit_identical_weights_and_other_seeds_differ() {
    let (x, y) = sine_windows(100, 2);
    let run = |seed| {
        let mut m = sine_model(seed);
        m.fit(&x, &y, &FitOptions::default().epochs(3).batch_size(16).validation_split(0.1).verbose(false), &mut [])
            .unwrap();
        m.get_weights()
    };
    let (a, b, c) = (run(5), run(5), run(6));
    assert!(a.iter().zip(&b).all(|(u, v)| u.iter().zip(v).all(|(p, q)| p.to_bits() == q.to_bits())));
    assert_ne!(a, c);
}

#[test]
fn validation_split_is_keras_3s_tail_split() {
    // 10 samples, validation_split 0.05: 9 train, 1 validates (the last). With a model that
    // predicts 0 (zero weights, lr 0), val_loss is exactly the last target squared.
    let x = Tensor::new(&[10, 2, 1], (0..20).map(|v| v as f64).collect()).unwrap();
    let y = Tensor::new(&[10, 1], (1..=10).map(|v| v as f64).collect()).unwrap();
    let mut m = Sequential::<f64>::new().input(&[2, 1]).add(SimpleRnn::new(3)).add(Dense::new(1));
    m.build().unwrap();
    let zeros: Vec<Vec<f64>> = m.get_weights().iter().map(|w| vec![0.0; w.len()]).collect();
    m.set_weights(&zeros).unwrap();
    m.compile(Loss::Mse, Optimizer::sgd(0.0, 0.0, false)).unwrap();
    let h = m.fit(&x, &y, &FitOptions::default().epochs(1).validation_split(0.05).verbose(false), &mut []).unwrap();
    assert_eq!(h.val_loss(), [100.0]);
    let train_mean = (1..=9).map(|v| (v * v) as f64).sum::<f64>() / 9.0;
    assert!((h.loss()[0] - train_mean).abs() < 1e-12, "{:?}", h.loss());
}

#[test]
fn saved_model_predicts_bit_identically() {
    let (x, y) = sine_windows(64, 3);
    let mut m = sine_model(1);
    m.fit(&x, &y, &FitOptions::default().epochs(2).verbose(false), &mut []).unwrap();
    let dir = tempfile::tempdir().unwrap();
    m.save(dir.path()).unwrap();
    let mut back = Sequential::<f32>::load(dir.path()).unwrap();
    let (p, q) = (m.predict(&x, 32).unwrap(), back.predict(&x, 32).unwrap());
    assert!(p.data.iter().zip(&q.data).all(|(a, b)| a.to_bits() == b.to_bits()));
    let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(leftovers.len(), 2, "{leftovers:?}");
    // The config speaks Keras.
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("config.json")).unwrap()).unwrap();
    assert_eq!(cfg["config"]["layers"][1]["class_name"], "LSTM");
    assert_eq!(cfg["config"]["layers"][1]["config"]["units"], 16);
}

#[test]
fn early_stopping_restores_best_weights_and_reduce_lr_lowers_the_rate() {
    let (x, y) = sine_windows(120, 4);
    let mut m = sine_model(2);
    m.compile(Loss::Mse, Optimizer::adam(0.05)).unwrap();
    let mut es = EarlyStopping::new("val_loss", 3).restore_best_weights(true);
    let mut rl = ReduceLrOnPlateau::new("val_loss").patience(2).factor(0.5);
    let dir = tempfile::tempdir().unwrap();
    let mut csv = CsvLogger::new(dir.path().join("log.csv"));
    let mut ck = ModelCheckpoint::new(dir.path().join("best"), "val_loss", true);
    let cbs: &mut [&mut dyn Callback<f32>] = &mut [&mut es, &mut rl, &mut csv, &mut ck];
    let (xv, yv) = sine_windows(40, 9);
    let h = m
        .fit(
            &x,
            &y,
            &FitOptions::default().epochs(200).batch_size(16).validation_data(xv.clone(), yv.clone()).verbose(false),
            cbs,
        )
        .unwrap();
    assert!(es.stopped_epoch.is_some() && h.epochs_run < 200, "never stopped: ran {}", h.epochs_run);
    let best = h.val_loss().iter().cloned().fold(f64::INFINITY, f64::min);
    let now = m.evaluate(&xv, &yv, 32).unwrap();
    assert!((now - best).abs() <= 1e-6 * best.max(1e-12), "restored val_loss {now:e}, best was {best:e}");
    let lrs = h.get("learning_rate");
    assert!(lrs.last().unwrap() < &0.05, "learning rate never reduced: {lrs:?}");
    let log = std::fs::read_to_string(dir.path().join("log.csv")).unwrap();
    assert!(log.starts_with("epoch,learning_rate,loss,val_loss\n"), "{log}");
    assert_eq!(log.lines().count(), h.epochs_run + 1);
    let mut best_model = Sequential::<f32>::load(&dir.path().join("best")).unwrap();
    best_model.compile(Loss::Mse, Optimizer::adam(0.01)).unwrap();
    let ckl = best_model.evaluate(&xv, &yv, 32).unwrap();
    assert!((ckl - best).abs() <= 1e-6 * best, "checkpoint val_loss {ckl:e} vs best {best:e}");
}

#[test]
fn diverging_loss_stops_with_epoch_and_batch() {
    let x = Tensor::new(&[8, 3], (0..24).map(|v| v as f64).collect()).unwrap();
    let y = Tensor::new(&[8, 1], (0..8).map(|v| 1e3 * v as f64).collect()).unwrap();
    let mut m = Sequential::<f64>::new().input(&[3]).add(Dense::new(4)).add(Dense::new(1));
    m.compile(Loss::Mse, Optimizer::sgd(1e3, 0.0, false)).unwrap();
    let e = m.fit(&x, &y, &FitOptions::default().epochs(50).batch_size(4).verbose(false), &mut []).unwrap_err();
    match &e {
        Error::NonFiniteLoss { epoch, batch, .. } => assert!(*epoch >= 1 && (1..=2).contains(batch)),
        other => panic!("expected NonFiniteLoss, got {other}"),
    }
    let msg = e.to_string();
    assert!(msg.contains("epoch") && msg.contains("batch"), "{msg}");
    assert!(m.get_weights().iter().flatten().all(|v| v.is_finite()), "weights were updated with a non-finite gradient");
}

#[test]
fn bad_input_gives_typed_errors_naming_the_problem() {
    use memcell::layers::config::layer_from_config;
    use serde_json::json;
    let mut m = Sequential::<f64>::new().input(&[2, 1]).add(SimpleRnn::new(4)).add(Dense::new(1));
    m.compile(Loss::Mse, Optimizer::adam(1e-3)).unwrap();
    let x = Tensor::new(&[3, 2, 1], vec![0.1, 0.2, 0.3, 0.4, 0.5, 0.6]).unwrap();
    let y = Tensor::new(&[3, 1], vec![1.0, 2.0, 3.0]).unwrap();
    let fo = FitOptions::default().verbose(false);

    let bad_x = Tensor::new(&[3, 3, 1], vec![0.0; 9]).unwrap();
    let e = m.fit(&bad_x, &y, &fo, &mut []).unwrap_err();
    assert!(matches!(e, Error::Shape { .. }) && e.to_string().contains("[3, 3, 1]"), "{e}");

    let bad_y = Tensor::new(&[3, 2], vec![0.0; 6]).unwrap();
    let e = m.fit(&x, &bad_y, &fo, &mut []).unwrap_err();
    assert!(matches!(e, Error::Shape { .. }) && e.to_string().contains("[3, 2]"), "{e}");

    let mut nan_x = x.clone();
    nan_x.data[4] = f64::NAN;
    let e = m.fit(&nan_x, &y, &fo, &mut []).unwrap_err();
    assert!(matches!(e, Error::Data(_)) && e.to_string().contains("NaN") && e.to_string().contains("index 4"), "{e}");
    let mut inf_y = y.clone();
    inf_y.data[1] = f64::INFINITY;
    let e = m.fit(&x, &inf_y, &fo, &mut []).unwrap_err();
    assert!(e.to_string().contains("inf"), "{e}");

    // Targets that are the inputs (an autoencoder's fit(x, x)) are checked once, as inputs:
    // a NaN is still named, and a model whose output is not the input's shape is refused.
    let mut ae = Sequential::<f64>::new().input(&[3]).add(Dense::new(2)).add(Dense::new(3));
    ae.compile(Loss::Mse, Optimizer::adam(1e-3)).unwrap();
    let mut xx = Tensor::new(&[2, 3], vec![0.1, 0.2, 0.3, 0.4, 0.5, 0.6]).unwrap();
    xx.data[5] = f64::NAN;
    let e = ae.fit(&xx, &xx, &fo, &mut []).unwrap_err();
    assert!(matches!(e, Error::Data(_)) && e.to_string().contains("NaN") && e.to_string().contains("index 5"), "{e}");
    let x2 = Tensor::new(&[3, 2], vec![0.0; 6]).unwrap();
    let mut not_ae = Sequential::<f64>::new().input(&[2]).add(Dense::new(1));
    not_ae.compile(Loss::Mse, Optimizer::adam(1e-3)).unwrap();
    let e = not_ae.fit(&x2, &x2, &fo, &mut []).unwrap_err();
    assert!(matches!(e, Error::Shape { .. }) && e.to_string().contains("[3, 2]"), "{e}");

    let empty = Tensor::new(&[0, 2, 1], vec![]).unwrap();
    let e = m.fit(&empty, &Tensor::new(&[0, 1], vec![]).unwrap(), &fo, &mut []).unwrap_err();
    assert!(e.to_string().contains("no samples"), "{e}");

    let e = m.fit(&x, &y, &fo.clone().validation_split(0.9), &mut []).unwrap_err();
    assert!(e.to_string().contains("validation_split"), "{e}");

    let e = layer_from_config::<f64>("LSTM", &json!({"units": 4, "activation": "tanhh"})).err().unwrap();
    assert!(e.to_string().contains("tanhh"), "{e}");
    let e = layer_from_config::<f64>("ConvLSTM2D", &json!({"units": 4})).err().unwrap();
    assert!(matches!(e, Error::Unsupported { .. }) && e.to_string().contains("ConvLSTM2D"), "{e}");
    for bad in [json!(0), json!(-3), json!(2.5), json!("ten"), json!(null)] {
        let e = layer_from_config::<f64>("Dense", &json!({"units": bad})).err().unwrap();
        assert!(e.to_string().contains("units"), "{bad}: {e}");
    }
    // The seed's Dense(hidden_neurons/2) passes 125.0: accepted as 125 units.
    let mut d = Sequential::<f64>::new().input(&[2, 1]);
    d.push(layer_from_config::<f64>("Dense", &json!({"units": 125.0})).unwrap());
    d.build().unwrap();
    assert_eq!(d.param_count(), 250);

    let mut es = EarlyStopping::<f64>::new("val_loss", 2);
    let e = m.fit(&x, &y, &fo, &mut [&mut es]).unwrap_err();
    assert!(e.to_string().contains("val_loss"), "{e}");

    let mut unbuilt = Sequential::<f64>::new().add(Dense::new(1));
    assert!(unbuilt.build().unwrap_err().to_string().contains("input shape"));
}

#[test]
fn exponential_decay_schedule_follows_keras_formula() {
    let j = serde_json::json!({"type": "sgd", "learning_rate": {"class_name": "ExponentialDecay",
        "config": {"initial_learning_rate": 0.1, "decay_steps": 4, "decay_rate": 0.5, "staircase": false}}});
    let mut opt = Optimizer::from_json(&j).unwrap();
    let mut p = memcell::layers::Param::<f64>::new("w", &[1], vec![0.0]);
    p.grad = vec![1.0];
    let mut expected_w = 0.0;
    for step in 0..6u64 {
        let lr = 0.1 * 0.5f64.powf(step as f64 / 4.0);
        assert!((opt.learning_rate() - lr).abs() < 1e-15, "step {step}: {} vs {lr}", opt.learning_rate());
        opt.step(&mut [&mut p]);
        expected_w -= lr as f32 as f64;
        assert!((p.value[0] - expected_w).abs() < 1e-12);
    }
    let bad = serde_json::json!({"type": "adam", "learning_rate": {"type": "cosine_decay"}});
    assert!(Optimizer::from_json(&bad).unwrap_err().to_string().contains("cosine_decay"));
}

#[test]
fn fit_with_the_inputs_as_targets_trains_as_with_a_copy() {
    // fit(x, x) gathers each batch once and uses it as both; a copy of x as targets takes the
    // general path. The two must train the same model, bit for bit.
    let x = Tensor::new(&[20, 4], (0..80).map(|i| ((i * 7 % 13) as f32) / 13.0).collect()).unwrap();
    let run = |same: bool| {
        let mut m = Sequential::<f32>::new().input(&[4]).seed(1).add(Dense::new(2)).add(Dense::new(4));
        m.compile(Loss::Mse, Optimizer::adam(1e-2)).unwrap();
        let fo = FitOptions::default().epochs(3).batch_size(6).validation_split(0.2).verbose(false);
        let y = x.clone();
        m.fit(&x, if same { &x } else { &y }, &fo, &mut []).unwrap();
        m.get_weights()
    };
    assert_eq!(run(true), run(false));
}
