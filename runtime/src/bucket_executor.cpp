#include "bucket_executor.hpp"

#include <cstring>

#include "device_memory.hpp"

namespace haein::runtime::detail {

void HostExecutor::pack(const kernels::PackArgs& args) { kernels::pack_host(args); }
void HostExecutor::unpack(const kernels::UnpackArgs& args) { kernels::unpack_host(args); }
void HostExecutor::scale(void* data, std::size_t count, kernels::ElementType type, float scale) {
  kernels::scale_host(data, count, type, scale);
}
void HostExecutor::zero(void* data, std::size_t bytes) { std::memset(data, 0, bytes); }
void HostExecutor::copy(void* destination, const void* source, std::size_t bytes) {
  if (destination != source && bytes > 0) std::memmove(destination, source, bytes);
}
void HostExecutor::sum_shards(const kernels::ShardSumArgs& args) { kernels::sum_shards_host(args); }

void DeviceExecutor::pack(const kernels::PackArgs& args) { kernels::pack_device(args, stream_); }
void DeviceExecutor::unpack(const kernels::UnpackArgs& args) {
  kernels::unpack_device(args, stream_);
}
void DeviceExecutor::scale(void* data, std::size_t count, kernels::ElementType type, float scale) {
  kernels::scale_device(data, count, type, scale, stream_);
}
void DeviceExecutor::zero(void* data, std::size_t bytes) { memset_async(data, 0, bytes, stream_); }
void DeviceExecutor::copy(void* destination, const void* source, std::size_t bytes) {
  if (destination != source && bytes > 0) copy_async(destination, source, bytes, stream_);
}
void DeviceExecutor::sum_shards(const kernels::ShardSumArgs& args) {
  kernels::sum_shards_device(args, stream_);
}

}  // namespace haein::runtime::detail
