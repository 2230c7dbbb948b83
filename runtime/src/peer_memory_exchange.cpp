// Host f32 buckets summed in the peers' memory (peer_memory.hpp), when the ranks of this
// host may read and write each other's: after a first barrier every rank's gradients of
// the piece are final; each rank sums its segment over the ranks, reading the others'
// terms out of their memory, and writes the result into its own gradients and theirs;
// after a second barrier the piece is reduced everywhere. Each gradient byte is read once
// and written once, by one of the ranks; the sums are the shared segment's, bit for bit.
#include <algorithm>
#include <cstring>

#include "bucket_exchange.hpp"
#include "haein/kernels/rank_order_sum.hpp"
#include "peer_memory.hpp"
#include "shared_memory_exchange.hpp"

namespace haein::runtime::detail {

namespace {

/// Elements summed at a time at 2 ranks: the sum and the peer's terms (256 KiB each) stay
/// in a core's L2. With more ranks, a buffer per rank, and less each.
constexpr std::size_t kChunk = 64 * 1024;

class PeerMemoryExchange final : public Exchange {
 public:
  PeerMemoryExchange(BucketSpace& space, SharedMemoryExchange& segment, PeerMemory& peers)
      : space_(space), segment_(segment), peers_(peers) {}

  void start(PieceTask& task) override {
    naming_piece(task, [&] {
      const Bucket& b = space_.buckets[task.bucket];
      const Piece piece = task.piece;
      // A gradient not marked ready is a zero term. The reduced sum overwrites it anyway,
      // so zeroing it in place is what the others read.
      for (const Overlap& o : space_.overlaps(b, piece.begin, piece.end))
        if (!space_.parameters[o.parameter].ready)
          std::memset(static_cast<float*>(space_.gradient_of(o.parameter)) + o.parameter_offset, 0,
                      o.count * sizeof(float));
      peers_.sync();
      const auto [begin, end] = segment_.bounds(space_.rank(), piece.end - piece.begin);
      if (begin < end) sum(b, piece.begin + begin, piece.begin + end);
      peers_.sync();
    });
  }

  bool advance(PieceTask&) override { return true; }  // every rank's gradients hold the sums

 private:
  /// Parameter elements summed together.
  struct Part {
    std::size_t parameter, element, count;
  };

  /// Bucket elements [begin, end) summed over the ranks in rank order, a chunk at a time,
  /// and written to every rank's gradients. Per chunk: every other rank's terms are read
  /// into a buffer each; one pass over this rank's own gradients then sums all the terms
  /// in rank order and writes the result back and into the chunk's sum, which goes to the
  /// others last.
  void sum(const Bucket& b, std::size_t begin, std::size_t end) {
    const auto spans = space_.overlaps(b, begin, end);
    const int world = space_.world();
    const int me = space_.rank();
    const std::size_t chunk =
        std::max<std::size_t>(4096, kChunk * 2 / static_cast<std::size_t>(world));
    sum_.resize(chunk);
    terms_in_.resize(chunk * static_cast<std::size_t>(std::max(1, world - 1)));
    // Rank s's terms (s != me): the buffers skip this rank.
    auto buffer_of = [&](int s) {
      return terms_in_.data() + static_cast<std::size_t>(s < me ? s : s - 1) * chunk;
    };
    std::vector<kernels::SumTerm> terms(static_cast<std::size_t>(world));
    std::size_t span = 0;
    std::size_t into = 0;  // elements of spans[span] already summed
    while (span < spans.size()) {
      parts_.clear();
      std::size_t total = 0;
      while (span < spans.size() && total < chunk) {
        const Overlap& o = spans[span];
        const std::size_t take = std::min(o.count - into, chunk - total);
        if (take > 0) parts_.push_back({o.parameter, o.parameter_offset + into, take});
        total += take;
        into += take;
        if (into == o.count) {
          ++span;
          into = 0;
        }
      }
      for (int s = 0; s < world; ++s)
        if (s != me) peers_.read(s, runs_of(s), buffer_of(s));
      std::size_t at = 0;
      for (const Part& part : parts_) {
        float* own = static_cast<float*>(space_.gradient_of(part.parameter)) + part.element;
        for (int s = 0; s < world; ++s)
          terms[static_cast<std::size_t>(s)] = {s == me ? own : buffer_of(s) + at,
                                                b.plan.scaling.pre};
        kernels::sum_in_rank_order(
            {terms.data(), world, part.count, b.plan.scaling.post, own, sum_.data() + at});
        at += part.count;
      }
      for (int s = 0; s < world; ++s)
        if (s != me) peers_.write(s, runs_of(s), sum_.data());
    }
  }

  /// The current parts in rank `rank`'s memory.
  const std::vector<PeerMemory::Run>& runs_of(int rank) {
    runs_.clear();
    for (const Part& part : parts_)
      runs_.push_back({peers_.address(rank, part.parameter) + part.element * sizeof(float),
                       part.count * sizeof(float)});
    return runs_;
  }

  BucketSpace& space_;
  SharedMemoryExchange& segment_;
  PeerMemory& peers_;
  std::vector<float> sum_;
  std::vector<float> terms_in_;
  std::vector<Part> parts_;
  std::vector<PeerMemory::Run> runs_;
};

}  // namespace

std::unique_ptr<Exchange> make_peer_memory_exchange(BucketSpace& space,
                                                    SharedMemoryExchange& segment,
                                                    PeerMemory& peers) {
  return std::make_unique<PeerMemoryExchange>(space, segment, peers);
}

}  // namespace haein::runtime::detail
