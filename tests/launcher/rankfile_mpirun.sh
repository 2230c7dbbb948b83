#!/usr/bin/env bash
# Real mpirun takes the rankfile `haein plan --rankfile` writes and binds each rank to the
# cores the plan gave it. Usage: rankfile_mpirun.sh HAEIN_BINARY MPIEXEC
set -euo pipefail
haein=$1
mpiexec=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
host=$(hostname)
cpus=$(nproc)
if (( cpus < 2 )); then echo "SKIP: needs 2 CPUs"; exit 0; fi
cat >"$work/local.yaml" <<YAML
version: 1
name: local
nodes:
  - hostname: $host
    nvlink: node
    numa:
      - {id: 0, cpus: "0-1"}
    gpus:
      - {index: 0, pci: "0000:01:00.0", numa: 0}
      - {index: 1, pci: "0000:02:00.0", numa: 0}
YAML
"$haein" plan --cluster "$work/local.yaml" --gpus 2 --rankfile "$work/rankfile" >/dev/null
grep -qx "rank 0=$host slot=0" "$work/rankfile"
grep -qx "rank 1=$host slot=1" "$work/rankfile"
"$mpiexec" --allow-run-as-root --oversubscribe -np 2 --rankfile "$work/rankfile" \
  --mca rmaps_rank_file_physical 1 \
  sh -c 'echo "$OMPI_COMM_WORLD_RANK $(grep Cpus_allowed_list /proc/self/status | cut -f2)"' \
  | sort >"$work/bound"
expected=$'0 0\n1 1'
if [[ "$(cat "$work/bound")" != "$expected" ]]; then
  echo "ranks were not bound as planned:"; cat "$work/bound"; exit 1
fi
echo "mpirun bound rank 0 to CPU 0 and rank 1 to CPU 1, as planned"

# The same ranks through `haein exec-rank`, as the mpirun backend starts them: each rank
# finds its entry of the placement JSON by OMPI_COMM_WORLD_RANK, gets the environment
# contract and binds itself.
"$haein" plan --cluster "$work/local.yaml" --gpus 2 --json "$work/placement.json" >/dev/null
"$mpiexec" --allow-run-as-root --oversubscribe -np 2 \
  "$haein" exec-rank --placement "$work/placement.json" -- \
  sh -c 'echo "$RANK $WORLD_SIZE $LOCAL_RANK $CUDA_VISIBLE_DEVICES $MASTER_ADDR $(grep Cpus_allowed_list /proc/self/status | cut -f2)"' \
  | sort >"$work/exec"
expected="0 2 0 0 $host 0
1 2 1 1 $host 1"
if [[ "$(cat "$work/exec")" != "$expected" ]]; then
  echo "exec-rank under mpirun gave:"; cat "$work/exec"; echo "expected:"; echo "$expected"; exit 1
fi
echo "exec-rank under mpirun: ranks, GPUs and cores as placed"
