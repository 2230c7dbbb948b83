#!/usr/bin/env bash
# Copies into KIT/lib every shared library that the kit's programs and Open MPI's plugins
# load, except what the GPU machine has itself: glibc, the GCC runtime, the driver's
# libcuda, and NCCL and cuBLAS (the image's pip wheels; ours are 700+ MiB). Our libcudart
# (under 1 MiB) travels, so that the runtime matches the nvcc the kit was built with.
set -euo pipefail
kit=${1:?usage: assemble-libs.sh KIT}
mkdir -p "$kit/lib"
# Resolve as the kit will: what Open MPI's and PMIx's folders hold is not copied again.
export LD_LIBRARY_PATH=$kit/lib:$kit/ompi/lib/x86_64-linux-gnu/openmpi/lib:$kit/pmix/lib
# The same list run.sh's loadability check allows from outside the kit.
skip='^(linux-vdso|ld-linux|libc\.so|libm\.so|libdl\.so|libpthread\.so|librt\.so|libresolv\.so|libutil\.so|libanl\.so|libgcc_s\.so|libstdc\+\+\.so|libcuda\.so|libnccl\.so|libcublas|libnvidia|libhaein_)'
files=$(find "$kit/bin" "$kit/lib" "$kit/ompi" "$kit/pmix" -type f \( -name '*.so*' -o -perm -u+x \))
for f in $files; do
  ldd "$f" 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// {print $1, $3}'
done | sort -u | while read -r name path; do
  echo "$name" | grep -Eq "$skip" && continue
  case "$path" in "$kit"/*) continue ;; esac
  cp -Lf "$path" "$kit/lib/$name"
done
cudart=$(ls /usr/local/cuda/lib64/libcudart.so.[0-9]* 2>/dev/null | grep -E 'so\.[0-9]+$' | head -n 1)
[ -n "$cudart" ] || { echo "assemble-libs: no libcudart.so.N in /usr/local/cuda/lib64" >&2; exit 1; }
cp -Lf "$cudart" "$kit/lib/"
