#!/usr/bin/env bash
# A real Slurm on an up test bed (see README.md, "Slurm on the bed"):
#
#   slurm.sh up DIR [CLUSTER]   start munged and slurmd on every host and slurmctld on h1
#                               (the head and login node); CLUSTER is a haein cluster file
#                               of the bed's hosts (default: written here, 8 cores each, two
#                               leaves under one spine), its tree becomes topology.conf
#                               through `haein topo convert --to slurm` (HAEIN=path to haein)
#   slurm.sh check DIR          exit 0 when every node is up and idle in sinfo
#   slurm.sh check-tools        can Slurm run here? Prints why not and exits 77 when not
#
# Everything Slurm needs lives in the hosts' private /etc and /run and in DIR/slurm
# (controller state, logs); the machine's own /etc is only read. `bed.sh down DIR` ends the
# daemons with their hosts.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PATH=$PATH:/usr/sbin:/sbin
die() { echo "slurm-bed: $*" >&2; exit 1; }

usage() {
  sed -n '2,11s/^# \{0,1\}//p' "${BASH_SOURCE[0]}" >&2
  exit 2
}

# Why Slurm cannot run on a bed here (nothing printed and status 0 when it can).
slurm_reason() {
  local tool
  for tool in slurmctld slurmd munged srun sbatch scontrol sinfo; do
    command -v "$tool" >/dev/null 2>&1 || {
      echo "missing $tool (Debian: slurmctld slurmd slurm-client munge; scripts/install-deps.sh)"
      return 1
    }
  done
}

host_pids() {  # NAME PID lines of the bed's hosts
  awk '$1 == "host" { print $2, $3 }' "$dir/run/pids"
}

in_host() {  # PID COMMAND...: run COMMAND inside that host, with a clean environment
  local pid=$1
  shift
  nsenter -t "$pid" --net --uts --ipc --mount --pid -- \
    env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root "$@"
}

write_config() {  # CLUSTER
  local n=0 name pid
  while read -r name pid; do n=$((n + 1)); done < <(host_pids)
  [ "$n" -ge 1 ] || die "the bed at $dir has no hosts"
  # A fresh cluster: no jobs left from an earlier bed in the same folder.
  rm -rf "$dir/slurm/state"
  mkdir -p "$dir/slurm/state" "$dir/slurm/log"
  chmod 0700 "$dir/slurm/state"
  rm -f "$dir/slurm/log/"*
  local cluster=$1
  if [ -z "$cluster" ]; then
    cluster=$dir/slurm/cluster.yaml
    {
      echo "# The bed's hosts for haein (tests/cluster/slurm.sh): 8 cores, no GPUs."
      echo "version: 1"
      echo "name: bed"
      echo "nodes:"
      echo "  - hostname: \"h[1-$n]\""
      echo "    numa: [{id: 0, cpus: \"0-7\"}]"
      echo "    gpus: []"
      echo "    nics: []"
      echo "    slots: 8"
      echo "switches:"
      local half=$(((n + 1) / 2))
      echo "  - {name: leaf1, level: leaf, nodes: \"h[1-$half]\"}"
      if [ "$n" -gt "$half" ]; then
        echo "  - {name: leaf2, level: leaf, nodes: \"h[$((half + 1))-$n]\"}"
        echo "  - {name: spine, level: spine, switches: \"leaf[1-2]\"}"
      fi
    } >"$cluster"
  fi
  "${HAEIN:-haein}" topo convert --cluster "$cluster" --to slurm -o "$dir/slurm/topology.conf" ||
    die "haein topo convert --to slurm failed for $cluster"
  # One munge key for the whole bed, as a site distributes it.
  (umask 077 && head -c 1024 /dev/urandom >"$dir/slurm/munge.key")
  chmod 0400 "$dir/slurm/munge.key"
  cat >"$dir/slurm/slurm.conf" <<EOF
# The bed's Slurm (tests/cluster/slurm.sh). Each host reads it as /etc/slurm/slurm.conf.
ClusterName=bed
SlurmctldHost=h1(10.77.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=$dir/slurm/state
SlurmdSpoolDir=/run/slurm/spool
SlurmctldPidFile=/run/slurm/slurmctld.pid
SlurmdPidFile=/run/slurm/slurmd.pid
SlurmctldLogFile=$dir/slurm/log/slurmctld.log
SlurmdLogFile=$dir/slurm/log/slurmd-%n.log
SlurmctldDebug=info
SlurmdDebug=info
# The hosts share one cgroup tree, so cgroup tracking cannot tell their jobs apart.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/affinity
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
TopologyPlugin=topology/tree
MpiDefault=none
# Each host's /tmp is its own (pmix keeps a job's files there).
TmpFS=/tmp
ReturnToService=2
# The nodes declare 8 cores each; the machine under the bed may have fewer.
SlurmdParameters=config_overrides
# SIGTERM to SIGKILL when a job or step is cancelled.
KillWait=10
InactiveLimit=0
MinJobAge=300
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
EOF
  local i
  for ((i = 1; i <= n; i++)); do
    echo "NodeName=h$i NodeAddr=10.77.0.$i CPUs=8 Boards=1 SocketsPerBoard=1 CoresPerSocket=8 ThreadsPerCore=1 RealMemory=1024 State=UNKNOWN"
  done >>"$dir/slurm/slurm.conf"
  echo "PartitionName=bed Nodes=ALL Default=YES MaxTime=INFINITE State=UP" >>"$dir/slurm/slurm.conf"
}

# Inside one host: its /etc/slurm and munge key, munged, slurmd, and on h1 slurmctld.
start_host() {  # NAME PID
  local name=$1 pid=$2
  in_host "$pid" bash -euc '
    dir=$1 name=$2
    mkdir -p /etc/slurm /run/munge /run/slurm/spool
    cp "$dir/slurm/slurm.conf" "$dir/slurm/topology.conf" /etc/slurm/
    install -m 0400 -o munge -g munge "$dir/slurm/munge.key" /etc/munge/munge.key
    chown munge:munge /run/munge
    chmod 0755 /run/munge
    setpriv --reuid munge --regid munge --init-groups munged \
      --seed-file=/run/munge/munged.seed --log-file=/run/munge/munged.log
    if [ "$name" = h1 ]; then slurmctld -i; fi
    slurmd -N "$name"
  ' bash "$dir" "$name" || die "could not start Slurm on $name (logs: $dir/slurm/log)"
}

nodes_idle() {  # all nodes idle as h1 sees them
  local pid
  pid=$(host_pids | awk '$1 == "h1" { print $2 }')
  [ "$(in_host "$pid" sinfo -h -N -o '%t' 2>/dev/null | sort -u)" = idle ]
}

cmd_up() {
  dir=$(realpath -m -- "$1")
  local cluster=${2:-} reason
  [ -z "$cluster" ] || cluster=$(realpath -- "$cluster")
  if ! reason=$(slurm_reason); then
    echo "slurm-bed: cannot run Slurm here: $reason" >&2
    exit 77
  fi
  "$here/bed.sh" status "$dir" >/dev/null || die "the bed at $dir is not up (bed.sh up $dir)"
  write_config "$cluster"
  local name pid
  while read -r name pid; do
    [ "$name" = h1 ] && start_host "$name" "$pid"
  done < <(host_pids)
  while read -r name pid; do
    [ "$name" = h1 ] || start_host "$name" "$pid"
  done < <(host_pids)
  local i
  for ((i = 0; i < 600; i++)); do
    nodes_idle && break
    sleep 0.1
  done
  nodes_idle || die "nodes not idle after 60 s: $(in_host "$(host_pids | awk '$1 == "h1" { print $2 }')" sinfo -N 2>&1 | tr '\n' ' ') (logs: $dir/slurm/log)"
  echo "slurm on bed $dir: up (controller h1; $(host_pids | wc -l) nodes idle)"
}

case ${1:-} in
  up) [ $# -ge 2 ] && [ $# -le 3 ] || usage; cmd_up "$2" "${3:-}" ;;
  check-tools)
    [ $# -eq 1 ] || usage
    if reason=$(slurm_reason); then echo "Slurm can run on a bed here"; else echo "$reason"; exit 77; fi
    ;;
  check)
    [ $# -eq 2 ] || usage
    dir=$(realpath -m -- "$2")
    nodes_idle
    ;;
  *) usage ;;
esac
