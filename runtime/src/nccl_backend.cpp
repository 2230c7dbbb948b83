// Device-memory collectives over NCCL. The communicator is nonblocking
// (ncclConfig_t.blocking = 0): every call may answer ncclInProgress, after which
// ncclCommGetAsyncError is polled, bounded by the communicator's timeout, so that a
// stuck setup or a failed peer becomes an error instead of a hang. A communicator that
// failed or timed out is aborted at once and refuses further calls; a healthy one is
// finalized before it is destroyed.
#include <cuda_runtime.h>
#include <nccl.h>

#include <algorithm>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

#include "device_backend.hpp"
#include "haein/common/check.hpp"
#include "haein/common/error.hpp"
#include "haein/common/log.hpp"
#include "haein/kernels/device.hpp"
#include "nccl_types.hpp"

namespace haein::runtime::detail {

namespace {

using kernels::DeviceGuard;

/// The NCCL communicator as the backend, its pending operations and the watchdog share it.
/// Every use holds `mutex`, so that an abort from the watchdog's thread cannot free the
/// communicator under a thread that is polling it, and nothing uses it after an abort.
struct CommHandle {
  enum class State { kHealthy, kAborted, kDestroyed };

  explicit CommHandle(ncclComm_t c) : comm(c) {}

  /// ncclCommAbort, once; the caller holds `mutex`.
  void abort_locked() noexcept {
    if (state != State::kHealthy) return;
    state = State::kAborted;
    const ncclResult_t status = ncclCommAbort(comm);
    if (status != ncclSuccess) HAEIN_LOG(kWarn, "ncclCommAbort: " << ncclGetErrorString(status));
  }

  /// Throws when the communicator can no longer be used; the caller holds `mutex`.
  void require_healthy_locked(const char* what) const {
    if (state == State::kHealthy) return;
    throw NcclError(std::string(what) +
                        ": the NCCL communicator was aborted after an earlier "
                        "error or timeout (see the first error above); create a new Communicator",
                    static_cast<int>(ncclInvalidUsage));
  }

  std::mutex mutex;
  ncclComm_t comm;
  State state = State::kHealthy;
};

/// Waits until `handle` has no call in progress, bounded by `timeout`. A failed or stuck
/// communicator is aborted (NCCL requires it) before the error is thrown.
void settle(CommHandle& handle, std::chrono::milliseconds timeout, const char* what) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    {
      std::lock_guard lock(handle.mutex);
      handle.require_healthy_locked(what);
      ncclResult_t state = ncclSuccess;
      const ncclResult_t query = ncclCommGetAsyncError(handle.comm, &state);
      if (query != ncclSuccess) state = query;
      if (state == ncclSuccess) return;
      if (state != ncclInProgress) {
        const std::string last = ncclGetLastError(handle.comm);
        handle.abort_locked();
        ::haein::detail::raise_nccl_error(what, static_cast<int>(state), ncclGetErrorString(state),
                                          last.c_str(), __FILE__, __LINE__);
      }
      if (std::chrono::steady_clock::now() >= deadline) {
        handle.abort_locked();
        throw NcclError(std::string(what) + " still in progress after " +
                            std::to_string(std::chrono::duration<double>(timeout).count()) +
                            " s (HAEIN_TIMEOUT); the NCCL communicator was aborted",
                        static_cast<int>(ncclInProgress));
      }
    }
    std::this_thread::yield();
  }
}

/// Completion events, reused: creating and destroying one per call cost about a
/// microsecond of the per-call time. Shared by a backend and its pending operations, so
/// that an operation may outlive its backend.
class EventPool {
 public:
  EventPool() = default;
  EventPool(const EventPool&) = delete;
  EventPool& operator=(const EventPool&) = delete;
  ~EventPool() {
    for (cudaEvent_t event : free_) cudaEventDestroy(event);
  }

  /// A free event, or a new one (on the current device).
  cudaEvent_t acquire() {
    {
      std::lock_guard lock(mutex_);
      if (!free_.empty()) {
        cudaEvent_t event = free_.back();
        free_.pop_back();
        return event;
      }
    }
    cudaEvent_t event = nullptr;
    HAEIN_CUDA_CHECK(cudaEventCreateWithFlags(&event, cudaEventDisableTiming));
    return event;
  }

  /// Takes `event` back; recording it again later is safe whether or not it completed.
  void release(cudaEvent_t event) noexcept {
    std::lock_guard lock(mutex_);
    if (free_.size() >= kKeep) {
      cudaEventDestroy(event);
      return;
    }
    free_.push_back(event);
  }

 private:
  static constexpr std::size_t kKeep = 1024;
  std::mutex mutex_;
  std::vector<cudaEvent_t> free_;
};

class NcclPending : public DevicePending {
 public:
  NcclPending(std::shared_ptr<CommHandle> handle, std::shared_ptr<EventPool> events,
              cudaEvent_t event)
      : handle_(std::move(handle)), events_(std::move(events)), event_(event) {}
  ~NcclPending() override { events_->release(event_); }

  bool test() override {
    // The event first: work that completed is done whatever NCCL reports afterwards, and
    // the common case (done) then needs neither the lock nor NCCL.
    const cudaError_t status = cudaEventQuery(event_);
    if (status == cudaSuccess) return true;
    if (status != cudaErrorNotReady) HAEIN_CUDA_CHECK(status);
    // cudaEventQuery leaves "not ready" as the thread's last error; the next launch
    // checked with cudaGetLastError would report it as its own failure.
    cudaGetLastError();
    {
      std::lock_guard lock(handle_->mutex);
      // After the backend destroyed a healthy communicator, the event alone tells.
      if (handle_->state != CommHandle::State::kDestroyed) {
        handle_->require_healthy_locked("waiting for an NCCL operation");
        ncclResult_t async = ncclSuccess;
        HAEIN_NCCL_CHECK(ncclCommGetAsyncError(handle_->comm, &async));
        if (async != ncclSuccess && async != ncclInProgress) {
          const std::string last = ncclGetLastError(handle_->comm);
          handle_->abort_locked();
          ::haein::detail::raise_nccl_error("NCCL operation", static_cast<int>(async),
                                            ncclGetErrorString(async), last.c_str(), __FILE__,
                                            __LINE__);
        }
      }
    }
    return false;
  }

 private:
  std::shared_ptr<CommHandle> handle_;
  std::shared_ptr<EventPool> events_;
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

/// Ends an NCCL group on every path out of a scope, exceptions included: an open group is
/// thread-local state in NCCL that would swallow the thread's next calls.
class GroupScope {
 public:
  GroupScope() { HAEIN_NCCL_CHECK(ncclGroupStart()); }
  ~GroupScope() {
    if (open_) ncclGroupEnd();
  }
  ncclResult_t end() {
    open_ = false;
    return ncclGroupEnd();
  }
  GroupScope(const GroupScope&) = delete;
  GroupScope& operator=(const GroupScope&) = delete;

 private:
  bool open_ = true;
};

class NcclBackend : public DeviceBackend {
 public:
  NcclBackend(std::shared_ptr<CommHandle> handle, int device, int rank, int size,
              std::chrono::milliseconds timeout)
      : handle_(std::move(handle)), device_(device), rank_(rank), size_(size), timeout_(timeout) {
    DeviceGuard guard(device_);
    HAEIN_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    HAEIN_CUDA_CHECK(cudaEventCreateWithFlags(&ordering_, cudaEventDisableTiming));
  }

  ~NcclBackend() override {
    try {
      DeviceGuard guard(device_);
      release_staging();
      destroy();
    } catch (const std::exception& error) {
      HAEIN_LOG(kWarn, "NCCL backend teardown: " << error.what());
    }
    cudaEventDestroy(ordering_);
    cudaStreamDestroy(stream_);
  }

  std::shared_ptr<DevicePending> all_reduce(const void* send, void* recv, std::size_t count,
                                            DataType type, ReduceOp op, void* stream) override {
    return enqueue(stream, "ncclAllReduce", [&](cudaStream_t s) {
      return ncclAllReduce(send, recv, count, nccl_type(type), op_of(op), handle_->comm, s);
    });
  }

  std::shared_ptr<DevicePending> reduce_scatter(const void* send, void* recv,
                                                std::size_t recv_count, DataType type, ReduceOp op,
                                                void* stream) override {
    return enqueue(stream, "ncclReduceScatter", [&](cudaStream_t s) {
      return ncclReduceScatter(send, recv, recv_count, nccl_type(type), op_of(op), handle_->comm,
                               s);
    });
  }

  std::shared_ptr<DevicePending> all_gather(const void* send, void* recv, std::size_t send_count,
                                            DataType type, void* stream) override {
    return enqueue(stream, "ncclAllGather", [&](cudaStream_t s) {
      return ncclAllGather(send, recv, send_count, nccl_type(type), handle_->comm, s);
    });
  }

  std::shared_ptr<DevicePending> broadcast(const void* send, void* recv, std::size_t count,
                                           DataType type, int root, void* stream) override {
    return enqueue(stream, "ncclBroadcast", [&](cudaStream_t s) {
      return ncclBroadcast(send, recv, count, nccl_type(type), root, handle_->comm, s);
    });
  }

  std::shared_ptr<DevicePending> reduce(const void* send, void* recv, std::size_t count,
                                        DataType type, ReduceOp op, int root,
                                        void* stream) override {
    return enqueue(stream, "ncclReduce", [&](cudaStream_t s) {
      return ncclReduce(send, recv, count, nccl_type(type), op_of(op), root, handle_->comm, s);
    });
  }

  std::shared_ptr<DevicePending> all_to_all(const void* send, void* recv, std::size_t count,
                                            DataType type, void* stream) override {
    const std::size_t block = count * size_of(type);
    return enqueue(stream, "all_to_all (grouped ncclSend/ncclRecv)", [&](cudaStream_t s) {
      // In place reads from a stream-ordered copy of the input. It is freed only after the
      // call has settled: a nonblocking ncclGroupEnd may enqueue the kernels that read it
      // later, and cudaFreeAsync before that would free it under them.
      const char* source = static_cast<const char*>(send);
      if (send == recv && block > 0) {
        void* copy = nullptr;
        HAEIN_CUDA_CHECK(cudaMallocAsync(&copy, block * size_, s));
        staging_.push_back({copy, s});
        HAEIN_CUDA_CHECK(cudaMemcpyAsync(copy, send, block * size_, cudaMemcpyDeviceToDevice, s));
        source = static_cast<const char*>(copy);
      }
      GroupScope group;
      ncclResult_t status = ncclSuccess;
      for (int peer = 0; peer < size_ && status == ncclSuccess; ++peer) {
        status = ncclSend(source + peer * block, count, nccl_type(type), peer, handle_->comm, s);
        if (status == ncclSuccess || status == ncclInProgress)
          status = ncclRecv(static_cast<char*>(recv) + peer * block, count, nccl_type(type), peer,
                            handle_->comm, s);
        if (status == ncclInProgress) status = ncclSuccess;
      }
      const ncclResult_t end = group.end();
      return status != ncclSuccess ? status : end;
    });
  }

  std::shared_ptr<DevicePending> send(const void* buffer, std::size_t count, DataType type,
                                      int peer, void* stream) override {
    return enqueue(stream, "ncclSend", [&](cudaStream_t s) {
      return ncclSend(buffer, count, nccl_type(type), peer, handle_->comm, s);
    });
  }

  std::shared_ptr<DevicePending> recv(void* buffer, std::size_t count, DataType type, int peer,
                                      void* stream) override {
    return enqueue(stream, "ncclRecv", [&](cudaStream_t s) {
      return ncclRecv(buffer, count, nccl_type(type), peer, handle_->comm, s);
    });
  }

  void group_start() override {
    HAEIN_NCCL_CHECK(ncclGroupStart());
    ++group_depth_;
  }

  std::shared_ptr<DevicePending> group_end() override {
    // The group is closed first, whatever follows throws; under the lock, because that is
    // where NCCL launches the grouped work on the communicator.
    --group_depth_;
    {
      std::lock_guard lock(handle_->mutex);
      const ncclResult_t end = ncclGroupEnd();
      if (end != ncclSuccess && end != ncclInProgress) {
        const std::string last =
            handle_->state == CommHandle::State::kHealthy ? ncclGetLastError(handle_->comm) : "";
        handle_->abort_locked();
        ::haein::detail::raise_nccl_error("ncclGroupEnd", static_cast<int>(end),
                                          ncclGetErrorString(end), last.c_str(), __FILE__,
                                          __LINE__);
      }
    }
    DeviceGuard guard(device_);
    settle(*handle_, timeout_, "ncclGroupEnd");
    release_staging();
    // Complete when the work on every stream the group used is.
    auto pending = std::make_shared<StreamsPending>();
    for (cudaStream_t s : group_streams_)
      pending->add(std::make_shared<NcclPending>(handle_, events_, record_on(s)));
    group_streams_.clear();
    return pending;
  }

  void abort() noexcept override {
    std::lock_guard lock(handle_->mutex);
    handle_->abort_locked();
  }

  std::unique_ptr<DeviceBackend> split(int color, int key) override {
    DeviceGuard guard(device_);
    ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
    config.blocking = 0;
    ncclComm_t child = nullptr;
    {
      std::lock_guard lock(handle_->mutex);
      handle_->require_healthy_locked("ncclCommSplit");
      HAEIN_NCCL_CHECK(ncclCommSplit(handle_->comm, color < 0 ? NCCL_SPLIT_NOCOLOR : color, key,
                                     &child, &config));
    }
    settle(*handle_, timeout_, "ncclCommSplit");
    if (child == nullptr) return nullptr;
    auto child_handle = std::make_shared<CommHandle>(child);
    settle(*child_handle, timeout_, "ncclCommSplit");
    int rank = 0, size = 0;
    HAEIN_NCCL_CHECK(ncclCommUserRank(child, &rank));
    HAEIN_NCCL_CHECK(ncclCommCount(child, &size));
    return std::make_unique<NcclBackend>(std::move(child_handle), device_, rank, size, timeout_);
  }

 private:
  /// NCCL's reduction for `op`. On one rank an average is the sum: NCCL before 2.29.7
  /// left the last elements of a one-rank average unwritten (NVIDIA/nccl issue 1950; seen
  /// with the PyTorch image's NCCL on an H100: 3 of 1,000,003 f64 elements).
  ncclRedOp_t op_of(ReduceOp op) const {
    return size_ == 1 && op == ReduceOp::kAvg ? ncclSum : nccl_op(op);
  }

  struct Staging {
    void* pointer;
    cudaStream_t stream;
  };

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
    ncclResult_t status = ncclSuccess;
    {
      std::lock_guard lock(handle_->mutex);
      handle_->require_healthy_locked(what);
      status = launch(s);
      if (status != ncclSuccess && status != ncclInProgress) {
        const std::string last = ncclGetLastError(handle_->comm);
        // Inside a group the call is only recorded; the group's end reports the rest.
        if (group_depth_ == 0) handle_->abort_locked();
        ::haein::detail::raise_nccl_error(what, static_cast<int>(status),
                                          ncclGetErrorString(status), last.c_str(), __FILE__,
                                          __LINE__);
      }
    }
    if (group_depth_ > 0) {
      // group_end settles the calls and waits for the streams.
      if (std::find(group_streams_.begin(), group_streams_.end(), s) == group_streams_.end())
        group_streams_.push_back(s);
      return std::make_shared<DonePending>();
    }
    // ncclSuccess from a nonblocking communicator means the call is enqueued; only
    // ncclInProgress needs polling before the next call.
    if (status == ncclInProgress) settle(*handle_, timeout_, what);
    release_staging();
    return std::make_shared<NcclPending>(handle_, events_, record_on(s));
  }

  /// Frees in-place staging copies, ordered after the kernels that read them.
  void release_staging() {
    for (const Staging& copy : staging_)
      if (const cudaError_t status = cudaFreeAsync(copy.pointer, copy.stream);
          status != cudaSuccess)
        HAEIN_LOG(kWarn,
                  "cudaFreeAsync of an all_to_all staging copy: " << cudaGetErrorString(status));
    staging_.clear();
  }

  /// A healthy communicator is finalized (its outstanding work flushed, peers told) and
  /// destroyed; an errored or stuck one is aborted, as NCCL requires.
  void destroy() {
    std::unique_lock lock(handle_->mutex);
    if (handle_->state != CommHandle::State::kHealthy) return;
    ncclResult_t status = ncclCommFinalize(handle_->comm);
    const auto deadline = std::chrono::steady_clock::now() + timeout_;
    while (status == ncclSuccess || status == ncclInProgress) {
      ncclResult_t state = ncclSuccess;
      status = ncclCommGetAsyncError(handle_->comm, &state);
      if (status == ncclSuccess) status = state;
      if (status == ncclSuccess) break;
      if (std::chrono::steady_clock::now() >= deadline) break;
      lock.unlock();
      std::this_thread::yield();
      lock.lock();
      if (handle_->state != CommHandle::State::kHealthy) return;
    }
    if (status != ncclSuccess) {
      HAEIN_LOG(kWarn, "ncclCommFinalize did not complete ("
                           << ncclGetErrorString(status)
                           << "); aborting the NCCL communicator instead");
      handle_->abort_locked();
      return;
    }
    status = ncclCommDestroy(handle_->comm);
    handle_->state = CommHandle::State::kDestroyed;
    if (status != ncclSuccess && status != ncclInProgress)
      HAEIN_LOG(kWarn, "ncclCommDestroy: " << ncclGetErrorString(status));
  }

  /// An event of the pool, recorded on `s`.
  cudaEvent_t record_on(cudaStream_t s) {
    cudaEvent_t done = events_->acquire();
    if (const cudaError_t status = cudaEventRecord(done, s); status != cudaSuccess) {
      events_->release(done);
      HAEIN_CUDA_CHECK(status);
    }
    return done;
  }

  std::shared_ptr<CommHandle> handle_;
  int device_;
  int rank_;
  int size_;
  std::chrono::milliseconds timeout_;
  cudaStream_t stream_ = nullptr;
  cudaEvent_t ordering_ = nullptr;
  std::shared_ptr<EventPool> events_ = std::make_shared<EventPool>();
  int group_depth_ = 0;
  std::vector<cudaStream_t> group_streams_;
  std::vector<Staging> staging_;
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

MemoryPlace place_of(const void* pointer) {
  if (pointer == nullptr || !any_device()) return {};
  const kernels::PointerInfo info = kernels::classify_pointer(pointer);
  if (info.kind == kernels::MemoryKind::kHost) return {};
  return {true, info.device};
}

bool is_device_memory(const void* pointer) { return place_of(pointer).device; }

int device_of(const void* pointer) {
  const MemoryPlace place = place_of(pointer);
  if (!place.device || place.ordinal < 0)
    throw InvalidArgument("not CUDA device memory: the pointer's device cannot be found");
  return place.ordinal;
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
  const ncclResult_t status =
      ncclCommInitRankConfig(&comm, bootstrap.size(), id, bootstrap.rank(), &config);
  if (comm == nullptr) HAEIN_NCCL_CHECK(status);
  auto handle = std::make_shared<CommHandle>(comm);
  if (status != ncclSuccess && status != ncclInProgress) {
    std::lock_guard lock(handle->mutex);
    handle->abort_locked();
    HAEIN_NCCL_CHECK(status);
  }
  settle(*handle, timeout, "ncclCommInitRankConfig");
  return std::make_unique<NcclBackend>(std::move(handle), device, bootstrap.rank(),
                                       bootstrap.size(), timeout);
}

}  // namespace haein::runtime::detail
