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
// The slots lie in the payload of a HostGroup (host_group.hpp), whose bounded barriers
// name a rank that does not arrive within the timeout, or whose process has exited. The
// sums are kernels::sum_in_rank_order.

#include <chrono>
#include <cstddef>
#include <memory>
#include <utility>
#include <vector>

#include "haein/kernels/rank_order_sum.hpp"
#include "haein/runtime/communicator.hpp"
#include "host_group.hpp"

namespace haein::runtime::detail {

class SharedMemoryExchange {
 public:
  /// Collective over `comm`. Null on every rank when the ranks are not all on one host or
  /// the segment could not be made (HostGroup::create logs why). Waits are bounded by
  /// `timeout`, or by the communicator's when it is zero.
  static std::unique_ptr<SharedMemoryExchange> create(Communicator& comm, std::size_t slot_elements,
                                                      std::chrono::milliseconds timeout = {});
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
  /// The ranks of this host and their barrier, for the other exchange that waits on them.
  const std::shared_ptr<HostGroup>& group() const { return group_; }

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
  /// A barrier only, bounded and watched as the others are (the hierarchical path).
  void sync() { group_->barrier(); }

 private:
  SharedMemoryExchange() = default;
  float* slot_of(int rank, int buffer) const;
  /// Element where rank s's segment of a `count`-element piece begins.
  std::size_t bound(int s, std::size_t count) const;

  std::shared_ptr<HostGroup> group_;
  int rank_ = 0;
  int ranks_ = 1;
  std::size_t slot_elements_ = 0;
  float* slots_ = nullptr;               ///< in the group's payload: two buffers of a slot per rank
  std::vector<kernels::SumTerm> terms_;  ///< sum_own's, one per rank
  int buffer_ = 0;                       ///< the buffer slot() returns
  std::size_t last_count_ = 0;
  int last_buffer_ = 0;
  std::size_t written_count_ = 0;  ///< the piece between wait_written and finish_reduction
};

}  // namespace haein::runtime::detail
