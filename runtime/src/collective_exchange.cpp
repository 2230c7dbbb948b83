// Buckets reduced by one collective per piece, of the gradients' own type: all-reduce, or
// reduce-scatter (each rank keeps its shard). NCCL on a device, MPI on the host.
#include "bucket_exchange.hpp"

namespace haein::runtime::detail {

namespace {

class CollectiveExchange final : public Exchange {
 public:
  explicit CollectiveExchange(BucketSpace& space) : space_(space) {}

  void start(PieceTask& task) override {
    Bucket& b = space_.buckets[task.bucket];
    space_.pack_piece(b, task.piece);
    const std::size_t n = task.piece.end - task.piece.begin;
    const std::size_t shard = n / static_cast<std::size_t>(space_.world());
    std::byte* base = space_.piece_base(b, task.piece);
    std::byte* my_shard = base + static_cast<std::size_t>(space_.rank()) * shard * b.wire_size();
    const OpOptions options{.async = b.device(), .stream = space_.stream.get()};
    const ReduceOp op = b.plan.scaling.op;
    Communicator& comm = space_.comm;
    task.works.push_back(space_.options.reduce_scatter
                             ? comm.reduce_scatter(base, my_shard, shard, b.plan.wire, op, options)
                             : comm.all_reduce(base, base, n, b.plan.wire, op, options));
    if (b.device()) space_.unpack_piece(b, task.piece);
  }

  bool advance(PieceTask& task) override {
    Bucket& b = space_.buckets[task.bucket];
    if (!b.device()) space_.unpack_piece(b, task.piece);
    return true;
  }

 private:
  BucketSpace& space_;
};

}  // namespace

std::unique_ptr<Exchange> make_collective_exchange(BucketSpace& space) {
  return std::make_unique<CollectiveExchange>(space);
}

}  // namespace haein::runtime::detail
