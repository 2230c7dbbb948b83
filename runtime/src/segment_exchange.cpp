// Host f32 buckets of ranks on one host, reduced through this host's shared segment
// (shared_memory_exchange.hpp), one piece at a time and blocking. All-reduce: the other
// ranks' segments are packed into this rank's slot, and this rank's own segment is summed
// straight from its gradients and written back to them, divided, together with the slot
// copy the others read; that moves each gradient byte once less than packing the whole
// piece and unpacking all of it. Reduce-scatter packs the whole piece.
#include <algorithm>

#include "bucket_exchange.hpp"
#include "shared_memory_exchange.hpp"

namespace haein::runtime::detail {

using kernels::ElementType;

void unpack_segments(BucketSpace& space, SharedMemoryExchange& segment, const PieceTask& task,
                     bool fused) {
  Bucket& b = space.buckets[task.bucket];
  const Piece range = space.reduced_range(task.piece);
  const float post = fused ? 1.0f : b.plan.scaling.post;
  for (int owner = 0; owner < segment.ranks(); ++owner) {
    if (fused && owner == space.rank()) continue;
    const auto part = segment.segment(owner);
    const std::size_t begin = std::max(task.piece.begin + part.begin, range.begin);
    const std::size_t end = std::min(task.piece.begin + part.end, range.end);
    if (begin >= end) continue;
    const auto list = space.slices(b, begin, end, false);
    space.host.unpack({list.data(), list.size(), ElementType::kF32,
                       part.data + (begin - task.piece.begin - part.begin), ElementType::kF32, post,
                       false});
  }
}

namespace {

class SegmentExchange final : public Exchange {
 public:
  SegmentExchange(BucketSpace& space, SharedMemoryExchange& segment)
      : space_(space), segment_(segment) {}

  void start(PieceTask& task) override {
    naming_piece(task, [&] {
      if (space_.options.reduce_scatter)
        reduce_whole(task);
      else
        reduce_fused(task);
    });
  }

  bool advance(PieceTask& task) override {
    unpack_segments(space_, segment_, task, !space_.options.reduce_scatter);
    return true;
  }

 private:
  void reduce_whole(const PieceTask& task) {
    Bucket& b = space_.buckets[task.bucket];
    const auto list = space_.slices(b, task.piece.begin, task.piece.end, true);
    space_.host.pack({list.data(), list.size(), ElementType::kF32, segment_.slot(),
                      ElementType::kF32, b.plan.scaling.pre, nullptr});
    segment_.reduce(task.piece.end - task.piece.begin);
  }

  void reduce_fused(const PieceTask& task) {
    Bucket& b = space_.buckets[task.bucket];
    const Piece piece = task.piece;
    const std::size_t n = piece.end - piece.begin;
    const float pre = b.plan.scaling.pre;
    const int me = space_.rank();
    float* slot = segment_.slot();
    for (int s = 0; s < space_.world(); ++s) {
      if (s == me) continue;
      const auto [begin, end] = segment_.bounds(s, n);
      if (begin == end) continue;
      const auto list = space_.slices(b, piece.begin + begin, piece.begin + end, true);
      space_.host.pack({list.data(), list.size(), ElementType::kF32, slot + begin,
                        ElementType::kF32, pre, nullptr});
    }
    segment_.wait_written(n);
    const auto [begin, end] = segment_.bounds(me, n);
    if (begin < end) {
      for (const Overlap& o : space_.overlaps(b, piece.begin + begin, piece.begin + end)) {
        float* gradient = static_cast<float*>(space_.gradient_of(o.parameter)) + o.parameter_offset;
        segment_.sum_own(o.bucket_offset - piece.begin, o.count,
                         space_.parameters[o.parameter].ready ? gradient : nullptr, pre,
                         b.plan.scaling.post, gradient);
      }
    }
    segment_.finish_reduction();
  }

  BucketSpace& space_;
  SharedMemoryExchange& segment_;
};

}  // namespace

std::unique_ptr<Exchange> make_segment_exchange(BucketSpace& space, SharedMemoryExchange& segment) {
  return std::make_unique<SegmentExchange>(space, segment);
}

}  // namespace haein::runtime::detail
