#pragma once
/// @file
/// Gradient bucketing for data-parallel training: what PyTorch DDP's Reducer, Horovod's
/// tensor fusion and Megatron's gradient buffer do. Parameters are registered in model
/// order; gradients are grouped into buckets of a capped size, and a bucket's reduction
/// starts as soon as its last gradient is marked ready during backward, so that
/// communication overlaps the rest of backward. See docs/bucketing.md.
///
/// Host gradients are reduced through MPI with the CPU kernels, device gradients through
/// NCCL with the CUDA kernels, behind the same calls.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "haein/runtime/communicator.hpp"
#include "haein/runtime/types.hpp"

namespace haein::runtime {

/// How the sum over ranks becomes a mean.
enum class Averaging : std::uint8_t {
  kNone,        ///< keep the sum
  kAvgOp,       ///< the collective's average (ncclAvg; sum then divide on the host)
  kPreDivide,   ///< scale each gradient by 1/n before the sum (guards f16 overflow)
  kPostDivide,  ///< sum, then scale by 1/n
};

struct BucketerOptions {
  /// Bytes of gradients per bucket (MiB, as DDP's bucket_cap_mb): a bucket's reduction
  /// starts when all of its gradients are ready. A parameter is never split across
  /// buckets, so one larger than the cap gets a bucket of its own.
  double bucket_cap_mb = 25;
  /// The first bucket (the last layers, ready first) is small so communication starts early.
  double first_bucket_cap_mb = 1;
  /// Host buckets are reduced in pieces of this many MiB, each packed, reduced and
  /// unpacked while it is in cache; 0 measures the reduction when the buckets are first
  /// built (a fraction of a second, once) and takes the fastest per byte: at 1/16 to
  /// 4 MiB through shared memory, 0.25 to 64 MiB through MPI. With host_peer_copy in use,
  /// 0 reduces those buckets whole (up to 64 MiB a piece): nothing passes through a
  /// buffer there. Device buckets are reduced whole (NCCL pipelines internally).
  double host_chunk_mb = 0;
  /// Uncompressed host f32 buckets (with or without views) of ranks that all share one
  /// host are reduced without MPI calls: each rank sums one segment of every piece over
  /// all ranks, in rank order, and hands the sum to the others. Ranks on several hosts,
  /// the same number (at least two) on each, are reduced hierarchically: that sum among
  /// each host's ranks, then each rank's segment all-reduced through MPI with the ranks
  /// of its local index on the other hosts (not in reduce-scatter mode). False reduces
  /// them with MPI collectives only. Either way every rank gets the same bits.
  bool host_shared_memory = true;
  /// With host_shared_memory, and when the ranks may (Linux cross-memory attach: same
  /// user, not forbidden by Yama or seccomp), a rank reads the other ranks' gradients of
  /// its segment straight out of their memory and writes the sums straight into it, so
  /// each gradient byte is read once and written once; gradient memory is asked to be
  /// backed by 2 MiB pages when the buckets are built. Otherwise, or when false, pieces
  /// are copied through a shared-memory segment (one copy in, one out). Not in
  /// reduce-scatter mode.
  bool host_peer_copy = true;
  /// Gradients live in the buckets (gradient() points there): no pack or unpack copy.
  /// Not with wire compression.
  bool gradient_as_bucket_view = false;
  /// Element type on the wire: bf16 or f16 compresses f32 gradients (summed in f32 by
  /// the receiving rank); empty sends the gradients' own type.
  std::optional<DataType> wire_type;
  Averaging averaging = Averaging::kAvgOp;
  /// Each rank gets only its shard of every bucket reduced (for a sharded optimizer):
  /// owned_ranges() says which parameter elements those are.
  bool reduce_scatter = false;
  /// After the first synchronised step, rebuild buckets in the order gradients became
  /// ready (rank 0's order, so all ranks agree). Done by the next begin_step().
  bool rebuild_buckets = true;
  /// Device gradients: the cudaStream_t backward writes them on (nullptr: the legacy
  /// default stream). Bucket work waits for it; finish() makes it wait for the buckets.
  void* stream = nullptr;
};

/// One bucket as built: for tests, logs and benchmarks.
struct BucketInfo {
  DataType type = DataType::kF32;  ///< the gradients' type
  DataType wire = DataType::kF32;  ///< the type reduced
  bool device = false;
  bool shared_memory = false;           ///< reduced through the shared-memory exchange
  bool peer_copy = false;               ///< ... reading and writing the peers' gradients in place
  bool hierarchical = false;            ///< ... among each host's ranks, with MPI between the hosts
  std::size_t elements = 0;             ///< padded length
  std::vector<std::size_t> parameters;  ///< parameter ids in bucket order
};

/// Elements of a parameter's gradient that this rank holds reduced in reduce-scatter mode.
struct OwnedRange {
  std::size_t parameter = 0;
  std::size_t offset = 0;  ///< first element within the parameter
  std::size_t count = 0;
};

class GradBucketer {
 public:
  /// `comm` must outlive the bucketer.
  explicit GradBucketer(Communicator& comm, BucketerOptions options = {});
  GradBucketer(GradBucketer&&) noexcept;
  GradBucketer& operator=(GradBucketer&&) noexcept;
  ~GradBucketer();

  /// Registers a parameter's gradient (f32, f16 or bf16, host or device memory) in model
  /// order; returns its id. Only before the first step.
  std::size_t register_parameter(std::string name, void* gradient, std::size_t count,
                                 DataType type);

  /// Starts a step. `sync` false (DDP's no_sync) only lets gradients accumulate: no
  /// communication until a synchronised step. The first call is collective: it compares
  /// the registered models across ranks (a mismatch is an Error on every rank naming the
  /// ranks), builds the buckets and, when Options::host_chunk_mb is 0, times the host
  /// reduction's piece sizes and keeps the fastest (host_chunk_mb() then says which).
  void begin_step(bool sync = true);
  /// The gradient of `parameter` is final for this step. Launches every bucket that is
  /// now complete, strictly in bucket order.
  void mark_ready(std::size_t parameter);
  /// Ends the step: parameters never marked ready get zero gradients, every bucket is
  /// reduced, and the reduced gradients are in place (gradient()). Waits for the
  /// reductions; on device, work queued on `stream` afterwards also sees the results.
  void finish();

  /// Where `parameter`'s gradient lives: the registered pointer, or its place in a bucket
  /// with gradient_as_bucket_view (which moves when buckets are rebuilt).
  void* gradient(std::size_t parameter) const;
  std::size_t parameter_count() const;
  std::vector<BucketInfo> buckets() const;
  /// Reduce-scatter mode: the gradient elements this rank holds reduced after finish().
  std::vector<OwnedRange> owned_ranges() const;
  /// The host reduction piece in use (after tuning), in MiB.
  double host_chunk_mb() const;
  /// True once the buckets were rebuilt in the observed ready order.
  bool rebuilt() const;

 private:
  struct Impl;  // grad_bucketer.cpp
  std::unique_ptr<Impl> impl_;
};

}  // namespace haein::runtime
