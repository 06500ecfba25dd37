"""What the PyTorch and Keras benchmark scripts share: the workload definitions of
bench/WORKLOADS.md (a port of memcell's src/bench.rs, which is the reference), their FLOP
counts, the synthetic data, and the runner (one child process per workload, the same JSON
schema as `memcell bench --json`).

Only the standard library and numpy are imported here; the frameworks are imported by the
child processes alone, after the thread settings are in the environment.

Data: every synthetic value is a function of its index (see src/bench.rs's module docs):
  u(stream, i) = (splitmix64(stream * 2**40 + i) >> 40) / 2**24
  noise(t)     = 0.01 * (sum_{k<12} u(1, 12 t + k) - 6)              (exact in float64)
  s(t)         = float32(exp(-0.001 t) sin(0.07 t) + 0.1 sin(0.31 t) + noise(t))
               (float64, with the C library's exp/sin through Python's math module, as Rust's
                f64::exp/sin call them)
  A1           x[i, j] = float32((u_{i,j-1} + 2 u_ij + u_{i,j+1}) / 4), u_ij = u(2, 784 i + j),
               j +- 1 modulo 784
`--data DIR` loads the arrays memcell wrote (`memcell bench --write-data DIR`) instead; the
smoke test checks that both are bit-identical.
"""
import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time

import numpy as np

# ---------------------------------------------------------------------------- seed data
SEED_CSV = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "seed_ccd_pairing_g0.5.csv")


def load_seed_series(path=SEED_CSV):
    """The seed note's series from the repository's bundled CSV (columns N, energy)."""
    with open(path) as f:
        rows = [line.strip().split(",") for line in f if line.strip() and not line.startswith("#")]
    header, body = rows[0], rows[1:]
    ix, iy = header.index("N"), header.index("energy")
    return [float(r[ix]) for r in body], [float(r[iy]) for r in body]


SEED_X, SEED_Y = load_seed_series()
SEED_TRAIN = 12
SEED_VALIDATION_SPLIT = 0.05


def seed_split(n):
    """Keras 3's validation split: the first floor(n * 0.95) train, the rest validate."""
    train = int(math.floor(n * (1.0 - SEED_VALIDATION_SPLIT)))
    return train, n - train


# ---------------------------------------------------------------------------- definitions
def dense(units, activation):
    return {"kind": "dense", "units": units, "activation": activation}


def rnn(units, activation, rs):
    return {"kind": "simple_rnn", "units": units, "activation": activation, "return_sequences": rs}


def lstm(units, rs):
    return {"kind": "lstm", "units": units, "return_sequences": rs}


def gru(units, rs):
    return {"kind": "gru", "units": units, "return_sequences": rs}


def workloads(smoke=False):
    """The workloads, in memcell's order (sgemm first); `smoke` = reduced sizes for tests."""
    seed_epochs = 3 if smoke else 150

    def seed(wid, name, layers, xy=False):
        return {"id": wid, "name": name, "input": [1, 1] if xy else [2, 1], "layers": layers,
                "data": {"kind": "seed_xy"} if xy else {"kind": "seed_windows"}, "batch": 32,
                "phase": {"kind": "seed_fit", "epochs": seed_epochs}, "repeats": 5}

    mw, ml, mu = (256, 16, 16) if smoke else (8192, 64, 128)
    mdata = {"kind": "series", "windows": mw, "len": ml, "features": 1, "lag": 0}

    def medium(wid, name, l1, l2):
        return {"id": wid, "name": name, "input": [ml, 1], "layers": [l1, l2, dense(1, "linear")],
                "data": dict(mdata), "batch": 64, "phase": {"kind": "epoch"}, "repeats": 3}

    lw, ll, lu, lb, lg = (128, 8, 32, 64, 2) if smoke else (4096, 32, 512, 256, 8)
    an, ab = (512, 128) if smoke else (16384, 128)
    shapes = [[256, 256, 256], [512, 512, 128]] if smoke else [[2048, 2048, 2048], [4096, 4096, 1024]]
    return [
        {"id": "sgemm", "name": "sgemm-peak", "input": [], "layers": [],
         "data": {"kind": "ae", "samples": 0, "dim": 0}, "batch": 0,
         "phase": {"kind": "sgemm", "shapes": shapes, "tries": 2 if smoke else 5}, "repeats": 1},
        seed("S1", "seed-rnn", [rnn(200, "tanh", False), dense(1, "linear")]),
        seed("S2", "seed-rnn2", [rnn(500, "sigmoid", True), rnn(500, "sigmoid", False), dense(1, "linear")]),
        seed("S3", "seed-lstm2", [lstm(250, True), lstm(250, False), dense(1, "linear")]),
        seed("S4", "seed-gru", [dense(125, "relu"), dense(125, "relu"), gru(250, True), gru(250, False),
                                dense(1, "linear")]),
        seed("S5", "seed-xy", [rnn(200, "tanh", False), dense(1, "linear")], xy=True),
        medium("M1", "lstm-medium", lstm(mu, True), lstm(mu, False)),
        medium("M2", "gru-medium", gru(mu, True), gru(mu, False)),
        medium("M3", "rnn-medium", rnn(mu, "tanh", True), rnn(mu, "tanh", False)),
        {"id": "L1", "name": "lstm-large", "input": [ll, 16], "layers": [lstm(lu, False), dense(1, "linear")],
         "data": {"kind": "series", "windows": lw, "len": ll, "features": 16, "lag": lg}, "batch": lb,
         "phase": {"kind": "epoch"}, "repeats": 3},
        {"id": "I1", "name": "lstm-infer", "input": [ml, 1],
         "layers": [lstm(mu, True), lstm(mu, False), dense(1, "linear")], "data": dict(mdata), "batch": 1024,
         "phase": {"kind": "predict"}, "repeats": 3},
        {"id": "A1", "name": "ae-dense", "input": [784],
         "layers": [dense(256, "relu"), dense(32, "relu"), dense(256, "relu"), dense(784, "sigmoid")],
         "data": {"kind": "ae", "samples": an, "dim": 784}, "batch": ab, "phase": {"kind": "epoch"}, "repeats": 3},
    ]


def select(names, smoke=False):
    """Resolves ids or names (case-insensitive, comma lists, 'all'); raises SystemExit listing
    the known ones for an unknown name."""
    allw = workloads(smoke)
    if not names:
        return allw
    out = []
    for n in names:
        for part in [p.strip() for p in n.split(",") if p.strip()]:
            if part.lower() == "all":
                found = allw
            else:
                found = [w for w in allw if part.lower() in (w["id"].lower(), w["name"].lower())]
                if not found:
                    known = ", ".join(f"{w['id']} ({w['name']})" for w in allw)
                    raise SystemExit(f"error: unknown workload '{part}'; known: {known}")
            for w in found:
                if w["id"] not in [o["id"] for o in out]:
                    out.append(w)
    return out


def data_samples(d):
    k = d["kind"]
    if k == "seed_windows":
        return SEED_TRAIN - 2
    if k == "seed_xy":
        return SEED_TRAIN
    if k == "series":
        return d["windows"]
    return d["samples"]


def data_key(d):
    k = d["kind"]
    if k == "seed_windows":
        return "seed-windows"
    if k == "seed_xy":
        return "seed-xy"
    if k == "series":
        return f"series-w{d['windows']}-l{d['len']}-f{d['features']}-g{d['lag']}"
    return f"ae-n{d['samples']}-d{d['dim']}"


# ---------------------------------------------------------------------------- FLOPs
def forward_flop(layers, input_shape):
    """Forward matmul FLOPs of one sample (src/bench.rs forward_flop): Dense 2 F units per
    position; SimpleRNN T 2 H (F + H); LSTM T 2 4H (F + H); GRU T 2 3H (F + H)."""
    shape = list(input_shape)
    total = 0
    for l in layers:
        if l["kind"] == "dense":
            f = shape[-1]
            pos = 1
            for v in shape[:-1]:
                pos *= v
            total += 2 * pos * f * l["units"]
            shape[-1] = l["units"]
        else:
            gates = {"simple_rnn": 1, "lstm": 4, "gru": 3}[l["kind"]]
            t, f, h = shape[0], shape[-1], l["units"]
            total += t * 2 * gates * h * (f + h)
            shape = [t, h] if l["return_sequences"] else [h]
    return total


def phase_flop(w):
    """FLOPs of the timed phase (src/bench.rs phase_flop): training = 3x forward."""
    fwd = forward_flop(w["layers"], w["input"])
    n = data_samples(w["data"])
    ph = w["phase"]
    if ph["kind"] == "seed_fit":
        tr, va = seed_split(n)
        return ph["epochs"] * (3 * fwd * tr + fwd * va) + fwd * (len(SEED_Y) - SEED_TRAIN)
    if ph["kind"] == "epoch":
        return 3 * fwd * n
    if ph["kind"] == "predict":
        return fwd * n
    return max(2 * m * nn * k for m, nn, k in ph["shapes"])


def phase_samples(w):
    n = data_samples(w["data"])
    ph = w["phase"]["kind"]
    if ph == "seed_fit":
        return w["phase"]["epochs"] * seed_split(n)[0]
    if ph in ("epoch", "predict"):
        return n
    return None


def phase_name(w):
    return {"seed_fit": "fit+extrapolate", "epoch": "train-epoch", "predict": "predict", "sgemm": "gemm"}[
        w["phase"]["kind"]]


# ---------------------------------------------------------------------------- data
def splitmix64(z):
    """splitmix64's finaliser on a uint64 array (wrapping arithmetic)."""
    with np.errstate(over="ignore"):
        z = z + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def uniform(stream, idx):
    """u(stream, i) for an array of indices: float64 values on the 2**-24 grid in [0, 1)."""
    z = (np.uint64(stream) << np.uint64(40)) | np.asarray(idx, dtype=np.uint64)
    return (splitmix64(z) >> np.uint64(40)).astype(np.float64) * (1.0 / 16777216.0)


def series(n):
    u = uniform(1, np.arange(12 * n, dtype=np.uint64)).reshape(n, 12)
    noise = 0.01 * (u.sum(axis=1) - 6.0)  # sums of 24-bit grid values: exact in any order
    out = np.empty(n, dtype=np.float32)
    for ti in range(n):
        t = float(ti)
        v = math.exp(-0.001 * t) * math.sin(0.07 * t) + 0.1 * math.sin(0.31 * t) + float(noise[ti])
        out[ti] = v
    return out


def ae_data(samples, dim):
    u = uniform(2, np.arange(samples * dim, dtype=np.uint64)).reshape(samples, dim)
    x = (np.roll(u, 1, axis=1) + 2.0 * u + np.roll(u, -1, axis=1)) * 0.25
    return x.astype(np.float32)


def generate(d):
    """(x, y) float32 arrays of a data spec, computed here."""
    k = d["kind"]
    if k == "seed_windows":
        n = SEED_TRAIN - 2
        x = np.array([SEED_Y[i:i + 2] for i in range(n)], dtype=np.float64).reshape(n, 2, 1)
        y = np.array([SEED_Y[i + 2] for i in range(n)], dtype=np.float64).reshape(n, 1)
        return x.astype(np.float32), y.astype(np.float32)
    if k == "seed_xy":
        x = np.array(SEED_X[:SEED_TRAIN]).reshape(SEED_TRAIN, 1, 1).astype(np.float32)
        y = np.array(SEED_Y[:SEED_TRAIN]).reshape(SEED_TRAIN, 1).astype(np.float32)
        return x, y
    if k == "series":
        w, L, F, g = d["windows"], d["len"], d["features"], d["lag"]
        o = g * (F - 1)
        s = series(o + w + L)
        i = np.arange(w)[:, None, None]
        t = np.arange(L)[None, :, None]
        f = np.arange(F)[None, None, :]
        x = s[o + i + t - g * f]
        y = s[o + np.arange(w) + L].reshape(w, 1)
        return np.ascontiguousarray(x, dtype=np.float32), y.astype(np.float32)
    x = ae_data(d["samples"], d["dim"])
    return x, x


def load_data(d, data_dir=None):
    """(x, y) of a data spec: memcell's exported files when `data_dir` holds them, else
    computed here (the same values)."""
    if data_dir:
        key = data_key(d)
        px, py = os.path.join(data_dir, key + "_x.npy"), os.path.join(data_dir, key + "_y.npy")
        if d["kind"] == "ae" and os.path.exists(px):
            x = np.load(px)
            return x, x  # the autoencoder's targets are its inputs (no copy)
        if os.path.exists(px) and os.path.exists(py):
            return np.load(px), np.load(py)
    return generate(d)


# ---------------------------------------------------------------------------- measurement
def peak_rss_bytes():
    """This process's peak resident set (VmHWM of /proc/self/status, as memcell reads it;
    getrusage's ru_maxrss where there is no procfs)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        import resource
        return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024
    except Exception:
        return None


def seed_mse_all(pred):
    return float(np.mean((np.array(SEED_Y) - np.array(pred, dtype=np.float64)) ** 2))


def finish(w, system, runs, threads, smoke, params=None, extra=None):
    """A result object in memcell's schema from per-run dicts (seconds, final_loss, ...)."""
    secs = [r["seconds"] for r in runs]
    med = statistics.median(secs)
    flop = phase_flop(w)
    res = {"id": w["id"], "name": w["name"], "system": system, "seconds": med, "all_seconds": secs,
           "repeats": len(secs), "flop": flop, "gflops": flop / med / 1e9, "threads": threads,
           "phase": phase_name(w), "batch": w["batch"] or None, "params": params, "smoke": smoke, "runs": runs}
    ns = phase_samples(w)
    if ns is not None:
        res["samples_per_second"] = ns / med
    for key in ("final_loss", "final_val_loss", "mse_all"):
        vals = [r[key] for r in runs if r.get(key) is not None]
        if vals:
            res[key] = statistics.median(vals)
    if extra:
        res.update(extra)
    res["peak_rss_bytes"] = peak_rss_bytes()
    return res


def thread_env(threads):
    """Environment for a child: every thread pool the frameworks may use limited to `threads`."""
    env = dict(os.environ)
    for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "TF_NUM_INTRAOP_THREADS",
              "TF_NUM_INTEROP_THREADS"):
        env[k] = str(threads)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    env["PYTHONHASHSEED"] = "0"
    return env


def write_json_atomic(path, obj):
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    tmp = os.path.join(d, f".{os.path.basename(path)}.tmp{os.getpid()}")
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=1)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def fmt(v, f):
    return "-" if v is None or (isinstance(v, float) and not math.isfinite(v)) else f(v)


def format_table(results):
    peak = next((r["gflops"] for r in results if r["id"] == "sgemm"), None)
    out = (f"{'id':<12} {'name':<12} {'seconds':>10} {'samples/s':>12} {'GFLOP/s':>9} {'% peak':>7} "
           f"{'RSS MB':>9} {'loss':>10} {'mse_all':>10}\n")
    for r in results:
        pct = "100.0" if r["id"] == "sgemm" else (f"{100 * r['gflops'] / peak:.1f}" if peak else "-")
        out += (f"{r['id']:<12} {r['name']:<12} {r['seconds']:>10.4f} "
                f"{fmt(r.get('samples_per_second'), lambda v: f'{v:.1f}'):>12} {r['gflops']:>9.2f} {pct:>7} "
                f"{fmt(r.get('peak_rss_bytes'), lambda v: f'{v / 1048576:.1f}'):>9} "
                f"{fmt(r.get('final_loss'), lambda v: f'{v:.3e}'):>10} "
                f"{fmt(r.get('mse_all'), lambda v: f'{v:.3e}'):>10}\n")
    if any(r.get("smoke") for r in results):
        out += "(smoke sizes: not figures)\n"
    return out


def main(system, script, run_child):
    """The command line both peer scripts share:

        SCRIPT [WORKLOAD...] [--json FILE] [--repeats N] [--threads N] [--data DIR] [--smoke] [--list]

    Each workload runs in its own child process (`SCRIPT --child ID ...`), whose thread pools
    are limited through the environment before the framework is imported; the child prints
    its result as one JSON line. `run_child(w, repeats, threads, smoke, data_dir)` returns the
    list of result objects of one workload (the torch script's sgemm adds a numpy row)."""
    ap = argparse.ArgumentParser(description=f"bench/WORKLOADS.md in {system} (the schema of memcell bench --json)")
    ap.add_argument("workloads", nargs="*", help="ids or names (default: all): sgemm, S1-S5, M1-M3, L1, I1, A1")
    ap.add_argument("--json", metavar="FILE", help="write the results as a JSON array")
    ap.add_argument("--repeats", type=int, help="timed repeats (default: 5 seed workloads, 3 others)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--data", metavar="DIR", help="load memcell's exported data (memcell bench --write-data DIR)")
    ap.add_argument("--smoke", action="store_true", help="reduced sizes, for tests (never for figures)")
    ap.add_argument("--list", action="store_true", help="print the definitions (with --json: write them) and exit")
    ap.add_argument("--child", metavar="ID", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.threads < 1:
        raise SystemExit("error: --threads must be at least 1")
    if a.repeats is not None and a.repeats < 1:
        raise SystemExit("error: --repeats must be at least 1")
    if a.child:
        w = select([a.child], a.smoke)[0]
        for r in run_child(w, a.repeats, a.threads, a.smoke, a.data):
            print(json.dumps(r), flush=True)
        return
    ws = select(a.workloads, a.smoke)
    if a.list:
        defs = [dict(w, forward_flop_per_sample=forward_flop(w["layers"], w["input"]), phase_flop=phase_flop(w),
                     samples=0 if w["phase"]["kind"] == "sgemm" else data_samples(w["data"]),
                     data_key=data_key(w["data"])) for w in ws]
        if a.json:
            write_json_atomic(a.json, defs)
        for d in defs:
            print(f"{d['id']:<6} {d['name']:<12} {d['forward_flop_per_sample']:>16} {d['phase_flop']:>16}")
        return
    results = []
    for w in ws:
        print(f"{system} bench: {w['id']} ({w['name']}) ...", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        cmd = [sys.executable, script, "--child", w["id"], "--threads", str(a.threads)]
        if a.repeats:
            cmd += ["--repeats", str(a.repeats)]
        if a.smoke:
            cmd.append("--smoke")
        if a.data:
            cmd += ["--data", a.data]
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=thread_env(a.threads))
        if p.returncode != 0:
            tail = "\n".join(p.stderr.strip().splitlines()[-20:])
            raise SystemExit(f"error: {system} workload {w['id']} failed (exit {p.returncode}):\n{tail}")
        rows = [json.loads(l) for l in p.stdout.splitlines() if l.startswith("{")]
        results.extend(rows)
        if rows:
            print(f"{system} bench: {w['id']} done: median {rows[0]['seconds']:.4f} s "
                  f"({time.perf_counter() - t0:.1f} s wall)", file=sys.stderr, flush=True)
        else:
            print(f"{system} bench: {w['id']} not measured by {system}", file=sys.stderr, flush=True)
        if a.json:
            write_json_atomic(a.json, results)
    sys.stdout.write(format_table(results))
