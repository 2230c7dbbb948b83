#pragma once
// NCCL's own communicator, outside haein, for `haein-bench collective --baseline nccl`
// (CUDA builds only).
#include <cuda_runtime.h>
#include <mpi.h>
#include <nccl.h>

#include "haein/common/check.hpp"

namespace haein::bench {

/// Made by ncclCommInitRank without a config, so NCCL_COMM_BLOCKING chooses blocking or
/// nonblocking: the kit measures both against haein's (always nonblocking) communicator.
class DirectNccl {
 public:
  DirectNccl(int rank, int ranks) {
    ncclUniqueId id{};
    if (rank == 0) HAEIN_NCCL_CHECK(ncclGetUniqueId(&id));
    MPI_Bcast(&id, sizeof id, MPI_BYTE, 0, MPI_COMM_WORLD);
    settle(ncclCommInitRank(&comm_, ranks, id, rank), "ncclCommInitRank");
    HAEIN_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    HAEIN_CUDA_CHECK(cudaEventCreateWithFlags(&done_, cudaEventDisableTiming));
  }
  ~DirectNccl() {
    if (comm_ != nullptr) ncclCommDestroy(comm_);
    if (done_ != nullptr) cudaEventDestroy(done_);
    if (stream_ != nullptr) cudaStreamDestroy(stream_);
  }
  DirectNccl(const DirectNccl&) = delete;
  DirectNccl& operator=(const DirectNccl&) = delete;

  ncclComm_t comm() const { return comm_; }
  cudaStream_t stream() const { return stream_; }

  /// --baseline nccl-event: one event recorded after a call, as haein's Work records one
  /// to learn when the call is done, so the two differ only by haein's own work.
  void record_done() const { HAEIN_CUDA_CHECK(cudaEventRecord(done_, stream_)); }

  /// A nonblocking communicator answers ncclInProgress: wait until the call is enqueued.
  void settle(ncclResult_t status, const char* what) const {
    while (status == ncclInProgress && comm_ != nullptr) {
      ncclResult_t state = ncclSuccess;
      HAEIN_NCCL_CHECK(ncclCommGetAsyncError(comm_, &state));
      status = state;
    }
    if (status != ncclSuccess)
      ::haein::detail::raise_nccl_error(what, static_cast<int>(status), ncclGetErrorString(status),
                                        ncclGetLastError(comm_), __FILE__, __LINE__);
  }

 private:
  ncclComm_t comm_ = nullptr;
  cudaStream_t stream_ = nullptr;
  cudaEvent_t done_ = nullptr;
};

}  // namespace haein::bench
