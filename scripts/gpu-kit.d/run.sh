#!/usr/bin/env bash
# The GPU check kit's one command on the device machine, from the repository root:
#   bash .gpukit/run.sh
# Runs every check in order, each under its own time limit, every one even after a failure,
# and leaves in $OUT: summary.txt (check, result, seconds, key numbers), kit.log (everything),
# env.txt (driver, GPU, NCCL/cuBLAS found, ldd of everything) and gtest-xml.tar.gz.
# Without a GPU the GPU checks still run (they must load and skip) and report NO-GPU.
set -u
KIT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export KIT
OUT=${OUT:-/tmp/gpukit-out}
mkdir -p "$OUT"
# shellcheck source=env.sh
source "$KIT/env.sh"
LOG=$OUT/kit.log
SUMMARY=$OUT/summary.txt
XML=$(mktemp -d)
: >"$LOG"
: >"$SUMMARY"
START=$(date +%s)
if nvidia-smi -L >/dev/null 2>&1; then GPU=present; else GPU=absent; fi

# Libraries a kit program may take from outside the kit (what assemble-libs.sh leaves out).
outside='^(linux-vdso|ld-linux|libc\.so|libm\.so|libdl\.so|libpthread\.so|librt\.so|libresolv\.so|libutil\.so|libanl\.so|libgcc_s\.so|libstdc\+\+\.so|libcuda\.so|libnccl\.so|libcublas|libnvidia)'
gpu_only='^(libcuda\.so|libnccl\.so|libcublas)'
loadability() {
  local bad=0 f line name path
  for f in "$KIT"/bin/* "$KIT"/lib/*.so* "$KIT"/ompi/bin/orted "$KIT"/ompi/lib/x86_64-linux-gnu/openmpi/lib/openmpi3/*.so; do
    while read -r line; do
      name=$(echo "$line" | awk '{print $1}')
      path=$(echo "$line" | awk '$2 == "=>" {print $3}')
      if echo "$line" | grep -q "not found"; then
        # Without a GPU the machine may lack the driver and NVIDIA's wheels.
        if [ "$GPU" = absent ] && echo "$name" | grep -Eq "$gpu_only"; then continue; fi
        echo "$(basename "$f"): $name not found"; bad=1
      elif [ -n "$path" ] && [ "${path#"$KIT"/}" = "$path" ] && ! echo "$name" | grep -Eq "$outside"; then
        echo "$(basename "$f"): $name from $path, outside the kit"; bad=1
      fi
    done < <(ldd "$f" 2>/dev/null | grep "=>")
    # A library that is there but too old (a glibc or libstdc++ older than the build's).
    if ldd "$f" 2>&1 | grep -q "version .* not found"; then
      ldd "$f" 2>&1 | grep "version .* not found" | sed "s|^|$(basename "$f"): |"; bad=1
    fi
  done
  [ $bad -eq 0 ] && echo "every kit program and library resolves (GPU $GPU)"
  return $bad
}
# check runs commands under timeout, which needs a program: the function goes through bash.
export -f loadability
export GPU outside gpu_only

# check NAME SECONDS KIND SHOW COMMAND...
#   KIND host: must pass anywhere; gpu: without a GPU it must end 0 or say why (NO-GPU)
#   SHOW: a regular expression; matching output lines go into the summary (key numbers)
check() {
  local name=$1 seconds=$2 kind=$3 show=$4
  shift 4
  local part t0 rc verdict
  part=$(mktemp)
  t0=$(date +%s)
  echo "===== $name (limit ${seconds}s): $*" >>"$LOG"
  timeout --kill-after=10 "$seconds" "$@" >"$part" 2>&1
  rc=$?
  cat "$part" >>"$LOG"
  verdict=PASS
  [ $rc -ne 0 ] && verdict=FAIL
  [ $rc -eq 124 ] || [ $rc -eq 137 ] && verdict=TIMEOUT
  if [ "$kind" = gpu ] && [ "$GPU" = absent ]; then
    if [ $rc -eq 0 ] || grep -qiE "no GPU|no usable CUDA device|no CUDA|not available" "$part"; then
      verdict=NO-GPU
    fi
  fi
  local tests=""
  if grep -q '^\[==========\]' "$part"; then
    tests=$(awk '/^\[  PASSED  \] [0-9]/{p=$4} /^\[  SKIPPED \] [0-9]/{s=$4} /^\[  FAILED  \] [0-9]/{f=$4}
                 END{printf "tests: %d passed, %d skipped, %d failed", p, s, f}' "$part")
  fi
  printf '%-18s %-8s %4ss  %s\n' "$name" "$verdict" "$(($(date +%s) - t0))" "$tests" | tee -a "$LOG" >>"$SUMMARY"
  [ -n "$show" ] && grep -E "$show" "$part" | head -n 16 | sed 's/^/    /' >>"$SUMMARY"
  if [ "$verdict" = FAIL ] || [ "$verdict" = TIMEOUT ]; then
    grep -E "Failure|FAILED|error|Error" "$part" | head -n 6 | sed 's/^/  ! /' >>"$SUMMARY"
    tail -n 3 "$part" | sed 's/^/  | /' >>"$SUMMARY"
  fi
  rm -f "$part"
}

{
  echo "kit: $KIT (commit $(cat "$KIT/COMMIT" 2>/dev/null)), GPU $GPU"
  date -u
  head -n 2 /etc/os-release 2>/dev/null
  ldd --version | head -n 1
  uname -r
  nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv 2>&1 | head -n 3
  echo "NVIDIA libraries (pip): ${KIT_NVIDIA_LIBS:-none found}"
  for d in ${KIT_NVIDIA_LIBS//:/ }; do ls "$d" 2>/dev/null | grep -E "nccl|cublas" | sed "s|^|  $d/|"; done
  python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)" 2>&1 | tail -n 1
  # Which NCCL (its bugs differ by version: one-rank averages before 2.29.7, for one).
  python3 -m pip list 2>/dev/null | grep -Ei '^nvidia-(nccl|cublas)' | sed 's/^/wheel: /'
  command -v nvcc compute-sanitizer 2>&1
  echo "--- ldd"
  for f in "$KIT"/bin/*; do echo "$(basename "$f"):"; ldd "$f" 2>&1 | sed 's/^/  /'; done
} >"$OUT/env.txt" 2>&1
head -n 14 "$OUT/env.txt" >>"$LOG"
{
  echo "# GPU check kit, commit $(cat "$KIT/COMMIT" 2>/dev/null), $(date -u '+%Y-%m-%d %H:%M UTC'), GPU $GPU"
  nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null | sed 's/^/# /'
  grep '^wheel: ' "$OUT/env.txt" | sed 's/^wheel: /# /' | tr -s ' '
  printf '%-18s %-8s %5s  %s\n' check result time "key numbers"
} >>"$SUMMARY"

X="--gtest_output=xml:$XML/"
B=$KIT/bin
check loadability     60  host "" bash -c loadability
check device          60  gpu  "" "$B/kernels_tests" --gtest_filter='Device*' "$X"
check kernels-gpu    180  gpu  "" "$B/kernels_gpu_tests" "$X"
check runtime-gpu    240  gpu  "" "$B/runtime_gpu_tests" "$X"
check kernel-bw      120  gpu  "^  (cudaMemcpy|pack|unpack)|^# buckets" \
      mpirun -np 1 "$B/haein-bench" kernel --device gpu --model "$KIT/models/gpt2-124m.txt" \
      --bucket-mb 1,16,64 --repeats 11
if command -v python3 >/dev/null; then
  check torch-pack   120  gpu  "^  |^# buckets" \
        python3 "$KIT/torch_pack.py" --model "$KIT/models/gpt2-124m.txt" --bucket-mb 1,16,64
else
  printf '%-18s %-8s %4ss  %s\n' torch-pack SKIPPED 0 "no python3 (PyTorch comes with it)" >>"$SUMMARY"
fi
check host-context    60  host "" mpirun -np 2 "$B/runtime_mpi_tests" --gtest_filter='HostMemory.*'
check mpi-train      120  host "" "$B/train_mlp_tests" --gtest_filter='TrainMlpRun.LearnsTheTaskWithTwoRanksUnderHaeinRun' "$X"
check train-mlp-gpu  240  gpu  "" "$B/train_mlp_tests" --gtest_filter='TrainMlpGpu.*' "$X"
check nccl-blocking   90  gpu  "^ +[0-9]+ " \
      mpirun -np 1 -x NCCL_COMM_BLOCKING=1 "$B/haein-bench" collective --backend nccl --baseline nccl \
      -b 8 -e 64M -f 8 -n 50 -w 10 -R 5
check nccl-nonblock   90  gpu  "^ +[0-9]+ " \
      mpirun -np 1 -x NCCL_COMM_BLOCKING=0 "$B/haein-bench" collective --backend nccl --baseline nccl \
      -b 8 -e 64M -f 8 -n 50 -w 10 -R 5
# haein's calls on a stream of the caller's (no ordering after the legacy default stream).
check nccl-own-stream 90  gpu  "^ +[0-9]+ " \
      mpirun -np 1 -x NCCL_COMM_BLOCKING=1 "$B/haein-bench" collective --backend nccl --baseline nccl \
      --stream own -b 8 -e 64M -f 8 -n 50 -w 10 -R 5
# Direct NCCL recording one event per call, as haein's Work does: what is left between the
# two is haein's own work per call.
check nccl-event      90  gpu  "^ +[0-9]+ " \
      mpirun -np 1 -x NCCL_COMM_BLOCKING=1 "$B/haein-bench" collective --backend nccl \
      --baseline nccl-event --stream own -b 8 -e 64M -f 8 -n 50 -w 10 -R 5
if [ "$GPU" = present ] && command -v compute-sanitizer >/dev/null && [ $(($(date +%s) - START)) -lt 300 ]; then
  check sanitizer    150  gpu  "ERROR SUMMARY" compute-sanitizer --tool memcheck --error-exitcode 9 \
        "$B/kernels_gpu_tests" --gtest_filter='*SumShards*:*NotReady*'
fi
tar -czf "$OUT/gtest-xml.tar.gz" -C "$XML" . 2>/dev/null
rm -rf "$XML"
echo "total $(($(date +%s) - START)) s" >>"$SUMMARY"
cat "$SUMMARY"
# The run's own exit: 0 when nothing failed or timed out.
! grep -qE '^[a-z0-9-]+ +(FAIL|TIMEOUT) ' "$SUMMARY"
