#!/usr/bin/env bash
# Every HAEIN_* variable is read through the settings registry (common/src/settings.cpp),
# which checks its value and lists it in --help and --print-env: no getenv("HAEIN_...")
# anywhere else in the product's sources (tests may set and read them freely).
#   settings_only_check.sh SOURCE_DIR
set -euo pipefail
root=${1:?usage: settings_only_check.sh SOURCE_DIR}
found=$(grep -rnE 'getenv\("HAEIN_' "$root"/{common,kernels,runtime,launcher,topology,benchmarks,examples} \
          --include='*.cpp' --include='*.hpp' --include='*.cu' --include='*.cuh' || true)
if [ -n "$found" ]; then
  echo "HAEIN_* read outside the settings registry (use haein::settings::k...get()):" >&2
  echo "$found" >&2
  exit 1
fi
echo "settings_only_check: every HAEIN_* variable goes through the settings registry"
