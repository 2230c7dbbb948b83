#pragma once
// Every rank must hold the same parameters; a difference means a lost or corrupted
// reduction, and training on would silently fork the model. The check compares the ranks'
// parameter checksums every K steps and at the end.

#include <cstdint>
#include <string>

#include "haein/runtime/communicator.hpp"
#include "mlp.hpp"

namespace haein::examples {

/// 16 hexadecimal digits.
std::string hex(std::uint64_t value);

class ReplicaCheck {
 public:
  /// `every` 0: only where the caller checks unconditionally (start, end).
  ReplicaCheck(std::uint64_t every, runtime::Communicator& comm) : every_(every), comm_(comm) {}

  /// True when `step` is checked: every `every` steps, and the last.
  bool due(std::uint64_t step, bool last) const {
    return (every_ != 0 && step % every_ == 0) || last;
  }
  /// Collective: throws Error naming the ranks whose parameters differ from rank 0's.
  void operator()(const Mlp& model, std::uint64_t step) const;

 private:
  std::uint64_t every_;
  runtime::Communicator& comm_;
};

}  // namespace haein::examples
