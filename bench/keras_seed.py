#!/usr/bin/env python3
"""The seed note's five experiments in Keras 3 (TensorFlow backend), as the note writes them.

    ../venv-peers/bin/python bench/keras_seed.py [--models S1,S3] [--seeds 5] [--json FILE]

Prints one line per run (mse_all over all 20 points as the note computes it, seconds of fit +
extrapolation) and writes the runs as JSON. Used to compare memcell's end-to-end results and
speed with Keras's on the same machine; bench/keras_workloads.py times S1-S5 through `run`.
"""
import argparse
import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

# 2 threads as every benchmark run (bench/keras_workloads.py sets MEMCELL_BENCH_THREADS).
_THREADS = int(os.environ.get("MEMCELL_BENCH_THREADS", "2"))
tf.config.threading.set_intra_op_parallelism_threads(_THREADS)
tf.config.threading.set_inter_op_parallelism_threads(_THREADS)
import keras  # noqa: E402
from keras.layers import GRU, LSTM, Dense, Input, SimpleRNN  # noqa: E402
from keras.models import Model  # noqa: E402

from bench_common import load_seed_series  # noqa: E402

X_TOT, Y_TOT = (np.array(v) for v in load_seed_series())
DIM = 12


def format_data(data, n=2):
    X, Y = [], []
    for i in range(len(data) - n):
        X.append(np.reshape(data[i:i + n], (n, 1)))
        Y.append(data[i + n])
    return np.array(X), np.array(Y)


def build(mid, L):
    inp = Input(batch_shape=(None, L, 1))
    if mid in ("S1", "S5"):
        h = SimpleRNN(200, name="RNN")(inp)
    elif mid == "S2":
        h = SimpleRNN(500, return_sequences=True, activation="sigmoid", name="RNN1")(inp)
        h = SimpleRNN(500, activation="sigmoid", name="RNN2")(h)
    elif mid == "S3":
        h = LSTM(250, return_sequences=True, name="RNN")(inp)
        h = LSTM(250, name="RNN1")(h)
    elif mid == "S4":
        h = Dense(125, activation="relu", name="dnn")(inp)
        h = Dense(125, activation="relu", name="dnn1")(h)
        h = GRU(250, return_sequences=True, name="RNN1")(h)
        h = GRU(250, name="RNN")(h)
    out = Dense(1, name="dense")(h)
    m = Model(inputs=[inp], outputs=[out])
    m.compile(loss="mean_squared_error", optimizer="adam")
    return m


def run(mid, seed, epochs=150):
    keras.utils.set_random_seed(seed)
    if mid == "S5":
        model = build(mid, 1)
        x = X_TOT[:DIM].reshape((DIM, 1, 1)).astype("float32")
        y = Y_TOT[:DIM].reshape((DIM, 1))
        start = time.perf_counter()
        hist = model.fit(x, y, batch_size=None, epochs=epochs, verbose=0, validation_split=0.05)
        y_model = model.predict(X_TOT[DIM:].reshape((-1, 1, 1)).astype("float32"), verbose=0)
        y_pred = np.concatenate((Y_TOT[:DIM], y_model.flatten()))
        secs = time.perf_counter() - start
    else:
        model = build(mid, 2)
        x, y = format_data(Y_TOT[:DIM], 2)
        start = time.perf_counter()
        hist = model.fit(x, y, batch_size=None, epochs=epochs, verbose=0, validation_split=0.05)
        y_pred = list(Y_TOT[:DIM])
        nxt = np.array([[[Y_TOT[DIM - 2]], [Y_TOT[DIM - 1]]]])
        last = Y_TOT[DIM - 1]
        for _ in range(DIM, len(Y_TOT)):
            p = float(model.predict(nxt, verbose=0)[0][0])
            y_pred.append(p)
            nxt = np.array([[[last], [p]]])
            last = p
        secs = time.perf_counter() - start
    y_pred = np.array(y_pred)
    return {
        "model": mid, "seed": seed, "params": int(model.count_params()),
        "mse_all": float(np.mean((Y_TOT - y_pred) ** 2)),
        "final_loss": float(hist.history["loss"][-1]),
        "final_val_loss": float(hist.history["val_loss"][-1]),
        "seconds": secs, "prediction": [float(v) for v in y_pred],
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="S1,S2,S3,S4,S5")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--json")
    a = ap.parse_args()
    runs = []
    for mid in a.models.split(","):
        for s in range(a.seeds):
            r = run(mid, s)
            runs.append(r)
            print(f"{mid} seed {s} params {r['params']} mse_all {r['mse_all']:.3e} "
                  f"loss {r['final_loss']:.3e} val_loss {r['final_val_loss']:.3e} {r['seconds']:.2f} s", flush=True)
    if a.json:
        with open(a.json + ".tmp", "w") as f:
            json.dump({"keras": keras.__version__, "tensorflow": tf.__version__, "runs": runs}, f, indent=1)
        os.replace(a.json + ".tmp", a.json)


if __name__ == "__main__":
    main()
