#!/usr/bin/env python3
"""Runs bench/WORKLOADS.md in memcell, PyTorch and Keras on this machine and prints one table.

    bench/run_all.sh [options]                       # builds memcell (release), then this
    ../venv-peers/bin/python bench/compare.py [--workloads S1,M1] [--skip keras] [--quick]
        [--repeats N] [--threads 2] [--out bench/results] [--memcell target/release/memcell]

Order: the data are written once by memcell (`memcell bench --write-data`) and loaded by the
Python scripts, so all three train on the same bits; then the SGEMM peaks (memcell's gemm,
torch.mm, numpy.matmul); then, workload by workload, memcell, PyTorch and Keras one after the
other (interleaved, so that a drift of the machine's speed hits all three alike). Every
workload runs in its own child process of its system (peak RSS = that child's VmHWM).

Writes OUT/comparison.md (the table for the README), OUT/comparison.json (header, rows and
every system's raw results) and OUT/raw/<system>-<id>.json.
"""
import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import bench_common as bc  # noqa: E402

SYSTEMS = ("memcell", "torch", "keras")


def sh(cmd, **kw):
    try:
        return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, **kw).stdout.strip()
    except OSError:
        return ""


def machine():
    cpu, cores = "?", "?"
    try:
        with open("/proc/cpuinfo") as f:
            info = f.read()
        names = [l.split(":", 1)[1].strip() for l in info.splitlines() if l.startswith("model name")]
        cpu = names[0] if names else platform.processor() or "?"
        phys = {l.split(":", 1)[1].strip() for l in info.splitlines() if l.startswith("cpu cores")}
        cores = f"{len(names)} logical" + (f", {phys.pop()} per socket" if phys else "")
    except OSError:
        pass
    mem = "?"
    try:
        with open("/proc/meminfo") as f:
            kb = int(next(l for l in f if l.startswith("MemTotal")).split()[1])
        mem = f"{kb / 1048576:.1f} GiB"
    except (OSError, StopIteration, ValueError):
        pass
    return {"cpu": cpu, "cores": cores, "memory": mem, "kernel": platform.release(),
            "load_average_at_start": [round(v, 2) for v in os.getloadavg()] if hasattr(os, "getloadavg") else None}


def memcell_version(exe):
    commit = sh(["git", "-C", ROOT, "rev-parse", "--short=12", "HEAD"]) or "?"
    if sh(["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no"]):
        commit += "-dirty"
    version = sh([exe, "--version"]).split()  # "memcell 0.1.0"
    return {"commit": commit, "version": version[-1] if version else "?"}


def run_one(cmd, json_path, timeout, env=None):
    """Runs one benchmark command; returns (rows, error)."""
    if os.path.exists(json_path):
        os.remove(json_path)
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return [], f"timed out after {timeout} s"
    except OSError as e:
        return [], str(e)
    if p.returncode != 0:
        tail = "\n".join((p.stderr or p.stdout).strip().splitlines()[-8:])
        return [], f"exit {p.returncode}: {tail}"
    try:
        with open(json_path) as f:
            return json.load(f), None
    except (OSError, ValueError) as e:
        return [], f"no result ({e})"


def fmt(v, spec, dash="-"):
    if v is None:
        return dash
    try:
        return format(v, spec)
    except (TypeError, ValueError):
        return dash


def mb(b):
    return None if b is None else b / 1048576.0


def build_rows(ws, res, peaks):
    rows = []
    for w in ws:
        if w["id"] == "sgemm":
            continue
        r = {s: res[s].get(w["id"]) for s in SYSTEMS}
        mc = r["memcell"]
        row = {"id": w["id"], "name": w["name"], "flop": bc.phase_flop(w)}
        for s in SYSTEMS:
            x = r[s]
            row[f"{s}_seconds"] = x["seconds"] if x else None
            row[f"{s}_gflops"] = x["gflops"] if x else None
            row[f"{s}_peak_rss_bytes"] = x.get("peak_rss_bytes") if x else None
            row[f"{s}_base_rss_bytes"] = x.get("base_rss_bytes") if x else None
            for k in ("final_loss", "final_val_loss", "mse_all"):
                row[f"{s}_{k}"] = x.get(k) if x else None
            row[f"{s}_params"] = x.get("params") if x else None
            if x and x.get("flop") != row["flop"]:
                row.setdefault("warnings", []).append(f"{s} counts {x.get('flop')} FLOP, expected {row['flop']}")
        counts = {s: row[f"{s}_params"] for s in SYSTEMS if row[f"{s}_params"] is not None}
        if len(set(counts.values())) > 1:
            row.setdefault("warnings", []).append(f"parameter counts differ: {counts}")
        for peer in ("torch", "keras"):
            ok = mc and r[peer] and mc["seconds"] > 0
            row[f"speedup_vs_{peer}"] = r[peer]["seconds"] / mc["seconds"] if ok else None
        g = mc["gflops"] if mc else None
        row["memcell_pct_memcell_sgemm"] = 100 * g / peaks["memcell"] if g and peaks.get("memcell") else None
        row["memcell_pct_peer_sgemm"] = 100 * g / peaks["peer"] if g and peaks.get("peer") else None
        rows.append(row)
    return rows


def tables(header, rows, peaks):
    """(text, markdown) of the main table and the details table."""
    cols = ["id", "name", "memcell s", "torch s", "keras s", "torch/memcell", "keras/memcell", "memcell GFLOP/s",
            "% memcell SGEMM", "% torch/numpy SGEMM", "RSS memcell MB", "RSS torch MB", "RSS keras MB"]
    body = []
    for r in rows:
        body.append([r["id"], r["name"], fmt(r["memcell_seconds"], ".4f"), fmt(r["torch_seconds"], ".4f"),
                     fmt(r["keras_seconds"], ".4f"), fmt(r["speedup_vs_torch"], ".2f"),
                     fmt(r["speedup_vs_keras"], ".2f"), fmt(r["memcell_gflops"], ".2f"),
                     fmt(r["memcell_pct_memcell_sgemm"], ".1f"), fmt(r["memcell_pct_peer_sgemm"], ".1f"),
                     fmt(mb(r["memcell_peak_rss_bytes"]), ".1f"), fmt(mb(r["torch_peak_rss_bytes"]), ".1f"),
                     fmt(mb(r["keras_peak_rss_bytes"]), ".1f")])
    dcols = ["id", "torch GFLOP/s", "keras GFLOP/s", "loss memcell", "loss torch", "loss keras",
             "mse_all memcell", "mse_all torch", "mse_all keras", "RSS-base memcell", "RSS-base torch",
             "RSS-base keras"]
    dbody = []
    for r in rows:
        def over(s):
            p, b = r[f"{s}_peak_rss_bytes"], r[f"{s}_base_rss_bytes"]
            return None if p is None or b is None else (p - b) / 1048576.0
        dbody.append([r["id"], fmt(r["torch_gflops"], ".2f"), fmt(r["keras_gflops"], ".2f")]
                     + [fmt(r[f"{s}_final_loss"], ".3e") for s in SYSTEMS]
                     + [fmt(r[f"{s}_mse_all"], ".3e") for s in SYSTEMS]
                     + [fmt(over(s), ".1f") for s in SYSTEMS])

    def text_table(c, b):
        wd = [max(len(x) for x in col) for col in zip(c, *b)]
        left = [h in ("id", "name") for h in c]
        line = lambda v: "  ".join(x.ljust(n) if lf else x.rjust(n) for x, n, lf in zip(v, wd, left))
        return "\n".join([line(c), "  ".join("-" * n for n in wd)] + [line(v) for v in b]) + "\n"

    def md_table(c, b):
        align = "|".join("---" if h in ("id", "name") else "---:" for h in c)
        return "\n".join(["| " + " | ".join(c) + " |", "|" + align + "|"] + ["| " + " | ".join(v) + " |" for v in b]) + "\n"

    h = header
    lines = [f"memcell {h['memcell']['version']} (commit {h['memcell']['commit']}), torch {h['versions'].get('torch', '-')}, "
             f"tensorflow {h['versions'].get('tensorflow', '-')}, keras {h['versions'].get('keras', '-')}, "
             f"numpy {h['versions'].get('numpy', '-')}",
             f"{h['machine']['cpu']}; {h['machine']['cores']}; {h['machine']['memory']}; Linux "
             f"{h['machine']['kernel']}; load average at start {h['machine']['load_average_at_start']}, "
             f"at end {h['machine'].get('load_average_at_end')} (a quiet machine reads below 0.1)",
             f"{h['date']}; {h['threads']} threads, float32; {h['repeats_note']}",
             f"SGEMM peak (best of {h['sgemm_note']}): memcell {fmt(peaks.get('memcell'), '.1f')} GFLOP/s, "
             f"torch {fmt(peaks.get('torch'), '.1f')}, numpy {fmt(peaks.get('numpy'), '.1f')} GFLOP/s"]
    notes = ("seconds: median of the timed phase (seed: fit + extrapolation; M*, L1, A1: one epoch after a warm-up; "
             "I1: predict). x/memcell = peer seconds / memcell seconds (> 1: memcell faster). "
             "% SGEMM: memcell's GFLOP/s against the f32 GEMM peak measured in this run (memcell's own gemm; "
             "the better of torch.mm and numpy.matmul). RSS: the workload's child process peak (VmHWM), "
             "interpreter and framework included for the peers; RSS-base: peak minus the peak before the "
             "workload's data and model.")
    text = "\n".join(lines) + "\n\n" + text_table(cols, body) + "\n" + text_table(dcols, dbody)
    md = ("### memcell vs PyTorch vs Keras\n\n" + "\n".join(f"- {l}" for l in lines) + "\n\n" + md_table(cols, body)
          + "\n" + notes + "\n\n#### Details\n\n" + md_table(dcols, dbody))
    warns = [f"{r['id']}: {m}" for r in rows for m in r.get("warnings", [])]
    if warns:
        text += "\nWARNINGS (the systems did not count the same work):\n" + "\n".join(warns) + "\n"
        md += "\n**Warnings**: " + "; ".join(warns) + "\n"
    if h.get("smoke"):
        text += "(smoke sizes: not figures)\n"
        md += "\n(smoke sizes: not figures)\n"
    if h.get("failures"):
        text += "\nFAILED RUNS:\n" + "\n".join(h["failures"]) + "\n"
        md += "\n**Failed runs**: " + "; ".join(h["failures"]) + "\n"
    return text, md


def main():
    ap = argparse.ArgumentParser(description="memcell vs PyTorch vs Keras on bench/WORKLOADS.md")
    ap.add_argument("--workloads", default="all", help="comma list of ids or names (default: all)")
    ap.add_argument("--skip", default="", help="comma list of systems to skip: memcell, torch, keras")
    ap.add_argument("--quick", action="store_true", help="1 repeat per workload (development; not figures)")
    ap.add_argument("--repeats", type=int, help="timed repeats per workload (default: the workload's 5 or 3)")
    ap.add_argument("--smoke", action="store_true", help="reduced sizes (tests only)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=os.path.join(HERE, "results"), help="output folder (default bench/results)")
    ap.add_argument("--memcell", default=os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")),
                                                      "release", "memcell"), help="the memcell binary")
    ap.add_argument("--python", default=sys.executable, help="the Python with torch and tensorflow")
    ap.add_argument("--timeout", type=int, default=1800, help="seconds allowed for one workload on one system")
    a = ap.parse_args()
    skip = {s.strip().lower() for s in a.skip.split(",") if s.strip()}
    bad = skip - set(SYSTEMS)
    if bad:
        raise SystemExit(f"error: unknown system(s) {sorted(bad)} in --skip; known: {', '.join(SYSTEMS)}")
    systems = [s for s in SYSTEMS if s not in skip]
    if not systems:
        raise SystemExit("error: every system is skipped")
    ws = bc.select([a.workloads], a.smoke)
    if not any(w["id"] == "sgemm" for w in ws):
        ws = bc.select(["sgemm"], a.smoke) + ws  # the peak is always measured
    repeats = 1 if a.quick else a.repeats
    if "memcell" in systems and not os.access(a.memcell, os.X_OK):
        raise SystemExit(f"error: no memcell binary at {a.memcell} (build it: cargo build --release, "
                         f"or use bench/run_all.sh)")
    os.makedirs(os.path.join(a.out, "raw"), exist_ok=True)
    t_start = time.perf_counter()
    # The machine as the run starts (its load average then); the header is written at the end.
    machine_at_start = machine()

    def progress(msg):
        el = time.perf_counter() - t_start
        print(f"[{int(el // 60):3d}:{int(el % 60):02d}] {msg}", file=sys.stderr, flush=True)

    data_dir = None
    if "memcell" in systems:
        data_dir = os.path.join(a.out, "data")
        progress(f"writing the data with memcell into {data_dir}")
        cmd = [a.memcell, "bench", "--write-data", data_dir] + (["--smoke"] if a.smoke else [])
        if subprocess.run(cmd, stdout=subprocess.DEVNULL).returncode != 0:
            raise SystemExit("error: memcell bench --write-data failed")

    def command(system, wid, json_path):
        common = ["--json", json_path, "--threads", str(a.threads)]
        if repeats:
            common += ["--repeats", str(repeats)]
        if a.smoke:
            common.append("--smoke")
        if system == "memcell":
            return [a.memcell, "bench", wid] + common
        script = os.path.join(HERE, "torch_workloads.py" if system == "torch" else "keras_workloads.py")
        return [a.python, script, wid] + common + (["--data", data_dir] if data_dir else [])

    jobs = [(w, s) for w in ws for s in systems if not (w["id"] == "sgemm" and s == "keras")]
    res = {s: {} for s in SYSTEMS}
    failures = []
    for i, (w, s) in enumerate(jobs, 1):
        path = os.path.join(a.out, "raw", f"{s}-{w['id']}.json")
        progress(f"({i}/{len(jobs)}) {s} {w['id']} ({w['name']}) ...")
        t0 = time.perf_counter()
        rows, err = run_one(command(s, w["id"], path), path, a.timeout)
        if err:
            failures.append(f"{s} {w['id']}: {err}")
            progress(f"({i}/{len(jobs)}) {s} {w['id']} FAILED: {err}")
            continue
        for r in rows:
            res[s][r["id"]] = r
        main_row = next((r for r in rows if r["id"] == w["id"]), None)
        progress(f"({i}/{len(jobs)}) {s} {w['id']}: median {fmt(main_row and main_row['seconds'], '.4f')} s "
                 f"({time.perf_counter() - t0:.1f} s with process start and warm-up)")

    peaks = {"memcell": res["memcell"].get("sgemm", {}).get("gflops"),
             "torch": res["torch"].get("sgemm", {}).get("gflops"),
             "numpy": res["torch"].get("sgemm-numpy", {}).get("gflops")}
    peer = [v for v in (peaks["torch"], peaks["numpy"]) if v]
    peaks["peer"] = max(peer) if peer else None
    versions = {}
    for s in ("torch", "keras"):
        for r in res[s].values():
            versions.update(r.get("versions") or {})
    sg = next(w for w in ws if w["id"] == "sgemm")["phase"]
    header = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine_at_start,
        "memcell": memcell_version(a.memcell) if "memcell" in systems else {"commit": "-", "version": "-"},
        "versions": versions,
        "threads": a.threads,
        "repeats_note": ("1 repeat per workload (--quick: not figures)" if repeats == 1 else
                         f"median of {repeats} runs" if repeats else "median of 5 runs (seed workloads), 3 (others)"),
        "sgemm_note": f"{sg['tries']}, shapes " + ", ".join("x".join(map(str, s)) for s in sg["shapes"]),
        "skipped": sorted(skip),
        "smoke": a.smoke,
        "failures": failures,
        "total_seconds": round(time.perf_counter() - t_start, 1),
    }
    if hasattr(os, "getloadavg"):
        header["machine"]["load_average_at_end"] = [round(v, 2) for v in os.getloadavg()]
    rows = build_rows(ws, res, peaks)
    text, md = tables(header, rows, peaks)
    print(text)
    with open(os.path.join(a.out, "comparison.md.tmp"), "w") as f:
        f.write(md)
    os.replace(os.path.join(a.out, "comparison.md.tmp"), os.path.join(a.out, "comparison.md"))
    bc.write_json_atomic(os.path.join(a.out, "comparison.json"),
                         {"header": header, "sgemm_gflops": peaks, "rows": rows,
                          "raw": {s: list(res[s].values()) for s in SYSTEMS}})
    progress(f"wrote {os.path.join(a.out, 'comparison.md')} and comparison.json")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
