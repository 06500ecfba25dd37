#!/usr/bin/env python3
"""Keras training trajectories for the seed note's set-up, as fixtures for memcell's fit loop.

    ../venv-peers/bin/python tools/gen_training_fixtures.py      # writes tests/fixtures/keras_train/

For each model: build it in Keras 3 (float32, as the note runs it) with a fixed seed, save the
initial weights, run `fit` exactly as the note does (150 epochs, batch_size None = 32,
validation_split 0.05, Adam defaults) and record loss / val_loss per epoch, the trained
model's predictions on the training windows and the recursive extrapolation. memcell loads
the same initial weights and must follow the same trajectory (tests/keras_training.rs).

The note's S1 and S5 are used as they are; S3 and S4 are the note's architectures with fewer
units (LSTM(32) x 2; Dense(16, relu) x 2 + GRU(32) x 2) to keep the fixtures small.
File format: safetensors, float32 weights named `weight/<layer>/<variable>`, float64
`x`, `y`, `loss`, `val_loss`, `extrapolation`; metadata `model` (JSON layer configs),
`epochs`, `batch_size`, `validation_split`, `train`, `kind`, `source`.
"""
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

tf.config.threading.set_intra_op_parallelism_threads(1)
tf.config.threading.set_inter_op_parallelism_threads(1)
import keras  # noqa: E402
from keras import layers  # noqa: E402
from safetensors.numpy import save_file  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "tests", "fixtures", "keras_train")

# The seed note's series, from the repository's bundled CSV (columns N, energy).
sys.path.insert(0, os.path.join(HERE, "..", "bench"))
from bench_common import load_seed_series  # noqa: E402

X_TOT, Y_TOT = (np.array(v) for v in load_seed_series())
DIM = 12
EPOCHS = 150


def format_data(data, n=2):
    X, Y = [], []
    for i in range(len(data) - n):
        X.append(np.reshape(data[i:i + n], (n, 1)))
        Y.append(data[i + n])
    return np.array(X), np.array(Y)


SPECS = {
    "s1_simple_rnn200": ("window", lambda: [layers.SimpleRNN(200, name="RNN"), layers.Dense(1, name="dense")]),
    "s5_xy_simple_rnn200": ("xy", lambda: [layers.SimpleRNN(200, name="RNN"), layers.Dense(1, name="dense")]),
    "s3_lstm32x2": ("window", lambda: [layers.LSTM(32, return_sequences=True, name="RNN"),
                                       layers.LSTM(32, name="RNN1"), layers.Dense(1, name="dense")]),
    "s4_dense16x2_gru32x2": ("window", lambda: [layers.Dense(16, activation="relu", name="dnn"),
                                                layers.Dense(16, activation="relu", name="dnn1"),
                                                layers.GRU(32, return_sequences=True, name="RNN1"),
                                                layers.GRU(32, name="RNN"), layers.Dense(1, name="dense")]),
    "s2_simple_rnn_sigmoid32x2": ("window", lambda: [
        layers.SimpleRNN(32, return_sequences=True, activation="sigmoid", name="RNN1"),
        layers.SimpleRNN(32, activation="sigmoid", name="RNN2"), layers.Dense(1, name="dense")]),
}


def run(name, kind, make, seed=0):
    keras.utils.set_random_seed(seed)
    if kind == "xy":
        x = X_TOT[:DIM].reshape((DIM, 1, 1)).astype("float64")
        y = Y_TOT[:DIM].reshape((DIM, 1))
        shape = (1, 1)
    else:
        x, y = format_data(Y_TOT[:DIM], 2)
        y = y.reshape((-1, 1))
        shape = (2, 1)
    ls = make()
    inp = keras.Input(shape=shape)
    h = inp
    for layer in ls:
        h = layer(h)
    model = keras.Model(inp, h)
    model.compile(loss="mean_squared_error", optimizer="adam")
    tensors = {}
    for layer in ls:
        for v in layer.weights:
            tensors[f"weight/{layer.name}/{v.name}"] = np.asarray(v.numpy(), dtype=np.float32)
    hist = model.fit(x, y, batch_size=None, epochs=EPOCHS, verbose=0, validation_split=0.05, shuffle=True)
    if kind == "xy":
        ext = model.predict(X_TOT[DIM:].reshape((-1, 1, 1)).astype("float32"), verbose=0).flatten()
    else:
        ext = []
        nxt = np.array([[[Y_TOT[DIM - 2]], [Y_TOT[DIM - 1]]]])
        last = Y_TOT[DIM - 1]
        for _ in range(DIM, len(Y_TOT)):
            p = float(model.predict(nxt, verbose=0)[0][0])
            ext.append(p)
            nxt = np.array([[[last], [p]]])
            last = p
    tensors["x"] = np.asarray(x, dtype=np.float64)
    tensors["y"] = np.asarray(y, dtype=np.float64)
    tensors["loss"] = np.asarray(hist.history["loss"], dtype=np.float64)
    tensors["val_loss"] = np.asarray(hist.history["val_loss"], dtype=np.float64)
    tensors["extrapolation"] = np.asarray(ext, dtype=np.float64)
    cfgs = [{"class_name": l.__class__.__name__, "config": l.get_config()} for l in ls]
    meta = {
        "format": "memcell-train-fixture/1",
        "model": json.dumps(cfgs, default=str),
        "input_shape": json.dumps(list(shape)),
        "kind": kind,
        "epochs": str(EPOCHS),
        "batch_size": "32",
        "validation_split": "0.05",
        "train": str(DIM),
        "seed": str(seed),
        "source": f"keras {keras.__version__}, tensorflow {tf.__version__}, tools/gen_training_fixtures.py",
    }
    os.makedirs(OUT, exist_ok=True)
    path = os.path.join(OUT, f"{name}.safetensors")
    save_file(tensors, path + ".tmp", metadata=meta)
    os.replace(path + ".tmp", path)
    mse = float(np.mean((np.concatenate([Y_TOT[:DIM], ext]) - Y_TOT) ** 2))
    print(f"{name}: loss[0] {tensors['loss'][0]:.6e} loss[-1] {tensors['loss'][-1]:.6e} "
          f"val_loss[-1] {tensors['val_loss'][-1]:.6e} mse_all {mse:.3e}", flush=True)


if __name__ == "__main__":
    only = os.environ.get("ONLY")
    for name, (kind, make) in SPECS.items():
        if only and only not in name:
            continue
        run(name, kind, make)
