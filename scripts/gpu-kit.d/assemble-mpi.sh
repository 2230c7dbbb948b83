#!/usr/bin/env bash
# Copies a relocatable Open MPI 4.1 + PMIx runtime from Debian's packages into KIT/ompi and
# KIT/pmix. The layout under KIT/ompi mirrors Debian's, so that OPAL_PREFIX=KIT/ompi finds
# the components, help files and orted. Plugins whose libraries do not travel (verbs, UCX,
# libfabric, PSM, Java, Fortran, OpenSHMEM) are left out; the kit runs one node over
# shared memory and TCP.
set -euo pipefail
kit=${1:?usage: assemble-mpi.sh KIT}
mpi=/usr/lib/x86_64-linux-gnu/openmpi
pmix=/usr/lib/x86_64-linux-gnu/pmix2
[ -d "$mpi/lib/openmpi3" ] && [ -d "$pmix/lib" ] \
  || { echo "assemble-mpi: Debian's Open MPI 4.1 / PMIx not found under $mpi and $pmix" >&2; exit 1; }
out=$kit/ompi
lib=$out/lib/x86_64-linux-gnu/openmpi/lib
mkdir -p "$out/bin" "$lib/openmpi3" "$out/share/openmpi" "$out/etc"
for b in orterun orted ompi_info; do cp -L "/usr/bin/$b" "$out/bin/"; done
ln -sf orterun "$out/bin/mpirun"
ln -sf orterun "$out/bin/mpiexec"
skip='openib|_ofi|psm|ucx|_uct|verbs|java|mpifh|usempi|oshmem|spml|sshmem|memheap|scoll|atomic_'
for f in "$mpi"/lib/lib*.so; do
  basename "$f" | grep -Eq "$skip" && continue
  real=$(readlink -f "$f")
  soname=$(objdump -p "$real" | awk '/SONAME/{print $2}')
  cp -L "$real" "$lib/$soname"
done
for f in "$mpi"/lib/openmpi3/*.so; do
  basename "$f" | grep -Eq "$skip" && continue
  cp -L "$f" "$lib/openmpi3/"
done
cp /usr/share/openmpi/*.txt "$out/share/openmpi/" 2>/dev/null || true
mkdir -p "$kit/pmix/lib/pmix" "$kit/pmix/share"
cp -L "$pmix/lib/libpmix.so.2" "$kit/pmix/lib/"
cp -L "$pmix"/lib/pmix/*.so "$kit/pmix/lib/pmix/"
cp -r "$pmix/share/pmix" "$kit/pmix/share/"
cp "$pmix/share/pmix-mca-params.conf" "$kit/pmix/share/" 2>/dev/null || true
