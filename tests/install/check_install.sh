#!/usr/bin/env bash
# Installs the build into a fresh prefix, then builds and runs a consumer project that
# uses find_package(haein) and haein::runtime, as a trainer outside this repo would:
# once reading the environment contract, once all-reducing under the real mpirun.
set -euo pipefail
build_dir=$1 source_dir=$2 work=$3 mpirun=$4
rm -rf "$work" && mkdir -p "$work"
cmake --install "$build_dir" --prefix "$work/prefix" >/dev/null
test -x "$work/prefix/bin/haein"
"$work/prefix/bin/haein" topo show preset:dgx-h100 | grep -qx "gpus: 8"
cmake -S "$source_dir" -B "$work/consumer" -DCMAKE_PREFIX_PATH="$work/prefix" >/dev/null
cmake --build "$work/consumer" >/dev/null
RANK=2 WORLD_SIZE=4 "$work/consumer/consumer" | tee "$work/out.txt"
grep -q "rank 2 of 4 (torchrun)" "$work/out.txt"
"$mpirun" -np 3 --oversubscribe --allow-run-as-root --bind-to none \
  "$work/consumer/consumer" allreduce | tee "$work/mpi.txt"
test "$(grep -c ' of 3 sum 6$' "$work/mpi.txt")" -eq 3
