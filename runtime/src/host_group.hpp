#pragma once
// The ranks of a communicator that all run on one host, and one shared-memory segment
// among them: a header with each rank's barrier count on a cache line of its own, then a
// payload that the owner lays out (the exchange's slots). Rank 0 creates the segment, the
// others check a random token in it (the same host name on another machine: containers),
// and it is unlinked once every rank has mapped it, so nothing is left in /dev/shm.
//
// The barrier is bounded: a rank that does not arrive within the timeout, or whose process
// has exited, is an Error that names it (its world rank, the host, its pid) on every rank
// still waiting. Both host exchanges own the group they wait on: the shared-memory
// exchange (shared_memory_exchange.hpp) and the peers' memory (peer_memory.hpp).

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "haein/runtime/communicator.hpp"

namespace haein::runtime::detail {

class HostGroup {
 public:
  /// Collective over `comm`. Null on every rank when the ranks are not all on one host or
  /// the segment could not be made (logged by the ranks that failed). `activity` is what
  /// errors say a missing rank did not reach ("shared-memory reduction #N").
  static std::shared_ptr<HostGroup> create(Communicator& comm, std::size_t payload_bytes,
                                           std::chrono::milliseconds timeout, std::string activity);
  ~HostGroup();
  HostGroup(const HostGroup&) = delete;
  HostGroup& operator=(const HostGroup&) = delete;

  int rank() const { return rank_; }
  int size() const { return size_; }
  const std::string& host() const { return host_; }
  /// Rank `r`'s process id (meaningful here when pids_visible()).
  int pid(int r) const { return pids_[static_cast<std::size_t>(r)]; }
  /// True when every rank's pid names a running process here (one pid namespace).
  bool pids_visible() const { return pids_visible_; }
  /// What messages call rank `r`: its rank in the world communicator.
  int world_rank(int r) const { return world_ranks_[static_cast<std::size_t>(r)]; }
  /// `payload_bytes` of memory shared by every rank, 64-byte aligned.
  void* payload() const { return payload_; }

  /// Returns once every rank has called it as often as this one; bounded (see above).
  void barrier();

 private:
  struct RankLine;
  HostGroup() = default;
  /// Throws when a rank in `missing` has exited or the wait started at `start` timed out.
  void check_missing(const std::vector<int>& missing, std::uint64_t target,
                     std::chrono::steady_clock::time_point start) const;

  int rank_ = 0;
  int size_ = 1;
  std::string host_;
  std::string activity_;
  std::chrono::milliseconds timeout_{0};
  void* mapping_ = nullptr;
  std::size_t mapping_bytes_ = 0;
  RankLine* lines_ = nullptr;  ///< one cache line per rank: its barrier count
  void* payload_ = nullptr;
  std::vector<int> pids_;
  std::vector<int> world_ranks_;
  bool pids_visible_ = false;
  std::uint64_t barriers_ = 0;
};

}  // namespace haein::runtime::detail
