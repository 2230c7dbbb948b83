#!/usr/bin/env bash
# train_mlp inside a Slurm allocation (salloc -N 2 --ntasks-per-node=8 examples/launch/srun.sh)
# through haein run's srun backend: haein places the ranks on the allocation's nodes only
# (SLURM_JOB_NODELIST, the CPUs Slurm granted on each) and starts them in one srun step
# (--mpi=pmix where srun has it). Run it from a directory every node shares.
#   RANKS    ranks in all (default: the allocation's tasks, SLURM_NTASKS)
#   CLUSTER  your site's cluster file (GPUs, NICs, switches), or unset: the allocation's
#            nodes, placed by host
#   OUT      checkpoints, loss.csv, logs: on storage every node shares
#   STEPS, CHECKPOINT_EVERY; more train_mlp options as arguments
set -euo pipefail
HAEIN=${HAEIN:-haein}
TRAINER=${TRAINER:-train_mlp}
RANKS=${RANKS:-${SLURM_NTASKS:?run inside an allocation with --ntasks or --ntasks-per-node, or set RANKS}}
OUT=${OUT:-$PWD/train-mlp-out}

cluster=()
[ -n "${CLUSTER:-}" ] && cluster=(-c "$CLUSTER")
# --max-restarts: a failed rank restarts the whole job (in the same allocation), which
# resumes from the last checkpoint. --heartbeat-timeout: 5 minutes without a step is a hang.
exec "$HAEIN" run ${cluster[@]+"${cluster[@]}"} -n "$RANKS" --backend srun \
  --max-restarts 2 --heartbeat-timeout 300 --log-dir "$OUT/logs" -- \
  "$TRAINER" --out "$OUT" --steps "${STEPS:-2000}" --global-batch 1024 \
  --checkpoint-every "${CHECKPOINT_EVERY:-100}" "$@"
