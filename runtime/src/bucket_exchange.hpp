#pragma once
// The bucketer's gradients and buckets as the exchanges see them (BucketSpace), and the
// interface each way of reducing a piece implements (one file each: collective_exchange.cpp,
// compressed_exchange.cpp, segment_exchange.cpp, hierarchical_exchange.cpp,
// peer_memory_exchange.cpp).

#include <cstddef>
#include <memory>
#include <string>
#include <typeinfo>
#include <vector>

#include "bucket_executor.hpp"
#include "bucket_plan.hpp"
#include "device_memory.hpp"
#include "haein/common/error.hpp"
#include "haein/kernels/multi_tensor.hpp"
#include "haein/runtime/communicator.hpp"
#include "haein/runtime/grad_bucketer.hpp"

namespace haein::runtime::detail {

class SharedMemoryExchange;
class PeerMemory;

kernels::ElementType element_type(DataType type);

struct Parameter {
  std::string name;
  void* gradient = nullptr;  ///< the registered memory
  std::size_t count = 0;
  DataType type = DataType::kF32;
  bool device = false;
  bool ready = false;
  std::size_t bucket = 0;
  std::size_t offset = 0;
};

struct Bucket {
  BucketPlan plan;
  std::vector<std::byte> host_memory;  ///< views only: the wire type
  DeviceMemory device_memory;
  DeviceMemory device_scratch;  ///< compressed device buckets: the all-to-all's
  std::byte* buffer = nullptr;
  std::byte* scratch = nullptr;
  Executor* executor = nullptr;
  std::size_t pending = 0;  ///< parameters not yet ready this step

  const LayoutBucket& layout() const { return plan.layout; }
  bool device() const { return plan.layout.device; }
  std::size_t wire_size() const { return size_of(plan.wire); }
};

/// A piece of a bucket on its way: the stage it is at and the collectives it waits for.
struct PieceTask {
  std::size_t bucket = 0;
  Piece piece;
  int stage = 0;  ///< the exchange's own count
  /// Host: the current stage's collective. Device: every stage's, all enqueued at once
  /// (each must be completed for the flight recorder).
  std::vector<Work> works;
};

/// The parameters and buckets, and the memory pieces are reduced in.
class BucketSpace {
 public:
  BucketSpace(Communicator& comm, const BucketerOptions& options) : comm(comm), options(options) {}

  Communicator& comm;
  const BucketerOptions& options;
  std::vector<Parameter> parameters;
  std::vector<LayoutParameter> layout_parameters;
  std::vector<Bucket> buckets;
  bool laid_out = false;  ///< buckets exist: views point into them
  DeviceStream stream;    ///< device buckets' work
  HostExecutor host;
  std::unique_ptr<DeviceExecutor> device;

  int world() const { return comm.size(); }
  int rank() const { return comm.rank(); }
  /// Where parameter `id`'s gradients are: the registered memory, or its bucket view.
  void* gradient_of(std::size_t id) const;
  std::vector<Overlap> overlaps(const Bucket& b, std::size_t begin, std::size_t end) const;
  /// Slices of the parameters inside bucket elements [begin, end), relative to `begin`;
  /// with `ready_only`, parameters not ready get nullptr (zero-filled by pack).
  std::vector<kernels::TensorSlice> slices(const Bucket& b, std::size_t begin, std::size_t end,
                                           bool ready_only) const;
  /// Where a piece is reduced: its place in the bucket, or the staging area.
  std::byte* piece_base(Bucket& b, const Piece& piece);
  std::byte* piece_scratch(Bucket& b, const Piece& piece);
  /// All of the piece, or this rank's shard of it in reduce-scatter mode.
  Piece reduced_range(const Piece& piece) const;
  /// Packs the ready gradients of a piece (scaled by `pre`), or with views zero-fills
  /// those not ready and scales the piece in place.
  void pack_piece(Bucket& b, const Piece& piece);
  /// Brings the reduced range of a piece to the gradients (cast back, scaled by `post`).
  void unpack_piece(Bucket& b, const Piece& piece);

 private:
  // Host buckets without views: pieces are packed into these, not into a bucket-sized
  // buffer, so that pack, reduce and unpack of a piece stay in cache.
  std::vector<std::byte> staging_;
  std::vector<std::byte> staging_scratch_;
};

/// One way of reducing a bucket's pieces.
class Exchange {
 public:
  virtual ~Exchange() = default;
  /// Prepares the piece and starts its first stage; a device exchange enqueues every
  /// stage and the unpack at once.
  virtual void start(PieceTask& task) = 0;
  /// Once the task's collectives are done: the next stage. True when the piece is reduced
  /// and unpacked.
  virtual bool advance(PieceTask& task) = 0;
};

std::unique_ptr<Exchange> make_collective_exchange(BucketSpace& space);
std::unique_ptr<Exchange> make_compressed_exchange(BucketSpace& space);
/// `segment` is this host's; the exchange does not own it.
std::unique_ptr<Exchange> make_segment_exchange(BucketSpace& space, SharedMemoryExchange& segment);
std::unique_ptr<Exchange> make_hierarchical_exchange(BucketSpace& space,
                                                     SharedMemoryExchange& segment,
                                                     Communicator& host_group,
                                                     Communicator& across_hosts);
std::unique_ptr<Exchange> make_peer_memory_exchange(BucketSpace& space,
                                                    SharedMemoryExchange& segment,
                                                    PeerMemory& peers);

/// Copies a reduced piece out of its owners' segments into the gradients: the others'
/// segments where `fused` (this rank summed its own in place, scaled already), else every
/// segment in the reduced range, scaled by the bucket's `post`.
void unpack_segments(BucketSpace& space, SharedMemoryExchange& segment, const PieceTask& task,
                     bool fused);

/// Runs a host exchange's step. A plain Error from it (a rank that did not arrive or
/// exited, a failed read of a peer's memory) gets the bucket and the piece; the more
/// specific errors (misuse, MPI) pass as they are.
template <class Step>
void naming_piece(const PieceTask& task, Step step) {
  try {
    step();
  } catch (const Error& error) {
    if (typeid(error) != typeid(Error)) throw;
    throw Error("GradBucketer: bucket " + std::to_string(task.bucket) + ", elements " +
                std::to_string(task.piece.begin) + "-" + std::to_string(task.piece.end) + ": " +
                error.what());
  }
}

}  // namespace haein::runtime::detail
