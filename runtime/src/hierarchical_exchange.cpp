// Host f32 buckets of ranks on several hosts with as many ranks on each: this host's ranks
// sum a piece through the shared segment, one segment each, in rank order; each rank then
// all-reduces its segment in its slot with the ranks of the same local index on the other
// hosts (MPI); after a barrier every rank unpacks every segment. All ranks get the same
// bits: the host sums are each made by one rank, the sums across hosts by MPI for all.
#include "bucket_exchange.hpp"
#include "shared_memory_exchange.hpp"

namespace haein::runtime::detail {

namespace {

using kernels::ElementType;

class HierarchicalExchange final : public Exchange {
 public:
  HierarchicalExchange(BucketSpace& space, SharedMemoryExchange& segment, Communicator& host_group,
                       Communicator& across_hosts)
      : space_(space), segment_(segment), host_group_(host_group), across_hosts_(across_hosts) {}

  void start(PieceTask& task) override {
    naming_piece(task, [&] {
      Bucket& b = space_.buckets[task.bucket];
      const auto list = space_.slices(b, task.piece.begin, task.piece.end, true);
      space_.host.pack({list.data(), list.size(), ElementType::kF32, segment_.slot(),
                        ElementType::kF32, b.plan.scaling.pre, nullptr});
      segment_.reduce(task.piece.end - task.piece.begin);
      const auto mine = segment_.segment(host_group_.rank());
      if (mine.end > mine.begin) {
        // This rank's own slot: the others read it only after the barrier below.
        auto* sum = const_cast<float*>(mine.data);
        across_hosts_.all_reduce(sum, sum, mine.end - mine.begin, DataType::kF32, ReduceOp::kSum);
      }
      segment_.sync();
    });
  }

  bool advance(PieceTask& task) override {
    unpack_segments(space_, segment_, task, false);
    return true;
  }

 private:
  BucketSpace& space_;
  SharedMemoryExchange& segment_;
  Communicator& host_group_;
  Communicator& across_hosts_;
};

}  // namespace

std::unique_ptr<Exchange> make_hierarchical_exchange(BucketSpace& space,
                                                     SharedMemoryExchange& segment,
                                                     Communicator& host_group,
                                                     Communicator& across_hosts) {
  return std::make_unique<HierarchicalExchange>(space, segment, host_group, across_hosts);
}

}  // namespace haein::runtime::detail
