#pragma once
// Where a bucket's element work runs: on the host, or queued on the bucketer's CUDA stream.
// The exchanges say what to do to a piece; the executor of its bucket does it.

#include <cstddef>

#include "haein/kernels/multi_tensor.hpp"

namespace haein::runtime::detail {

class Executor {
 public:
  virtual ~Executor() = default;
  virtual void pack(const kernels::PackArgs& args) = 0;
  virtual void unpack(const kernels::UnpackArgs& args) = 0;
  virtual void scale(void* data, std::size_t count, kernels::ElementType type, float scale) = 0;
  virtual void zero(void* data, std::size_t bytes) = 0;
  /// `destination` and `source` may overlap.
  virtual void copy(void* destination, const void* source, std::size_t bytes) = 0;
  virtual void sum_shards(const kernels::ShardSumArgs& args) = 0;
};

/// Runs each call before it returns.
class HostExecutor final : public Executor {
 public:
  void pack(const kernels::PackArgs& args) override;
  void unpack(const kernels::UnpackArgs& args) override;
  void scale(void* data, std::size_t count, kernels::ElementType type, float scale) override;
  void zero(void* data, std::size_t bytes) override;
  void copy(void* destination, const void* source, std::size_t bytes) override;
  void sum_shards(const kernels::ShardSumArgs& args) override;
};

/// Queues each call on `stream` (the bucketer's); nothing waits.
class DeviceExecutor final : public Executor {
 public:
  explicit DeviceExecutor(void* stream) : stream_(stream) {}
  void pack(const kernels::PackArgs& args) override;
  void unpack(const kernels::UnpackArgs& args) override;
  void scale(void* data, std::size_t count, kernels::ElementType type, float scale) override;
  void zero(void* data, std::size_t bytes) override;
  void copy(void* destination, const void* source, std::size_t bytes) override;
  void sum_shards(const kernels::ShardSumArgs& args) override;

 private:
  void* stream_;
};

}  // namespace haein::runtime::detail
