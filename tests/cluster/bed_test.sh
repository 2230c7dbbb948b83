#!/usr/bin/env bash
# The multi-host test bed works (issue 20, section 1; see README.md): hosts with their own
# names, namespaces, /tmp, /dev/shm and /etc; a shared folder; every host reaches every other
# by name; the rsh agent gives a fresh ssh-like environment, passes the exit status back and
# ends remote commands when it is killed; Debian's mpirun runs MPI across hosts through it;
# teardown leaves nothing. Skips (exit 77) with the reason where a bed cannot be built.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
bed=$here/bed.sh
PATH=$PATH:/usr/sbin:/sbin
started=${EPOCHREALTIME/./}

rc=0
reason=$("$bed" check) || rc=$?
if [ "$rc" = 77 ]; then
  echo "SKIP: cannot build a test bed here: $reason"
  exit 77
fi
[ "$rc" = 0 ] || { echo "FAIL: bed.sh check failed (exit $rc): $reason" >&2; exit 1; }

fail() { echo "FAIL: $*" >&2; exit 1; }
step() {  # say how far the test got, and when
  local us=$((${EPOCHREALTIME/./} - started))
  printf '[%3d.%01ds] %s\n' $((us / 1000000)) $((us / 100000 % 10)) "$*"
}

mpicc=/usr/bin/mpicc mpirun=/usr/bin/mpirun
[ -x "$mpicc" ] && [ -x "$mpirun" ] ||
  fail "Debian's Open MPI is missing ($mpicc, $mpirun): install openmpi-bin libopenmpi-dev"

tmp=$(mktemp -d)
dir=$tmp/bed
trap '"$bed" down "$dir" >/dev/null 2>&1 || true; rm -rf "$tmp"' EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

read_stat_start() {  # PID: field 22 of /proc/PID/stat, the process's start time
  local s f
  s=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  s=${s##*) }
  read -r -a f <<<"$s"
  [ "${f[0]}" != Z ] && echo "${f[19]}"
}

machine_state() {  # what the bed must leave as it was
  echo "== links"; ip -o link show | awk -F': ' '{print $2}' | sort
  echo "== netns"; ip netns list 2>&1 || true
  echo "== hosts"; cat /etc/hosts
  echo "== hostname"; cat /proc/sys/kernel/hostname
}
machine_state >"$tmp/before"

# 1. Up, and a second up is a no-op.
"$bed" up "$dir" 4
step "up"
out=$("$bed" up "$dir" 4)
grep -q "already up" <<<"$out" || fail "a second up did not say 'already up': $out"
# shellcheck source=/dev/null
. "$dir/bed.env"
[ "$BED_HOSTS" = "h1 h2 h3 h4" ] && [ "$BED_SUBNET" = 10.77.0.0/24 ] && [ "$BED_IFACE" = bed0 ] &&
  [ "$BED_SHARED" = "$dir/shared" ] && [ "$BED_RSH" = "$dir/rsh" ] ||
  fail "bed.env is not as expected: $(cat "$dir/bed.env")"
rsh=$BED_RSH
on() { timeout 120 "$rsh" "$@"; }

declare -A hostpid
while read -r kind name pid start; do
  [ "$kind" = host ] && hostpid[$name]=$pid
done <"$dir/run/pids"
cp "$dir/run/pids" "$tmp/pids"

# 2. Each host: its own name, PID 1, namespaces, address, environment and name resolution.
export BED_TEST_LEAK=must-not-reach-the-hosts
seen_ns=" $(readlink /proc/self/ns/pid) $(readlink /proc/self/ns/net) "
for i in 1 2 3 4; do
  h=h$i
  info=$(on "$h" 'echo "name=$(hostname)"; echo "etcname=$(cat /etc/hostname)"
    echo "pid1=$(tr "\0" " " </proc/1/cmdline)"
    echo "pidns=$(readlink /proc/self/ns/pid)"; echo "netns=$(readlink /proc/self/ns/net)"
    echo "addr=$(ip -o -4 addr show dev bed0 | awk "{print \$4}")"
    echo "self=$(getent hosts "$(hostname)" | awk "{print \$1}")"
    echo "cwd=$(pwd)"; echo "home=$HOME"
    echo "vars=$(env | cut -d= -f1 | grep -vxE "PWD|SHLVL|_" | sort | tr "\n" " ")"
    echo "leak=${BED_TEST_LEAK:-none}"')
  get() { sed -n "s/^$1=//p" <<<"$info"; }
  [ "$(get name)" = "$h" ] || fail "$h: hostname is '$(get name)'"
  [ "$(get etcname)" = "$h" ] || fail "$h: /etc/hostname is '$(get etcname)'"
  [[ "$(get pid1)" == *host_init.sh* ]] || fail "$h: PID 1 is '$(get pid1)', not host_init.sh"
  pidns=$(get pidns) netns=$(get netns)
  [ "$pidns" = "$(readlink "/proc/${hostpid[$h]}/ns/pid")" ] &&
    [ "$netns" = "$(readlink "/proc/${hostpid[$h]}/ns/net")" ] ||
    fail "$h: the remote command does not run in the host's namespaces"
  [[ "$seen_ns" != *" $pidns "* && "$seen_ns" != *" $netns "* ]] ||
    fail "$h: PID or network namespace shared with the machine or another host"
  seen_ns+="$pidns $netns "
  [ "$(get addr)" = "10.77.0.$i/24" ] || fail "$h: bed0 has '$(get addr)', not 10.77.0.$i/24"
  [ "$(get vars)" = "HOME LOGNAME PATH SHELL USER " ] ||
    fail "$h: the remote environment has '$(get vars)', not HOME LOGNAME PATH SHELL USER"
  [ "$(get leak)" = none ] || fail "$h: a variable of the caller reached the host"
  [ -n "$(get home)" ] && [ "$(get cwd)" = "$(get home)" ] ||
    fail "$h: the remote command runs in '$(get cwd)', not HOME '$(get home)'"
  [ "$(get self)" = 127.0.1.1 ] || fail "$h: its own name resolves to '$(get self)'"
done
step "hosts: names, PID 1, namespaces, addresses, environment"

# 3. Private /tmp and /dev/shm, the shared folder, names and reachability between hosts.
mark=bed-marker-$(basename "$tmp")
for i in 1 2 3 4; do
  on "h$i" "echo h$i >/tmp/$mark && echo h$i >/dev/shm/$mark && echo h$i >$BED_SHARED/from-h$i"
done
for i in 1 2 3 4; do
  out=$(on "h$i" "cat /tmp/$mark /dev/shm/$mark; cat $BED_SHARED/from-h* | tr '\n' ' '")
  [ "$out" = "$(printf 'h%s\nh%s\nh1 h2 h3 h4 ' "$i" "$i")" ] ||
    fail "h$i: private or shared files wrong: $out"
  others=$(seq 1 4 | grep -vx "$i" | tr '\n' ' ')
  out=$(on "h$i" "for j in $others; do
      echo \"h\$j \$(getent hosts h\$j | awk '{print \$1}')\"
      ping -c 1 -W 2 h\$j >/dev/null || echo \"h\$j does not answer ping\"; done")
  want=$(for j in $others; do echo "h$j 10.77.0.$j"; done)
  [ "$out" = "$want" ] || fail "h$i: names or pings of other hosts: $out"
done
[ ! -e "/tmp/$mark" ] && [ ! -e "/dev/shm/$mark" ] ||
  fail "a host's /tmp or /dev/shm file is on the machine"
step "private /tmp and /dev/shm, shared folder, names and ping between hosts"

# 4. /etc/hosts rewritten by rename inside h4 stays in h4.
on h4 'cp /etc/hosts /etc/hosts.new && echo "10.77.0.99 renamed-in-h4" >>/etc/hosts.new &&
  mv /etc/hosts.new /etc/hosts'
[ "$(on h4 'getent hosts renamed-in-h4 | cut -d" " -f1')" = 10.77.0.99 ] ||
  fail "h4 does not see its own rewritten /etc/hosts"
on h3 'getent hosts renamed-in-h4' && fail "h3 sees h4's /etc/hosts"
grep -q renamed-in-h4 /etc/hosts && fail "the machine's /etc/hosts was changed"
step "/etc/hosts rewritten by rename in h4 stays in h4"

# 5. The agent's exit status, and killing the agent ends the remote command.
rc=0
on h2 'exit 3' || rc=$?
[ "$rc" = 3 ] || fail "the agent passed back exit status $rc, not 3"
"$rsh" h2 'sleep 7771 & setsid sleep 7772 & echo started; wait' >"$tmp/agent.out" 2>&1 &
agent=$!
sleeps() {  # the remote sleeps still alive in h2's PID namespace
  pgrep --ns "${hostpid[h2]}" --nslist pid -f '^sleep 777[12]$' || true
}
for ((k = 0; k < 200; k++)); do
  [ "$(sleeps | wc -l)" = 2 ] && break
  sleep 0.05
done
[ "$(sleeps | wc -l)" = 2 ] || fail "the remote sleeps did not start: $(cat "$tmp/agent.out")"
kill "$agent"
wait "$agent" 2>/dev/null || true
for ((k = 0; k < 100; k++)); do
  [ -z "$(sleeps)" ] && break
  sleep 0.05
done
[ -z "$(sleeps)" ] || fail "killing the agent left remote processes alive: $(sleeps | tr '\n' ' ')"
step "exit status passed back; killing the agent ends the remote command, setsid included"

# 6. Debian's mpirun across hosts through the agent.
"$mpicc" -O2 -o "$BED_SHARED/ring" "$here/ring.c"
mpi="$mpirun --allow-run-as-root --mca plm_rsh_agent $rsh --bind-to none --mca pml ob1"
mpi+=" --mca btl tcp,vader,self --mca btl_tcp_if_include $BED_SUBNET"
mpi+=" --mca oob_tcp_if_include $BED_SUBNET"
out=$(on h1 "$mpi --host h1,h2,h3 -np 3 hostname" | sort)
[ "$out" = "$(printf 'h1\nh2\nh3')" ] || fail "mpirun hostname on h1,h2,h3 printed: $out"
rx_h2() { on h2 "awk '\$1 == \"bed0:\" {print \$2}' /proc/net/dev"; }
rx_before=$(rx_h2)
out=$(on h1 "$mpi --host h1,h2,h3 -np 3 $BED_SHARED/ring") || fail "ring on 3 hosts failed: $out"
rx_after=$(rx_h2)
grep -qx "ring ok: 3 ranks" <<<"$out" || fail "ring on 3 hosts printed: $out"
[ "$(grep '^rank ' <<<"$out" | awk '{print $4}' | sort | tr '\n' ' ')" = "h1 h2 h3 " ] ||
  fail "ring on 3 hosts did not place one rank per host: $out"
((rx_after - rx_before > 1048576)) ||
  fail "h2's bed0 received only $((rx_after - rx_before)) bytes during the ring"
out=$(on h1 "$mpi --host h1:2,h2:2,h3:2 -np 6 $BED_SHARED/ring") ||
  fail "ring with 2 ranks per host failed: $out"
grep -qx "ring ok: 6 ranks" <<<"$out" || fail "ring with 2 ranks per host printed: $out"
[ "$(grep '^rank ' <<<"$out" | awk '{print $4}' | sort | tr '\n' ' ')" = "h1 h1 h2 h2 h3 h3 " ] ||
  fail "ring with 2 ranks per host placed ranks: $out"
step "mpirun: hostname on 3 hosts; ring on 3 hosts ($((rx_after - rx_before)) bytes into h2);" \
  "ring with 2 ranks per host"

# 7. Down leaves nothing behind.
bed_ns=$(while read -r kind name pid start; do
  [ "$kind" = host ] || [ "$kind" = net ] || continue
  for ns in pid net mnt uts ipc; do readlink "/proc/$pid/ns/$ns" 2>/dev/null || true; done
done <"$tmp/pids" | sort -u)
for ns in pid net mnt uts ipc; do  # the bridge's holder has only its net namespace of its own
  bed_ns=$(grep -vxF "$(readlink "/proc/self/ns/$ns")" <<<"$bed_ns")
done
[ "$(wc -l <<<"$bed_ns")" = 21 ] || fail "the bed's 21 namespaces were not all found: $bed_ns"
echo "$bed_ns" >"$tmp/bed_ns"
echo "$dir" >"$tmp/bed_dir"
"$bed" down "$dir"
step "down"
while read -r kind name pid start; do
  [ "$(read_stat_start "$pid" || true)" != "$start" ] || fail "$kind $name ($pid) is still alive"
done <"$tmp/pids"
left=$(find /proc -mindepth 3 -maxdepth 3 -path '/proc/[0-9]*/ns/*' -printf '%p %l\n' 2>/dev/null |
  grep -F -f "$tmp/bed_ns" || true)
[ -z "$left" ] || fail "processes are still in the bed's namespaces: $left"
# (patterns from files: grep's own command line must not mention the bed)
left=$(grep -a -l -F -f "$tmp/bed_dir" /proc/[0-9]*/cmdline 2>/dev/null || true)
[ -z "$left" ] || fail "processes still mention the bed: $left"
bed_id=$(printf '%s' "$dir" | cksum | cut -d' ' -f1)  # host_init.sh names its mounts with it
left=$(grep -s -F -e " bed-$bed_id-h" -f "$tmp/bed_dir" /proc/[0-9]*/mountinfo || true)
[ -z "$left" ] || fail "mounts of the bed are left: $left"
machine_state >"$tmp/after"
diff "$tmp/before" "$tmp/after" || fail "the machine's links, netns or /etc/hosts changed"
"$bed" down "$dir" >/dev/null || fail "a second down failed"
step "nothing left behind"

# 8. Without root, the test skips visibly.
if command -v setpriv >/dev/null; then
  as_nobody=(setpriv --reuid=65534 --regid=65534 --clear-groups)
else
  as_nobody=(su nobody -s /bin/sh -c)
fi
mkdir -m 755 "$tmp/copy"
cp "$here/bed.sh" "$here/bed_test.sh" "$tmp/copy/"
chmod 755 "$tmp" "$tmp/copy"/*
rc=0
out=$("${as_nobody[@]}" "$tmp/copy/bed_test.sh" 2>&1) || rc=$?
[ "$rc" = 77 ] && grep -q '^SKIP: .*not root' <<<"$out" ||
  fail "as a user other than root the test did not skip (exit $rc): $out"
step "as nobody: $out"
echo "PASS"
