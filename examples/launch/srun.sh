#!/usr/bin/env bash
# train_mlp inside a Slurm allocation (salloc -N 2, or from sbatch.sh) through haein run's
# srun backend: haein places the ranks on the allocated nodes and starts one srun step.
set -euo pipefail
HAEIN=${HAEIN:-haein}
TRAINER=${TRAINER:-train_mlp}
CLUSTER=${CLUSTER:-cluster.yaml}        # must name the allocated nodes
NNODES=${NNODES:-${SLURM_JOB_NUM_NODES:-2}}
PER_NODE=${PER_NODE:-8}                 # one rank per GPU
OUT=${OUT:-$PWD/train-mlp-out}

exec "$HAEIN" run -c "$CLUSTER" --nnodes "$NNODES" --nproc-per-node "$PER_NODE" --backend srun \
  --max-restarts 2 --heartbeat-timeout 300 --log-dir "$OUT/logs" -- \
  "$TRAINER" --out "$OUT" --steps 2000 --global-batch 1024 --checkpoint-every 100 "$@"
