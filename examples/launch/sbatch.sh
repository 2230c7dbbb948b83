#!/usr/bin/env bash
# sbatch examples/launch/sbatch.sh   (edit the #SBATCH lines for your site)
#SBATCH --job-name=train-mlp
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=8
#SBATCH --gpus-per-node=8
#SBATCH --exclusive
#SBATCH --time=01:00:00
#SBATCH --output=train-mlp-%j.out
# A requeued or resubmitted job resumes from the newest intact checkpoint in OUT.
set -euo pipefail
export OUT=${OUT:-$PWD/train-mlp-out}
export NNODES=$SLURM_JOB_NUM_NODES
export PER_NODE=${SLURM_NTASKS_PER_NODE:-8}
# Without a site cluster file (CLUSTER=site.yaml, which knows GPUs, NICs and switches),
# the allocation itself as a hostfile: haein then places by host only.
if [ -z "${CLUSTER:-}" ]; then
  export CLUSTER=$PWD/hosts-$SLURM_JOB_ID
  scontrol show hostnames "$SLURM_JOB_NODELIST" | sed "s/\$/ slots=$PER_NODE/" >"$CLUSTER"
fi
exec "$(dirname "$0")/srun.sh" "$@"
