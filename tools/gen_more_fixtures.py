#!/usr/bin/env python3
"""Write more Keras reference fixtures (memcell-fixture/1) into tests/fixtures/keras_extra/.

Needs the peers venv (see bench/setup_peers.sh): tensorflow-cpu, keras 3, numpy, safetensors.

    ../venv-peers/bin/python tools/gen_more_fixtures.py [OUTDIR]

OUTDIR defaults to tests/fixtures/keras_extra next to this script's repository root.
Self-contained: `make()` is tests/fixtures/keras/gen_fixtures.py's `make()` extended with
Bidirectional weight naming (weight/<bidi name>/<sub-layer name>/<variable>), per-fixture
`expect` checks against the numbers printed in Keras's own RNN tests, and a finiteness check.
Also writes the optimizer runs (*.npz) and losses.npz, each checked against a NumPy
re-implementation of the Keras formulas documented in keras_extra/README.md.

Every layer fixture is computed by Keras itself in float64. Random-weight fixtures draw every
variable from U(-0.5, 0.5); gradients are of sum(output * cotangent) via tf.GradientTape.
"""
import json
import os
import sys

import numpy as np
import tensorflow as tf

tf.config.threading.set_intra_op_parallelism_threads(2)
tf.config.threading.set_inter_op_parallelism_threads(2)
import keras  # noqa: E402
from keras import initializers, layers  # noqa: E402
from keras.src.backend import set_keras_mask  # noqa: E402
from safetensors.numpy import save_file  # noqa: E402

DT = "float64"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOURCE = f"keras {keras.__version__}, tensorflow {tf.__version__}, float64"


# --------------------------------------------------------------------------------------
# layer fixtures
# --------------------------------------------------------------------------------------

def const_init(layer_cls, units, **kw):
    """Keras test-suite initializers: kernel 0.01, recurrent 0.02, bias 0.03."""
    extra = {}
    if layer_cls is not layers.Dense:
        extra["recurrent_initializer"] = initializers.Constant(0.02)
    return layer_cls(
        units,
        kernel_initializer=initializers.Constant(0.01),
        bias_initializer=initializers.Constant(0.03),
        dtype=DT,
        **extra,
        **kw,
    )


def _call(model_layers, x, mask=None, initial_state=None, training=False):
    """Calls the layers in order. An explicit mask goes to the first layer only (as `mask=`, or
    attached to its input when its call() has no mask argument); Keras 3
    then propagates it eagerly (tensor._keras_mask) through layers that support masking
    (RNNs with return_sequences=True, Dense, Dropout, Bidirectional with return_sequences)."""
    h = x
    states = []
    for i, layer in enumerate(model_layers):
        kw = {"training": training}
        if i == 0 and mask is not None:
            m = tf.constant(mask.astype(bool))
            if layer._call_has_mask_arg:
                kw["mask"] = m
            else:
                # e.g. Dense, whose call() takes no mask: attach the mask to the input
                # tensor, as a Masking layer would; Keras passes it on to the next layers.
                h = tf.identity(h)
                set_keras_mask(h, m)
        if i == 0 and initial_state is not None:
            kw["initial_state"] = [tf.constant(s) for s in initial_state]
        out = layer(h, **kw)
        if isinstance(out, (list, tuple)):
            h, states = out[0], list(out[1:])
        else:
            h, states = out, []
    return h, states


def layer_variables(layer):
    """(key, variable) pairs; key is '<layer name>/<var>' or, for Bidirectional,
    '<bidi name>/<forward or backward sub-layer name>/<var>'."""
    if isinstance(layer, layers.Bidirectional):
        out = []
        for sub in (layer.forward_layer, layer.backward_layer):
            for w in sub.trainable_weights:
                out.append((f"{layer.name}/{sub.name}/{w.name}", w))
        assert len(out) == len(layer.trainable_weights)
        return out
    return [(f"{layer.name}/{w.name}", w) for w in layer.trainable_weights]


def make(spec, outdir):
    """spec: dict(name, layers=[factory...], input=array or shape, seed, weights='random'|'init',
    mask=None, initial_state=None, calls=1, grads=True, source=str, rtol, atol, expect={})."""
    rng = np.random.default_rng(spec.get("seed", 0))
    x = spec["input"]
    if isinstance(x, tuple):
        x = rng.uniform(-1.0, 1.0, size=x)
    x = np.asarray(x, dtype=np.float64)
    for idx, value in spec.get("edits", []):  # e.g. ((b, t), 0.0) makes a whole step 0.0
        x = x.copy()
        x[idx] = value
    keras.utils.clear_session()
    model_layers = [f() for f in spec["layers"]]
    mask = spec.get("mask")
    if mask is not None:
        mask = np.asarray(mask)
    init_state = spec.get("initial_state")
    xt = tf.constant(x)
    _call(model_layers, xt, mask, init_state)  # builds the variables

    tensors = {"input": x}
    variables = []
    for layer in model_layers:
        for key, w in layer_variables(layer):
            if spec.get("weights", "random") == "random":
                w.assign(rng.uniform(-0.5, 0.5, size=tuple(w.shape)))
            assert w.dtype == "float64", (spec["name"], key, w.dtype)
            assert "weight/" + key not in tensors, key
            tensors["weight/" + key] = np.array(w.numpy(), dtype=np.float64)
            variables.append((key, w))
        if getattr(layer, "stateful", False):
            layer.reset_state()
    if mask is not None:
        tensors["mask"] = np.asarray(mask, dtype=np.uint8)
    if init_state is not None:
        for i, s in enumerate(init_state):
            tensors[f"initial_state/{i}"] = np.asarray(s, dtype=np.float64)

    calls = spec.get("calls", 1)
    for _ in range(calls):
        y, states = _call(model_layers, xt, mask, init_state)
    assert y.dtype == tf.float64, (spec["name"], y.dtype)
    tensors["output"] = y.numpy()
    for i, s in enumerate(states):
        tensors[f"state/{i}"] = s.numpy()

    if spec.get("grads", True) and calls == 1:
        g = rng.uniform(-1.0, 1.0, size=tensors["output"].shape)
        with tf.GradientTape() as tape:
            tape.watch(xt)
            yy, _ = _call(model_layers, xt, mask, init_state)
            loss = tf.reduce_sum(yy * tf.constant(g))
        grads = tape.gradient(loss, [xt] + [w for _, w in variables])
        tensors["cotangent"] = g
        tensors["grad/input"] = grads[0].numpy()
        for (key, _), gr in zip(variables, grads[1:]):
            tensors[f"grad/{key}"] = tf.convert_to_tensor(gr).numpy()

    for k, v in tensors.items():
        assert np.all(np.isfinite(v)), (spec["name"], k)
        assert np.abs(v).max() < 1e4, (spec["name"], k, np.abs(v).max())
    for want_name, want in spec.get("expect", {}).items():
        got = tensors[want_name]
        want = np.asarray(want)
        assert got.shape == want.shape, (spec["name"], want_name, got.shape, want.shape)
        assert np.allclose(got, want, atol=1e-5, rtol=1e-5), (spec["name"], want_name, got, want)

    model = [{"class_name": type(L).__name__, "config": L.get_config()} for L in model_layers]
    meta = {
        "format": "memcell-fixture/1",
        "model": json.dumps(model),
        "calls": str(calls),
        "rtol": str(spec.get("rtol", 1e-9)),
        "atol": str(spec.get("atol", 1e-12)),
        "source": spec.get("source", SOURCE),
    }
    tensors = {k: np.ascontiguousarray(v) for k, v in tensors.items()}
    save_file(tensors, os.path.join(outdir, spec["name"] + ".safetensors"), metadata=meta)
    return spec["name"]


CELLS = {"simple_rnn": layers.SimpleRNN, "lstm": layers.LSTM, "gru": layers.GRU}

# Every elementwise activation of keras.activations that works as a string (no required
# argument). Aliases are left out: "swish" serialises as "silu", "hard_swish" as "hard_silu",
# None as "linear" (one fixture, simple_rnn_act_none, shows the None -> "linear" case).
ACTS = ["tanh", "sigmoid", "relu", "linear", "hard_sigmoid", "softsign", "elu", "selu",
        "softplus", "silu", "gelu", "leaky_relu", "relu6", "celu", "mish", "hard_silu",
        "hard_tanh", "hard_shrink", "soft_shrink", "tanh_shrink", "sparse_plus",
        "sparse_sigmoid", "squareplus", "log_sigmoid", "exponential"]

# mask for (3, 5) inputs: row 0 masks its first two steps, row 1 is ragged, row 2 masks its tail.
MASK3 = np.array([[0, 0, 1, 1, 1], [1, 0, 1, 0, 1], [1, 1, 1, 0, 0]])
MASK_FULLROW = np.array([[1, 1, 0, 1, 1], [0, 0, 0, 0, 0], [0, 1, 1, 1, 1]])


def nstate(cell):
    return 2 if cell == "lstm" else 1


def init_states(cell, batch, units, seed):
    r = np.random.default_rng(1000 + seed)
    return [r.uniform(-0.8, 0.8, size=(batch, units)) for _ in range(nstate(cell))]


def rnn(cell, units=4, name=None, **kw):
    cls = CELLS[cell]
    return lambda: cls(units, name=name or cell, dtype=DT, **kw)


def random_rnn_specs():
    specs = []
    seed = 100
    for cell in CELLS:
        def add(suffix, **spec):
            nonlocal seed
            seed += 1
            spec.setdefault("input", (3, 5, 3))
            specs.append(dict(name=f"{cell}_{suffix}", seed=seed, **spec))

        add("last", layers=[rnn(cell)])
        add("sequences", layers=[rnn(cell, return_sequences=True)])
        add("return_state_last", layers=[rnn(cell, return_state=True)])
        add("return_state_sequences", layers=[rnn(cell, return_sequences=True, return_state=True)])
        add("go_backwards_last", layers=[rnn(cell, go_backwards=True)])
        add("go_backwards_sequences", layers=[rnn(cell, go_backwards=True, return_sequences=True)])
        add("go_backwards_return_state_sequences",
            layers=[rnn(cell, go_backwards=True, return_sequences=True, return_state=True)])
        add("masked_last", mask=MASK3, layers=[rnn(cell)])
        add("masked_sequences", mask=MASK3, layers=[rnn(cell, return_sequences=True)])
        add("masked_return_state_sequences", mask=MASK3,
            layers=[rnn(cell, return_sequences=True, return_state=True)])
        add("masked_zero_output_sequences", mask=MASK3,
            layers=[rnn(cell, return_sequences=True, zero_output_for_mask=True)])
        add("masked_zero_output_last", mask=MASK3,
            layers=[rnn(cell, zero_output_for_mask=True)])
        add("masked_go_backwards_last", mask=MASK3, layers=[rnn(cell, go_backwards=True)])
        add("masked_go_backwards_sequences", mask=MASK3,
            layers=[rnn(cell, go_backwards=True, return_sequences=True)])
        add("masked_go_backwards_zero_output_sequences", mask=MASK3,
            layers=[rnn(cell, go_backwards=True, return_sequences=True, zero_output_for_mask=True)])
        add("fully_masked_row_sequences", mask=MASK_FULLROW,
            layers=[rnn(cell, return_sequences=True, return_state=True)])
        add("fully_masked_row_zero_output_sequences", mask=MASK_FULLROW,
            layers=[rnn(cell, return_sequences=True, zero_output_for_mask=True)])
        add("fully_masked_row_initial_state_last", mask=MASK_FULLROW,
            initial_state=init_states(cell, 3, 4, seed),
            layers=[rnn(cell, return_state=True)])
        add("initial_state_last", initial_state=init_states(cell, 3, 4, seed),
            layers=[rnn(cell)])
        add("initial_state_return_state_sequences", initial_state=init_states(cell, 3, 4, seed),
            layers=[rnn(cell, return_sequences=True, return_state=True)])
        add("initial_state_masked_go_backwards_sequences", mask=MASK3,
            initial_state=init_states(cell, 3, 4, seed),
            layers=[rnn(cell, go_backwards=True, return_sequences=True)])
        add("no_bias_sequences", layers=[rnn(cell, use_bias=False, return_sequences=True)])
        add("no_bias_masked_last", mask=MASK3, layers=[rnn(cell, use_bias=False)])
        add("stateful_sequences", calls=2, layers=[rnn(cell, stateful=True, return_sequences=True)])
        add("stateful_return_state_last", calls=2,
            layers=[rnn(cell, stateful=True, return_state=True)])
        add("stateful_masked_go_backwards_sequences", calls=2, mask=MASK3,
            layers=[rnn(cell, stateful=True, go_backwards=True, return_sequences=True)])
        add("dropout_args_inference_sequences",
            layers=[rnn(cell, return_sequences=True, dropout=0.3, recurrent_dropout=0.3)])
        if cell == "lstm":
            add("no_unit_forget_bias_sequences",
                layers=[rnn(cell, unit_forget_bias=False, return_sequences=True)])
        if cell == "gru":
            add("reset_before_sequences", layers=[rnn(cell, reset_after=False, return_sequences=True)])
            add("reset_before_no_bias_sequences",
                layers=[rnn(cell, reset_after=False, use_bias=False, return_sequences=True)])
            add("reset_before_masked_go_backwards_last", mask=MASK3,
                layers=[rnn(cell, reset_after=False, go_backwards=True)])
            add("reset_before_initial_state_return_state_sequences",
                initial_state=init_states(cell, 3, 4, seed),
                layers=[rnn(cell, reset_after=False, return_sequences=True, return_state=True)])
            add("reset_before_stateful_sequences", calls=2,
                layers=[rnn(cell, reset_after=False, stateful=True, return_sequences=True)])
            add("no_bias_reset_after_sequences",
                layers=[rnn(cell, reset_after=True, use_bias=False, return_sequences=True)])
    return specs


def activation_specs():
    specs = []
    n = len(ACTS)
    for i, a in enumerate(ACTS):
        specs.append(dict(name=f"simple_rnn_act_{a}", seed=300 + i, input=(2, 4, 3),
                          layers=[rnn("simple_rnn", 3, activation=a, return_sequences=True)]))
    specs.append(dict(name="simple_rnn_act_none", seed=299, input=(2, 4, 3),
                      layers=[rnn("simple_rnn", 3, activation=None, return_sequences=True)]))
    for i, a in enumerate(ACTS):
        ra = ACTS[(i + 7) % n]
        specs.append(dict(name=f"lstm_act_{a}_rec_{ra}", seed=400 + i, input=(2, 4, 3),
                          layers=[rnn("lstm", 3, activation=a, recurrent_activation=ra,
                                      return_sequences=True)]))
    for i, a in enumerate(ACTS):
        ra = ACTS[(i + 13) % n]
        specs.append(dict(name=f"gru_act_{a}_rec_{ra}", seed=500 + i, input=(2, 4, 3),
                          layers=[rnn("gru", 3, activation=a, recurrent_activation=ra,
                                      return_sequences=True)]))
    # GRU reset_after=False with non-default activations, and the None alias on a gate
    specs.append(dict(name="gru_reset_before_act_relu_rec_hard_sigmoid", seed=551, input=(2, 4, 3),
                      layers=[rnn("gru", 3, activation="relu", recurrent_activation="hard_sigmoid",
                                  reset_after=False, return_sequences=True)]))
    specs.append(dict(name="lstm_act_none_rec_none", seed=552, input=(2, 4, 3),
                      layers=[rnn("lstm", 3, activation=None, recurrent_activation=None,
                                  return_sequences=True)]))
    return specs


def keras_golden_specs():
    """Keras's own tests (keras/src/layers/rnn/{simple_rnn,lstm,gru}_test.py), constant
    initializers, arange inputs; `expect` holds the numbers printed in those tests (float32
    there, checked here to 1e-5); the stored `output` is Keras's float64 result."""
    specs = []
    a24_234 = np.arange(24).reshape((2, 3, 4)).astype(np.float64)
    a24_243 = np.arange(24).reshape((2, 4, 3)).astype(np.float64)
    a72 = np.arange(72).reshape((3, 6, 4)).astype(np.float64)

    def g(name, test, x, cls, units, expect, **kw):
        call_kw = {k: kw.pop(k) for k in ("mask", "initial_state", "calls") if k in kw}
        specs.append(dict(name=f"keras_test_{name}", weights="init", input=x,
                          layers=[lambda: const_init(cls, units, name=LNAME[cls], **kw)],
                          expect={"output": expect}, **call_kw,
                          source=f"Keras {test} set-up (constant initializers 0.01/0.02/0.03, "
                                 f"arange input), recomputed by keras {keras.__version__} in "
                                 f"float64; expected values printed in that test checked to 1e-5"))

    LNAME = {layers.SimpleRNN: "simple_rnn", layers.LSTM: "lstm", layers.GRU: "gru"}

    def rep(rows, n):
        return [[v] * n for v in rows]

    S = layers.SimpleRNN
    t = "simple_rnn_test.py"
    g("simple_rnn_correctness", f"{t} test_correctness", a24_234, S, 4, rep([0.405432, 0.73605347], 4))
    g("simple_rnn_correctness_go_backwards", f"{t} test_correctness", a24_234, S, 4,
      rep([0.11144729, 0.5528889], 4), go_backwards=True)
    g("simple_rnn_statefulness", f"{t} test_statefulness", a24_234, S, 4,
      rep([0.40559256, 0.7361247], 4), stateful=True, calls=2)
    ist = [np.arange(8).reshape((2, 4)).astype(np.float64)]
    g("simple_rnn_initial_state", f"{t} test_pass_initial_state", a24_243, S, 4,
      rep([0.33621645, 0.6262637], 4), initial_state=ist)
    g("simple_rnn_initial_state_go_backwards", f"{t} test_pass_initial_state", a24_243, S, 4,
      rep([0.07344437, 0.43043602], 4), initial_state=ist, go_backwards=True)
    smask = np.array([[1, 1, 0, 1], [1, 0, 0, 1]])
    g("simple_rnn_masking", f"{t} test_masking", a24_243, S, 4,
      rep([0.32951632, 0.61799484], 4), mask=smask)
    g("simple_rnn_masking_sequences", f"{t} test_masking", a24_243, S, 2,
      [rep([0.0599281, 0.15122814, 0.15122814, 0.32394567], 2),
       rep([0.3969304, 0.3969304, 0.3969304, 0.608085], 2)], mask=smask, return_sequences=True)
    g("simple_rnn_masking_zero_output", f"{t} test_masking", a24_243, S, 2,
      [rep([0.0599281, 0.15122814, 0.0, 0.32394567], 2),
       rep([0.3969304, 0.0, 0.0, 0.608085], 2)], mask=smask, return_sequences=True,
      zero_output_for_mask=True)
    g("simple_rnn_masking_go_backwards", f"{t} test_masking", a24_243, S, 4,
      rep([0.07376196, 0.43645123], 4), mask=smask, go_backwards=True)

    L = layers.LSTM
    t = "lstm_test.py"
    g("lstm_correctness", f"{t} test_correctness", a72, L, 3, rep([0.6288687, 0.86899155, 0.9460773], 3))
    g("lstm_correctness_go_backwards", f"{t} test_correctness", a72, L, 3,
      rep([0.35622165, 0.74789524, 0.8872726], 3), go_backwards=True)
    g("lstm_correctness_no_unit_forget_bias", f"{t} test_correctness", a72, L, 3,
      rep([0.57019705, 0.8661914, 0.9459622], 3), unit_forget_bias=False)
    g("lstm_correctness_no_bias", f"{t} test_correctness", a72, L, 3,
      rep([0.54986924, 0.86226785, 0.9443936], 3), use_bias=False)
    g("lstm_statefulness", f"{t} test_statefulness", a24_234, L, 4,
      rep([0.3124785, 0.6863672], 4), stateful=True, calls=2)
    ist = [np.arange(4).reshape((2, 2)).astype(np.float64)] * 2
    g("lstm_initial_state", f"{t} test_pass_initial_state", a24_243, L, 2,
      [[0.20574439, 0.3558822], [0.64930826, 0.66276]], initial_state=ist)
    g("lstm_initial_state_go_backwards", f"{t} test_pass_initial_state", a24_243, L, 2,
      [[0.13281618, 0.2790356], [0.5839337, 0.5992567]], initial_state=ist, go_backwards=True)
    lmask = np.array([[1, 1, 1, 0], [1, 1, 0, 0]])
    g("lstm_masking", f"{t} test_masking", a24_243, L, 2, rep([0.11755939, 0.28556206], 2), mask=lmask)
    g("lstm_masking_sequences", f"{t} test_masking", a24_243, L, 2,
      [rep([0.01588910, 0.05552048, 0.11755939, 0.11755939], 2),
       rep([0.14185596, 0.28556206, 0.28556206, 0.28556206], 2)], mask=lmask, return_sequences=True)
    g("lstm_masking_zero_output", f"{t} test_masking", a24_243, L, 2,
      [rep([0.01588910, 0.05552048, 0.11755939, 0.0], 2),
       rep([0.14185596, 0.28556206, 0.0, 0.0], 2)], mask=lmask, return_sequences=True,
      zero_output_for_mask=True)
    g("lstm_masking_go_backwards", f"{t} test_masking", a24_243, L, 2,
      rep([0.15341201, 0.3844719], 2), mask=np.array([[0, 1, 1, 1], [0, 0, 1, 1]]), go_backwards=True)

    G = layers.GRU
    t = "gru_test.py"
    g("gru_correctness", f"{t} test_correctness", a72, G, 3, rep([0.5217289, 0.6371659, 0.39384964], 3))
    g("gru_correctness_go_backwards", f"{t} test_correctness", a72, G, 3,
      rep([0.24406259, 0.611516, 0.3928808], 3), go_backwards=True)
    g("gru_correctness_reset_before", f"{t} test_correctness", a72, G, 3,
      rep([0.51447755, 0.6426879, 0.40208298], 3), reset_after=False)
    g("gru_correctness_no_bias", f"{t} test_correctness", a72, G, 3,
      rep([0.49988455, 0.64701194, 0.4103359], 3), use_bias=False)
    g("gru_statefulness", f"{t} test_statefulness", a24_234, G, 4,
      rep([0.29542392, 0.5885018], 4), stateful=True, calls=2)
    ist = [np.arange(4).reshape((2, 2)).astype(np.float64)]
    g("gru_initial_state", f"{t} test_pass_initial_state", a24_243, G, 2,
      [[0.23774096, 0.33508456], [0.83659905, 1.0227708]], initial_state=ist)
    g("gru_initial_state_go_backwards", f"{t} test_pass_initial_state", a24_243, G, 2,
      [[0.13486053, 0.23261218], [0.78257304, 0.9691353]], initial_state=ist, go_backwards=True)
    g("gru_return_state", f"{t} test_pass_return_state", a24_243, G, 2,
      [[0.23774096, 0.33508456], [0.83659905, 1.0227708]], initial_state=ist, return_state=True)
    g("gru_return_state_go_backwards", f"{t} test_pass_return_state", a24_243, G, 2,
      [[0.13486053, 0.23261218], [0.78257304, 0.9691353]], initial_state=ist, return_state=True,
      go_backwards=True)
    gmask = np.array([[1, 1, 0, 1], [1, 0, 0, 1]])
    g("gru_masking", f"{t} test_masking", a24_243, G, 2, rep([0.19393763, 0.30818558], 2), mask=gmask)
    g("gru_masking_sequences", f"{t} test_masking", a24_243, G, 2,
      [rep([0.03606692, 0.09497581, 0.09497581, 0.19393763], 2),
       rep([0.16051409, 0.16051409, 0.16051409, 0.30818558], 2)], mask=gmask, return_sequences=True)
    g("gru_masking_zero_output", f"{t} test_masking", a24_243, G, 2,
      [rep([0.03606692, 0.09497581, 0.0, 0.19393763], 2),
       rep([0.16051409, 0.0, 0.0, 0.30818558], 2)], mask=gmask, return_sequences=True,
      zero_output_for_mask=True)
    g("gru_masking_go_backwards", f"{t} test_masking", a24_243, G, 2,
      rep([0.11669192, 0.28380975], 2), mask=gmask, go_backwards=True)
    return specs


MERGES = ["concat", "sum", "mul", "ave"]


def bidi(cell, merge, units=3, **kw):
    cls = CELLS[cell]
    return lambda: layers.Bidirectional(cls(units, name=cell, dtype=DT, **kw), merge_mode=merge,
                                        name="bidirectional", dtype=DT)


def bidirectional_specs():
    specs = []
    seed = 600
    for cell in CELLS:
        for merge in MERGES:
            for rs in (True, False):
                seed += 1
                specs.append(dict(
                    name=f"bidirectional_{cell}_{merge}_{'sequences' if rs else 'last'}",
                    seed=seed, input=(3, 4, 2), layers=[bidi(cell, merge, return_sequences=rs)]))
    specs += [
        dict(name="bidirectional_lstm_concat_masked_sequences", seed=651, input=(3, 5, 3), mask=MASK3,
             layers=[bidi("lstm", "concat", return_sequences=True)]),
        dict(name="bidirectional_gru_sum_masked_last", seed=652, input=(3, 5, 3), mask=MASK3,
             layers=[bidi("gru", "sum")]),
        dict(name="bidirectional_simple_rnn_ave_masked_zero_output_sequences", seed=653,
             input=(3, 5, 3), mask=MASK3,
             layers=[bidi("simple_rnn", "ave", return_sequences=True, zero_output_for_mask=True)]),
        dict(name="bidirectional_lstm_concat_return_state_last", seed=654, input=(3, 4, 2),
             layers=[bidi("lstm", "concat", return_state=True)]),
        dict(name="bidirectional_gru_mul_return_state_sequences", seed=655, input=(3, 4, 2),
             layers=[bidi("gru", "mul", return_sequences=True, return_state=True)]),
        # Keras 3 rejects Bidirectional(GRU(go_backwards=True)) without an explicit backward
        # layer (both copies would have go_backwards=True); with an explicit backward_layer
        # (go_backwards=False) it is valid, and the backward output is still flipped.
        dict(name="bidirectional_gru_concat_explicit_backward_layer_sequences", seed=656,
             input=(3, 4, 2),
             layers=[lambda: layers.Bidirectional(
                 layers.GRU(3, return_sequences=True, go_backwards=True, name="gru", dtype=DT),
                 backward_layer=layers.GRU(3, return_sequences=True, name="backward_gru", dtype=DT),
                 merge_mode="concat", name="bidirectional", dtype=DT)]),
        dict(name="bidirectional_gru_concat_reset_before_sequences", seed=657, input=(3, 4, 2),
             layers=[bidi("gru", "concat", return_sequences=True, reset_after=False)]),
        dict(name="stack_bidirectional_lstm_concat_lstm_dense", seed=658, input=(3, 5, 2),
             layers=[bidi("lstm", "concat", return_sequences=True),
                     lambda: layers.LSTM(3, name="lstm", dtype=DT),
                     lambda: layers.Dense(2, name="dense", dtype=DT)]),
        dict(name="stack_masked_bidirectional_gru_concat_dense", seed=659, input=(3, 5, 2), mask=MASK3,
             layers=[bidi("gru", "concat", return_sequences=True),
                     lambda: layers.Dense(2, name="dense", dtype=DT)]),
    ]
    return specs


def dense(units, act=None, name="dense", **kw):
    return lambda: layers.Dense(units, activation=act, name=name, dtype=DT, **kw)


def dense_and_stack_specs():
    specs = []
    seed = 700
    for act in ["relu", "sigmoid", "linear", "tanh", "softmax"]:
        for shape, tag in (((4, 3), "2d"), ((2, 4, 3), "3d")):
            seed += 1
            specs.append(dict(name=f"dense_{act}_{tag}", seed=seed, input=shape,
                              layers=[dense(5, act)]))
    specs.append(dict(name="dense_no_bias_3d", seed=720, input=(2, 4, 3),
                      layers=[dense(5, "relu", use_bias=False)]))
    specs.append(dict(name="dense_softmax_dense_2d", seed=721, input=(4, 3),
                      layers=[dense(5, "relu"), dense(3, "softmax", name="dense_1")]))
    specs += [
        dict(name="stack_s2_simple_rnn_sigmoid_x2_dense", seed=730, input=(4, 5, 2),
             layers=[lambda: layers.SimpleRNN(6, activation="sigmoid", return_sequences=True,
                                              name="simple_rnn", dtype=DT),
                     lambda: layers.SimpleRNN(6, activation="sigmoid", name="simple_rnn_1", dtype=DT),
                     dense(1)]),
        dict(name="stack_s4_dense_dense_relu_gru_gru_dense", seed=731, input=(4, 5, 2),
             layers=[dense(4), dense(4, "relu", name="dense_1"),
                     lambda: layers.GRU(3, return_sequences=True, name="gru", dtype=DT),
                     lambda: layers.GRU(3, name="gru_1", dtype=DT),
                     dense(1, name="dense_2")]),
        dict(name="stack_lstm_repeat_vector_lstm_dense", seed=732, input=(3, 5, 2),
             layers=[lambda: layers.LSTM(3, name="lstm", dtype=DT),
                     lambda: layers.RepeatVector(3, name="repeat_vector", dtype=DT),
                     lambda: layers.LSTM(3, return_sequences=True, name="lstm_1", dtype=DT),
                     dense(2)]),
        dict(name="stack_lstm_flatten_dense", seed=733, input=(3, 4, 2),
             layers=[lambda: layers.LSTM(3, return_sequences=True, name="lstm", dtype=DT),
                     lambda: layers.Flatten(name="flatten", dtype=DT),
                     dense(2)]),
        dict(name="stack_dense_reshape_lstm", seed=734, input=(2, 4, 3),
             layers=[dense(6),
                     lambda: layers.Reshape((8, 3), name="reshape", dtype=DT),
                     lambda: layers.LSTM(2, name="lstm", dtype=DT)]),
        dict(name="stack_gru_reshape_dense", seed=735, input=(2, 4, 3),
             layers=[lambda: layers.GRU(4, return_sequences=True, name="gru", dtype=DT),
                     lambda: layers.Reshape((2, 8), name="reshape", dtype=DT),
                     dense(2)]),
        dict(name="stack_lstm_dropout_dense", seed=736, input=(3, 4, 2),
             layers=[lambda: layers.LSTM(3, return_sequences=True, name="lstm", dtype=DT),
                     lambda: layers.Dropout(0.5, name="dropout", dtype=DT),
                     dense(2)]),
        dict(name="stack_dropout_simple_rnn_dropout_dense", seed=737, input=(3, 4, 2),
             layers=[lambda: layers.Dropout(0.3, name="dropout", dtype=DT),
                     lambda: layers.SimpleRNN(3, name="simple_rnn", dtype=DT),
                     lambda: layers.Dropout(0.3, name="dropout_1", dtype=DT),
                     dense(1)]),
        # explicit mask given to the first layer; Keras propagates it to the next layers
        dict(name="stack_masked_lstm_gru_dense", seed=738, input=(3, 5, 3), mask=MASK3,
             layers=[lambda: layers.LSTM(3, return_sequences=True, name="lstm", dtype=DT),
                     lambda: layers.GRU(3, return_sequences=True, name="gru", dtype=DT),
                     dense(2)]),
        dict(name="stack_masked_simple_rnn_lstm_last", seed=739, input=(3, 5, 3), mask=MASK3,
             layers=[lambda: layers.SimpleRNN(3, return_sequences=True, name="simple_rnn", dtype=DT),
                     lambda: layers.LSTM(3, go_backwards=True, name="lstm", dtype=DT)]),
        dict(name="stack_masked_dense_gru_zero_output", seed=740, input=(3, 5, 3), mask=MASK3,
             layers=[dense(4, "tanh"),
                     lambda: layers.GRU(3, return_sequences=True, zero_output_for_mask=True,
                                        name="gru", dtype=DT)]),
    ]
    return specs


# Edits for the Masking fixtures: steps (0, 2), (1, 0), (1, 1), (2, 4) are set to the mask
# value in every feature (row 1 has its first two steps masked); step (0, 3) has only feature 0
# at the mask value, so it stays unmasked.
def mask_edits(value):
    return [((b, t), value) for b, t in [(0, 2), (1, 0), (1, 1), (2, 4)]] + [((0, 3, 0), value)]


def masking(value=0.0):
    return lambda: layers.Masking(mask_value=value, name="masking", dtype=DT)


def masking_specs():
    E = mask_edits(0.0)
    return [
        dict(name="masking_lstm_last", seed=801, input=(3, 5, 3), edits=E,
             layers=[masking(), lambda: layers.LSTM(4, name="lstm", dtype=DT)]),
        dict(name="masking_lstm_sequences", seed=802, input=(3, 5, 3), edits=E,
             layers=[masking(), lambda: layers.LSTM(4, return_sequences=True, name="lstm", dtype=DT)]),
        dict(name="masking_lstm_zero_output_sequences", seed=803, input=(3, 5, 3), edits=E,
             layers=[masking(), lambda: layers.LSTM(4, return_sequences=True, zero_output_for_mask=True,
                                                    name="lstm", dtype=DT)]),
        dict(name="masking_lstm_go_backwards_return_state", seed=804, input=(3, 5, 3), edits=E,
             layers=[masking(), lambda: layers.LSTM(4, go_backwards=True, return_state=True,
                                                    name="lstm", dtype=DT)]),
        dict(name="masking_simple_rnn_sequences", seed=805, input=(3, 5, 3), edits=E,
             layers=[masking(), lambda: layers.SimpleRNN(4, return_sequences=True, name="simple_rnn",
                                                         dtype=DT)]),
        dict(name="masking_gru_last", seed=806, input=(3, 5, 3), edits=E,
             layers=[masking(), lambda: layers.GRU(4, name="gru", dtype=DT)]),
        dict(name="masking_lstm_lstm_dense", seed=807, input=(3, 5, 3), edits=E,
             layers=[masking(), lambda: layers.LSTM(4, return_sequences=True, name="lstm", dtype=DT),
                     lambda: layers.LSTM(3, name="lstm_1", dtype=DT), dense(1)]),
        dict(name="masking_bidirectional_lstm_concat_sequences", seed=808, input=(3, 5, 3), edits=E,
             layers=[masking(), bidi("lstm", "concat", return_sequences=True)]),
        dict(name="masking_value_minus1_gru_sequences", seed=809, input=(3, 5, 3), edits=mask_edits(-1.0),
             layers=[masking(-1.0), lambda: layers.GRU(3, return_sequences=True, name="gru", dtype=DT)]),
    ]


def check_masking_fixture(path):
    from safetensors import safe_open
    with safe_open(path, "np") as f:
        meta = f.metadata()
        keys = list(f.keys())
    model = json.loads(meta["model"])
    assert model[0]["class_name"] == "Masking" and "mask_value" in model[0]["config"], model[0]
    assert "mask" not in keys


# --------------------------------------------------------------------------------------
# optimizers
# --------------------------------------------------------------------------------------

def f32(x):
    return float(np.float32(x))


def run_optimizer(make_opt, ws0, grads, dtype):
    """ws0: list of initial arrays; grads: list of (steps, n) arrays. Returns per-step
    variable values and optimizer slot values (float64 arrays, (steps, n))."""
    opt = make_opt()
    vs = [keras.Variable(w.astype(dtype), dtype=dtype, name=f"w{i}") for i, w in enumerate(ws0)]
    hist = {}

    def rec(k, v):
        hist.setdefault(k, []).append(np.array(v.numpy(), dtype=np.float64 if dtype == "float64" else np.float32))

    for step in range(grads[0].shape[0]):
        opt.apply_gradients([(tf.constant(g[step].astype(dtype)), v) for g, v in zip(grads, vs)])
        for i, v in enumerate(vs):
            sfx = "" if i == 0 else "_b"
            rec("w" + sfx, v)
            seen = set()
            for slot, attr in (("m", "_momentums"), ("v", "_velocities"), ("v_hat", "_velocity_hats"),
                               ("m", "momentums"), ("avg_g", "_average_gradients")):
                lst = getattr(opt, attr, None)
                if lst and slot not in seen:
                    seen.add(slot)
                    rec(slot + sfx, lst[opt._get_variable_index(v)])
    return {k: np.stack(v) for k, v in hist.items()}


def np_adam(ws0, grads, lr=0.01, b1=0.9, b2=0.999, eps=1e-7, amsgrad=False, wd=None,
            clipnorm=None, clipvalue=None, global_clipnorm=None):
    ws = [w.copy() for w in ws0]
    ms = [np.zeros_like(w) for w in ws0]
    vs = [np.zeros_like(w) for w in ws0]
    vh = [np.zeros_like(w) for w in ws0]
    out = {}
    lr32 = f32(lr)
    for t in range(1, grads[0].shape[0] + 1):
        gs = [g[t - 1] for g in grads]
        gs = clip(gs, clipnorm, clipvalue, global_clipnorm)
        for i in range(len(ws)):
            if wd is not None:
                ws[i] = ws[i] - ws[i] * f32(wd) * lr32
            alpha = lr32 * np.sqrt(1 - f32(b2) ** t) / (1 - f32(b1) ** t)
            ms[i] = ms[i] + (gs[i] - ms[i]) * (1 - b1)
            vs[i] = vs[i] + (gs[i] * gs[i] - vs[i]) * (1 - b2)
            v = vs[i]
            if amsgrad:
                vh[i] = np.maximum(vh[i], vs[i])
                v = vh[i]
            ws[i] = ws[i] - ms[i] * alpha / (np.sqrt(v) + eps)
            sfx = "" if i == 0 else "_b"
            out.setdefault("w" + sfx, []).append(ws[i].copy())
    return {k: np.stack(v) for k, v in out.items()}


def clip(gs, clipnorm, clipvalue, global_clipnorm):
    if clipnorm:
        return [g * clipnorm / max(np.sqrt(np.sum(g * g)), clipnorm) for g in gs]
    if global_clipnorm:
        n = np.sqrt(sum(np.sum(g * g) for g in gs))
        return [g * (global_clipnorm * min(1.0 / n, 1.0 / global_clipnorm)) for g in gs]
    if clipvalue:
        return [np.clip(g, -clipvalue, clipvalue) for g in gs]
    return gs


def np_sgd(w0, grads, lr=0.01, momentum=0.0, nesterov=False):
    w, m, out = w0.copy(), np.zeros_like(w0), []
    lr, mo = f32(lr), f32(momentum)
    for g in grads:
        if momentum != 0:
            m = m * mo - g * lr
            w = w + (m * mo - g * lr if nesterov else m)
        else:
            w = w - g * lr
        out.append(w.copy())
    return {"w": np.stack(out)}


def np_rmsprop(w0, grads, lr=0.01, rho=0.9, momentum=0.0, eps=1e-7, centered=False):
    w, v, a, mo, out = w0.copy(), np.zeros_like(w0), np.zeros_like(w0), np.zeros_like(w0), []
    lr = f32(lr)
    for g in grads:
        v = rho * v + (1 - rho) * (g * g)
        if centered:
            a = rho * a + (1 - rho) * g
            den = v - a * a + eps
        else:
            den = v + eps
        inc = lr * g / np.sqrt(den)
        if momentum > 0:
            mo = momentum * mo + inc
            w = w - mo
        else:
            w = w - inc
        out.append(w.copy())
    return {"w": np.stack(out)}


def gen_optimizers(outdir):
    base = np.load(os.path.join(ROOT, "tests", "fixtures", "keras", "adam_steps.npz"))
    w0, G = base["w0"], base["grads"]
    r = np.random.default_rng(2024)
    w0_b = r.uniform(-1.0, 1.0, size=7)
    G_b = r.normal(size=(5, 7))
    O = keras.optimizers
    runs = {
        # name: (factory, uses second variable, numpy reference)
        "adam_amsgrad": (lambda: O.Adam(0.01, amsgrad=True), False,
                         lambda: np_adam([w0], [G], amsgrad=True)),
        "adamw_wd0.004": (lambda: O.AdamW(0.01), False, lambda: np_adam([w0], [G], wd=0.004)),
        "adamw_wd0.1": (lambda: O.AdamW(0.01, weight_decay=0.1), False, lambda: np_adam([w0], [G], wd=0.1)),
        "sgd": (lambda: O.SGD(0.01), False, lambda: np_sgd(w0, G)),
        "sgd_momentum0.9": (lambda: O.SGD(0.01, momentum=0.9), False, lambda: np_sgd(w0, G, momentum=0.9)),
        "sgd_momentum0.9_nesterov": (lambda: O.SGD(0.01, momentum=0.9, nesterov=True), False,
                                     lambda: np_sgd(w0, G, momentum=0.9, nesterov=True)),
        "rmsprop": (lambda: O.RMSprop(0.01), False, lambda: np_rmsprop(w0, G)),
        "rmsprop_centered": (lambda: O.RMSprop(0.01, centered=True), False,
                             lambda: np_rmsprop(w0, G, centered=True)),
        "rmsprop_momentum0.9": (lambda: O.RMSprop(0.01, momentum=0.9), False,
                                lambda: np_rmsprop(w0, G, momentum=0.9)),
        "adam_clipnorm1": (lambda: O.Adam(0.01, clipnorm=1.0), False, lambda: np_adam([w0], [G], clipnorm=1.0)),
        "adam_clipvalue0.1": (lambda: O.Adam(0.01, clipvalue=0.1), False,
                              lambda: np_adam([w0], [G], clipvalue=0.1)),
        "adam_global_clipnorm1": (lambda: O.Adam(0.01, global_clipnorm=1.0), True,
                                  lambda: np_adam([w0, w0_b], [G, G_b], global_clipnorm=1.0)),
    }
    report = {}
    for name, (factory, two, ref) in runs.items():
        ws0 = [w0, w0_b] if two else [w0]
        gs = [G, G_b] if two else [G]
        arrays = {"w0": w0, "grads": G}
        if two:
            arrays.update(w0_b=w0_b, grads_b=G_b)
        h64 = run_optimizer(factory, ws0, gs, "float64")
        h32 = run_optimizer(factory, ws0, gs, "float32")
        arrays.update(h64)
        arrays.update({k + "_f32": v for k, v in h32.items()})
        want = ref()
        for k, v in want.items():
            err = np.abs(v - h64[k]).max()
            assert err < 1e-15, (name, k, err)
            report[name] = err
        np.savez(os.path.join(outdir, f"optimizer_{name}.npz"), **arrays)
    # the original adam_steps.npz agrees with the same reference
    err = np.abs(np_adam([w0], [G])["w"] - base["w"]).max()
    assert err < 1e-15, err
    return report


# --------------------------------------------------------------------------------------
# losses
# --------------------------------------------------------------------------------------

def gen_losses(outdir):
    r = np.random.default_rng(77)
    y_true = r.normal(size=(8, 3))
    y_pred = y_true + r.normal(scale=1.2, size=(8, 3))  # errors on both sides of delta=1
    bce_true = (r.uniform(size=(8, 3)) > 0.5).astype(np.float64)
    bce_true[0] = [0.3, 0.7, 0.5]  # soft labels
    bce_pred = r.uniform(0.02, 0.98, size=(8, 3))
    bce_pred[1] = [0.0, 1.0, 1e-9]  # clipped to [1e-7, 1-1e-7]
    bce_pred[2] = [1.0 - 1e-9, 0.5, 1e-7]
    L = keras.losses
    yt, yp, bt, bp = (tf.constant(a) for a in (y_true, y_pred, bce_true, bce_pred))
    out = {"y_true": y_true, "y_pred": y_pred, "bce_y_true": bce_true, "bce_y_pred": bce_pred}
    per = {
        "mse": L.mean_squared_error(yt, yp),
        "mae": L.mean_absolute_error(yt, yp),
        "huber": L.huber(yt, yp, delta=1.0),
        "bce": L.binary_crossentropy(bt, bp, from_logits=False),
    }
    classes = {
        "mse": (L.MeanSquaredError(dtype=DT), yt, yp),
        "mae": (L.MeanAbsoluteError(dtype=DT), yt, yp),
        "huber": (L.Huber(delta=1.0, dtype=DT), yt, yp),
        "bce": (L.BinaryCrossentropy(from_logits=False, dtype=DT), bt, bp),
    }
    eps = 1e-7
    err = y_pred - y_true
    ref = {
        "mse": np.mean(err ** 2, axis=-1),
        "mae": np.mean(np.abs(err), axis=-1),
        "huber": np.mean(np.where(np.abs(err) <= 1.0, 0.5 * err ** 2, np.abs(err) - 0.5), axis=-1),
    }
    pc = np.clip(bce_pred, eps, 1.0 - eps)
    ref["bce"] = np.mean(-(bce_true * np.log(pc) + (1 - bce_true) * np.log(1 - pc)), axis=-1)
    for k, v in per.items():
        v = v.numpy()
        assert v.dtype == np.float64 and v.shape == (8,), (k, v.dtype, v.shape)
        assert np.allclose(v, ref[k], rtol=1e-14, atol=0), (k, v, ref[k])
        obj, a, b = classes[k]
        mean = obj(a, b).numpy()
        assert mean.dtype == np.float64
        assert abs(mean - v.mean()) <= 1e-15 * max(1.0, abs(mean)), (k, mean, v.mean())
        out[k] = v
        out[k + "_mean"] = np.float64(mean)
    np.savez(os.path.join(outdir, "losses.npz"), **out)


# --------------------------------------------------------------------------------------

def all_specs():
    specs = (random_rnn_specs() + activation_specs() + keras_golden_specs() + bidirectional_specs()
             + dense_and_stack_specs() + masking_specs())
    names = [s["name"] for s in specs]
    assert len(names) == len(set(names)), [n for n in names if names.count(n) > 1]
    return specs


if __name__ == "__main__":
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "tests", "fixtures", "keras_extra")
    os.makedirs(out, exist_ok=True)
    only = os.environ.get("ONLY")
    for spec in all_specs():
        if only and only not in spec["name"]:
            continue
        print(make(spec, out), flush=True)
        if spec["name"].startswith("masking_"):
            check_masking_fixture(os.path.join(out, spec["name"] + ".safetensors"))
    if not only:
        print("optimizers", gen_optimizers(out))
        gen_losses(out)
        print("losses.npz")
