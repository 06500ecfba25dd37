#!/usr/bin/env python3
"""bench/WORKLOADS.md in PyTorch, doing what Keras's fit does, with memcell's JSON schema.

    ../venv-peers/bin/python bench/torch_workloads.py [S1 M1 ...] [--json FILE] [--repeats N]
        [--threads 2] [--data DIR] [--smoke] [--list]

Each workload runs in its own child process (peak RSS = the child's VmHWM, which includes
the interpreter and torch itself). Threads: OMP/MKL/OpenBLAS limited through the environment
before torch is imported, plus torch.set_num_threads / set_num_interop_threads.

Keras equivalence:
* Initialisation as Keras: glorot_uniform kernels (the fans of Keras's (in, out) kernel equal
  torch's (out, in) weight's), orthogonal recurrent kernels (torch's (G*H, H) weight_hh is the
  transpose of Keras's (H, G*H) recurrent_kernel, orthonormal columns vs rows), zero biases,
  LSTM unit forget bias (1 in the f block of bias_ih; torch's gate order i,f,g,o = Keras's
  i,f,c,o). torch's GRU (gates r,z,n) is Keras's reset_after=True GRU, whose (2, 3H) bias is
  exactly torch's bias_ih + bias_hh, both trainable. LSTM and SimpleRNN have one bias in Keras:
  torch's second bias (bias_hh) is kept at zero and frozen, so that Adam updates one bias, as
  Keras does (two trainable copies would move the sum twice as fast).
* SimpleRNN with sigmoid (S2), which torch's nn.RNN lacks: an explicit time loop.
* Adam(lr 1e-3, betas (0.9, 0.999), eps 1e-7) with Keras's epsilon placement: Keras divides by
  sqrt(v) + eps with the bias correction folded into the step size, i.e. torch's
  sqrt(v)/sqrt(bc2) + eps/sqrt(bc2); so torch's eps is set to 1e-7 / sqrt(1 - 0.999^t) before
  step t (the update is then Keras's, computed by torch's own fused kernel).
* fit: the seed workloads hold out the last floor-complement of validation_split 0.05 before
  any shuffling, reshuffle the training samples every epoch (torch.randperm), batches of 32,
  MSE (mean over the batch), validation loss every epoch; the per-epoch workloads run
  `train_epoch` (shuffle, batches, per-batch loss read back as Keras's loss tracker does).
"""
import math
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_common as bc  # noqa: E402

SCRIPT = os.path.abspath(__file__)


def child(w, repeats, threads, smoke, data_dir):
    import numpy as np
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(threads)
    except RuntimeError:
        pass
    version = {"torch": torch.__version__, "numpy": np.__version__}
    base = bc.peak_rss_bytes()  # the interpreter and torch, before any data or model
    repeats = repeats or w["repeats"]

    if w["phase"]["kind"] == "sgemm":
        return sgemm_rows(w, repeats, threads, smoke, version, base)

    acts = {"linear": lambda v: v, "relu": torch.relu, "sigmoid": torch.sigmoid, "tanh": torch.tanh}

    class ElmanRnn(nn.Module):
        """Keras SimpleRNN with any activation: h_t = f(x_t W + b + h_{t-1} U)."""

        def __init__(self, f, h, act):
            super().__init__()
            self.weight_ih = nn.Parameter(torch.empty(h, f))
            self.weight_hh = nn.Parameter(torch.empty(h, h))
            self.bias = nn.Parameter(torch.zeros(h))
            nn.init.xavier_uniform_(self.weight_ih)
            nn.init.orthogonal_(self.weight_hh)
            self.act = act

        def forward(self, x):
            xp = F.linear(x, self.weight_ih, self.bias)  # (B, T, H)
            h = x.new_zeros(x.shape[0], self.weight_hh.shape[0])
            outs = []
            for t in range(x.shape[1]):
                h = self.act(xp[:, t] + F.linear(h, self.weight_hh))
                outs.append(h)
            return torch.stack(outs, 1), h

    class Net(nn.Module):
        def __init__(self, layers, input_shape):
            super().__init__()
            self.mods = nn.ModuleList()
            self.plan = []
            f = input_shape[-1]
            for l in layers:
                k, u = l["kind"], l["units"]
                if k == "dense":
                    m = nn.Linear(f, u)
                    nn.init.xavier_uniform_(m.weight)
                    nn.init.zeros_(m.bias)
                    self.plan.append(("dense", acts[l["activation"]], False))
                else:
                    if k == "simple_rnn" and l["activation"] not in ("tanh", "relu"):
                        m = ElmanRnn(f, u, acts[l["activation"]])
                    else:
                        if k == "simple_rnn":
                            m = nn.RNN(f, u, nonlinearity=l["activation"], batch_first=True)
                        elif k == "lstm":
                            m = nn.LSTM(f, u, batch_first=True)
                        else:
                            m = nn.GRU(f, u, batch_first=True)
                        nn.init.xavier_uniform_(m.weight_ih_l0)
                        nn.init.orthogonal_(m.weight_hh_l0)
                        with torch.no_grad():
                            m.bias_ih_l0.zero_()
                            m.bias_hh_l0.zero_()
                            if k == "lstm":
                                m.bias_ih_l0[u:2 * u] = 1.0  # unit forget bias (gates i, f, g, o)
                        if k != "gru":
                            m.bias_hh_l0.requires_grad_(False)  # Keras has one bias
                    self.plan.append(("rnn", None, l["return_sequences"]))
                self.mods.append(m)
                f = u

        def forward(self, x):
            for m, (kind, act, rs) in zip(self.mods, self.plan):
                if kind == "dense":
                    x = act(m(x))
                else:
                    out, _ = m(x)
                    x = out if rs else out[:, -1]
            return x

    class KerasAdam:
        """torch's Adam with Keras's epsilon placement (see the module docs)."""

        def __init__(self, params, lr=1e-3, b1=0.9, b2=0.999, eps=1e-7):
            params = [p for p in params if p.requires_grad]
            try:
                self.opt = torch.optim.Adam(params, lr=lr, betas=(b1, b2), eps=eps, fused=True)
            except (RuntimeError, TypeError, ValueError):
                self.opt = torch.optim.Adam(params, lr=lr, betas=(b1, b2), eps=eps, foreach=True)
            self.b2, self.eps, self.t = b2, eps, 0

        def zero_grad(self):
            self.opt.zero_grad(set_to_none=True)

        def step(self):
            self.t += 1
            self.opt.param_groups[0]["eps"] = self.eps / math.sqrt(1.0 - self.b2 ** self.t)
            self.opt.step()

    def build(seed):
        torch.manual_seed(seed)
        model = Net(w["layers"], w["input"])
        return model, KerasAdam(model.parameters())

    def train_epoch(model, opt, x, y, batch, gen):
        model.train()
        n = x.shape[0]
        perm = torch.randperm(n, generator=gen)
        total = 0.0
        for s in range(0, n, batch):
            idx = perm[s:s + batch]
            xb, yb = x.index_select(0, idx), y.index_select(0, idx)
            loss = F.mse_loss(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * idx.numel()
        return total / n

    def predict(model, x, batch):
        model.eval()
        with torch.inference_mode():
            return torch.cat([model(x[s:s + batch]) for s in range(0, x.shape[0], batch)])

    xn, yn = bc.load_data(w["data"], data_dir)
    x = torch.from_numpy(np.ascontiguousarray(xn))
    y = x if yn is xn else torch.from_numpy(np.ascontiguousarray(yn))
    params = None
    runs = []
    ph = w["phase"]
    if ph["kind"] == "seed_fit":
        tr, _ = bc.seed_split(x.shape[0])
        xt, yt, xv, yv = x[:tr], y[:tr], x[tr:], y[tr:]
        xy = w["data"]["kind"] == "seed_xy"
        for r in range(repeats):
            model, opt = build(r)
            params = sum(p.numel() for p in model.parameters() if p.requires_grad)
            gen = torch.Generator().manual_seed(r)
            t0 = time.perf_counter()
            for _ in range(ph["epochs"]):
                loss = train_epoch(model, opt, xt, yt, w["batch"], gen)
                model.eval()
                with torch.inference_mode():
                    val = F.mse_loss(model(xv), yv).item()
            pred = list(bc.SEED_Y[:bc.SEED_TRAIN])
            model.eval()
            with torch.inference_mode():
                if xy:
                    xs = torch.tensor(bc.SEED_X[bc.SEED_TRAIN:], dtype=torch.float32).reshape(-1, 1, 1)
                    pred += [float(v) for v in model(xs).flatten()]
                else:
                    a, b = bc.SEED_Y[bc.SEED_TRAIN - 2], bc.SEED_Y[bc.SEED_TRAIN - 1]
                    for _ in range(bc.SEED_TRAIN, len(bc.SEED_Y)):
                        p = float(model(torch.tensor([[[a], [b]]], dtype=torch.float32))[0, 0])
                        pred.append(p)
                        a, b = b, p
            secs = time.perf_counter() - t0
            runs.append({"seconds": secs, "final_loss": loss, "final_val_loss": val, "mse_all": bc.seed_mse_all(pred)})
    elif ph["kind"] == "epoch":
        model, opt = build(0)
        params = sum(p.numel() for p in model.parameters() if p.requires_grad)
        gen = torch.Generator().manual_seed(0)
        train_epoch(model, opt, x, y, w["batch"], gen)  # warm-up
        for _ in range(repeats):
            t0 = time.perf_counter()
            loss = train_epoch(model, opt, x, y, w["batch"], gen)
            runs.append({"seconds": time.perf_counter() - t0, "final_loss": loss})
    else:  # predict
        model, _ = build(0)
        params = sum(p.numel() for p in model.parameters() if p.requires_grad)
        p = predict(model, x, w["batch"])  # warm-up
        assert bool(torch.isfinite(p).all())
        for _ in range(repeats):
            t0 = time.perf_counter()
            p = predict(model, x, w["batch"])
            runs.append({"seconds": time.perf_counter() - t0})
    return [bc.finish(w, "torch", runs, threads, smoke, params, {"versions": version, "base_rss_bytes": base})]


def sgemm_rows(w, repeats, threads, smoke, version, base):
    """Best-of-N f32 GEMM for each shape through torch.mm and numpy.matmul: rows `sgemm`
    (torch) and `sgemm-numpy`."""
    import numpy as np
    import torch

    tries = max(w["phase"]["tries"], repeats)
    rows = []
    for system, rid in (("torch", "sgemm"), ("numpy", "sgemm-numpy")):
        shapes = []
        for m, n, k in w["phase"]["shapes"]:
            rng = np.random.default_rng(0)
            a = rng.random((m, k), dtype=np.float32) - 0.5
            b = rng.random((k, n), dtype=np.float32) - 0.5
            c = np.empty((m, n), dtype=np.float32)
            if system == "torch":
                ta, tb, tc = torch.from_numpy(a), torch.from_numpy(b), torch.from_numpy(c)

                def f():
                    torch.mm(ta, tb, out=tc)
            else:
                def f():
                    np.matmul(a, b, out=c)
            f()
            best = math.inf
            for _ in range(tries):
                t0 = time.perf_counter()
                f()
                best = min(best, time.perf_counter() - t0)
            shapes.append({"m": m, "n": n, "k": k, "best_seconds": best, "gflops": 2.0 * m * n * k / best / 1e9})
        top = max(shapes, key=lambda s: s["gflops"])
        flop = 2 * top["m"] * top["n"] * top["k"]
        rows.append({"id": rid, "name": "sgemm-peak" if system == "torch" else "sgemm-numpy", "system": "torch",
                     "seconds": top["best_seconds"], "all_seconds": [top["best_seconds"]], "repeats": tries,
                     "flop": flop, "gflops": top["gflops"], "threads": threads, "phase": "gemm", "smoke": smoke,
                     "sgemm_shapes": shapes, "versions": version, "base_rss_bytes": base,
                     "peak_rss_bytes": bc.peak_rss_bytes()})
    return rows


if __name__ == "__main__":
    bc.main("torch", SCRIPT, child)
