# Decides whether this build has CUDA kernels and the NCCL backend.
# HAEIN_WITH_CUDA=AUTO: on when a CUDA compiler, the CUDA toolkit and NCCL are all found.
# HAEIN_WITH_CUDA=ON: the same, but a missing piece is a configure error.
# Sets HAEIN_CUDA_ENABLED (BOOL) and HAEIN_CUDA_ENABLED_BOOL (true/false for C++).
set(HAEIN_CUDA_ENABLED OFF)
set(_haein_cuda_missing "")
if(NOT HAEIN_WITH_CUDA STREQUAL "OFF")
  include(CheckLanguage)
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    enable_language(CUDA)
    find_package(CUDAToolkit)
    find_package(NCCL)
    if(NOT CUDAToolkit_FOUND)
      set(_haein_cuda_missing "the CUDA toolkit libraries")
    elseif(NOT NCCL_FOUND)
      set(_haein_cuda_missing "NCCL (nccl.h, libnccl.so; set NCCL_ROOT)")
    else()
      set(HAEIN_CUDA_ENABLED ON)
    endif()
  else()
    set(_haein_cuda_missing "a CUDA compiler (nvcc; set CUDACXX or CMAKE_CUDA_COMPILER)")
  endif()
  if(NOT HAEIN_CUDA_ENABLED AND HAEIN_WITH_CUDA STREQUAL "ON")
    message(FATAL_ERROR "HAEIN_WITH_CUDA=ON but ${_haein_cuda_missing} was not found")
  endif()
endif()

if(HAEIN_CUDA_ENABLED)
  set(HAEIN_CUDA_ENABLED_BOOL true)
  set(CMAKE_CUDA_STANDARD 17)  # CMake 3.25 has no C++20 flags for nvcc
  set(CMAKE_CUDA_STANDARD_REQUIRED ON)
  message(STATUS "haein: CUDA ${CUDAToolkit_VERSION}, NCCL ${NCCL_VERSION}, "
                 "architectures ${CMAKE_CUDA_ARCHITECTURES}")
else()
  set(HAEIN_CUDA_ENABLED_BOOL false)
  if(HAEIN_WITH_CUDA STREQUAL "OFF")
    message(STATUS "haein: host-only build (HAEIN_WITH_CUDA=OFF): no CUDA kernels, no NCCL backend")
  else()
    message(STATUS "haein: host-only build: ${_haein_cuda_missing} not found; "
                   "no CUDA kernels, no NCCL backend")
  endif()
endif()
