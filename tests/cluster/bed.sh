#!/usr/bin/env bash
# The multi-host test bed (see README.md): N hosts on one Linux machine, as namespaces.
#
#   bed.sh up DIR [N]    build N hosts h1..hN (default 4) with DIR as the bed's folder;
#                        a bed already up is left as it is ("already up")
#   bed.sh down DIR      tear the bed down; nothing left behind (a second down succeeds)
#   bed.sh status DIR    the bed's processes and whether they are up (exit 0 when up)
#   bed.sh check         can a bed be built here? Prints why not and exits 77 when not
#
# After `up`, DIR holds: bed.env (BED_HOSTS, BED_SUBNET, BED_IFACE, BED_SHARED, BED_RSH,
# to source), shared/ (the cluster's shared file system, same path on every host), rsh
# (the rsh agent for Open MPI's plm_rsh_agent) and run/ (records, logs, broker socket).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PATH=$PATH:/usr/sbin:/sbin  # ip, and root's tools, also from a PATH without them
prefix=10.77.0  # host hI is 10.77.0.I/24 on its interface bed0

die() { echo "bed: $*" >&2; exit 1; }

usage() {
  sed -n '2,9s/^# \{0,1\}//p' "${BASH_SOURCE[0]}" >&2
  exit 2
}

# Why a bed cannot be built here (nothing printed and status 0 when it can).
check_reason() {
  if [ "$(id -u)" != 0 ]; then
    echo "not root (uid $(id -u)): namespaces, mounts and interfaces need root"
    return 1
  fi
  local tool
  for tool in unshare nsenter ip python3 setsid mount; do
    command -v "$tool" >/dev/null 2>&1 || { echo "missing the command $tool"; return 1; }
  done
  local err
  if ! err=$(unshare --net --uts --ipc --mount --pid --fork --mount-proc --propagation private \
      true 2>&1); then
    echo "cannot create namespaces: $err"
    return 1
  fi
  if ! err=$(unshare --net ip -batch - 2>&1 <<'IP'
link add br0 type bridge
link add bed0 type veth peer name peer0
IP
  ); then
    echo "cannot create a bridge and a veth pair in a network namespace: $err"
    return 1
  fi
}

# st_state, st_ppid, st_start (field 22 of /proc/PID/stat) of PID; status 1 when it is gone.
read_stat() {
  local s f
  s=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  [ -n "$s" ] || return 1
  s=${s##*) }
  read -r -a f <<<"$s"
  st_state=${f[0]} st_ppid=${f[1]} st_start=${f[19]}
}

alive() {  # PID START: the very process recorded is alive (not a zombie)
  read_stat "$1" && [ "$st_state" != Z ] && [ "$st_start" = "$2" ]
}

children_of() {  # PID: its children's pids
  local c=/proc/$1/task/$1/children
  if [ -r "$c" ]; then
    cat "$c" 2>/dev/null || true
    return
  fi
  local p
  for p in /proc/[0-9]*; do
    read_stat "${p#/proc/}" && [ "$st_ppid" = "$1" ] && echo "${p#/proc/}"
  done
  return 0
}

record() {  # KIND NAME PID: append to DIR/run/pids with the process's start time
  read_stat "$3" || die "process $3 ($1 $2) ended at once"
  echo "$1 $2 $3 $st_start" >>"$dir/run/pids"
}

wait_until() {  # SECONDS WHAT COMMAND...: poll COMMAND every 50 ms
  local seconds=$1 what=$2 i
  shift 2
  for ((i = 0; i < seconds * 20; i++)); do
    "$@" && return 0
    sleep 0.05
  done
  die "timed out after ${seconds}s waiting for $what"
}

absdir() { realpath -m -- "$1"; }

# Every recorded process alive and the broker's socket there: the bed is up.
bed_up() {
  local kind name pid start n=0
  [ -s "$dir/run/pids" ] || return 1
  while read -r kind name pid start; do
    alive "$pid" "$start" || return 1
    [ "$kind" = host ] && n=$((n + 1))
  done <"$dir/run/pids"
  [ "$n" -gt 0 ] && [ -S "$dir/run/broker.sock" ]
}

netns_new() { [ "$(readlink "/proc/$1/ns/net" 2>/dev/null)" != "$(readlink /proc/self/ns/net)" ]; }

host_ready() {  # NAME UNSHARE_PID START
  [ -e "$dir/run/$1.ready" ] && return 0
  alive "$2" "$3" || die "host $1 did not start: $(tail -n 5 "$dir/run/$1.log" 2>/dev/null)"
  return 1
}

broker_listening() {  # PID START
  grep -q listening "$dir/run/broker.log" 2>/dev/null && return 0
  alive "$1" "$2" || die "the broker did not start: $(tail -n 5 "$dir/run/broker.log")"
  return 1
}

cmd_up() {
  local n=${2:-4} reason
  dir=$(absdir "$1")
  [[ $n =~ ^[0-9]+$ ]] && ((n >= 1 && n <= 254)) || die "N must be 1 to 254, not '$n'"
  if ! reason=$(check_reason); then
    echo "bed: cannot build a bed here: $reason" >&2
    exit 77
  fi
  if [ -s "$dir/run/pids" ]; then
    if bed_up; then
      echo "bed $dir: already up ($(grep -c '^host ' "$dir/run/pids") hosts)"
      return 0
    fi
    echo "bed $dir: a bed there is partly down; tearing it down first"
    cmd_down "$dir"
  fi
  local sock=$dir/run/broker.sock
  [ "${#sock}" -lt 108 ] || die "the folder's path is too long for a UNIX socket: $sock"
  local py
  py=$(python3 -c 'import sys; print(sys.executable)')

  mkdir -p "$dir/shared" "$dir/run"
  chmod 0700 "$dir/run"
  rm -f "$dir/run/"*.ready "$dir/run/"*.log "$sock" "$dir/bed.env" "$dir/rsh"
  : >"$dir/run/pids"
  up_done=0
  trap 'if [ "$up_done" = 0 ]; then echo "bed: up failed; tearing down what it built" >&2;
        cmd_down "$dir" >/dev/null || true; fi' EXIT

  # The bridge, in a network namespace of its own held by a sleeping process.
  setsid unshare --net sleep infinity </dev/null >/dev/null 2>&1 &
  local bridge=$!
  disown
  record net bridge "$bridge"
  wait_until 10 "the bridge's network namespace" netns_new "$bridge"
  nsenter --net="/proc/$bridge/ns/net" ip -batch - <<IP
link set lo up
link add br0 type bridge forward_delay 0
link set br0 up
IP

  # The hosts, each PID 1 of its own namespaces.
  local i upid=() ustart=()
  for ((i = 1; i <= n; i++)); do
    setsid unshare --net --uts --ipc --mount --pid --fork --mount-proc --propagation private \
      --kill-child "$here/host_init.sh" "$dir" "h$i" "$n" </dev/null >"$dir/run/h$i.log" 2>&1 &
    upid[i]=$!
    disown
    record unshare "h$i" "${upid[i]}"
    ustart[i]=$st_start
  done
  local hpid kids
  for ((i = 1; i <= n; i++)); do
    wait_until 30 "host h$i" host_ready "h$i" "${upid[i]}" "${ustart[i]}"
    kids=$(children_of "${upid[i]}")
    hpid=${kids%% *}
    [ -n "$hpid" ] || die "host h$i has no PID 1"
    [ "$(readlink "/proc/$hpid/ns/pid")" != "$(readlink /proc/self/ns/pid)" ] ||
      die "host h$i: process $hpid is not in a PID namespace of its own"
    record host "h$i" "$hpid"
    nsenter --net="/proc/$hpid/ns/net" ip -batch - <<IP
link set lo up
link add bed0 type veth peer name h$i netns $bridge
addr add $prefix.$i/24 dev bed0
link set bed0 up
IP
    nsenter --net="/proc/$bridge/ns/net" ip -batch - <<IP
link set h$i master br0
link set h$i up
IP
  done

  # The broker, outside the hosts, and the rsh agent that talks to it.
  setsid "$py" "$here/broker.py" "$dir" </dev/null >"$dir/run/broker.log" 2>&1 &
  local broker=$!
  disown
  record broker broker "$broker"
  wait_until 10 "the broker" broker_listening "$broker" "$st_start"
  { echo "#!$py"; cat "$here/rsh.py"; } >"$dir/rsh.new"
  chmod 0755 "$dir/rsh.new"
  mv "$dir/rsh.new" "$dir/rsh"

  local names
  names=$(seq -f 'h%g' -s ' ' 1 "$n")
  {
    echo "# The test bed at $dir (tests/cluster/bed.sh); source this file."
    echo "export BED_DIR=$(printf %q "$dir")"
    echo "export BED_HOSTS=$(printf %q "$names")"
    echo "export BED_SUBNET=$prefix.0/24"
    echo "export BED_IFACE=bed0"
    echo "export BED_SHARED=$(printf %q "$dir/shared")"
    echo "export BED_RSH=$(printf %q "$dir/rsh")"
  } >"$dir/bed.env"
  up_done=1
  echo "bed $dir: up ($n hosts: $names)"
}

cmd_down() {
  dir=$(absdir "$1")
  local pids=$dir/run/pids
  if [ ! -f "$pids" ]; then
    echo "bed $dir: not up"
    return 0
  fi
  local kind name pid start kid
  # 1. Each host's PID 1, which ends everything in the host. A host whose PID 1 was not
  # recorded yet (a failed up) is found as the child of its recorded unshare. The unshare
  # processes themselves are not killed: they exit when their child does.
  while read -r kind name pid start; do
    case $kind in
      host) alive "$pid" "$start" && kill -KILL "$pid" 2>/dev/null || true ;;
      unshare)
        if alive "$pid" "$start"; then
          for kid in $(children_of "$pid"); do kill -KILL "$kid" 2>/dev/null || true; done
        fi
        ;;
    esac
  done <"$pids"
  # 2. The broker and the bridge's namespace holder.
  while read -r kind name pid start; do
    case $kind in
      broker | net) alive "$pid" "$start" && kill -KILL "$pid" 2>/dev/null || true ;;
    esac
  done <"$pids"
  # 3. Wait until every recorded process is gone.
  local i left
  for ((i = 0; i < 200; i++)); do
    left=""
    while read -r kind name pid start; do
      alive "$pid" "$start" && left+=" $kind $name ($pid)"
    done <"$pids"
    [ -z "$left" ] && break
    sleep 0.05
  done
  [ -z "$left" ] || die "still alive after 10 s:$left"
  rm -rf "$dir/run" "$dir/bed.env" "$dir/rsh" "$dir/rsh.new"
  echo "bed $dir: down"
}

cmd_status() {
  dir=$(absdir "$1")
  if [ ! -s "$dir/run/pids" ]; then
    echo "bed $dir: not up"
    return 3
  fi
  local kind name pid start state
  while read -r kind name pid start; do
    if alive "$pid" "$start"; then state=up; else state=gone; fi
    printf '%-8s %-7s %8s  %s\n' "$kind" "$name" "$pid" "$state"
  done <"$dir/run/pids"
  if bed_up; then
    echo "bed $dir: up"
  else
    echo "bed $dir: partly down (bed.sh down, then up)"
    return 1
  fi
}

case ${1:-} in
  up) [ $# -ge 2 ] && [ $# -le 3 ] || usage; cmd_up "$2" "${3:-4}" ;;
  down) [ $# -eq 2 ] || usage; cmd_down "$2" ;;
  status) [ $# -eq 2 ] || usage; cmd_status "$2" ;;
  check)
    [ $# -eq 1 ] || usage
    if reason=$(check_reason); then echo "a bed can be built here"; else echo "$reason"; exit 77; fi
    ;;
  *) usage ;;
esac
