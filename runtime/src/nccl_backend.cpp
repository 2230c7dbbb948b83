// Device-memory collectives over NCCL. The communicator is nonblocking
// (ncclConfig_t.blocking = 0): every call may answer ncclInProgress, after which
// ncclCommGetAsyncError is polled, bounded by the communicator's timeout, so that a
// stuck setup or a failed peer becomes an error instead of a hang.
#include <cuda_runtime.h>
#include <nccl.h>

#include <algorithm>
#include <cstring>
#include <thread>
#include <vector>

#include "device_backend.hpp"
#include "haein/common/check.hpp"
#include "haein/common/error.hpp"
#include "haein/common/log.hpp"

namespace haein::runtime::detail {

namespace {

ncclDataType_t nccl_type(DataType type) {
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

ncclRedOp_t nccl_op(ReduceOp op) {
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

/// Makes `device` current for the lifetime of this object.
class DeviceGuard {
 public:
  explicit DeviceGuard(int device) {
    cudaGetDevice(&previous_);
    if (previous_ != device) HAEIN_CUDA_CHECK(cudaSetDevice(device));
  }
  ~DeviceGuard() { cudaSetDevice(previous_); }
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int previous_ = 0;
};

class NcclPending : public DevicePending {
 public:
  NcclPending(ncclComm_t comm, cudaEvent_t event) : comm_(comm), event_(event) {}
  ~NcclPending() override { cudaEventDestroy(event_); }

  bool test() override {
    ncclResult_t async = ncclSuccess;
    HAEIN_NCCL_CHECK(ncclCommGetAsyncError(comm_, &async));
    HAEIN_NCCL_CHECK(async);
    const cudaError_t status = cudaEventQuery(event_);
    if (status == cudaErrorNotReady) return false;
    HAEIN_CUDA_CHECK(status);
    return true;
  }

 private:
  ncclComm_t comm_;
  cudaEvent_t event_;
};

/// Completes when all of its parts have.
class StreamsPending : public DevicePending {
 public:
  void add(std::shared_ptr<DevicePending> part) { parts_.push_back(std::move(part)); }
  bool test() override {
    for (const auto& part : parts_)
      if (!part->test()) return false;
    return true;
  }

 private:
  std::vector<std::shared_ptr<DevicePending>> parts_;
};

/// Completes immediately (operations with nothing to do).
class DonePending : public DevicePending {
 public:
  bool test() override { return true; }
};

class NcclBackend : public DeviceBackend {
 public:
  NcclBackend(ncclComm_t comm, int device, int rank, int size, std::chrono::milliseconds timeout)
      : comm_(comm), device_(device), rank_(rank), size_(size), timeout_(timeout) {
    DeviceGuard guard(device_);
    HAEIN_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    HAEIN_CUDA_CHECK(cudaEventCreateWithFlags(&ordering_, cudaEventDisableTiming));
  }

  ~NcclBackend() override {
    DeviceGuard guard(device_);
    if (!aborted_) {
      const ncclResult_t status = ncclCommDestroy(comm_);
      if (status != ncclSuccess && status != ncclInProgress)
        HAEIN_LOG(kWarn, "ncclCommDestroy: " << ncclGetErrorString(status));
    }
    cudaEventDestroy(ordering_);
    cudaStreamDestroy(stream_);
  }

  /// Waits until the communicator has no call in progress; bounded by the timeout.
  static void settle(ncclComm_t comm, std::chrono::milliseconds timeout, const char* what) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      ncclResult_t state = ncclSuccess;
      HAEIN_NCCL_CHECK(ncclCommGetAsyncError(comm, &state));
      if (state == ncclSuccess) return;
      if (state != ncclInProgress) HAEIN_NCCL_CHECK(state);
      if (std::chrono::steady_clock::now() >= deadline) {
        ncclCommAbort(comm);
        throw NcclError(std::string(what) + " still in progress after " +
                            std::to_string(std::chrono::duration<double>(timeout).count()) +
                            " s (HAEIN_TIMEOUT); the NCCL communicator was aborted",
                        static_cast<int>(ncclInProgress));
      }
      std::this_thread::yield();
    }
  }

  std::shared_ptr<DevicePending> all_reduce(const void* send, void* recv, std::size_t count,
                                            DataType type, ReduceOp op, void* stream) override {
    return enqueue(stream, "ncclAllReduce", [&](cudaStream_t s) {
      return ncclAllReduce(send, recv, count, nccl_type(type), nccl_op(op), comm_, s);
    });
  }

  std::shared_ptr<DevicePending> reduce_scatter(const void* send, void* recv,
                                                std::size_t recv_count, DataType type, ReduceOp op,
                                                void* stream) override {
    return enqueue(stream, "ncclReduceScatter", [&](cudaStream_t s) {
      return ncclReduceScatter(send, recv, recv_count, nccl_type(type), nccl_op(op), comm_, s);
    });
  }

  std::shared_ptr<DevicePending> all_gather(const void* send, void* recv, std::size_t send_count,
                                            DataType type, void* stream) override {
    return enqueue(stream, "ncclAllGather", [&](cudaStream_t s) {
      return ncclAllGather(send, recv, send_count, nccl_type(type), comm_, s);
    });
  }

  std::shared_ptr<DevicePending> broadcast(const void* send, void* recv, std::size_t count,
                                           DataType type, int root, void* stream) override {
    return enqueue(stream, "ncclBroadcast", [&](cudaStream_t s) {
      return ncclBroadcast(send, recv, count, nccl_type(type), root, comm_, s);
    });
  }

  std::shared_ptr<DevicePending> reduce(const void* send, void* recv, std::size_t count,
                                        DataType type, ReduceOp op, int root,
                                        void* stream) override {
    return enqueue(stream, "ncclReduce", [&](cudaStream_t s) {
      return ncclReduce(send, recv, count, nccl_type(type), nccl_op(op), root, comm_, s);
    });
  }

  std::shared_ptr<DevicePending> all_to_all(const void* send, void* recv, std::size_t count,
                                            DataType type, void* stream) override {
    const std::size_t block = count * size_of(type);
    return enqueue(stream, "all_to_all (grouped ncclSend/ncclRecv)", [&](cudaStream_t s) {
      // In place reads from a stream-ordered copy of the input.
      const char* source = static_cast<const char*>(send);
      void* copy = nullptr;
      if (send == recv && block > 0) {
        HAEIN_CUDA_CHECK(cudaMallocAsync(&copy, block * size_, s));
        HAEIN_CUDA_CHECK(cudaMemcpyAsync(copy, send, block * size_, cudaMemcpyDeviceToDevice, s));
        source = static_cast<const char*>(copy);
      }
      ncclResult_t status = ncclGroupStart();
      for (int peer = 0; peer < size_ && status == ncclSuccess; ++peer) {
        status = ncclSend(source + peer * block, count, nccl_type(type), peer, comm_, s);
        if (status == ncclSuccess || status == ncclInProgress)
          status = ncclRecv(static_cast<char*>(recv) + peer * block, count, nccl_type(type), peer,
                            comm_, s);
        if (status == ncclInProgress) status = ncclSuccess;
      }
      const ncclResult_t end = ncclGroupEnd();
      if (copy != nullptr) HAEIN_CUDA_CHECK(cudaFreeAsync(copy, s));
      return status != ncclSuccess ? status : end;
    });
  }

  std::shared_ptr<DevicePending> send(const void* buffer, std::size_t count, DataType type,
                                      int peer, void* stream) override {
    return enqueue(stream, "ncclSend", [&](cudaStream_t s) {
      return ncclSend(buffer, count, nccl_type(type), peer, comm_, s);
    });
  }

  std::shared_ptr<DevicePending> recv(void* buffer, std::size_t count, DataType type, int peer,
                                      void* stream) override {
    return enqueue(stream, "ncclRecv", [&](cudaStream_t s) {
      return ncclRecv(buffer, count, nccl_type(type), peer, comm_, s);
    });
  }

  void group_start() override {
    HAEIN_NCCL_CHECK(ncclGroupStart());
    ++group_depth_;
  }

  std::shared_ptr<DevicePending> group_end() override {
    DeviceGuard guard(device_);
    --group_depth_;
    HAEIN_NCCL_CHECK(ncclGroupEnd());
    settle(comm_, timeout_, "ncclGroupEnd");
    // Complete when the work on every stream the group used is.
    auto pending = std::make_shared<StreamsPending>();
    for (cudaStream_t s : group_streams_)
      pending->add(std::make_shared<NcclPending>(comm_, record_on(s)));
    group_streams_.clear();
    return pending;
  }

  void abort() noexcept override {
    if (aborted_) return;
    aborted_ = true;
    ncclCommAbort(comm_);
  }

  std::unique_ptr<DeviceBackend> split(int color, int key) override {
    DeviceGuard guard(device_);
    ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
    config.blocking = 0;
    ncclComm_t child = nullptr;
    HAEIN_NCCL_CHECK(
        ncclCommSplit(comm_, color < 0 ? NCCL_SPLIT_NOCOLOR : color, key, &child, &config));
    settle(comm_, timeout_, "ncclCommSplit");
    if (child == nullptr) return nullptr;
    settle(child, timeout_, "ncclCommSplit");
    int rank = 0, size = 0;
    HAEIN_NCCL_CHECK(ncclCommUserRank(child, &rank));
    HAEIN_NCCL_CHECK(ncclCommCount(child, &size));
    return std::make_unique<NcclBackend>(child, device_, rank, size, timeout_);
  }

 private:
  /// Orders `launch` on the stream, records an event after it, and settles the call.
  template <typename Launch>
  std::shared_ptr<DevicePending> enqueue(void* user_stream, const char* what, Launch launch) {
    DeviceGuard guard(device_);
    cudaStream_t s = static_cast<cudaStream_t>(user_stream);
    if (s == nullptr) {
      // Our stream waits for what the program queued on the legacy default stream.
      HAEIN_CUDA_CHECK(cudaEventRecord(ordering_, cudaStreamLegacy));
      HAEIN_CUDA_CHECK(cudaStreamWaitEvent(stream_, ordering_, 0));
      s = stream_;
    }
    const ncclResult_t status = launch(s);
    if (status != ncclSuccess && status != ncclInProgress) {
      ::haein::detail::raise_nccl_error(what, static_cast<int>(status), ncclGetErrorString(status),
                                        ncclGetLastError(comm_), __FILE__, __LINE__);
    }
    if (group_depth_ > 0) {
      // group_end settles the calls and waits for the streams.
      if (std::find(group_streams_.begin(), group_streams_.end(), s) == group_streams_.end())
        group_streams_.push_back(s);
      return std::make_shared<DonePending>();
    }
    settle(comm_, timeout_, what);
    return std::make_shared<NcclPending>(comm_, record_on(s));
  }

  static cudaEvent_t record_on(cudaStream_t s) {
    cudaEvent_t done = nullptr;
    HAEIN_CUDA_CHECK(cudaEventCreateWithFlags(&done, cudaEventDisableTiming));
    HAEIN_CUDA_CHECK(cudaEventRecord(done, s));
    return done;
  }

  ncclComm_t comm_;
  int device_;
  int rank_;
  int size_;
  std::chrono::milliseconds timeout_;
  cudaStream_t stream_ = nullptr;
  cudaEvent_t ordering_ = nullptr;
  int group_depth_ = 0;
  std::vector<cudaStream_t> group_streams_;
  bool aborted_ = false;
};

}  // namespace

bool any_device() {
  static const bool have_devices = [] {
    int count = 0;
    if (cudaGetDeviceCount(&count) != cudaSuccess) {
      cudaGetLastError();  // no driver or no device: clear the sticky error
      return false;
    }
    return count > 0;
  }();
  return have_devices;
}

bool is_device_memory(const void* pointer) {
  if (pointer == nullptr || !any_device()) return false;
  cudaPointerAttributes attributes{};
  if (cudaPointerGetAttributes(&attributes, pointer) != cudaSuccess) {
    cudaGetLastError();
    return false;
  }
  return attributes.type == cudaMemoryTypeDevice || attributes.type == cudaMemoryTypeManaged;
}

int device_of(const void* pointer) {
  cudaPointerAttributes attributes{};
  HAEIN_CUDA_CHECK(cudaPointerGetAttributes(&attributes, pointer));
  return attributes.device;
}

std::unique_ptr<DeviceBackend> make_device_backend(Bootstrap& bootstrap, int device,
                                                   std::chrono::milliseconds timeout) {
  ncclUniqueId id{};
  if (bootstrap.rank() == 0) HAEIN_NCCL_CHECK(ncclGetUniqueId(&id));
  bootstrap.broadcast(&id, sizeof id, 0);
  DeviceGuard guard(device);
  ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
  config.blocking = 0;
  ncclComm_t comm = nullptr;
  HAEIN_NCCL_CHECK(ncclCommInitRankConfig(&comm, bootstrap.size(), id, bootstrap.rank(), &config));
  NcclBackend::settle(comm, timeout, "ncclCommInitRankConfig");
  return std::make_unique<NcclBackend>(comm, device, bootstrap.rank(), bootstrap.size(), timeout);
}

}  // namespace haein::runtime::detail
