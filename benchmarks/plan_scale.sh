#!/usr/bin/env bash
# `haein plan` at scale, the whole process end to end (issue 23 §6: a 100,000-GPU job on a
# 12,500-node cluster with --json in under 1 s and 512 MiB). Generates a fat tree of N
# DGX B200 nodes (g00001.., 32 per leaf, 16 leaves per spine, one core), then runs the
# real binary R times per case (after one warm-up run) and prints the median wall time and
# the largest max RSS (/usr/bin/time) of each, against the target. With a second binary
# (BASELINE, e.g. a build of an older commit) each run of haein follows one of the
# baseline, and each case also prints the baseline's numbers and the ratio of the medians.
# Usage: plan_scale.sh [HAEIN] [NODES] [REPEATS] [GPUS,...] [BASELINE]
# Exits 1 when a --json case of HAEIN misses the target.
set -euo pipefail
haein=${1:-haein}
nodes=${2:-12500}
repeats=${3:-5}
sizes=${4:-50000,100000}
baseline=${5:-}
target_seconds=1
target_mib=512

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cluster="$work/generated-$nodes.yaml"
awk -v nodes="$nodes" 'BEGIN {
  printf "version: 1\nname: generated-%d\nrails: 8\nnodes:\n", nodes
  printf "  - {hostname: \"g[00001-%05d]\", node_type: dgx-b200}\nswitches:\n", nodes
  leaves = int((nodes + 31) / 32)
  for (l = 0; l < leaves; ++l) {
    last = (l * 32 + 32 < nodes) ? l * 32 + 32 : nodes
    printf "  - {name: leaf%d, level: leaf, nodes: \"g[%05d-%05d]\"}\n", l, l * 32 + 1, last
  }
  spines = int((leaves + 15) / 16)
  for (s = 0; s < spines; ++s) {
    last = (s * 16 + 16 < leaves) ? s * 16 + 15 : leaves - 1
    printf "  - {name: spine%d, level: spine, switches: \"leaf[%d-%d]\"}\n", s, s * 16, last
  }
  printf "  - {name: core, level: core, switches: \"spine[0-%d]\"}\n", spines - 1
}' >"$cluster"

median() { sort -g | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2}'; }
largest() { sort -g | tail -n 1; }

# One run: "wall_seconds max_rss_kib" on stdout; the command's own output is discarded.
measure() {
  /usr/bin/time -f '%e %M' -o "$work/time" "$@" >"$work/stdout" 2>"$work/stderr" ||
    { echo "failed: $*" >&2; cat "$work/stderr" >&2; exit 1; }
  cat "$work/time"
}

# row LABEL VERDICT TIMES... -- RSS...: the median, least and most seconds and the largest
# max RSS of the runs.
row() {
  local label=$1 verdict=$2 t lo hi mib
  shift 2
  local times=() rss=()
  while [[ $1 != -- ]]; do times+=("$1"); shift; done
  shift
  rss=("$@")
  t=$(printf '%s\n' "${times[@]}" | median)
  lo=$(printf '%s\n' "${times[@]}" | sort -g | head -n 1)
  hi=$(printf '%s\n' "${times[@]}" | largest)
  mib=$(awk -v k="$(printf '%s\n' "${rss[@]}" | largest)" 'BEGIN { printf "%.1f", k / 1024 }')
  printf '  %-46s %9.3f %9.3f %9.3f %9s  %s\n' "$label" "$t" "$lo" "$hi" "$mib" "$verdict"
}

missed=0
printf '# haein plan on generated-%d (%d DGX B200 nodes, %d GPUs), %d runs after a warm-up\n' \
  "$nodes" "$nodes" $((nodes * 8)) "$repeats"
printf '# %-46s %9s %9s %9s %9s  %s\n' "case" "median_s" "min_s" "max_s" "rss_MiB" "target"
IFS=, read -r -a gpu_list <<<"$sizes"
for gpus in "${gpu_list[@]}"; do
  for mode in json explain json+layout; do
    args=(plan --cluster "$cluster" --gpus "$gpus")
    case $mode in
      json) args+=(--json "$work/p.json") ;;
      explain) args+=(--explain) ;;
      json+layout) args+=(--json "$work/p.json" --layout tp=8) ;;
    esac
    times=() rss=() base_times=() base_rss=()
    for ((i = 0; i <= repeats; ++i)); do
      if [[ -n $baseline ]]; then
        read -r bt bm < <(measure "$baseline" "${args[@]}")
        if ((i > 0)); then base_times+=("$bt"); base_rss+=("$bm"); fi
      fi
      read -r t m < <(measure "$haein" "${args[@]}")
      if ((i > 0)); then times+=("$t"); rss+=("$m"); fi
    done
    t=$(printf '%s\n' "${times[@]}" | median)
    mib=$(awk -v k="$(printf '%s\n' "${rss[@]}" | largest)" 'BEGIN { printf "%.1f", k / 1024 }')
    verdict="-"
    if [[ $mode == json* ]]; then
      if awk -v t="$t" -v m="$mib" -v ts="$target_seconds" -v tm="$target_mib" \
        'BEGIN { exit !(t < ts && m < tm) }'; then
        verdict="met (< ${target_seconds} s, < ${target_mib} MiB)"
      else
        verdict="MISSED (< ${target_seconds} s, < ${target_mib} MiB)"
        missed=1
      fi
    fi
    if [[ -n $baseline ]]; then
      b=$(printf '%s\n' "${base_times[@]}" | median)
      row "--gpus $gpus --$mode (baseline)" "-" "${base_times[@]}" -- "${base_rss[@]}"
      ratio="baseline/haein $(awk -v b="$b" -v t="$t" 'BEGIN { printf "%.2fx", b / t }')"
      if [[ $verdict == - ]]; then verdict=$ratio; else verdict="$verdict; $ratio"; fi
    fi
    row "--gpus $gpus --$mode" "$verdict" "${times[@]}" -- "${rss[@]}"
  done
done
exit "$missed"
