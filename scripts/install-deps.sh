#!/usr/bin/env bash
# Installs the Debian packages haein builds and tests with. Idempotent and quiet:
# packages already present are skipped; a package apt cannot install stops the script.
set -euo pipefail

packages=(
  build-essential cmake pkg-config
  libopenmpi-dev openmpi-bin libucx-dev
  libhdf5-openmpi-dev hdf5-tools
  libboost-program-options-dev libhwloc-dev hwloc
  libyaml-cpp-dev libpugixml-dev nlohmann-json3-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  python3-matplotlib clang-format clang libclang-rt-14-dev
  iproute2 iputils-ping procps
  slurmctld slurmd slurm-client munge
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  sudo_cmd=(sudo)
fi

echo "install-deps: installing ${#missing[@]} Debian package(s): ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
if ! "${sudo_cmd[@]}" apt-get update -qq >/tmp/haein-apt.log 2>&1; then
  echo "install-deps: 'apt-get update' failed; see /tmp/haein-apt.log" >&2
  tail -n 20 /tmp/haein-apt.log >&2
  exit 1
fi
if ! "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >>/tmp/haein-apt.log 2>&1; then
  echo "install-deps: 'apt-get install' failed for: ${missing[*]}; see /tmp/haein-apt.log" >&2
  tail -n 20 /tmp/haein-apt.log >&2
  exit 1
fi
# Verify: a package that apt skipped silently is still an error.
for p in "${missing[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
    || { echo "install-deps: package $p is still missing after apt-get install" >&2; exit 1; }
done
