#include "host_paths.hpp"

#include <algorithm>
#include <chrono>
#include <cstring>

#include "haein/common/log.hpp"
#include "piece_tuner.hpp"

namespace haein::runtime::detail {

namespace {

constexpr std::size_t kMiB = 1024 * 1024;
/// The largest piece the shared segment is tuned over: pieces beyond the caches only lose.
constexpr std::size_t kSegmentPieceMax = 4 * kMiB;

}  // namespace

HostF32Path HostPaths::path() const {
  if (peers) return HostF32Path::kPeerMemory;
  if (across_hosts) return HostF32Path::kHierarchical;
  if (segment) return HostF32Path::kSegment;
  return HostF32Path::kCollective;
}

/// Elements of the f32 pieces cut from `bytes` (as plan_buckets cuts them).
std::size_t HostPaths::slot_elements(std::size_t bytes) const {
  const std::size_t granule = 4 * static_cast<std::size_t>(world());
  return std::max(granule, bytes / sizeof(float) / granule * granule);
}

/// The piece size of host pieces through MPI: all-reductions of 0.25 to 64 MiB (at most
/// the gradients' size), timed.
std::size_t HostPaths::tune_collective_pieces(std::size_t host_bytes) {
  const auto candidates = piece_candidates(kMiB / 4, 64 * kMiB, host_bytes);
  std::vector<float> buffer(candidates.back() / sizeof(float), 1.0f);
  return tune_piece_bytes(
      comm, candidates, 6,
      [&](std::size_t bytes) {
        const auto start = std::chrono::steady_clock::now();
        comm.all_reduce(buffer.data(), buffer.data(), bytes / sizeof(float), DataType::kF32,
                        ReduceOp::kMax, {.async = true})
            .wait();
        return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() /
               static_cast<double>(bytes);
      },
      "host pieces");
}

/// The piece size of the shared segment: pieces of up to 32 MiB of gradients copied into
/// the slot, reduced and copied back, at 64 KiB to 4 MiB per piece. Keeps the segment at
/// the size chosen.
std::size_t HostPaths::tune_segment_pieces(std::size_t host_bytes) {
  const auto candidates = piece_candidates(kMiB / 16, kSegmentPieceMax, host_bytes);
  std::vector<float> gradients(std::min(host_bytes, 32 * kMiB) / sizeof(float), 1.0f);
  const std::size_t best = tune_piece_bytes(
      comm, candidates, 4,
      [&](std::size_t bytes) {
        const std::size_t piece = slot_elements(bytes);
        const auto start = std::chrono::steady_clock::now();
        for (std::size_t at = 0; at < gradients.size(); at += piece) {
          const std::size_t n = std::min(piece, gradients.size() - at);
          std::memcpy(segment->slot(), gradients.data() + at, n * sizeof(float));
          segment->reduce(n);
          for (int s = 0; s < segment->ranks(); ++s) {
            const auto part = segment->segment(s);
            std::memcpy(gradients.data() + at + part.begin, part.data,
                        (part.end - part.begin) * sizeof(float));
          }
        }
        return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() /
               static_cast<double>(gradients.size() * sizeof(float));
      },
      "shared-memory pieces");
  if (best < kSegmentPieceMax) {  // a smaller segment (collective, as is the choice)
    std::unique_ptr<SharedMemoryExchange> smaller = make_segment(slot_elements(best));
    // Hierarchical, each host makes its own: where one could not, every rank keeps the
    // segment it has (its slots hold the smaller pieces too), so all take the same path.
    std::int32_t made = smaller ? 1 : 0;
    comm.all_reduce(&made, &made, 1, DataType::kI32, ReduceOp::kMin);
    if (made == 1) segment = std::move(smaller);
  }
  return best;
}

/// The shared segment of the ranks of this host: all of them, or this host's group when
/// hierarchical. There its waits get twice the timeout: a peer that is late is waiting
/// in a collective between hosts, whose watchdog names the rank or host that holds it
/// up; the segment would blame the peer instead.
std::unique_ptr<SharedMemoryExchange> HostPaths::make_segment(std::size_t elements) {
  if (!host_group) return SharedMemoryExchange::create(comm, elements);
  return SharedMemoryExchange::create(*host_group, elements, 2 * host_group->options().timeout);
}

/// Why host f32 buckets of ranks on several hosts cannot be reduced hierarchically
/// (shared memory inside each host, MPI between them), or "" where they can.
std::string HostPaths::why_not_hierarchical(const std::map<std::string, int>& per_host) const {
  const int local = per_host.begin()->second;
  if (options.reduce_scatter) return "reduce-scatter mode reduces through MPI only";
  if (std::any_of(per_host.begin(), per_host.end(),
                  [&](const auto& entry) { return entry.second != local; }))
    return "the hosts have different numbers of ranks";
  if (local < 2) return "each host has one rank";
  return "";
}

/// Ranks on several hosts: the hierarchy where every host has the same number of ranks,
/// at least two (otherwise MPI alone). Says which, and why, once (rank 0).
void HostPaths::set_up_hierarchy(std::size_t elements) {
  std::map<std::string, int> per_host;
  for (const std::string& host : comm.hosts()) ++per_host[host];
  if (per_host.size() < 2) {  // one host: its segment could not be made (logged why)
    if (comm.rank() == 0) HAEIN_LOG(kInfo, "GradBucketer: host f32 pieces go through MPI");
    return;
  }
  std::string why_not = why_not_hierarchical(per_host);
  if (why_not.empty()) {
    host_group = std::make_unique<Communicator>(comm.split_by_host());
    across_hosts = std::make_unique<Communicator>(comm.split_across_hosts());
    segment = make_segment(elements);
    // Every host must take the same path: one whose segment could not be made drops it.
    std::int32_t made = segment ? 1 : 0;
    comm.all_reduce(&made, &made, 1, DataType::kI32, ReduceOp::kMin);
    if (made == 0) {
      segment.reset();
      across_hosts.reset();
      host_group.reset();
      why_not = "a host could not make its shared-memory segment";
    }
  }
  if (comm.rank() != 0) return;
  if (why_not.empty())
    HAEIN_LOG(kInfo,
              "GradBucketer: host f32 buckets are reduced hierarchically: shared "
              "memory among the "
                  << per_host.begin()->second << " ranks of each of the " << per_host.size()
                  << " hosts, MPI between the hosts");
  else
    HAEIN_LOG(kInfo, "GradBucketer: host f32 buckets go through MPI: the "
                         << world() << " ranks span " << per_host.size() << " hosts and "
                         << why_not);
}

/// The shared segment, the peers' memory or the hierarchy, as far as this job allows.
void HostPaths::set_up(const std::vector<Parameter>& parameters) {
  const bool shareable = std::any_of(parameters.begin(), parameters.end(), [](const Parameter& p) {
    return !p.device && p.type == DataType::kF32;
  });
  if (!options.host_shared_memory || !shareable || world() < 2) return;
  const std::size_t largest = options.host_chunk_mb > 0
                                  ? static_cast<std::size_t>(options.host_chunk_mb * kMiB)
                                  : kSegmentPieceMax;
  segment = SharedMemoryExchange::create(comm, slot_elements(largest));
  if (segment && options.host_peer_copy && !options.reduce_scatter) {
    peers = PeerMemory::create(comm, segment->group());
    if (!peers && comm.rank() == 0)
      HAEIN_LOG(kInfo, "GradBucketer: host f32 pieces are copied through the segment");
  }
  if (!segment) set_up_hierarchy(slot_elements(largest));
}

/// The host piece size: asked for, whole buckets where the peers' memory takes every
/// host bucket, or measured for the path the other host buckets take.
std::size_t HostPaths::choose_piece_bytes(const std::vector<Parameter>& parameters) {
  std::size_t host_bytes = 0;
  for (const Parameter& p : parameters)
    if (!p.device) host_bytes += p.count * size_of(p.type);
  const bool all_peer_memory =
      peers && std::all_of(parameters.begin(), parameters.end(), [&](const Parameter& p) {
        return p.device ||
               (p.type == DataType::kF32 && wire_of(p.type, options.wire_type) == DataType::kF32);
      });
  if (options.host_chunk_mb > 0) return static_cast<std::size_t>(options.host_chunk_mb * kMiB);
  if (all_peer_memory) return kPeerPieceMax;
  if (peers && host_bytes > 0) return tune_collective_pieces(host_bytes);  // MPI pieces only
  if (host_bytes > 0 && world() > 1)
    return segment ? tune_segment_pieces(host_bytes) : tune_collective_pieces(host_bytes);
  return 64 * kMiB;
}

}  // namespace haein::runtime::detail
