#!/usr/bin/env python3
"""bench/WORKLOADS.md in Keras 3 (TensorFlow backend), with memcell's JSON schema.

    ../venv-peers/bin/python bench/keras_workloads.py [S1 M1 ...] [--json FILE] [--repeats N]
        [--threads 2] [--data DIR] [--smoke] [--list]

Each workload runs in its own child process (peak RSS = the child's VmHWM, which includes
the interpreter, TensorFlow and Keras). Threads: TF intra-op and inter-op pools set to
--threads (and OMP/MKL limited through the environment) before Keras is imported.

* S1-S5 are bench/keras_seed.py's `run`, the seed note's code as it writes it (functional
  models, `optimizer="adam"`, `model.fit(batch_size=None, epochs=150, validation_split=0.05)`,
  `model.predict` per extrapolated point); timed: fit + extrapolation.
* The per-epoch workloads: `Sequential([Input, layers...])` compiled with
  Adam(1e-3, 0.9, 0.999, 1e-7) and MSE; one warm-up `fit(epochs=1)` (it traces the train
  function), then each repeat times one `model.fit(x, y, batch_size, epochs=1, shuffle=True,
  verbose=0)` call, Keras's per-call overhead included (users pay it).
* I1: a warm-up `model.predict(x, batch_size=1024)`, then each repeat times one.
The `sgemm` row is measured by the torch script (numpy and torch); here it is skipped.
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_common as bc  # noqa: E402

SCRIPT = os.path.abspath(__file__)


def child(w, repeats, threads, smoke, data_dir):
    if w["phase"]["kind"] == "sgemm":
        return []
    os.environ["MEMCELL_BENCH_THREADS"] = str(threads)
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
    import keras

    import keras_seed

    version = {"tensorflow": tf.__version__, "keras": keras.__version__}
    base = bc.peak_rss_bytes()
    repeats = repeats or w["repeats"]
    ph = w["phase"]
    runs = []
    params = None
    if ph["kind"] == "seed_fit":
        for r in range(repeats):
            out = keras_seed.run(w["id"], r, epochs=ph["epochs"])
            params = out["params"]
            runs.append({k: out[k] for k in ("seconds", "final_loss", "final_val_loss", "mse_all")})
        return [bc.finish(w, "keras", runs, threads, smoke, params, {"versions": version, "base_rss_bytes": base})]

    x, y = bc.load_data(w["data"], data_dir)
    keras.utils.set_random_seed(0)
    layers = [keras.Input(shape=tuple(w["input"]))]
    for l in w["layers"]:
        k = l["kind"]
        if k == "dense":
            layers.append(keras.layers.Dense(l["units"], activation=l["activation"]))
        elif k == "simple_rnn":
            layers.append(keras.layers.SimpleRNN(l["units"], activation=l["activation"],
                                                 return_sequences=l["return_sequences"]))
        elif k == "lstm":
            layers.append(keras.layers.LSTM(l["units"], return_sequences=l["return_sequences"]))
        else:
            layers.append(keras.layers.GRU(l["units"], return_sequences=l["return_sequences"]))
    model = keras.Sequential(layers)
    model.compile(loss="mean_squared_error",
                  optimizer=keras.optimizers.Adam(learning_rate=1e-3, beta_1=0.9, beta_2=0.999, epsilon=1e-7))
    params = int(model.count_params())
    if ph["kind"] == "epoch":
        model.fit(x, y, batch_size=w["batch"], epochs=1, shuffle=True, verbose=0)  # warm-up
        for _ in range(repeats):
            t0 = time.perf_counter()
            h = model.fit(x, y, batch_size=w["batch"], epochs=1, shuffle=True, verbose=0)
            runs.append({"seconds": time.perf_counter() - t0, "final_loss": float(h.history["loss"][-1])})
    else:
        model.predict(x, batch_size=w["batch"], verbose=0)  # warm-up
        for _ in range(repeats):
            t0 = time.perf_counter()
            model.predict(x, batch_size=w["batch"], verbose=0)
            runs.append({"seconds": time.perf_counter() - t0})
    return [bc.finish(w, "keras", runs, threads, smoke, params, {"versions": version, "base_rss_bytes": base})]


if __name__ == "__main__":
    bc.main("keras", SCRIPT, child)
