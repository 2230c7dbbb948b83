#pragma once
/// @file
/// Maps run-time element types to the element structs of element_math.hpp, for the host
/// reference and the device launches alike (C++17: the .cu files use it too).

#include "element_math.hpp"
#include "haein/common/error.hpp"
#include "haein/kernels/multi_tensor.hpp"

namespace haein::kernels::detail {

/// Calls `body(Tensor{}, Bucket{})` with the element structs of a supported pair; throws
/// InvalidArgument for the others.
template <class Body>
void with_element_types(ElementType tensor_type, ElementType bucket_type, Body&& body) {
  if (tensor_type == bucket_type) {
    switch (tensor_type) {
      case ElementType::kF32:
        return body(F32Element{}, F32Element{});
      case ElementType::kBF16:
        return body(BF16Element{}, BF16Element{});
      case ElementType::kF16:
        return body(F16Element{}, F16Element{});
    }
  } else if (tensor_type == ElementType::kF32) {
    if (bucket_type == ElementType::kBF16) return body(F32Element{}, BF16Element{});
    if (bucket_type == ElementType::kF16) return body(F32Element{}, F16Element{});
  }
  throw InvalidArgument(std::string("multi-tensor kernels: tensors of ") +
                        std::string(name_of(tensor_type)) + " with a bucket of " +
                        std::string(name_of(bucket_type)) +
                        " is not supported (same type, or f32 tensors with a bf16/f16 bucket)");
}

/// Calls `body(Element{})` for one type.
template <class Body>
void with_element_type(ElementType type, Body&& body) {
  switch (type) {
    case ElementType::kF32:
      return body(F32Element{});
    case ElementType::kBF16:
      return body(BF16Element{});
    case ElementType::kF16:
      return body(F16Element{});
  }
  throw InvalidArgument("multi-tensor kernels: unknown element type");
}

}  // namespace haein::kernels::detail
