#pragma once
// The host exchanges a job's f32 buckets can take, set up once at the first step: the
// shared segment of this host's ranks, the peers' memory, or the segment on each host with
// MPI between the hosts (hierarchical); and the size of host pieces, asked for or measured.

#include <cstddef>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "bucket_exchange.hpp"
#include "bucket_plan.hpp"
#include "haein/runtime/communicator.hpp"
#include "haein/runtime/grad_bucketer.hpp"
#include "peer_memory.hpp"
#include "shared_memory_exchange.hpp"

namespace haein::runtime::detail {

/// Pieces of the peer-memory exchange when host_chunk_mb is 0: whole buckets, up to this.
/// A piece costs two barriers and passes through no buffer.
inline constexpr std::size_t kPeerPieceMax = std::size_t{64} << 20;

class HostPaths {
 public:
  HostPaths(Communicator& comm, const BucketerOptions& options) : comm(comm), options(options) {}

  /// Collective: the segment, the peers' memory or the hierarchy, as far as this job
  /// allows for `parameters`.
  void set_up(const std::vector<Parameter>& parameters);
  /// Collective: the host piece size: asked for, whole buckets where the peers' memory
  /// takes every host bucket, or measured for the path the other host buckets take.
  std::size_t choose_piece_bytes(const std::vector<Parameter>& parameters);
  /// What host f32 buckets take.
  HostF32Path path() const;

  std::unique_ptr<SharedMemoryExchange> segment;
  std::unique_ptr<Communicator> host_group;    ///< hierarchical: this host's ranks
  std::unique_ptr<Communicator> across_hosts;  ///< ... and this local index on every host
  std::unique_ptr<PeerMemory> peers;

 private:
  int world() const { return comm.size(); }
  std::size_t slot_elements(std::size_t bytes) const;
  std::size_t tune_collective_pieces(std::size_t host_bytes);
  std::size_t tune_segment_pieces(std::size_t host_bytes);
  std::unique_ptr<SharedMemoryExchange> make_segment(std::size_t elements);
  std::string why_not_hierarchical(const std::map<std::string, int>& per_host) const;
  void set_up_hierarchy(std::size_t elements);

  Communicator& comm;
  const BucketerOptions& options;
};

}  // namespace haein::runtime::detail
