#!/usr/bin/env bash
# Builds the parsers' libFuzzer targets with clang (ASan + UBSan) and runs each for a while.
#
#   tests/fuzz/run.sh [SECONDS_EACH] [BUILD_DIR]     default 10 s each, build-fuzz/
#   HAEIN_FUZZ_TARGETS="cluster_slurm layout" tests/fuzz/run.sh 600   some targets, longer
#
# Seeds come from the presets and from files haein writes (YAML, JSON, Slurm, hostfile,
# NCCL XML, placement JSON); findings (crash-*, leak-*, timeout-*, oom-*) land in
# BUILD_DIR/findings and fail the run. Exits 77 (CTest: skipped) when clang or libFuzzer
# is missing.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
seconds=${1:-10}
build=${2:-$root/build-fuzz}
command -v clang++ >/dev/null || { echo "fuzz: clang++ is not installed (Debian: clang)"; exit 77; }
probe=$(mktemp -d)
trap 'rm -rf "$probe"' EXIT
echo 'extern "C" int LLVMFuzzerTestOneInput(const char*, unsigned long) { return 0; }' >"$probe/p.cpp"
clang++ -fsanitize=fuzzer "$probe/p.cpp" -o "$probe/p" 2>/dev/null \
  || { echo "fuzz: clang has no libFuzzer runtime (Debian: libclang-rt-14-dev)"; exit 77; }

generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
mkdir -p "$build"
if [ ! -f "$build/CMakeCache.txt" ]; then
  cmake -S "$root" -B "$build" "${generator[@]}" -DCMAKE_CXX_COMPILER=clang++ \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHAEIN_FUZZ=ON >"$build/configure.log" 2>&1 \
    || { cat "$build/configure.log"; rm -f "$build/CMakeCache.txt"; exit 1; }
fi
cmake --build "$build" -j "$(nproc 2>/dev/null || echo 2)" >"$build/build.log" 2>&1 \
  || { tail -n 40 "$build/build.log"; exit 1; }

# Seeds: what the parsers meet in practice.
seeds=$build/seeds
rm -rf "$seeds"
mkdir -p "$seeds"/{yaml,json,slurm,hostfile,nccl_xml,hostlist,cpu_list,slurm_counts,placement_json,busy,layout,nccl_tests}
haein=$build/launcher/haein
cp "$root"/topology/presets/*.yaml "$seeds/yaml/"
for preset in dgx-h100 haein; do
  ASAN_OPTIONS=detect_leaks=0 "$haein" topo convert "preset:$preset" --to json >"$seeds/json/$preset.json"
  ASAN_OPTIONS=detect_leaks=0 "$haein" topo convert "preset:$preset" --to slurm >"$seeds/slurm/$preset.conf"
  ASAN_OPTIONS=detect_leaks=0 "$haein" topo convert "preset:$preset" --to hostfile >"$seeds/hostfile/$preset"
done
ASAN_OPTIONS=detect_leaks=0 "$haein" topo convert preset:dgx-h100 --to nccl-xml --node dgx-h100-01 \
  >"$seeds/nccl_xml/node.xml" 2>/dev/null || true
ASAN_OPTIONS=detect_leaks=0 "$haein" plan --cluster preset:haein --gpus 16 --json "$seeds/placement_json/p.json" >/dev/null
printf 'b200-[001-016],gpu[1-3]x\n' >"$seeds/hostlist/a"
printf 'node1,node[01-04,7],rack2-n[1-2]\n' >"$seeds/hostlist/b"
printf '0-55,112-167' >"$seeds/cpu_list/a"
printf '8(x2),4' >"$seeds/slurm_counts/a"
printf 'b200-[001-004]\n# comment\nb200-017\n' >"$seeds/busy/a"
printf '\x10\x00tp=8,pp=2' >"$seeds/layout/a"
printf '# Collective test starting: all_reduce_perf\n#  Rank  0 Group  0 Pid 1 on dgx-h100-01 device  0 [0x1b] NVIDIA H100\n#  Rank  1 Group  0 Pid 2 on dgx-h100-01 device  1 [0x43] NVIDIA H100\n#       size         count      type   redop    root     time   algbw   busbw #wrong\n[1,0]<stdout>:     1048576        262144     float     sum      -1    27.37   38.31   67.04      0\n  1073741824     268435456     float     sum      -1   4029.4  266.48  466.33      0\n' >"$seeds/nccl_tests/a"

findings=$build/findings
mkdir -p "$findings"
failed=()
all_targets="cluster_yaml cluster_json cluster_slurm cluster_hostfile cluster_nccl_xml hostlist
             cpu_list slurm_counts placement_json busy layout nccl_tests"
# shellcheck disable=SC2086  # a list of words
for target in ${HAEIN_FUZZ_TARGETS:-$all_targets}; do
  seed=${target#cluster_}
  corpus=$build/corpus/$target
  mkdir -p "$corpus"
  log=$build/fuzz_$target.log
  # -rss_limit_mb: a few bytes asking for gigabytes is a finding; -timeout: so is a hang.
  # Inputs that once found something run first, every time (tests/fuzz/regressions).
  regressions=()
  [ -d "$root/tests/fuzz/regressions/$seed" ] && regressions=("$root/tests/fuzz/regressions/$seed")
  if ASAN_OPTIONS=detect_leaks=1 "$build/tests/fuzz/fuzz_$target" "$corpus" "$seeds/$seed" \
       "${regressions[@]}" \
       -max_total_time="$seconds" -rss_limit_mb=1024 -timeout=10 -max_len=65536 \
       -artifact_prefix="$findings/$target-" -print_final_stats=1 >"$log" 2>&1; then
    echo "fuzz_$target: $(grep -m1 -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$') runs, nothing found"
  else
    echo "fuzz_$target: FOUND something (log $log, input in $findings):"
    grep -E "ERROR|SUMMARY|==[0-9]+==|terminate|abort" "$log" | head -n 8
    failed+=("$target")
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: findings in ${failed[*]}"
  exit 1
fi
echo "fuzz: ${#failed[@]} findings, $seconds s per target"
