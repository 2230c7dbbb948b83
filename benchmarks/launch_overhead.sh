#!/usr/bin/env bash
# Start-up cost of `haein run`: N ranks of /bin/true through the local backend (and the
# mpirun backend) against plain `mpirun -np N --oversubscribe /bin/true`, in turn, R
# times; prints the median wall time of each and the ratio of the medians.
# Usage: launch_overhead.sh [HAEIN] [RANKS] [REPEATS]
set -euo pipefail
haein=${1:-haein}
ranks=${2:-8}
repeats=${3:-21}
root_flag=()
if [[ $(id -u) == 0 ]]; then root_flag=(--allow-run-as-root); fi

seconds() {  # wall seconds of one run of "$@", output discarded
  local start end
  start=$(date +%s%N)
  "$@" >/dev/null 2>&1 || { echo "failed: $*" >&2; exit 1; }
  end=$(date +%s%N)
  awk -v s="$start" -v e="$end" 'BEGIN { printf "%.6f\n", (e - s) / 1e9 }' 
}
median() { sort -g | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2}'; }

declare -a local_times mpirun_backend_times mpirun_times
for ((i = 0; i <= repeats; ++i)); do  # run 0 warms the caches and is not counted
  l=$(seconds "$haein" run -n "$ranks" --oversubscribe -- /bin/true)
  b=$(seconds "$haein" run -n "$ranks" --oversubscribe --backend mpirun -- /bin/true)
  m=$(seconds mpirun "${root_flag[@]}" -np "$ranks" --oversubscribe /bin/true)
  if ((i > 0)); then local_times+=("$l"); mpirun_backend_times+=("$b"); mpirun_times+=("$m"); fi
done
l=$(printf '%s\n' "${local_times[@]}" | median)
b=$(printf '%s\n' "${mpirun_backend_times[@]}" | median)
m=$(printf '%s\n' "${mpirun_times[@]}" | median)
printf '# %d ranks of /bin/true, median wall seconds over %d runs (after one warm-up)\n' "$ranks" "$repeats"
printf '%-44s %8s %8s\n' "command" "median" "ratio"
printf '%-44s %8.3f %8.2f\n' "mpirun -np $ranks --oversubscribe /bin/true" "$m" 1
printf '%-44s %8.3f %8.2f\n' "haein run -n $ranks (local backend)" "$l" "$(awk -v a="$l" -v b="$m" 'BEGIN { print a / b }')"
printf '%-44s %8.3f %8.2f\n' "haein run -n $ranks --backend mpirun" "$b" "$(awk -v a="$b" -v b="$m" 'BEGIN { print a / b }')"
