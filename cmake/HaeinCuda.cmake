# Decides whether this build has CUDA kernels and the NCCL backend.
# HAEIN_WITH_CUDA=AUTO: on when a CUDA compiler, the CUDA toolkit and NCCL are all found.
# HAEIN_WITH_CUDA=ON: the same, but a missing piece is a configure error.
# Sets HAEIN_CUDA_ENABLED (BOOL) and HAEIN_CUDA_ENABLED_BOOL (true/false for C++).
set(HAEIN_CUDA_ENABLED OFF)
set(_haein_cuda_missing "")
# Any of CMake's true/false spellings (-DHAEIN_WITH_CUDA=1, TRUE, yes ...) count: a
# requested CUDA build that silently came out host-only is what this file must not do.
string(TOUPPER "${HAEIN_WITH_CUDA}" _haein_cuda_mode)
if(_haein_cuda_mode STREQUAL "AUTO" OR _haein_cuda_mode STREQUAL "")
  set(_haein_cuda_mode AUTO)
elseif(_haein_cuda_mode MATCHES "^(ON|TRUE|YES|Y|1)$")
  set(_haein_cuda_mode ON)
elseif(_haein_cuda_mode MATCHES "^(OFF|FALSE|NO|N|0)$")
  set(_haein_cuda_mode OFF)
else()
  message(FATAL_ERROR "HAEIN_WITH_CUDA='${HAEIN_WITH_CUDA}': expected AUTO, ON or OFF")
endif()
# ncclCommSplit and ncclCommFinalize, which the backend uses, came with NCCL 2.18.
set(_haein_nccl_minimum 2.18)
if(NOT _haein_cuda_mode STREQUAL "OFF")
  include(CheckLanguage)
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    enable_language(CUDA)
    find_package(CUDAToolkit)
    find_package(NCCL)
    if(NOT CUDAToolkit_FOUND)
      set(_haein_cuda_missing "the CUDA toolkit libraries")
    elseif(NOT NCCL_FOUND)
      set(_haein_cuda_missing "NCCL (nccl.h, libnccl.so or libnccl.so.2; set NCCL_ROOT)")
    elseif(NCCL_VERSION VERSION_LESS _haein_nccl_minimum)
      set(_haein_cuda_missing "NCCL ${_haein_nccl_minimum} or newer (found ${NCCL_VERSION})")
    else()
      set(HAEIN_CUDA_ENABLED ON)
    endif()
  else()
    set(_haein_cuda_missing "a CUDA compiler (nvcc; set CUDACXX or CMAKE_CUDA_COMPILER)")
  endif()
  if(NOT HAEIN_CUDA_ENABLED AND _haein_cuda_mode STREQUAL "ON")
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
  if(_haein_cuda_mode STREQUAL "OFF")
    message(STATUS "haein: host-only build (HAEIN_WITH_CUDA=OFF): no CUDA kernels, no NCCL backend")
  else()
    message(STATUS "haein: host-only build: ${_haein_cuda_missing} not found; "
                   "no CUDA kernels, no NCCL backend")
  endif()
endif()
