#!/usr/bin/env bash
# The GPU check kit without a GPU: staged from this build, run in a clean environment
# (env -i, nothing of the build's or Debian's MPI on PATH), it must find every library in
# the kit, train through its own Open MPI, report every GPU check as NO-GPU and still write
# its summary. On a machine with a GPU the GPU checks run for real and must pass.
#   gpu_kit_test.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
source_dir=${1:?source dir}
build_dir=${2:?build dir}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$source_dir/scripts/gpu-kit" --from-build "$build_dir" --kit "$work/kit"
size=$(du -sm "$work/kit" | cut -f1)
[ "$size" -lt 64 ] || { echo "FAIL: the kit is $size MiB; the device takes 64 MiB in all"; exit 1; }
mkdir "$work/out"
rc=0
(cd "$work" && env -i PATH=/usr/bin:/bin HOME="$work" OUT="$work/out" bash kit/run.sh) || rc=$?
summary=$work/out/summary.txt
for f in summary.txt kit.log env.txt gtest-xml.tar.gz; do
  [ -s "$work/out/$f" ] || { echo "FAIL: the run left no $f"; exit 1; }
done
cat "$summary"
fail=0
expect() {  # expect CHECK RESULT
  grep -Eq "^$1 +$2 " "$summary" || { echo "FAIL: check $1 is not $2"; fail=1; }
}
expect loadability PASS
expect host-context PASS
expect mpi-train PASS
if nvidia-smi -L >/dev/null 2>&1; then
  gpu_result=PASS
else
  gpu_result=NO-GPU
  grep -q "GPU absent" "$summary" || { echo "FAIL: the summary does not say GPU absent"; fail=1; }
fi
for check in device kernels-gpu runtime-gpu kernel-bw train-mlp-gpu nccl-blocking nccl-nonblock nccl-own-stream; do
  expect "$check" "$gpu_result"
done
if command -v python3 >/dev/null; then expect torch-pack "$gpu_result"; else expect torch-pack SKIPPED; fi
grep "^mpi-train" "$summary" | grep -q "tests: 1 passed" || { echo "FAIL: mpi-train ran no test"; fail=1; }
[ "$rc" -eq 0 ] || { echo "FAIL: run.sh exited $rc"; fail=1; }
[ $fail -eq 0 ] && echo "gpu kit: $size MiB, its run without a GPU is as expected"
exit $fail
