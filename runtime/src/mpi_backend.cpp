#include "mpi_backend.hpp"

#include <climits>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <type_traits>

#include "haein/common/check.hpp"
#include "haein/common/error.hpp"
#include "haein/kernels/numeric.hpp"

namespace haein::runtime::detail {

namespace {

bool is_half(DataType type) { return type == DataType::kF16 || type == DataType::kBF16; }

/// The MPI type that reduces `type` (f16/bf16 are reduced as their f32 widening).
MPI_Datatype reduce_type(DataType type) {
  switch (type) {
    case DataType::kF32:
    case DataType::kF16:
    case DataType::kBF16:
      return MPI_FLOAT;
    case DataType::kF64:
      return MPI_DOUBLE;
    case DataType::kI32:
      return MPI_INT32_T;
    case DataType::kI64:
      return MPI_INT64_T;
    case DataType::kU8:
      return MPI_UINT8_T;
  }
  return MPI_DATATYPE_NULL;
}

/// The MPI type that moves `type` unchanged.
MPI_Datatype move_type(DataType type) { return is_half(type) ? MPI_UINT16_T : reduce_type(type); }

MPI_Op mpi_op(ReduceOp op) {
  switch (op) {
    case ReduceOp::kSum:
    case ReduceOp::kAvg:
      return MPI_SUM;
    case ReduceOp::kMin:
      return MPI_MIN;
    case ReduceOp::kMax:
      return MPI_MAX;
    case ReduceOp::kProd:
      return MPI_PROD;
  }
  return MPI_OP_NULL;
}

int mpi_count(std::size_t count) {
  if (count > static_cast<std::size_t>(INT_MAX))
    throw InvalidArgument("count " + std::to_string(count) +
                          " exceeds what one MPI call takes (2^31 - 1 elements)");
  return static_cast<int>(count);
}

using Wide = std::shared_ptr<std::vector<float>>;

Wide widen(const void* data, std::size_t count, DataType type) {
  auto wide = std::make_shared<std::vector<float>>(count);
  const auto* in = static_cast<const std::uint16_t*>(data);
  float* out = wide->data();
  if (type == DataType::kBF16) {
    for (std::size_t i = 0; i < count; ++i) out[i] = kernels::bf16_to_f32(in[i]);
  } else {
    for (std::size_t i = 0; i < count; ++i) out[i] = kernels::f16_to_f32(in[i]);
  }
  return wide;
}

void narrow(const float* in, void* data, std::size_t count, DataType type) {
  auto* out = static_cast<std::uint16_t*>(data);
  if (type == DataType::kBF16) {
    for (std::size_t i = 0; i < count; ++i) out[i] = kernels::f32_to_bf16(in[i]);
  } else {
    for (std::size_t i = 0; i < count; ++i) out[i] = kernels::f32_to_f16(in[i]);
  }
}

template <typename T>
void divide_all(void* data, std::size_t count, int divisor) {
  T* values = static_cast<T*>(data);
  const T d = static_cast<T>(divisor);
  if constexpr (std::is_floating_point_v<T>) {
    // Dividing by a power of two is multiplying by its exact reciprocal, which vectorises.
    if ((divisor & (divisor - 1)) == 0) {
      const T reciprocal = T(1) / d;
      for (std::size_t i = 0; i < count; ++i) values[i] *= reciprocal;
      return;
    }
  }
  for (std::size_t i = 0; i < count; ++i) values[i] = static_cast<T>(values[i] / d);
}

/// avg = sum / ranks, on the reduced (for f16/bf16: widened) type.
void divide(void* data, std::size_t count, DataType type, int ranks) {
  switch (type) {
    case DataType::kF32:
    case DataType::kF16:
    case DataType::kBF16:
      return divide_all<float>(data, count, ranks);
    case DataType::kF64:
      return divide_all<double>(data, count, ranks);
    case DataType::kI32:
      return divide_all<std::int32_t>(data, count, ranks);
    case DataType::kI64:
      return divide_all<std::int64_t>(data, count, ranks);
    case DataType::kU8:
      return divide_all<std::uint8_t>(data, count, ranks);
  }
}

/// Runs the blocking form, or the nonblocking one into a request.
class Call {
 public:
  explicit Call(bool nonblocking) : nonblocking_(nonblocking) {}
  MPI_Request* request() { return nonblocking_ ? &request_ : nullptr; }
  bool nonblocking() const { return nonblocking_; }
  /// The pending operation: `finish` runs now when blocking, at completion otherwise.
  MpiPending done(std::function<void()> finish) {
    if (!nonblocking_) {
      if (finish) finish();
      return MpiPending::completed();
    }
    return MpiPending({request_}, std::move(finish));
  }

 private:
  bool nonblocking_;
  MPI_Request request_ = MPI_REQUEST_NULL;
};

}  // namespace

bool MpiPending::test() {
  if (done_) return true;
  if (!requests_.empty()) {
    int complete = 0;
    HAEIN_MPI_CHECK(MPI_Testall(static_cast<int>(requests_.size()), requests_.data(), &complete,
                                MPI_STATUSES_IGNORE));
    if (!complete) return false;
  }
  done_ = true;
  if (finish_) finish_();
  finish_ = nullptr;
  return true;
}

void MpiPending::wait() {
  if (done_) return;
  if (!requests_.empty())
    HAEIN_MPI_CHECK(
        MPI_Waitall(static_cast<int>(requests_.size()), requests_.data(), MPI_STATUSES_IGNORE));
  requests_.clear();
  test();
}

void MpiPending::merge(MpiPending other) {
  done_ = false;
  requests_.insert(requests_.end(), other.requests_.begin(), other.requests_.end());
  if (other.finish_) {
    auto first = std::move(finish_);
    auto second = std::move(other.finish_);
    finish_ = [first, second] {
      if (first) first();
      second();
    };
  }
}

MpiBackend::MpiBackend(MPI_Comm comm) {
  HAEIN_MPI_CHECK(MPI_Comm_dup(comm, &comm_));
  MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN);
  MPI_Comm_rank(comm_, &rank_);
  MPI_Comm_size(comm_, &size_);
}

MpiBackend::~MpiBackend() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Comm_free(&comm_);
}

MpiPending MpiBackend::all_reduce(const void* send, void* recv, std::size_t count, DataType type,
                                  ReduceOp op, bool nonblocking) {
  const int n = mpi_count(count);
  const bool average = op == ReduceOp::kAvg;
  const int ranks = size_;
  Call call(nonblocking);
  if (is_half(type)) {
    Wide wide = widen(send, count, type);
    if (call.nonblocking())
      HAEIN_MPI_CHECK(MPI_Iallreduce(MPI_IN_PLACE, wide->data(), n, MPI_FLOAT, mpi_op(op), comm_,
                                     call.request()));
    else
      HAEIN_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, wide->data(), n, MPI_FLOAT, mpi_op(op), comm_));
    return call.done([=] {
      if (average) divide(wide->data(), count, type, ranks);
      narrow(wide->data(), recv, count, type);
    });
  }
  const void* source = send == recv ? MPI_IN_PLACE : send;
  if (call.nonblocking())
    HAEIN_MPI_CHECK(
        MPI_Iallreduce(source, recv, n, reduce_type(type), mpi_op(op), comm_, call.request()));
  else
    HAEIN_MPI_CHECK(MPI_Allreduce(source, recv, n, reduce_type(type), mpi_op(op), comm_));
  if (!average) return call.done(nullptr);
  return call.done([=] { divide(recv, count, type, ranks); });
}

MpiPending MpiBackend::reduce_scatter(const void* send, void* recv, std::size_t recv_count,
                                      DataType type, ReduceOp op, bool nonblocking) {
  const int n = mpi_count(recv_count);
  mpi_count(recv_count * size_);
  const bool average = op == ReduceOp::kAvg;
  const int ranks = size_;
  Call call(nonblocking);
  if (is_half(type)) {
    // The result lands in the first recv_count elements of the widened buffer.
    Wide wide = widen(send, recv_count * size_, type);
    if (call.nonblocking())
      HAEIN_MPI_CHECK(MPI_Ireduce_scatter_block(MPI_IN_PLACE, wide->data(), n, MPI_FLOAT,
                                                mpi_op(op), comm_, call.request()));
    else
      HAEIN_MPI_CHECK(
          MPI_Reduce_scatter_block(MPI_IN_PLACE, wide->data(), n, MPI_FLOAT, mpi_op(op), comm_));
    return call.done([=] {
      if (average) divide(wide->data(), recv_count, type, ranks);
      narrow(wide->data(), recv, recv_count, type);
    });
  }
  // In place (recv inside send) goes through a temporary: MPI_IN_PLACE would put the
  // result at the start of the buffer and overwrite block 0.
  const std::size_t bytes = recv_count * size_of(type);
  const bool in_place =
      static_cast<const char*>(send) + static_cast<std::size_t>(rank_) * bytes == recv;
  auto temporary = std::make_shared<std::vector<char>>(in_place ? bytes : 0);
  void* target = in_place ? temporary->data() : recv;
  if (call.nonblocking())
    HAEIN_MPI_CHECK(MPI_Ireduce_scatter_block(send, target, n, reduce_type(type), mpi_op(op), comm_,
                                              call.request()));
  else
    HAEIN_MPI_CHECK(
        MPI_Reduce_scatter_block(send, target, n, reduce_type(type), mpi_op(op), comm_));
  return call.done([=] {
    if (average) divide(target, recv_count, type, ranks);
    if (in_place && bytes > 0) std::memcpy(recv, temporary->data(), bytes);
  });
}

MpiPending MpiBackend::all_gather(const void* send, void* recv, std::size_t send_count,
                                  DataType type, bool nonblocking) {
  const int n = mpi_count(send_count);
  mpi_count(send_count * size_);
  const bool in_place = static_cast<const char*>(recv) +
                            static_cast<std::size_t>(rank_) * send_count * size_of(type) ==
                        send;
  const void* source = in_place ? MPI_IN_PLACE : send;
  Call call(nonblocking);
  if (call.nonblocking())
    HAEIN_MPI_CHECK(MPI_Iallgather(source, n, move_type(type), recv, n, move_type(type), comm_,
                                   call.request()));
  else
    HAEIN_MPI_CHECK(MPI_Allgather(source, n, move_type(type), recv, n, move_type(type), comm_));
  return call.done(nullptr);
}

MpiPending MpiBackend::broadcast(const void* send, void* recv, std::size_t count, DataType type,
                                 int root, bool nonblocking) {
  const int n = mpi_count(count);
  if (rank_ == root && send != recv && count > 0) std::memcpy(recv, send, count * size_of(type));
  Call call(nonblocking);
  if (call.nonblocking())
    HAEIN_MPI_CHECK(MPI_Ibcast(recv, n, move_type(type), root, comm_, call.request()));
  else
    HAEIN_MPI_CHECK(MPI_Bcast(recv, n, move_type(type), root, comm_));
  return call.done(nullptr);
}

MpiPending MpiBackend::reduce(const void* send, void* recv, std::size_t count, DataType type,
                              ReduceOp op, int root, bool nonblocking) {
  const int n = mpi_count(count);
  const bool at_root = rank_ == root;
  const bool average = op == ReduceOp::kAvg && at_root;
  const int ranks = size_;
  Call call(nonblocking);
  if (is_half(type)) {
    Wide wide = widen(send, count, type);
    const void* source = at_root ? MPI_IN_PLACE : wide->data();
    void* target = at_root ? wide->data() : nullptr;
    if (call.nonblocking())
      HAEIN_MPI_CHECK(
          MPI_Ireduce(source, target, n, MPI_FLOAT, mpi_op(op), root, comm_, call.request()));
    else
      HAEIN_MPI_CHECK(MPI_Reduce(source, target, n, MPI_FLOAT, mpi_op(op), root, comm_));
    return call.done([=] {
      if (!at_root) return;
      if (average) divide(wide->data(), count, type, ranks);
      narrow(wide->data(), recv, count, type);
    });
  }
  const void* source = at_root && send == recv ? MPI_IN_PLACE : send;
  if (call.nonblocking())
    HAEIN_MPI_CHECK(
        MPI_Ireduce(source, recv, n, reduce_type(type), mpi_op(op), root, comm_, call.request()));
  else
    HAEIN_MPI_CHECK(MPI_Reduce(source, recv, n, reduce_type(type), mpi_op(op), root, comm_));
  if (!average) return call.done(nullptr);
  return call.done([=] { divide(recv, count, type, ranks); });
}

MpiPending MpiBackend::all_to_all(const void* send, void* recv, std::size_t count, DataType type,
                                  bool nonblocking) {
  const int n = mpi_count(count);
  const std::size_t bytes = count * size_ * size_of(type);
  mpi_count(count * size_);
  // In place goes through a copy of the input, which the operation keeps alive.
  auto copy = std::make_shared<std::vector<char>>(send == recv ? bytes : 0);
  if (send == recv && bytes > 0) std::memcpy(copy->data(), send, bytes);
  const void* source = send == recv ? copy->data() : send;
  Call call(nonblocking);
  if (call.nonblocking())
    HAEIN_MPI_CHECK(
        MPI_Ialltoall(source, n, move_type(type), recv, n, move_type(type), comm_, call.request()));
  else
    HAEIN_MPI_CHECK(MPI_Alltoall(source, n, move_type(type), recv, n, move_type(type), comm_));
  return call.done([copy] {});
}

MpiPending MpiBackend::send(const void* buffer, std::size_t count, DataType type, int peer,
                            bool nonblocking) {
  const int n = mpi_count(count);
  Call call(nonblocking);
  if (call.nonblocking())
    HAEIN_MPI_CHECK(MPI_Isend(buffer, n, move_type(type), peer, 0, comm_, call.request()));
  else
    HAEIN_MPI_CHECK(MPI_Send(buffer, n, move_type(type), peer, 0, comm_));
  return call.done(nullptr);
}

MpiPending MpiBackend::recv(void* buffer, std::size_t count, DataType type, int peer,
                            bool nonblocking) {
  const int n = mpi_count(count);
  Call call(nonblocking);
  if (call.nonblocking())
    HAEIN_MPI_CHECK(MPI_Irecv(buffer, n, move_type(type), peer, 0, comm_, call.request()));
  else
    HAEIN_MPI_CHECK(MPI_Recv(buffer, n, move_type(type), peer, 0, comm_, MPI_STATUS_IGNORE));
  return call.done(nullptr);
}

MpiPending MpiBackend::barrier(bool nonblocking) {
  Call call(nonblocking);
  if (call.nonblocking())
    HAEIN_MPI_CHECK(MPI_Ibarrier(comm_, call.request()));
  else
    HAEIN_MPI_CHECK(MPI_Barrier(comm_));
  return call.done(nullptr);
}

}  // namespace haein::runtime::detail
