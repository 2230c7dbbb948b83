#!/usr/bin/env bash
# PID 1 of one test-bed host (see README.md). Started by bed.sh through
#   unshare --net --uts --ipc --mount --pid --fork --mount-proc --propagation private \
#           --kill-child host_init.sh DIR NAME N
# It gives the host its name, private /tmp, /dev/shm, /run and /etc (with the bed's /etc/hosts),
# keeps DIR at its own path, says it is ready, and then holds the namespaces and reaps
# orphans until it is killed. Every mount here lives only in this host's mount namespace.
set -euo pipefail

dir=${1:?bed folder}
name=${2:?host name}
count=${3:?number of hosts}
subnet_prefix=10.77.0  # BED_SUBNET 10.77.0.0/24, host hI at 10.77.0.I

[ "$$" = 1 ] || { echo "host_init.sh: must run as PID 1 of a new PID namespace" >&2; exit 1; }
# This bed's mounts are named bed-<id>-hI: another bed on the machine has another id.
id=$(printf '%s' "$dir" | cksum | cut -d' ' -f1)

echo "$name" >/proc/sys/kernel/hostname

# A tmpfs prepared at a staging point and moved into place; DIR, and every folder named in
# BED_KEEP (colon-separated: a build tree that tests run programs from, say), is bound back
# into it first when it lies under MOUNTPOINT, so that it keeps its path on every host.
stage="$dir/run/$name.mnt"
mkdir -p "$stage"
IFS=: read -r -a keep <<<"${BED_KEEP:-}"
private_tmpfs() {  # MOUNTPOINT MODE
  mount -t tmpfs -o "mode=$2,nosuid,nodev" "bed-$id-$name" "$stage"
  local folder
  for folder in "$dir" "${keep[@]}"; do
    [ -n "$folder" ] && [ -d "$folder" ] || continue
    case "$folder/" in
      "$1"/*)
        mkdir -p "$stage/${folder#"$1"/}"
        mount --bind "$folder" "$stage/${folder#"$1"/}"
        ;;
    esac
  done
  mount -n --move "$stage" "$1"  # -n: the mount table lives in /run, maybe this one
}
private_tmpfs /tmp 1777
private_tmpfs /dev/shm 1777
# /run too: daemons a host runs (munged, slurmd) keep their sockets and pid files there.
private_tmpfs /run 755
mkdir -p -m 1777 /run/lock
ln -s /dev/shm /run/shm

# A private /etc: a copy of the machine's in a tmpfs, moved over /etc. Rewriting a file in
# it (also by rename) stays inside this host; the machine's /etc is only read.
mount -t tmpfs -o mode=755,nosuid,nodev "bed-$id-$name-etc" "$stage"
cp -a /etc/. "$stage/"
rm -f "$stage/hosts" "$stage/hostname" "$stage/resolv.conf"
{
  echo "127.0.0.1 localhost"
  echo "::1 localhost ip6-localhost ip6-loopback"
  echo "127.0.1.1 $name"
  for i in $(seq 1 "$count"); do echo "$subnet_prefix.$i h$i"; done
} >"$stage/hosts"
echo "$name" >"$stage/hostname"
: >"$stage/resolv.conf"  # no name server: no query leaves the bed
if [ -f "$stage/nsswitch.conf" ] && grep -q '^hosts:' "$stage/nsswitch.conf"; then
  sed -i 's/^hosts:.*/hosts:          files/' "$stage/nsswitch.conf"
else
  echo "hosts:          files" >>"$stage/nsswitch.conf"
fi
mount --move "$stage" /etc
rmdir "$stage" 2>/dev/null || true

echo "$name ready" >"$dir/run/$name.ready"

# Hold the namespaces. bash reaps every child it is given, orphans included, whenever it
# waits; SIGKILL from outside (bed.sh down) ends the host and everything in it.
exec </dev/null
while :; do
  sleep 3600 &
  wait || true
done
