#include "bucket_plan.hpp"

#include <algorithm>
#include <string>
#include <utility>

#include "haein/common/error.hpp"

namespace haein::runtime::detail {

std::string_view name_of(ExchangeKind kind) {
  switch (kind) {
    case ExchangeKind::kCollective:
      return "collective";
    case ExchangeKind::kCompressed:
      return "compressed";
    case ExchangeKind::kSegment:
      return "shared segment";
    case ExchangeKind::kHierarchical:
      return "hierarchical";
    case ExchangeKind::kPeerMemory:
      return "peer memory";
  }
  return "?";
}

DataType wire_of(DataType type, const std::optional<DataType>& wire_type) {
  if (!wire_type || *wire_type == type) return type;
  if (type != DataType::kF32)
    throw InvalidArgument("GradBucketer: wire compression to " + std::string(name_of(*wire_type)) +
                          " needs f32 gradients, not " + std::string(name_of(type)));
  return *wire_type;
}

Scaling scaling_of(ExchangeKind exchange, bool device, int world, Averaging averaging) {
  const float divide = 1.0f / static_cast<float>(world);
  Scaling s;
  if (averaging == Averaging::kPreDivide) s.pre = divide;
  const bool averages = averaging == Averaging::kAvgOp || averaging == Averaging::kPostDivide;
  if (exchange == ExchangeKind::kCompressed) {
    // The shard sum divides, in f32, before the cast back to the wire type.
    if (averages) s.shard_sum = divide;
    return s;
  }
  // ncclAvg on a device; on the host the unpack's scale divides for free, where MPI would
  // divide in a pass of its own.
  if (averaging == Averaging::kAvgOp && device && exchange == ExchangeKind::kCollective)
    s.op = ReduceOp::kAvg;
  else if (averages)
    s.post = divide;
  return s;
}

namespace {

ExchangeKind exchange_of(const LayoutBucket& layout, DataType wire, HostF32Path host_f32) {
  const bool compressed = wire != layout.type;
  if (!layout.device && layout.type == DataType::kF32 && !compressed) {
    switch (host_f32) {
      case HostF32Path::kSegment:
        return ExchangeKind::kSegment;
      case HostF32Path::kHierarchical:
        return ExchangeKind::kHierarchical;
      case HostF32Path::kPeerMemory:
        return ExchangeKind::kPeerMemory;
      case HostF32Path::kCollective:
        break;
    }
  }
  return compressed ? ExchangeKind::kCompressed : ExchangeKind::kCollective;
}

}  // namespace

std::vector<BucketPlan> plan_buckets(const PlanInputs& in) {
  const auto world = static_cast<std::size_t>(in.world);
  // Laid out per wire size so that offsets are 16-byte aligned in the wire type.
  std::vector<std::size_t> wide, narrow;
  for (const std::size_t id : in.order)
    (size_of(wire_of(in.parameters[id].type, in.wire_type)) == 4 ? wide : narrow).push_back(id);
  std::vector<LayoutBucket> layout;
  for (auto [ids, alignment] :
       {std::pair{&wide, std::size_t{4}}, std::pair{&narrow, std::size_t{8}}}) {
    if (ids->empty()) continue;
    for (LayoutBucket& b : assign_buckets(in.parameters, *ids, in.first_cap_bytes, in.cap_bytes,
                                          alignment, alignment * world))
      layout.push_back(std::move(b));
  }
  std::vector<BucketPlan> plans;
  for (LayoutBucket& l : layout) {
    BucketPlan plan;
    plan.wire = wire_of(l.type, in.wire_type);
    plan.exchange = exchange_of(l, plan.wire, in.host_f32);
    plan.scaling = scaling_of(plan.exchange, l.device, in.world, in.averaging);
    plan.staged = !l.device && !in.views;
    std::size_t chunk = l.elements;  // a device bucket is one piece
    if (!l.device) {
      const std::size_t wire_bytes = size_of(plan.wire);
      const std::size_t granule = (16 / wire_bytes) * world;
      const std::size_t bytes =
          plan.exchange == ExchangeKind::kPeerMemory ? in.peer_piece_bytes : in.piece_bytes;
      chunk = std::max(granule, bytes / wire_bytes / granule * granule);
    }
    plan.pieces = pieces_of(l.elements, chunk);
    plan.layout = std::move(l);
    plans.push_back(std::move(plan));
  }
  return plans;
}

}  // namespace haein::runtime::detail
