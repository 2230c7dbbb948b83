# Parallel HDF5, Open MPI flavour (Debian: libhdf5-openmpi-dev), as target PkgConfig::HDF5.
# pkg-config rather than FindHDF5: FindHDF5 needs the C language enabled and may pick the
# serial library when both are installed.
find_package(PkgConfig REQUIRED)
if(NOT TARGET PkgConfig::HDF5)
  pkg_check_modules(HDF5 REQUIRED IMPORTED_TARGET GLOBAL hdf5-openmpi)
endif()
