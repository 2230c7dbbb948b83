#pragma once
// What each bucket is and how it is reduced, decided once when the buckets are built: its
// layout, wire type, exchange, scaling and pieces. Pure: no memory, no communication
// (tests/runtime/bucket_plan_test.cpp checks it as a table).

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "bucket_layout.hpp"
#include "haein/runtime/grad_bucketer.hpp"

namespace haein::runtime::detail {

/// How a bucket's pieces are reduced; each has one implementation (bucket_exchange.hpp).
enum class ExchangeKind : std::uint8_t {
  kCollective,    ///< all-reduce or reduce-scatter of the gradients' type (NCCL or MPI)
  kCompressed,    ///< all-to-all of the wire type, an f32 sum of the shards, all-gather
  kSegment,       ///< host f32: pieces copied through this host's shared segment
  kHierarchical,  ///< host f32: the segment on each host, MPI between the hosts
  kPeerMemory,    ///< host f32: summed in the peers' memory, read and written in place
};
std::string_view name_of(ExchangeKind kind);

/// Every factor a bucket's values are multiplied by, and where.
struct Scaling {
  float pre = 1.0f;              ///< each rank's gradients, before the sum (kPreDivide)
  ReduceOp op = ReduceOp::kSum;  ///< the collective's reduction (kAvg: ncclAvg on a device)
  float post = 1.0f;             ///< the reduced sum (kPostDivide, and kAvgOp on the host)
  float shard_sum = 1.0f;        ///< a compressed bucket's f32 sum of the shards
};

/// The host exchanges this job could set up for f32 buckets (the first step decides).
enum class HostF32Path : std::uint8_t { kCollective, kSegment, kHierarchical, kPeerMemory };

struct PlanInputs {
  std::vector<LayoutParameter> parameters;
  std::vector<std::size_t> order;  ///< parameter ids, first bucket first
  std::size_t first_cap_bytes = 0;
  std::size_t cap_bytes = 0;
  int world = 1;
  std::optional<DataType> wire_type;
  Averaging averaging = Averaging::kAvgOp;
  bool reduce_scatter = false;
  bool views = false;  ///< gradient_as_bucket_view
  HostF32Path host_f32 = HostF32Path::kCollective;
  std::size_t piece_bytes = 64 << 20;       ///< host pieces (tuned)
  std::size_t peer_piece_bytes = 64 << 20;  ///< host pieces of kPeerMemory
};

struct BucketPlan {
  LayoutBucket layout;
  DataType wire = DataType::kF32;
  ExchangeKind exchange = ExchangeKind::kCollective;
  Scaling scaling;
  std::vector<Piece> pieces;  ///< device buckets: one, the whole bucket
  /// Host pieces packed into a staging area of the bucketer's (no bucket memory).
  bool staged = false;
};

/// The wire type of gradients of `type`: `wire_type` where one is asked for. Throws
/// InvalidArgument for compression of anything but f32.
DataType wire_of(DataType type, const std::optional<DataType>& wire_type);

/// The scaling of a bucket reduced by `exchange` (on a device or not), for `averaging`.
Scaling scaling_of(ExchangeKind exchange, bool device, int world, Averaging averaging);

/// Buckets for the parameters in `order`: laid out per wire size (offsets 16-byte aligned
/// in the wire type), each with its exchange, scaling and pieces.
std::vector<BucketPlan> plan_buckets(const PlanInputs& inputs);

}  // namespace haein::runtime::detail
