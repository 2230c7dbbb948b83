#pragma once
/// @file
/// The communicator's operations, one enum for every module: the runtime numbers,
/// fingerprints and records them, the cost model predicts three of them, and haein-bench
/// sweeps six. What each one is (its name, whether it takes a reduction operator or a
/// root, whether it is point-to-point, its bus-bandwidth factor) lives in one table here.

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <optional>
#include <span>
#include <string_view>

namespace haein {

/// NCCL's collectives, the barrier and the point-to-point pair. The order is the
/// fingerprint's numbering (runtime): append, never reorder.
enum class Collective : std::uint8_t {
  kAllReduce,
  kReduceScatter,
  kAllGather,
  kBroadcast,
  kReduce,
  kAllToAll,
  kBarrier,
  kSend,
  kRecv,
};

/// How busbw follows from algbw over n ranks (nccl-tests' PERFORMANCE.md).
enum class BusFactor : std::uint8_t {
  kAllReduce,  ///< 2(n-1)/n: every rank sends and receives the buffer twice over
  kShare,      ///< (n-1)/n: every rank moves all blocks but its own
  kOne,        ///< 1: the root's buffer crosses each link once (broadcast, reduce, p2p)
  kNone,       ///< 0: moves no data (barrier)
};

/// What an operation is.
struct CollectiveTraits {
  Collective collective;
  std::string_view name;     ///< "all_reduce": nccl-tests' file names, the flight recorder
  std::string_view compact;  ///< "allreduce": NCCL's function name, lower case
  bool reduces;              ///< takes a ReduceOp
  bool rooted;               ///< has a root
  bool p2p;                  ///< send/recv: numbered apart, never fingerprint-checked
  BusFactor bus;
};

inline constexpr CollectiveTraits kCollectives[] = {
    {Collective::kAllReduce, "all_reduce", "allreduce", true, false, false, BusFactor::kAllReduce},
    {Collective::kReduceScatter, "reduce_scatter", "reducescatter", true, false, false,
     BusFactor::kShare},
    {Collective::kAllGather, "all_gather", "allgather", false, false, false, BusFactor::kShare},
    {Collective::kBroadcast, "broadcast", "broadcast", false, true, false, BusFactor::kOne},
    {Collective::kReduce, "reduce", "reduce", true, true, false, BusFactor::kOne},
    {Collective::kAllToAll, "all_to_all", "alltoall", false, false, false, BusFactor::kShare},
    {Collective::kBarrier, "barrier", "barrier", false, false, false, BusFactor::kNone},
    {Collective::kSend, "send", "send", false, false, true, BusFactor::kOne},
    {Collective::kRecv, "recv", "recv", false, false, true, BusFactor::kOne},
};

namespace detail {
constexpr bool traits_in_enum_order() {
  for (std::size_t i = 0; i < std::size(kCollectives); ++i)
    if (static_cast<std::size_t>(kCollectives[i].collective) != i) return false;
  return true;
}
static_assert(traits_in_enum_order(), "kCollectives must list the enum in its order");
}  // namespace detail

constexpr const CollectiveTraits& traits(Collective collective) {
  return kCollectives[static_cast<std::size_t>(collective)];
}
/// "all_reduce", "reduce_scatter", ..., "send", "recv".
constexpr std::string_view name_of(Collective collective) { return traits(collective).name; }
constexpr bool reduces(Collective collective) { return traits(collective).reduces; }
constexpr bool rooted(Collective collective) { return traits(collective).rooted; }
constexpr bool is_p2p(Collective collective) { return traits(collective).p2p; }

/// busbw = algbw * bus_factor, nccl-tests' PERFORMANCE.md: all-reduce 2(n-1)/n;
/// reduce-scatter, all-gather and all-to-all (n-1)/n; broadcast, reduce, send and recv 1;
/// barrier 0. 0 for fewer than one rank.
constexpr double bus_factor(Collective collective, int ranks) {
  if (ranks < 1) return 0;
  const double n = ranks;
  switch (traits(collective).bus) {
    case BusFactor::kAllReduce:
      return 2 * (n - 1) / n;
    case BusFactor::kShare:
      return (n - 1) / n;
    case BusFactor::kOne:
      return 1;
    case BusFactor::kNone:
      return 0;
  }
  return 0;
}

/// The operation among `among` whose name or compact name is `text`; nullopt otherwise.
/// Callers pass the subset they support and word their own error.
constexpr std::optional<Collective> find_collective(std::string_view text,
                                                    std::span<const Collective> among) {
  for (const Collective collective : among)
    if (traits(collective).name == text || traits(collective).compact == text) return collective;
  return std::nullopt;
}

}  // namespace haein
