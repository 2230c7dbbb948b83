#!/usr/bin/env bash
# sbatch examples/launch/sbatch.sh [train_mlp options]   (edit the #SBATCH lines for your site)
#SBATCH --job-name=train-mlp
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=8
##SBATCH --gpus-per-node=8      (GPU nodes: one rank per GPU; remove one '#' to ask for them)
#SBATCH --exclusive
#SBATCH --time=01:00:00
#SBATCH --output=train-mlp-%j.out
# sbatch runs a copy of this script from its spool directory, so it names nothing beside
# itself. haein run reads the allocation (nodes, tasks, CPUs) from Slurm's variables and
# starts the ranks in one srun step; a requeued or resubmitted job resumes from the newest
# intact checkpoint in OUT.
#   RANKS    ranks in all (default: the job's tasks, SLURM_NTASKS)
#   CLUSTER  your site's cluster file, or unset: the allocation's nodes, placed by host
#   OUT      on storage every node shares (default: ./train-mlp-out where you submitted)
#   STEPS, CHECKPOINT_EVERY
set -euo pipefail
HAEIN=${HAEIN:-haein}
TRAINER=${TRAINER:-train_mlp}
OUT=${OUT:-${SLURM_SUBMIT_DIR:-$PWD}/train-mlp-out}

RANKS=${RANKS:-${SLURM_NTASKS:?submit with --ntasks or --ntasks-per-node, or set RANKS}}
cluster=()
[ -n "${CLUSTER:-}" ] && cluster=(-c "$CLUSTER")
exec "$HAEIN" run ${cluster[@]+"${cluster[@]}"} -n "$RANKS" --backend srun \
  --max-restarts 2 --heartbeat-timeout 300 --log-dir "$OUT/logs" -- \
  "$TRAINER" --out "$OUT" --steps "${STEPS:-2000}" --global-batch 1024 \
  --checkpoint-every "${CHECKPOINT_EVERY:-100}" "$@"
