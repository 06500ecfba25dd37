#!/usr/bin/env python3
"""End-to-end checks of the benchmark harness (no timing assertions):

* memcell's exported data (`memcell bench --write-data`) equal the Python port bit for bit;
* `memcell bench --list --json` and bench_common.workloads() define the same workloads with
  the same FLOP counts;
* torch_workloads.py and keras_workloads.py run S1 and A1 (--smoke --repeats 1) and write
  memcell's schema; compare.py runs them all together and writes its table.

    cargo build --release && ../venv-peers/bin/python bench/smoke_test.py
    (MEMCELL_BIN=path/to/memcell to use another binary)
"""
import json
import os
import subprocess
import sys
import tempfile
import unittest

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import bench_common as bc  # noqa: E402

MEMCELL = os.environ.get("MEMCELL_BIN") or os.path.join(
    os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "release", "memcell")
SCHEMA = {"id", "name", "system", "seconds", "all_seconds", "repeats", "flop", "gflops", "peak_rss_bytes",
          "threads", "phase", "smoke"}


def run(cmd):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if p.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stderr[-3000:]}")
    return p.stdout


class Harness(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not os.access(MEMCELL, os.X_OK):
            raise unittest.SkipTest(f"no memcell binary at {MEMCELL} (cargo build --release)")
        cls.tmp = tempfile.TemporaryDirectory()

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_data_is_bit_identical(self):
        for smoke in (True, False):
            d = os.path.join(self.tmp.name, f"data-{smoke}")
            run([MEMCELL, "bench", "--write-data", d] + (["--smoke"] if smoke else []))
            seen = set()
            for w in bc.workloads(smoke):
                key = bc.data_key(w["data"])
                if w["phase"]["kind"] == "sgemm" or key in seen:
                    continue
                seen.add(key)
                x, y = bc.generate(w["data"])
                fx, fy = bc.load_data(w["data"], d)
                self.assertEqual((x.dtype, x.shape), (fx.dtype, fx.shape), key)
                self.assertTrue(np.array_equal(x.view(np.uint32), fx.view(np.uint32)), key)
                self.assertTrue(np.array_equal(y.view(np.uint32), fy.view(np.uint32)), key)

    def test_definitions_and_flops_agree(self):
        for smoke in (True, False):
            p = os.path.join(self.tmp.name, f"defs-{smoke}.json")
            run([MEMCELL, "bench", "--list", "--json", p] + (["--smoke"] if smoke else []))
            with open(p) as f:
                rust = json.load(f)
            py = bc.workloads(smoke)
            self.assertEqual([r["id"] for r in rust], [w["id"] for w in py])
            for r, w in zip(rust, py):
                for k in ("name", "input", "layers", "data", "batch", "phase", "repeats"):
                    self.assertEqual(r[k], w[k], f"{w['id']} {k}")
                self.assertEqual(r["forward_flop_per_sample"], bc.forward_flop(w["layers"], w["input"]), w["id"])
                self.assertEqual(r["phase_flop"], bc.phase_flop(w), w["id"])
                self.assertEqual(r["data_key"], bc.data_key(w["data"]), w["id"])

    def check_rows(self, path, system, ids):
        with open(path) as f:
            rows = json.load(f)
        self.assertEqual([r["id"] for r in rows if r["id"] in ids], ids)
        by = {r["id"]: r for r in rows}
        for i in ids:
            r = by[i]
            self.assertTrue(SCHEMA <= set(r), f"{system} {i}: missing {SCHEMA - set(r)}")
            self.assertEqual(r["system"], system)
            self.assertGreater(r["seconds"], 0)
            self.assertGreater(r["peak_rss_bytes"], 0)
            self.assertEqual(r["flop"], bc.phase_flop(bc.select([i], True)[0]))
        self.assertIsNotNone(by["S1"].get("mse_all"))
        self.assertEqual(by["S1"]["params"], 40601)
        return by

    def test_peer_scripts_and_compare(self):
        d = os.path.join(self.tmp.name, "data-peers")
        run([MEMCELL, "bench", "--write-data", d, "--smoke"])
        for system, script in (("torch", "torch_workloads.py"), ("keras", "keras_workloads.py")):
            out = os.path.join(self.tmp.name, f"{system}.json")
            run([sys.executable, os.path.join(HERE, script), "S1", "A1", "--smoke", "--repeats", "1",
                 "--data", d, "--json", out])
            self.check_rows(out, system, ["S1", "A1"])
        out = os.path.join(self.tmp.name, "memcell.json")
        run([MEMCELL, "bench", "S1", "A1", "--smoke", "--repeats", "1", "--json", out])
        self.check_rows(out, "memcell", ["S1", "A1"])
        cdir = os.path.join(self.tmp.name, "compare")
        text = run([sys.executable, os.path.join(HERE, "compare.py"), "--smoke", "--quick", "--workloads", "S1,A1",
                    "--out", cdir, "--memcell", MEMCELL, "--python", sys.executable])
        self.assertIn("seed-rnn", text)
        with open(os.path.join(cdir, "comparison.json")) as f:
            c = json.load(f)
        self.assertEqual([r["id"] for r in c["rows"]], ["S1", "A1"])
        self.assertFalse(c["header"]["failures"])
        self.assertFalse([r for r in c["rows"] if r.get("warnings")])
        for s in ("memcell", "torch", "keras"):
            self.assertIsNotNone(c["rows"][0][f"{s}_seconds"], s)
        self.assertIsNotNone(c["sgemm_gflops"]["memcell"])
        self.assertIsNotNone(c["sgemm_gflops"]["torch"])
        self.assertTrue(os.path.exists(os.path.join(cdir, "comparison.md")))

    def test_unknown_names_fail_cleanly(self):
        p = subprocess.run([MEMCELL, "bench", "X9"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.assertEqual(p.returncode, 2)
        self.assertIn("unknown workload 'X9'", p.stderr)
        self.assertNotIn("panicked", p.stderr)
        p = subprocess.run([sys.executable, os.path.join(HERE, "torch_workloads.py"), "X9"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("unknown workload 'X9'", p.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
