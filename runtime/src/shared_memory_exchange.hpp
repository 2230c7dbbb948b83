#pragma once
// All-reduction of f32 host pieces between ranks on one host through a shared-memory
// segment: each rank writes its piece into its own slot, each rank sums one segment of
// the piece over every slot (in rank order, so every rank gets the same bits), and each
// rank reads the reduced segments from their owners' slots. The stepwise form
// (wait_written, sum_own, finish_reduction) lets a rank take its own segment straight
// from where it lies instead of its slot. Two barriers per piece (written; summed) and two slots
// per rank that alternate: a rank writes a slot again only after every rank has passed the barrier
// that follows its last read of it.
//
// Waits are bounded: a rank that does not arrive within the communicator's timeout, or
// whose process has exited, is an Error that names it, on every rank still waiting.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "haein/runtime/communicator.hpp"

namespace haein::runtime::detail {

class SharedMemoryExchange {
 public:
  /// Collective over `comm`. Null on every rank when the ranks are not all on one host or
  /// the segment could not be made (the reason is logged once, by rank 0). Waits are
  /// bounded by `timeout`, or by the communicator's when it is zero.
  static std::unique_ptr<SharedMemoryExchange> create(Communicator& comm, std::size_t slot_elements,
                                                      std::chrono::milliseconds timeout = {});
  ~SharedMemoryExchange();
  SharedMemoryExchange(const SharedMemoryExchange&) = delete;
  SharedMemoryExchange& operator=(const SharedMemoryExchange&) = delete;

  std::size_t slot_elements() const { return slot_elements_; }
  /// This rank's slot for the next piece: write the piece's elements here.
  float* slot();
  /// Collective: sums the `count` elements every rank wrote into its slot. Afterwards
  /// segment(s) names the reduced elements rank s holds, until the reduction after next.
  void reduce(std::size_t count);

  struct Segment {
    std::size_t begin = 0;  ///< first element of the piece
    std::size_t end = 0;
    const float* data = nullptr;  ///< element `begin`
  };
  /// The reduced segment of the last reduce() that rank `owner` summed.
  Segment segment(int owner) const;
  int ranks() const { return ranks_; }

  // The same reduction in steps, for a caller that reads its own contribution from where
  // it lies instead of copying it into its slot first (the bucketer's fused path):
  //   write the other ranks' segments of the piece into slot(); wait_written(count);
  //   sum_own(...) for the runs of this rank's segment; finish_reduction(). Then segment(s)
  //   is as after reduce(), with this rank's segment taken from what sum_own() wrote.

  /// Elements [first, second) of a `count`-element piece that rank `s` sums.
  std::pair<std::size_t, std::size_t> bounds(int s, std::size_t count) const {
    return {bound(s, count), bound(s + 1, count)};
  }
  /// Barrier: every rank's slot holds its part of the `count`-element piece.
  void wait_written(std::size_t count);
  /// Sums elements [at, at + n) of this rank's segment in rank order, this rank's term
  /// being own_scale * own[i] (0 for a null `own`) and every other rank's its slot; stores
  /// out_scale * sum in this rank's slot (for the others) and in `out` when not null.
  void sum_own(std::size_t at, std::size_t n, const float* own, float own_scale, float out_scale,
               float* out);
  /// Barrier: every segment is reduced; segment(s) are valid until the reduction after next.
  void finish_reduction();
  /// A barrier only, bounded and watched as the others are (the bucketer's direct path,
  /// which reads and writes the peers' gradients in place: peer_memory.hpp).
  void sync() { barrier(); }

 private:
  struct RankLine;
  SharedMemoryExchange() = default;
  void barrier();
  float* slot_of(int rank, int buffer) const;
  /// Element where rank s's segment of a `count`-element piece begins.
  std::size_t bound(int s, std::size_t count) const;

  int rank_ = 0;
  int ranks_ = 1;
  std::size_t slot_elements_ = 0;
  std::chrono::milliseconds timeout_{0};
  void* mapping_ = nullptr;
  std::size_t mapping_bytes_ = 0;
  RankLine* lines_ = nullptr;  ///< one cache line per rank: its barrier count
  float* slots_ = nullptr;
  bool check_peers_ = false;  ///< peers' pids are visible, so an exited one is detected
  std::vector<int> pids_;
  std::vector<int> world_ranks_;  ///< what messages name each rank
  std::string host_;
  std::uint64_t barriers_ = 0;
  int buffer_ = 0;  ///< the buffer slot() returns
  std::size_t last_count_ = 0;
  int last_buffer_ = 0;
  std::size_t written_count_ = 0;  ///< the piece between wait_written and finish_reduction
};

}  // namespace haein::runtime::detail
