#pragma once
/// @file
/// Check macros for CUDA, NCCL and MPI calls. Each records the call text, file, line and
/// this process's rank and host, and throws the matching haein::Error subclass.
///
/// This header includes no CUDA, NCCL or MPI header: the macros name library functions
/// only where they are expanded, so include it after the library's own header.

#include <string>

#include "haein/common/error.hpp"

namespace haein::detail {

[[noreturn]] void raise_cuda_error(const char* call, int code, const char* name, const char* text,
                                   const char* file, int line);
[[noreturn]] void raise_nccl_error(const char* call, int code, const char* text,
                                   const char* last_error, const char* file, int line);
/// @param text  the MPI_Error_string text of the code
[[noreturn]] void raise_mpi_error(const char* call, int code, const std::string& text,
                                  const char* file, int line);

}  // namespace haein::detail

/// Throws haein::CudaError when a CUDA runtime call does not return cudaSuccess.
#define HAEIN_CUDA_CHECK(call)                                                               \
  do {                                                                                       \
    const auto haein_cuda_status_ = (call);                                                  \
    if (haein_cuda_status_ != cudaSuccess) {                                                 \
      ::haein::detail::raise_cuda_error(                                                     \
          #call, static_cast<int>(haein_cuda_status_), cudaGetErrorName(haein_cuda_status_), \
          cudaGetErrorString(haein_cuda_status_), __FILE__, __LINE__);                       \
    }                                                                                        \
  } while (0)

/// Throws haein::NcclError when an NCCL call returns neither ncclSuccess nor ncclInProgress
/// (the latter is the normal answer of nonblocking communicators).
#define HAEIN_NCCL_CHECK(call)                                                          \
  do {                                                                                  \
    const auto haein_nccl_status_ = (call);                                             \
    if (haein_nccl_status_ != ncclSuccess && haein_nccl_status_ != ncclInProgress) {    \
      ::haein::detail::raise_nccl_error(#call, static_cast<int>(haein_nccl_status_),    \
                                        ncclGetErrorString(haein_nccl_status_),         \
                                        ncclGetLastError(nullptr), __FILE__, __LINE__); \
    }                                                                                   \
  } while (0)

/// Throws haein::MpiError when an MPI call does not return MPI_SUCCESS. MPI's default
/// handler aborts before returning; communicators that should report errors need
/// MPI_ERRORS_RETURN.
#define HAEIN_MPI_CHECK(call)                                                                     \
  do {                                                                                            \
    const int haein_mpi_status_ = (call);                                                         \
    if (haein_mpi_status_ != MPI_SUCCESS) {                                                       \
      char haein_mpi_text_[MPI_MAX_ERROR_STRING] = {};                                            \
      int haein_mpi_length_ = 0;                                                                  \
      MPI_Error_string(haein_mpi_status_, haein_mpi_text_, &haein_mpi_length_);                   \
      ::haein::detail::raise_mpi_error(#call, haein_mpi_status_,                                  \
                                       std::string(haein_mpi_text_, haein_mpi_length_), __FILE__, \
                                       __LINE__);                                                 \
    }                                                                                             \
  } while (0)
