#!/usr/bin/env bash
# Configures and builds haein into build/ (or $HAEIN_BUILD_DIR). Extra arguments go to
# CMake, e.g. -DCMAKE_CUDA_ARCHITECTURES=90a-real for a faster dev build.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build_dir=${HAEIN_BUILD_DIR:-$root/build}
jobs=$(nproc 2>/dev/null || echo 2)
mkdir -p "$build_dir"
cmake -S "$root" -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >"$build_dir/configure.log" 2>&1 \
  || { cat "$build_dir/configure.log" >&2; echo "build: CMake configure failed" >&2; exit 1; }
grep -E "^-- haein:" "$build_dir/configure.log" || true
cmake --build "$build_dir" -j "$jobs"
