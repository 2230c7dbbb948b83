#pragma once
// haein's element types and reductions as NCCL's. Apart from nccl_backend.cpp so that a
// host test can check the table: with one GPU every NCCL reduction is the identity, and a
// wrong entry would pass every device test.
#include <nccl.h>

#include "haein/runtime/types.hpp"

namespace haein::runtime::detail {

inline ncclDataType_t nccl_type(DataType type) {
  switch (type) {
    case DataType::kF32:
      return ncclFloat32;
    case DataType::kF64:
      return ncclFloat64;
    case DataType::kF16:
      return ncclFloat16;
    case DataType::kBF16:
      return ncclBfloat16;
    case DataType::kI32:
      return ncclInt32;
    case DataType::kI64:
      return ncclInt64;
    case DataType::kU8:
      return ncclUint8;
  }
  return ncclFloat32;
}

inline ncclRedOp_t nccl_op(ReduceOp op) {
  switch (op) {
    case ReduceOp::kSum:
      return ncclSum;
    case ReduceOp::kAvg:
      return ncclAvg;
    case ReduceOp::kMin:
      return ncclMin;
    case ReduceOp::kMax:
      return ncclMax;
    case ReduceOp::kProd:
      return ncclProd;
  }
  return ncclSum;
}

}  // namespace haein::runtime::detail
