#pragma once
// Device-memory collectives. The NCCL implementation (nccl_backend.cpp) is compiled in
// CUDA builds; host-only builds have device_backend_none.cpp, where no pointer is device
// memory and asking for the backend is an error that says so.

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>

#include "haein/runtime/bootstrap.hpp"
#include "haein/runtime/types.hpp"

namespace haein::runtime::detail {

/// Completion of enqueued device work: an event recorded after it. Thread-safe.
class DevicePending {
 public:
  virtual ~DevicePending() = default;
  /// True once complete; throws NcclError when the communicator reports an error.
  virtual bool test() = 0;
};

class DeviceBackend {
 public:
  virtual ~DeviceBackend() = default;

  // Each call enqueues on `stream` (a cudaStream_t; nullptr: the backend's own stream,
  // ordered after the legacy default stream) and returns the completion of that work.
  virtual std::shared_ptr<DevicePending> all_reduce(const void* send, void* recv, std::size_t count,
                                                    DataType type, ReduceOp op, void* stream) = 0;
  virtual std::shared_ptr<DevicePending> reduce_scatter(const void* send, void* recv,
                                                        std::size_t recv_count, DataType type,
                                                        ReduceOp op, void* stream) = 0;
  virtual std::shared_ptr<DevicePending> all_gather(const void* send, void* recv,
                                                    std::size_t send_count, DataType type,
                                                    void* stream) = 0;
  virtual std::shared_ptr<DevicePending> broadcast(const void* send, void* recv, std::size_t count,
                                                   DataType type, int root, void* stream) = 0;
  virtual std::shared_ptr<DevicePending> reduce(const void* send, void* recv, std::size_t count,
                                                DataType type, ReduceOp op, int root,
                                                void* stream) = 0;
  virtual std::shared_ptr<DevicePending> all_to_all(const void* send, void* recv, std::size_t count,
                                                    DataType type, void* stream) = 0;
  virtual std::shared_ptr<DevicePending> send(const void* buffer, std::size_t count, DataType type,
                                              int peer, void* stream) = 0;
  virtual std::shared_ptr<DevicePending> recv(void* buffer, std::size_t count, DataType type,
                                              int peer, void* stream) = 0;
  virtual void group_start() = 0;
  /// Ends the group; the returned completion covers every stream the group used.
  virtual std::shared_ptr<DevicePending> group_end() = 0;
  /// ncclCommAbort: callable from the watchdog while another thread is blocked.
  virtual void abort() noexcept = 0;
  /// ncclCommSplit of this communicator (collective over its ranks).
  virtual std::unique_ptr<DeviceBackend> split(int color, int key) = 0;
};

/// True when `pointer` is CUDA device (or managed) memory. Always false in host-only
/// builds and without a GPU.
bool is_device_memory(const void* pointer);
/// True when CUDA reports at least one device (asked once). Without one no pointer is
/// device memory, and the communicator skips the per-call pointer check.
bool any_device();

/// An NCCL communicator over `bootstrap`'s ranks on `device`, its unique id sent through
/// the bootstrap; nonblocking initialisation bounded by `timeout`.
std::unique_ptr<DeviceBackend> make_device_backend(Bootstrap& bootstrap, int device,
                                                   std::chrono::milliseconds timeout);

/// The CUDA device that owns `pointer` (device memory only).
int device_of(const void* pointer);

/// Where a buffer lives, from one pointer query: host memory has `device` false.
struct MemoryPlace {
  bool device = false;
  int ordinal = -1;  ///< the owning device; -1 where CUDA does not say (managed memory)
};
/// One pointer query (none in host-only builds or without a GPU).
MemoryPlace place_of(const void* pointer);

}  // namespace haein::runtime::detail
