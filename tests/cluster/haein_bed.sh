# Sourced by the bed tests that run haein (haein_run_test.sh, faults_test.sh,
# recovery_test.sh, slurm_test.sh): `haein_bed BUILD_DIR HOSTS [KEEP]` skips (exit 77) where no bed can be built,
# brings up HOSTS hosts with the build tree visible inside them, tears them down on exit,
# and writes $BED_SHARED/hosts (2 slots each). It sets here, bed, build, haein, train, tmp,
# dir and everything of bed.env, and defines fail and quote.

fail() { echo "FAIL: $*" >&2; exit 1; }

# quote WORD...: the words as one line for the rsh agent's shell.
quote() {
  local line="" word
  for word in "$@"; do line+="${line:+ }$(printf '%q' "$word")"; done
  printf '%s' "$line"
}

haein_bed() {
  here=$(cd "$(dirname "${BASH_SOURCE[1]}")" && pwd)
  bed=$here/bed.sh
  build=$(cd "${1:?build dir}" && pwd)
  haein=$build/launcher/haein
  train=$build/examples/train_mlp
  PATH=$PATH:/usr/sbin:/sbin
  local rc=0 reason i
  reason=$("$bed" check) || rc=$?
  if [ "$rc" = 77 ]; then
    echo "SKIP: cannot build a test bed here: $reason"
    exit 77
  fi
  [ "$rc" = 0 ] || fail "bed.sh check failed (exit $rc): $reason"
  tmp=$(mktemp -d)
  dir=$tmp/bed
  trap '"$bed" down "$dir" >/dev/null 2>&1 || true; rm -rf "$tmp"' EXIT
  trap 'exit 143' TERM
  trap 'exit 130' INT
  # The build tree (and KEEP, a folder more) keeps its path inside the hosts even where it
  # lies under /tmp.
  BED_KEEP=$build${3:+:$3} "$bed" up "$dir" "$2" >/dev/null
  # shellcheck source=/dev/null
  . "$dir/bed.env"
  : >"$BED_SHARED/hosts"
  for ((i = 1; i <= $2; i++)); do echo "h$i slots=2" >>"$BED_SHARED/hosts"; done
}
