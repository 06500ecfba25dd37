//! Finite-difference gradient checks in f64 for every layer and option, on sequences longer
//! than one step: the analytic backward pass must match central differences of the objective
//! `sum(output * g) + regularization` for every weight (sampled elements), every input
//! element and every initial state.

#![allow(clippy::needless_range_loop)] // perturbing element i of variable k

use memcell::layers::config::layer_from_config;
use memcell::layers::recurrent::mask_from_u8;
use memcell::layers::Mask;
use memcell::model::Sequential;
use memcell::tensor::Tensor;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};

struct Case {
    layers: Vec<Value>,
    input: Vec<usize>, // (batch, time, features) or (batch, features)
    mask: Option<Vec<u8>>,
    initial_states: usize,
    units0: usize,
    training: bool,
    /// Call once on another input first (stateful layers carry its final state).
    stateful_warmup: bool,
    /// Tied weights (target layer, source layer).
    ties: Vec<(&'static str, &'static str)>,
}

impl Case {
    fn new(layers: Vec<Value>, input: &[usize]) -> Self {
        Case {
            layers,
            input: input.to_vec(),
            mask: None,
            initial_states: 0,
            units0: 0,
            training: false,
            stateful_warmup: false,
            ties: Vec::new(),
        }
    }
    fn mask(mut self, m: &[u8]) -> Self {
        self.mask = Some(m.to_vec());
        self
    }
    fn initial_states(mut self, n: usize, units: usize) -> Self {
        self.initial_states = n;
        self.units0 = units;
        self
    }
    fn training(mut self) -> Self {
        self.training = true;
        self
    }
    fn tie(mut self, target: &'static str, source: &'static str) -> Self {
        self.ties.push((target, source));
        self
    }
    fn stateful(mut self) -> Self {
        self.stateful_warmup = true;
        self
    }
}

fn l(class: &str, cfg: Value) -> Value {
    json!({"class_name": class, "config": cfg})
}

fn uniform(rng: &mut ChaCha8Rng, n: usize, a: f64) -> Vec<f64> {
    (0..n).map(|_| rng.gen_range(-a..a)).collect()
}

struct Setup {
    model: Sequential<f64>,
    x: Tensor<f64>,
    warm: Tensor<f64>,
    mask: Option<Mask>,
    init: Vec<Tensor<f64>>,
    g: Tensor<f64>,
    case_training: bool,
    stateful: bool,
    base: Vec<Vec<f64>>,
}

impl Setup {
    fn objective(&mut self) -> f64 {
        self.model.reset_states();
        if self.stateful {
            // The carried state is a constant for the second call (Keras stores it in a
            // non-trainable variable): produce it with the unperturbed weights.
            let cur = self.model.get_weights();
            self.model.set_weights(&self.base).unwrap();
            self.model.reseed_rng(7);
            self.model.call(&self.warm, self.case_training, self.mask.clone(), None).unwrap();
            self.model.set_weights(&cur).unwrap();
        }
        self.model.reseed_rng(11);
        let init = if self.init.is_empty() { None } else { Some(self.init.clone()) };
        let y = self.model.call(&self.x, self.case_training, self.mask.clone(), init).unwrap();
        y.data.iter().zip(&self.g.data).map(|(a, b)| a * b).sum::<f64>() + self.model.regularization_loss()
    }
}

fn check(name: &str, case: Case) {
    let mut rng = ChaCha8Rng::seed_from_u64(42);
    let mut m = Sequential::<f64>::new().input(&case.input[1..]).seed(3);
    for lc in &case.layers {
        let class = lc["class_name"].as_str().unwrap();
        m.push(layer_from_config::<f64>(class, &lc["config"]).unwrap());
    }
    for (t, src) in &case.ties {
        m = m.tie(t, src);
    }
    m.build().unwrap();
    // Random weights in [-0.6, 0.6] so every gate works in its non-linear range.
    for p in m.params_mut() {
        let n = p.value.len();
        p.value = uniform(&mut rng, n, 0.6);
    }
    let nx: usize = case.input.iter().product();
    let x = Tensor::new(&case.input, uniform(&mut rng, nx, 1.0)).unwrap();
    let warm = Tensor::new(&case.input, uniform(&mut rng, nx, 1.0)).unwrap();
    let mask = case.mask.as_ref().map(|mk| mask_from_u8(case.input[0], case.input[1], mk));
    let init: Vec<Tensor<f64>> = (0..case.initial_states)
        .map(|_| {
            Tensor::new(&[case.input[0], case.units0], uniform(&mut rng, case.input[0] * case.units0, 0.8)).unwrap()
        })
        .collect();
    let y0 = m.call(&x, false, mask.clone(), if init.is_empty() { None } else { Some(init.clone()) }).unwrap();
    let g = Tensor::new(&y0.shape, uniform(&mut rng, y0.data.len(), 1.0)).unwrap();
    let base = m.get_weights();
    let mut s =
        Setup { model: m, x, warm, mask, init, g, case_training: case.training, stateful: case.stateful_warmup, base };

    // Analytic gradients.
    s.objective();
    s.model.zero_grad();
    let g = s.g.clone();
    let dx = s.model.backward(&g).unwrap();
    s.model.add_regularization_grads();
    let analytic_params: Vec<(String, Vec<f64>)> =
        s.model.named_params().into_iter().map(|(n, p)| (n, p.grad.clone())).collect();
    let analytic_init = s.model.initial_state_grads();

    let h = 1e-6;
    let mut worst: f64 = 0.0;
    let mut checked = 0;
    let mut compare = |what: String, ana: f64, num: f64| {
        let err = (ana - num).abs() / (1e-6 + ana.abs().max(num.abs()));
        let abs = (ana - num).abs();
        assert!(
            abs < 1e-7 || err < 1e-5,
            "{name}: {what}: analytic {ana:e} vs numeric {num:e} (abs {abs:e}, rel {err:e})"
        );
        worst = worst.max(abs);
        checked += 1;
    };

    // Weights: up to 25 elements per variable, spread over the variable.
    let np = analytic_params.len();
    assert!(np > 0 || case.layers.iter().all(|l| l["class_name"] != "Dense"), "{name}: no parameters");
    for pi in 0..np {
        let len = analytic_params[pi].1.len();
        let stride = (len / 25).max(1);
        for i in (0..len).step_by(stride) {
            let orig = s.model.params_mut()[pi].value[i];
            s.model.params_mut()[pi].value[i] = orig + h;
            let fp = s.objective();
            s.model.params_mut()[pi].value[i] = orig - h;
            let fm = s.objective();
            s.model.params_mut()[pi].value[i] = orig;
            compare(format!("{}[{i}]", analytic_params[pi].0), analytic_params[pi].1[i], (fp - fm) / (2.0 * h));
        }
    }
    // Every input element.
    for i in 0..s.x.data.len() {
        let orig = s.x.data[i];
        s.x.data[i] = orig + h;
        let fp = s.objective();
        s.x.data[i] = orig - h;
        let fm = s.objective();
        s.x.data[i] = orig;
        compare(format!("input[{i}]"), dx.data[i], (fp - fm) / (2.0 * h));
    }
    // Initial states.
    if !s.init.is_empty() {
        assert_eq!(analytic_init.len(), s.init.len(), "{name}: initial-state gradients");
    }
    for k in 0..s.init.len() {
        for i in 0..s.init[k].data.len() {
            let orig = s.init[k].data[i];
            s.init[k].data[i] = orig + h;
            let fp = s.objective();
            s.init[k].data[i] = orig - h;
            let fm = s.objective();
            s.init[k].data[i] = orig;
            compare(format!("initial_state/{k}[{i}]"), analytic_init[k].data[i], (fp - fm) / (2.0 * h));
        }
    }
    assert!(checked > 10, "{name}: only {checked} values checked");
}

const MASK: [u8; 15] = [1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 0, 0, 1, 1, 0]; // (3, 5), row 2 has masked steps in the middle and end

fn rnn_variants(class: &str, extra: Value) -> Vec<(String, Case)> {
    let mut base = json!({"units": 3});
    for (k, v) in extra.as_object().unwrap() {
        base[k] = v.clone();
    }
    let with = |kv: &[(&str, Value)]| {
        let mut c = base.clone();
        for (k, v) in kv {
            c[*k] = v.clone();
        }
        c
    };
    let units = 3;
    let ns = if class == "LSTM" { 2 } else { 1 };
    let inp = [3usize, 5, 2];
    vec![
        ("last".into(), Case::new(vec![l(class, with(&[]))], &inp)),
        ("sequences".into(), Case::new(vec![l(class, with(&[("return_sequences", json!(true))]))], &inp)),
        (
            "go_backwards".into(),
            Case::new(vec![l(class, with(&[("go_backwards", json!(true)), ("return_sequences", json!(true))]))], &inp),
        ),
        ("no_bias".into(), Case::new(vec![l(class, with(&[("use_bias", json!(false))]))], &inp)),
        ("mask_last".into(), Case::new(vec![l(class, with(&[]))], &inp).mask(&MASK)),
        (
            "mask_sequences".into(),
            Case::new(vec![l(class, with(&[("return_sequences", json!(true))]))], &inp).mask(&MASK),
        ),
        (
            "mask_zero_output_backwards".into(),
            Case::new(
                vec![l(
                    class,
                    with(&[
                        ("return_sequences", json!(true)),
                        ("zero_output_for_mask", json!(true)),
                        ("go_backwards", json!(true)),
                    ]),
                )],
                &inp,
            )
            .mask(&MASK),
        ),
        (
            "initial_state".into(),
            Case::new(vec![l(class, with(&[("return_sequences", json!(true))]))], &inp).initial_states(ns, units),
        ),
        (
            "initial_state_masked_backwards".into(),
            Case::new(vec![l(class, with(&[("go_backwards", json!(true))]))], &inp)
                .mask(&MASK)
                .initial_states(ns, units),
        ),
        ("stateful_second_call".into(), Case::new(vec![l(class, with(&[("stateful", json!(true))]))], &inp).stateful()),
        (
            "dropout_training".into(),
            Case::new(
                vec![l(
                    class,
                    with(&[
                        ("dropout", json!(0.3)),
                        ("recurrent_dropout", json!(0.4)),
                        ("return_sequences", json!(true)),
                    ]),
                )],
                &inp,
            )
            .training(),
        ),
        (
            "regularizers".into(),
            Case::new(
                vec![l(
                    class,
                    with(&[
                        ("kernel_regularizer", json!({"class_name": "L1L2", "config": {"l1": 0.01, "l2": 0.02}})),
                        ("recurrent_regularizer", json!({"class_name": "L2", "config": {"l2": 0.03}})),
                        ("bias_regularizer", json!({"class_name": "L2", "config": {"l2": 0.05}})),
                        ("activity_regularizer", json!({"class_name": "L2", "config": {"l2": 0.04}})),
                    ]),
                )],
                &inp,
            ),
        ),
        ("return_state".into(), Case::new(vec![l(class, with(&[("return_state", json!(true))]))], &inp)),
    ]
}

#[test]
fn simple_rnn_all_options() {
    for (n, c) in rnn_variants("SimpleRNN", json!({})) {
        check(&format!("simple_rnn_{n}"), c);
    }
    for act in ["sigmoid", "softplus", "elu", "gelu", "swish", "softsign", "selu", "linear"] {
        check(
            &format!("simple_rnn_{act}"),
            Case::new(
                vec![l("SimpleRNN", json!({"units": 4, "activation": act, "return_sequences": true}))],
                &[2, 4, 3],
            ),
        );
    }
}

#[test]
fn lstm_all_options() {
    for (n, c) in rnn_variants("LSTM", json!({})) {
        check(&format!("lstm_{n}"), c);
    }
    for (n, c) in rnn_variants(
        "LSTM",
        json!({"unit_forget_bias": false, "recurrent_activation": "hard_sigmoid", "activation": "softsign"}),
    ) {
        check(&format!("lstm_hard_sigmoid_{n}"), c);
    }
}

#[test]
fn gru_reset_after_all_options() {
    for (n, c) in rnn_variants("GRU", json!({})) {
        check(&format!("gru_{n}"), c);
    }
}

#[test]
fn gru_reset_before_all_options() {
    for (n, c) in rnn_variants("GRU", json!({"reset_after": false})) {
        check(&format!("gru_reset_before_{n}"), c);
    }
}

#[test]
fn dense_2d_and_3d() {
    for act in ["linear", "tanh", "sigmoid", "softplus", "gelu", "softmax", "elu", "mish", "exponential"] {
        check(&format!("dense_2d_{act}"), Case::new(vec![l("Dense", json!({"units": 4, "activation": act}))], &[3, 5]));
        check(
            &format!("dense_3d_{act}"),
            Case::new(vec![l("Dense", json!({"units": 4, "activation": act}))], &[2, 3, 5]),
        );
    }
    check("dense_no_bias", Case::new(vec![l("Dense", json!({"units": 4, "use_bias": false}))], &[3, 5]));
    check(
        "dense_regularized",
        Case::new(
            vec![l(
                "Dense",
                json!({"units": 4, "activation": "tanh",
                       "kernel_regularizer": {"class_name": "L1L2", "config": {"l1": 0.01, "l2": 0.02}},
                       "bias_regularizer": {"class_name": "L1", "config": {"l1": 0.03}},
                       "activity_regularizer": {"class_name": "L1L2", "config": {"l1": 0.02, "l2": 0.05}}}),
            )],
            &[2, 3, 5],
        ),
    );
}

#[test]
fn bidirectional_merge_modes() {
    for cell in ["SimpleRNN", "LSTM", "GRU"] {
        for merge in ["concat", "sum", "mul", "ave"] {
            for rs in [false, true] {
                let c = Case::new(
                    vec![l(
                        "Bidirectional",
                        json!({"merge_mode": merge, "layer": l(cell, json!({"units": 3, "return_sequences": rs}))}),
                    )],
                    &[3, 5, 2],
                );
                check(&format!("bidirectional_{cell}_{merge}_{rs}"), c);
            }
        }
        let c = Case::new(
            vec![l("Bidirectional", json!({"layer": l(cell, json!({"units": 3, "return_sequences": true}))}))],
            &[3, 5, 2],
        )
        .mask(&MASK);
        check(&format!("bidirectional_{cell}_masked"), c);
    }
}

#[test]
fn stacks_and_shape_layers() {
    let cases = vec![
        (
            "s2_like_simple_rnn_sigmoid_x2",
            Case::new(
                vec![
                    l("SimpleRNN", json!({"units": 5, "activation": "sigmoid", "return_sequences": true})),
                    l("SimpleRNN", json!({"units": 4, "activation": "sigmoid"})),
                    l("Dense", json!({"units": 1})),
                ],
                &[4, 2, 1],
            ),
        ),
        (
            "s3_like_lstm_x2",
            Case::new(
                vec![
                    l("LSTM", json!({"units": 4, "return_sequences": true})),
                    l("LSTM", json!({"units": 3})),
                    l("Dense", json!({"units": 1})),
                ],
                &[4, 3, 1],
            ),
        ),
        (
            "s4_like_dense_dense_gru_gru",
            Case::new(
                vec![
                    l("Dense", json!({"units": 4})),
                    l("Dense", json!({"units": 4, "activation": "softplus"})),
                    l("GRU", json!({"units": 3, "return_sequences": true})),
                    l("GRU", json!({"units": 3})),
                    l("Dense", json!({"units": 1})),
                ],
                &[3, 4, 2],
            ),
        ),
        (
            "lstm_repeat_vector_lstm_dense3d",
            Case::new(
                vec![
                    l("LSTM", json!({"units": 3})),
                    l("RepeatVector", json!({"n": 4})),
                    l("LSTM", json!({"units": 3, "return_sequences": true})),
                    l("Dense", json!({"units": 2})),
                ],
                &[2, 5, 2],
            ),
        ),
        (
            "lstm_flatten_dense",
            Case::new(
                vec![
                    l("LSTM", json!({"units": 3, "return_sequences": true})),
                    l("Flatten", json!({})),
                    l("Dense", json!({"units": 2})),
                ],
                &[2, 4, 2],
            ),
        ),
        (
            "dense_reshape_gru",
            Case::new(
                vec![
                    l("Dense", json!({"units": 6})),
                    l("Reshape", json!({"target_shape": [8, 3]})),
                    l("GRU", json!({"units": 2})),
                ],
                &[2, 4, 3],
            ),
        ),
        (
            "masking_lstm_gru",
            Case::new(
                vec![
                    l("Masking", json!({"mask_value": 0.0})),
                    l("LSTM", json!({"units": 3, "return_sequences": true})),
                    l("GRU", json!({"units": 2})),
                ],
                &[3, 5, 2],
            ),
        ),
        (
            "masked_stack_lstm_simple_rnn_backwards",
            Case::new(
                vec![
                    l("LSTM", json!({"units": 3, "return_sequences": true})),
                    l("SimpleRNN", json!({"units": 3, "go_backwards": true})),
                ],
                &[3, 5, 3],
            )
            .mask(&MASK),
        ),
        (
            "dropout_layers_training",
            Case::new(
                vec![
                    l("Dropout", json!({"rate": 0.3})),
                    l("LSTM", json!({"units": 3, "return_sequences": true})),
                    l("Dropout", json!({"rate": 0.5})),
                    l("Dense", json!({"units": 2})),
                ],
                &[3, 4, 2],
            )
            .training(),
        ),
        (
            "stacked_initial_state",
            Case::new(
                vec![l("GRU", json!({"units": 3, "return_sequences": true})), l("LSTM", json!({"units": 2}))],
                &[2, 4, 2],
            )
            .initial_states(1, 3),
        ),
    ];
    for (n, c) in cases {
        check(n, c);
    }
}

/// The autoencoder pieces: the KL sparsity penalty (2-D and on sequences), tied weights in a
/// stacked autoencoder, the variational sampling layer with its KL term (sampling in
/// training, the mean at inference), and Gaussian input noise.
#[test]
fn autoencoder_pieces() {
    let sparse = json!({"units": 5, "activation": "sigmoid", "activity_sparsity": {"rho": 0.1, "beta": 3.0}});
    let cases = vec![
        ("sparse_dense_2d", Case::new(vec![l("Dense", sparse.clone()), l("Dense", json!({"units": 3}))], &[4, 3])),
        (
            "sparse_dense_on_sequences",
            Case::new(vec![l("Dense", sparse), l("LSTM", json!({"units": 2, "return_sequences": true}))], &[3, 4, 2]),
        ),
        (
            "tied_stacked_autoencoder",
            Case::new(
                vec![
                    l("Dense", json!({"name": "enc1", "units": 4, "activation": "tanh"})),
                    l("Dense", json!({"name": "enc2", "units": 2})),
                    l("Dense", json!({"name": "dec2", "units": 4, "activation": "tanh"})),
                    l("Dense", json!({"name": "dec1", "units": 3, "activation": "sigmoid"})),
                ],
                &[5, 3],
            )
            .tie("dec2", "enc2")
            .tie("dec1", "enc1"),
        ),
        (
            "variational_sampling_training",
            Case::new(
                vec![
                    l("Dense", json!({"units": 6, "activation": "tanh"})),
                    l("Dense", json!({"units": 4})),
                    l("Sampling", json!({"kl_weight": 0.3})),
                    l("Dense", json!({"units": 5, "activation": "sigmoid"})),
                ],
                &[4, 5],
            )
            .training(),
        ),
        (
            "variational_sampling_inference",
            Case::new(
                vec![
                    l("Dense", json!({"units": 4})),
                    l("Sampling", json!({"kl_weight": 0.7})),
                    l("Dense", json!({"units": 3})),
                ],
                &[3, 4],
            ),
        ),
        (
            "gaussian_noise_training",
            Case::new(
                vec![
                    l("GaussianNoise", json!({"stddev": 0.3})),
                    l("Dense", json!({"units": 3, "activation": "tanh"})),
                    l("Dense", json!({"units": 4})),
                ],
                &[4, 4],
            )
            .training(),
        ),
    ];
    for (n, c) in cases {
        check(n, c);
    }
}

/// The checker itself must be able to fail: a wrong gradient (here, a corrupted weight
/// gradient) is caught.
#[test]
#[should_panic(expected = "analytic")]
fn gradient_check_detects_a_wrong_gradient() {
    let mut m = Sequential::<f64>::new().input(&[3, 2]).add(memcell::layers::Lstm::new(2));
    m.build().unwrap();
    let x = Tensor::new(&[2, 3, 2], vec![0.1, -0.2, 0.3, 0.4, -0.5, 0.6, 0.7, 0.1, -0.3, 0.2, 0.5, -0.4]).unwrap();
    let y = m.call(&x, false, None, None).unwrap();
    let g = Tensor::new(&y.shape, vec![1.0; y.data.len()]).unwrap();
    m.zero_grad();
    m.backward(&g).unwrap();
    let mut ana = m.params_mut()[0].grad[0];
    ana += 1e-3; // the corruption
    let h = 1e-6;
    let orig = m.params_mut()[0].value[0];
    let f = |m: &mut Sequential<f64>, v: f64| {
        m.params_mut()[0].value[0] = v;
        m.call(&x, false, None, None).unwrap().data.iter().sum::<f64>()
    };
    let num = (f(&mut m, orig + h) - f(&mut m, orig - h)) / (2.0 * h);
    let rel = (ana - num).abs() / (1e-6 + ana.abs().max(num.abs()));
    assert!((ana - num).abs() < 1e-7 || rel < 1e-5, "analytic {ana} vs numeric {num}");
}
