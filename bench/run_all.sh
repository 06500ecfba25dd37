#!/usr/bin/env bash
# The whole comparison in one command: builds memcell (release), then runs memcell bench, the
# PyTorch script and the Keras script workload by workload on this machine and prints one table
# (also written to bench/results/comparison.md and comparison.json).
#
#   bench/run_all.sh                         # everything (about 15 min on 2 cores)
#   bench/run_all.sh --workloads S1,M1 --skip keras --quick
#
# Options are bench/compare.py's. The Python is the peers venv made by bench/setup_peers.sh
# (<repo>/../venv-peers, or MEMCELL_PEERS_VENV).
set -euo pipefail
ROOT="$(git -C "$(dirname "$0")" rev-parse --show-toplevel)"
VENV="$(realpath -m "${MEMCELL_PEERS_VENV:-$ROOT/../venv-peers}")"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
if [ ! -x "$VENV/bin/python" ]; then
    echo "no peers venv at $VENV: run bench/setup_peers.sh first (or set MEMCELL_PEERS_VENV)" >&2
    exit 2
fi
(cd "$ROOT" && CARGO_TARGET_DIR="$TARGET" cargo build --release --bin memcell)
exec "$VENV/bin/python" "$ROOT/bench/compare.py" --memcell "$TARGET/release/memcell" --python "$VENV/bin/python" "$@"
