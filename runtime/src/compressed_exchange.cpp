// Buckets whose f32 gradients travel as bf16 or f16: an all-to-all of the wire type gives
// each rank every rank's terms of its shard, which it sums in f32 (scaled there when
// averaging), and an all-gather brings every rank every shard (none in reduce-scatter mode).
#include "bucket_exchange.hpp"

namespace haein::runtime::detail {

namespace {

enum Stage : int { kAllToAll, kGather };

class CompressedExchange final : public Exchange {
 public:
  explicit CompressedExchange(BucketSpace& space) : space_(space) {}

  void start(PieceTask& task) override {
    Bucket& b = space_.buckets[task.bucket];
    space_.pack_piece(b, task.piece);
    const OpOptions options{.async = b.device(), .stream = space_.stream.get()};
    task.stage = kAllToAll;
    task.works.push_back(space_.comm.all_to_all(space_.piece_base(b, task.piece),
                                                space_.piece_scratch(b, task.piece), shard_of(task),
                                                b.plan.wire, options));
    if (!b.device()) return;
    sum_shards(b, task);
    if (!space_.options.reduce_scatter) task.works.push_back(gather(b, task, options));
    space_.unpack_piece(b, task.piece);
  }

  bool advance(PieceTask& task) override {
    Bucket& b = space_.buckets[task.bucket];
    if (b.device()) return true;  // every stage was enqueued by start()
    if (task.stage == kAllToAll) {
      sum_shards(b, task);
      if (!space_.options.reduce_scatter) {
        task.stage = kGather;
        task.works.back() = gather(b, task, {.async = true});
        return false;
      }
    }
    space_.unpack_piece(b, task.piece);
    return true;
  }

 private:
  std::size_t shard_of(const PieceTask& task) const {
    return (task.piece.end - task.piece.begin) / static_cast<std::size_t>(space_.world());
  }

  std::byte* my_shard(Bucket& b, const PieceTask& task) {
    return space_.piece_base(b, task.piece) +
           static_cast<std::size_t>(space_.rank()) * shard_of(task) * b.wire_size();
  }

  /// This rank's shard: the f32 sum of what every rank sent it.
  void sum_shards(Bucket& b, const PieceTask& task) {
    b.executor->sum_shards({space_.piece_scratch(b, task.piece), space_.world(), shard_of(task),
                            element_type(b.plan.wire), my_shard(b, task),
                            b.plan.scaling.shard_sum});
  }

  Work gather(Bucket& b, const PieceTask& task, const OpOptions& options) {
    return space_.comm.all_gather(my_shard(b, task), space_.piece_base(b, task.piece),
                                  shard_of(task), b.plan.wire, options);
  }

  BucketSpace& space_;
};

}  // namespace

std::unique_ptr<Exchange> make_compressed_exchange(BucketSpace& space) {
  return std::make_unique<CompressedExchange>(space);
}

}  // namespace haein::runtime::detail
