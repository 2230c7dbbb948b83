# Sourced by run.sh: the environment of the kit's programs. KIT is the kit's folder.
# NVIDIA's libraries that do not travel (NCCL, cuBLAS) are the image's pip wheels.
: "${KIT:?env.sh needs KIT}"
nvidia_libs=""
for python in python3 /opt/torch/.venv/bin/python3; do
  command -v "$python" >/dev/null 2>&1 || continue
  nvidia_libs=$("$python" - <<'PY' 2>/dev/null
import glob, os, site
roots = site.getsitepackages() + [site.getusersitepackages()]
found = []
for root in roots:
    for part in ("nvidia/nccl/lib", "nvidia/cu13/lib", "nvidia/cublas/lib"):
        found += [d for d in glob.glob(os.path.join(root, part)) if os.path.isdir(d)]
print(":".join(dict.fromkeys(found)))
PY
) || nvidia_libs=""
  [ -n "$nvidia_libs" ] && break
done
if [ -z "$nvidia_libs" ]; then  # no python that knows: where the wheels usually are
  nvidia_libs=$(ls -d /opt/*/.venv/lib/python3*/site-packages/nvidia/{nccl,cu13,cublas}/lib \
                      /usr/local/lib/python3*/dist-packages/nvidia/{nccl,cu13,cublas}/lib 2>/dev/null | paste -sd: -)
fi
export KIT_NVIDIA_LIBS=$nvidia_libs
ompi_lib=$KIT/ompi/lib/x86_64-linux-gnu/openmpi/lib
export LD_LIBRARY_PATH=$KIT/lib:$ompi_lib:$KIT/pmix/lib${nvidia_libs:+:$nvidia_libs}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export PATH=$KIT/bin:$KIT/ompi/bin:$PATH
# Open MPI 4.1 relocated: components, help files and orted are found under OPAL_PREFIX.
export OPAL_PREFIX=$KIT/ompi
export PMIX_INSTALL_PREFIX=$KIT/pmix
export PMIX_MCA_pcompress_base_silence_warning=1
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_plm=isolated  # one node: no ssh or rsh agent
export OMPI_MCA_btl=self,vader,tcp OMPI_MCA_pml=ob1 OMPI_MCA_osc=^ucx,rdma
export OMPI_MCA_btl_vader_single_copy_mechanism=none  # no CMA inside VMs and containers
export OMPI_MCA_rmaps_base_oversubscribe=1
# The tests run the kit's programs, not the paths compiled into them.
export TEST_HAEIN_BINARY=$KIT/bin/haein TEST_TRAIN_MLP=$KIT/bin/train_mlp TEST_MPIEXEC=$KIT/ompi/bin/mpiexec
export HAEIN_TIMEOUT=${HAEIN_TIMEOUT:-120}
