#include "haein/runtime/types.hpp"

#include <string>

#include "haein/common/error.hpp"

namespace haein::runtime {

std::size_t size_of(DataType type) {
  switch (type) {
    case DataType::kF64:
    case DataType::kI64:
      return 8;
    case DataType::kF32:
    case DataType::kI32:
      return 4;
    case DataType::kF16:
    case DataType::kBF16:
      return 2;
    case DataType::kU8:
      return 1;
  }
  return 0;
}

std::string_view name_of(DataType type) {
  switch (type) {
    case DataType::kF32:
      return "f32";
    case DataType::kF64:
      return "f64";
    case DataType::kF16:
      return "f16";
    case DataType::kBF16:
      return "bf16";
    case DataType::kI32:
      return "i32";
    case DataType::kI64:
      return "i64";
    case DataType::kU8:
      return "u8";
  }
  return "?";
}

std::string_view name_of(ReduceOp op) {
  switch (op) {
    case ReduceOp::kSum:
      return "sum";
    case ReduceOp::kAvg:
      return "avg";
    case ReduceOp::kMin:
      return "min";
    case ReduceOp::kMax:
      return "max";
    case ReduceOp::kProd:
      return "prod";
  }
  return "?";
}

DataType parse_data_type(std::string_view text) {
  for (const DataType type : kAllDataTypes)
    if (name_of(type) == text) return type;
  throw InvalidArgument("unknown data type '" + std::string(text) +
                        "' (expected f32, f64, f16, bf16, i32, i64 or u8)");
}

ReduceOp parse_reduce_op(std::string_view text) {
  for (const ReduceOp op : kAllReduceOps)
    if (name_of(op) == text) return op;
  throw InvalidArgument("unknown reduction '" + std::string(text) +
                        "' (expected sum, avg, min, max or prod)");
}

}  // namespace haein::runtime
