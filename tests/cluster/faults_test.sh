#!/usr/bin/env bash
# Faults across the bed's hosts (issue 20, section 3), each stopped within seconds of the
# fault with a non-zero exit and no process left on any host:
#   - Open MPI's daemon on h2 killed: the root cause is "host h2 lost", not a victim rank;
#   - h2's link taken down mid-training (HAEIN_TIMEOUT=5): the ranks' watchdogs fail, and
#     haein run stops mpirun, which waits for h2's daemon as long as its TCP connection
#     seems alive, past a deadline instead of waiting with it; the root cause is "host h2
#     unreachable";
#   - a rank on h2 stopped (SIGSTOP) while the hierarchical bucketer's ranks on other hosts
#     wait for it through its host's other rank: the root cause is that rank;
#   - the same stop found by --heartbeat-timeout: that rank, not the stalest file;
#   - a rank on h2 killed: that rank and its signal.
#   faults_test.sh BUILD_DIR
set -euo pipefail

# shellcheck source=haein_bed.sh
. "$(dirname "${BASH_SOURCE[0]}")/haein_bed.sh"
haein_bed "${1:?build dir}" 3

now() { date +%s.%N; }
# start_job NAME VAR=VALUE... -- ARGS...: haein run on h1 in the background; its output in
# $tmp/NAME.out, its exit code and end time in $tmp/NAME.end when it ends.
start_job() {
  local name=$1 vars=()
  shift
  while [ "$1" != -- ]; do vars+=("$1"); shift; done
  shift
  local line
  line=$(quote env PATH=/usr/bin:/bin OMPI_MCA_plm_rsh_agent="$BED_RSH" \
    OMPI_MCA_btl_tcp_if_include="$BED_SUBNET" OMPI_MCA_oob_tcp_if_include="$BED_SUBNET" \
    "${vars[@]}" "$haein" run -c "$BED_SHARED/hosts" -n 6 --backend mpirun \
    --log-dir "$BED_SHARED/$name" "$@")
  ( rc=0; "$BED_RSH" h1 "$line" >"$tmp/$name.out" 2>&1 || rc=$?; echo "$rc $(now)" >"$tmp/$name.end" ) &
}
# wait_end NAME SECONDS: the job's exit code once it ended, failing after SECONDS.
wait_end() {
  local i
  for ((i = 0; i < $2 * 10; i++)); do
    [ -s "$tmp/$1.end" ] && { cut -d' ' -f1 "$tmp/$1.end"; return; }
    sleep 0.1
  done
  fail "$1: haein run still running $2 s after the fault: $(tail -n 20 "$tmp/$1.out")"
}
ended_after() { awk -v a="$2" '{ printf "%.1f", $2 - a }' "$tmp/$1.end"; }
nothing_left() {  # no job process on any host, 5 s after the job ended
  local host left i
  for host in h1 h2 h3; do
    for ((i = 0; i < 50; i++)); do
      left=$("$BED_RSH" "$host" 'ps -eo pid,stat,args | grep -E "orted|exec-rank|train_mlp|sleep 300" | grep -v " Z" | grep -v grep || true')
      [ -z "$left" ] && break
      sleep 0.1
    done
    [ -z "$left" ] || fail "$1: processes left on $host 5 s after the end: $left"
  done
}
wait_for() {  # wait_for FILE PATTERN SECONDS
  local i
  for ((i = 0; i < $3 * 10; i++)); do grep -q "$2" "$1" 2>/dev/null && return; sleep 0.1; done
  fail "no '$2' in $1 after $3 s: $(tail -n 20 "$1")"
}

# train_job NAME VAR=VALUE... -- HAEIN_RUN_ARGS...: start_job with train_mlp training
# until stopped, its output folder $BED_SHARED/run-NAME.
train_job() {
  local name=$1 args=()
  shift
  while [ "$1" != -- ]; do args+=("$1"); shift; done
  shift
  start_job "$name" "${args[@]}" -- "$@" -- "$train" --hidden 64,64 --global-batch 96 \
    --train-samples 8192 --test-samples 2048 --log-every 20 --eval-every 0 --no-plot \
    --steps 100000 --out "$BED_SHARED/run-$name"
}
# signal_rank NAME HOST SIGNAL: once job NAME reached step 40, sends SIGNAL to the newest
# train_mlp on HOST; sets rank (its RANK) and fault (the time).
signal_rank() {
  local pid
  wait_for "$tmp/$1.out" "step .* 40/" 60
  pid=$("$BED_RSH" "$2" 'pgrep -n -x train_mlp')
  rank=$("$BED_RSH" "$2" "tr '\\0' '\\n' </proc/$pid/environ | sed -n 's/^RANK=//p'")
  fault=$(now)
  "$BED_RSH" "$2" "kill -$3 $pid"
}

# 1. The Open MPI daemon on h2 killed.
start_job orted -- -- sleep 300
wait_for "$tmp/orted.out" "6 ranks on" 30
for i in $(seq 100); do  # the ranks are up when every host runs its sleep
  up=0
  for host in h1 h2 h3; do
    "$BED_RSH" "$host" 'ps -eo args | grep -q "^sleep 300"' && up=$((up + 1))
  done
  [ $up = 3 ] && break
  sleep 0.2
done
[ $up = 3 ] || fail "the ranks did not start on all hosts: $(cat "$tmp/orted.out")"
fault=$(now)
"$BED_RSH" h2 'pkill -KILL -x orted'
code=$(wait_end orted 15)
[ "$code" != 0 ] || fail "orted: haein run succeeded after h2's daemon was killed"
grep -q "root cause: host h2 lost" "$tmp/orted.out" || fail "orted: root cause not host h2: $(cat "$tmp/orted.out")"
nothing_left orted
echo "ok: h2's daemon killed: exit $code after $(ended_after orted "$fault") s, root cause host h2 lost"

# 2. h2's link down in the middle of training.
train_job link HAEIN_TIMEOUT=5 --
wait_for "$tmp/link.out" "step .* 40/" 60
fault=$(now)
"$BED_RSH" h2 'ip link set bed0 down'
code=$(wait_end link 25)
[ "$code" != 0 ] || fail "link: haein run succeeded with h2 cut off"
grep -q "timed out after 5 s (HAEIN_TIMEOUT)" "$tmp/link.out" ||
  fail "link: no watchdog timeout reported: $(tail -n 30 "$tmp/link.out")"
grep -q "root cause: host h2 unreachable" "$tmp/link.out" ||
  fail "link: root cause not host h2: $(tail -n 30 "$tmp/link.out")"
nothing_left link
echo "ok: h2's link down: exit $code after $(ended_after link "$fault") s; $(grep -m1 -o 'mpirun did not end within [0-9.]* s' "$tmp/link.out" || echo 'mpirun ended by itself'); $(grep -m1 -o 'root cause: .*' "$tmp/link.out")"

# 3. A rank on h2 stopped (SIGSTOP) in the middle of training: its host still answers, so
# the root cause is that rank, not its host and not rank 0.
"$BED_RSH" h2 'ip link set bed0 up'
train_job stopped HAEIN_TIMEOUT=5 --
signal_rank stopped h2 STOP
code=$(wait_end stopped 25)
[ "$code" != 0 ] || fail "stopped: haein run succeeded with rank $rank stopped"
grep -q "root cause: rank $rank on h2" "$tmp/stopped.out" ||
  fail "stopped: root cause not rank $rank on h2: $(tail -n 30 "$tmp/stopped.out")"
nothing_left stopped
echo "ok: rank $rank on h2 stopped: exit $code after $(ended_after stopped "$fault") s, $(grep -m1 -o 'root cause: .*' "$tmp/stopped.out")"

# 4. The same stop found by the heartbeat (--heartbeat-timeout 4, the watchdog far off):
# every rank stops making progress, but only the stopped one stops running (its heartbeat
# file's access time, which the others' watchdog threads keep setting, stands still).
train_job heartbeat HAEIN_TIMEOUT=120 -- --heartbeat-timeout 4
signal_rank heartbeat h3 STOP
code=$(wait_end heartbeat 25)
[ "$code" = 124 ] || fail "heartbeat: exit $code, not 124: $(tail -n 30 "$tmp/heartbeat.out")"
grep -q "root cause: rank $rank on h3: stopped running (SIGSTOP, a debugger?): no heartbeat" "$tmp/heartbeat.out" ||
  fail "heartbeat: root cause not rank $rank on h3 stopped: $(tail -n 30 "$tmp/heartbeat.out")"
nothing_left heartbeat
echo "ok: rank $rank on h3 stopped, found by the heartbeat: exit $code after $(ended_after heartbeat "$fault") s, $(grep -m1 -o 'root cause: .*' "$tmp/heartbeat.out")"

# 5. A rank on h2 killed (SIGKILL): the root cause is that rank and its signal, not one of
# the ranks elsewhere that lost it.
train_job killed --
signal_rank killed h2 KILL
code=$(wait_end killed 25)
[ "$code" = 137 ] || fail "killed: exit $code, not 137: $(tail -n 30 "$tmp/killed.out")"
grep -q "root cause: rank $rank on h2: signal SIGKILL (9)" "$tmp/killed.out" ||
  fail "killed: root cause not rank $rank on h2: $(tail -n 30 "$tmp/killed.out")"
nothing_left killed
echo "ok: rank $rank on h2 killed: exit $code after $(ended_after killed "$fault") s, $(grep -m1 -o 'root cause: .*' "$tmp/killed.out")"
