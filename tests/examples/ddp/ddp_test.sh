#!/usr/bin/env bash
# An unmodified PyTorch DDP script under haein run and under torchrun (issue 22): both
# launchers give every rank what DDP reads, the final parameters are bit-identical, the
# script's own heartbeat (a touched file) satisfies --heartbeat-timeout, and a torchrun
# command line works as typed. Skips (77) where torch is not installed (pip install torch).
#   ddp_test.sh HAEIN_BINARY
set -euo pipefail
haein=${1:?usage: ddp_test.sh HAEIN_BINARY}
here=$(cd "$(dirname "$0")" && pwd)
python=${PYTHON:-python3}
"$python" -c 'import torch, torch.distributed' 2>/dev/null \
  || { echo "ddp_test: skipped: PyTorch is not installed here (pip install torch)"; exit 77; }
fail() { echo "ddp_test: FAIL: $*" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export GLOO_SOCKET_IFNAME=lo MASTER_ADDR=127.0.0.1

# torchrun's way, as the baseline.
torchrun_out=$("$python" -m torch.distributed.run --nproc-per-node 2 --master-port 29613 \
                 "$here/ddp_train.py" 20 2>&1) || fail "torchrun failed: $torchrun_out"
want=$(grep -o "ddp rank 0 of 2 local 0 loss [0-9.]* checksum [0-9a-f]\{16\}" <<<"$torchrun_out") \
  || fail "torchrun printed no result: $torchrun_out"

# haein run, typed as torchrun is (no "--", --nproc_per_node, the .py run under python),
# with the hang watch on: the script's touches keep it quiet.
haein_out=$(CUDA_VISIBLE_DEVICES= PATH="$(dirname "$(command -v "$python")"):$PATH" "$haein" run --standalone \
              --nnodes 1 --nproc_per_node 2 --oversubscribe --heartbeat-timeout 30 \
              --tag-output '' "$here/ddp_train.py" 20 2>&1) || fail "haein run failed: $haein_out"
got=$(grep -o "ddp rank 0 of 2 local 0 loss [0-9.]* checksum [0-9a-f]\{16\}" <<<"$haein_out") \
  || fail "haein run printed no result: $haein_out"
grep -q "ddp rank 1 of 2 local 1 " <<<"$haein_out" || fail "rank 1 missing: $haein_out"
[ "$got" = "$want" ] || fail "haein run and torchrun differ: '$got' vs '$want'"
echo "ddp_test: ok: haein run and torchrun agree bitwise ($want)"
