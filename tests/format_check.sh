#!/usr/bin/env bash
# Fails when a tracked C++/CUDA source differs from clang-format's output (.clang-format).
set -euo pipefail
cd "$1"
command -v clang-format >/dev/null || { echo "clang-format is not installed" >&2; exit 1; }
files=$(git ls-files '*.cpp' '*.hpp' '*.cu' '*.cuh' 2>/dev/null || find . -name '*.[ch]pp' -o -name '*.cu')
clang-format --dry-run -Werror $files
