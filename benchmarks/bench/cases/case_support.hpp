#pragma once
// What the cases share: MPI's names of haein's types and reductions, and (CUDA builds) the
// direct NCCL communicator of --baseline nccl.
#include <mpi.h>

#include "collective_case.hpp"
#include "haein/runtime/types.hpp"
#if HAEIN_BENCH_CUDA
#include <cuda_runtime.h>
#include <nccl.h>

#include "direct_nccl.hpp"
#include "haein/common/check.hpp"
#include "nccl_types.hpp"
#endif

namespace haein::bench {

/// MPI's type of `type`; MPI_DATATYPE_NULL for f16 and bf16 (MPI has none).
inline MPI_Datatype mpi_type(runtime::DataType type) {
  switch (type) {
    case runtime::DataType::kF32:
      return MPI_FLOAT;
    case runtime::DataType::kF64:
      return MPI_DOUBLE;
    case runtime::DataType::kI32:
      return MPI_INT32_T;
    case runtime::DataType::kI64:
      return MPI_INT64_T;
    case runtime::DataType::kU8:
      return MPI_UINT8_T;
    default:
      return MPI_DATATYPE_NULL;
  }
}

/// MPI's reduction of `op`. MPI has no average: the baseline times the sum.
inline MPI_Op mpi_op(runtime::ReduceOp op) {
  switch (op) {
    case runtime::ReduceOp::kProd:
      return MPI_PROD;
    case runtime::ReduceOp::kMin:
      return MPI_MIN;
    case runtime::ReduceOp::kMax:
      return MPI_MAX;
    default:
      return MPI_SUM;
  }
}

}  // namespace haein::bench
