#pragma once
// Host-memory collectives over MPI. Each call either completes before returning
// (blocking, the latency path: the plain MPI collective) or returns requests to poll.
// f16/bf16 reductions widen to f32, reduce, and narrow once at the end, so that every
// element is accumulated in f32 whatever the reduction tree.

#include <mpi.h>

#include <cstddef>
#include <functional>
#include <vector>

#include "haein/runtime/types.hpp"

namespace haein::runtime::detail {

/// An MPI operation in flight: its requests and what to do once they complete
/// (narrow f16/bf16, divide for avg, copy out of a temporary).
class MpiPending {
 public:
  MpiPending() = default;
  /// An operation that has already completed.
  static MpiPending completed() {
    MpiPending pending;
    pending.done_ = true;
    return pending;
  }
  MpiPending(std::vector<MPI_Request> requests, std::function<void()> finish)
      : requests_(std::move(requests)), finish_(std::move(finish)) {}
  /// True once complete (then `finish` has run). Throws MpiError on failure.
  bool test();
  void wait();
  bool done() const { return done_; }
  /// Appends another pending operation (used by groups).
  void merge(MpiPending other);

 private:
  std::vector<MPI_Request> requests_;
  std::function<void()> finish_;
  bool done_ = false;
};

class MpiBackend {
 public:
  /// Duplicates `comm` so that its traffic cannot match anything else's.
  explicit MpiBackend(MPI_Comm comm);
  ~MpiBackend();
  MpiBackend(const MpiBackend&) = delete;
  MpiBackend& operator=(const MpiBackend&) = delete;

  int rank() const { return rank_; }
  int size() const { return size_; }

  // `nonblocking`: start and return the pending operation; otherwise it has completed.
  MpiPending all_reduce(const void* send, void* recv, std::size_t count, DataType type, ReduceOp op,
                        bool nonblocking);
  MpiPending reduce_scatter(const void* send, void* recv, std::size_t recv_count, DataType type,
                            ReduceOp op, bool nonblocking);
  MpiPending all_gather(const void* send, void* recv, std::size_t send_count, DataType type,
                        bool nonblocking);
  MpiPending broadcast(const void* send, void* recv, std::size_t count, DataType type, int root,
                       bool nonblocking);
  MpiPending reduce(const void* send, void* recv, std::size_t count, DataType type, ReduceOp op,
                    int root, bool nonblocking);
  MpiPending all_to_all(const void* send, void* recv, std::size_t count, DataType type,
                        bool nonblocking);
  MpiPending send(const void* buffer, std::size_t count, DataType type, int peer, bool nonblocking);
  MpiPending recv(void* buffer, std::size_t count, DataType type, int peer, bool nonblocking);
  MpiPending barrier(bool nonblocking);

 private:
  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0;
  int size_ = 1;
};

}  // namespace haein::runtime::detail
