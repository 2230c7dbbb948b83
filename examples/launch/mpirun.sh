#!/usr/bin/env bash
# train_mlp on a cluster through haein run's mpirun backend. Edit the variables, then run
# it from a directory every node shares (the job's files go in ./.haein/ there).
#   CLUSTER  the cluster file (haein topo discover on each node, or your site's YAML)
#   BUSY     nodes other tenants hold (one hostname or hostlist per line), or empty
set -euo pipefail
HAEIN=${HAEIN:-haein}
TRAINER=${TRAINER:-train_mlp}
CLUSTER=${CLUSTER:-cluster.yaml}
BUSY=${BUSY:-}
RANKS=${RANKS:-16}
OUT=${OUT:-$PWD/train-mlp-out}   # checkpoints, loss.csv, timeline.json: on shared storage

busy_flag=()
[ -n "$BUSY" ] && busy_flag=(--busy "$BUSY")
# --max-restarts: a failed rank restarts the whole job, which resumes from the last
# checkpoint. --heartbeat-timeout: a rank that stops making steps for 5 minutes is hung.
exec "$HAEIN" run -c "$CLUSTER" "${busy_flag[@]}" -n "$RANKS" --backend mpirun \
  --max-restarts 2 --heartbeat-timeout 300 --log-dir "$OUT/logs" -- \
  "$TRAINER" --out "$OUT" --steps 2000 --global-batch 1024 --checkpoint-every 100 "$@"
