// The bucketer's state machine: registration, the collective first step (model check,
// layout, tuning), launching complete buckets in order, and reducing each bucket in
// pieces. A piece is packed, reduced and unpacked; compressed pieces take three stages
// (all-to-all of the wire type, an f32 sum of the shards, all-gather). Host f32 pieces of
// ranks on one host are reduced without MPI: each rank reads the others' gradients of its
// segment out of their memory and writes the sums into it (peer_memory.hpp), or, where
// that is not allowed, copies pieces through a shared segment (shared_memory_exchange.hpp).
#include "haein/runtime/grad_bucketer.hpp"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <deque>
#include <map>
#include <numeric>
#include <set>
#include <sstream>
#include <typeinfo>

#include "bucket_layout.hpp"
#include "communicator_impl.hpp"
#include "device_memory.hpp"
#include "haein/common/error.hpp"
#include "haein/common/log.hpp"
#include "haein/kernels/multi_tensor.hpp"
#include "haein/kernels/rank_order_sum.hpp"
#include "peer_memory.hpp"
#include "shared_memory_exchange.hpp"

namespace haein::runtime {

namespace {

using kernels::ElementType;

ElementType element_type(DataType type) {
  switch (type) {
    case DataType::kF32:
      return ElementType::kF32;
    case DataType::kF16:
      return ElementType::kF16;
    case DataType::kBF16:
      return ElementType::kBF16;
    default:
      break;
  }
  throw InvalidArgument("GradBucketer: gradients must be f32, f16 or bf16, not " +
                        std::string(name_of(type)));
}

/// FNV-1a over the bytes of a value: the model fingerprint compared across ranks.
void mix(std::uint64_t& hash, const void* data, std::size_t bytes) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (std::size_t i = 0; i < bytes; ++i) hash = (hash ^ p[i]) * 0x100000001b3ULL;
}

constexpr std::size_t kMiB = 1024 * 1024;
/// Host pieces in flight at once. Host collectives are blocking calls (on Open MPI 4.1
/// they measured faster than the libnbc nonblocking ones: docs/bucketing.md), so one
/// piece is reduced at a time, through one staging area that stays in cache. Raising it
/// needs care: a compressed piece starts its all-gather when its all-to-all is done, a
/// moment that differs per rank, and nonblocking collectives must start in the same
/// order on every rank.
constexpr std::size_t kHostWindow = 1;
/// The largest piece the shared-memory exchange is tuned over: pieces beyond the caches
/// only lose.
constexpr std::size_t kSharedPieceMax = 4 * kMiB;
/// Pieces of the direct path (host_peer_copy) when host_chunk_mb is 0: whole buckets, up
/// to this. A piece costs two barriers and passes through no buffer.
constexpr std::size_t kDirectPieceMax = 64 * kMiB;
/// Elements summed at a time on the direct path at 2 ranks: the sum and the peer's copy
/// (256 KiB each) stay in a core's L2. With more ranks, a buffer per rank, and less each.
constexpr std::size_t kDirectChunk = 64 * 1024;

}  // namespace

struct GradBucketer::Impl {
  struct Parameter {
    std::string name;
    void* gradient = nullptr;  // registered memory
    std::size_t count = 0;
    DataType type = DataType::kF32;
    bool device = false;
    bool ready = false;
    std::size_t bucket = 0;
    std::size_t offset = 0;
  };

  struct Bucket {
    detail::LayoutBucket layout;
    DataType wire = DataType::kF32;
    std::vector<std::byte> host_memory;  // views only: the wire type
    detail::DeviceMemory device_memory;
    detail::DeviceMemory device_scratch;
    std::byte* buffer = nullptr;
    std::byte* scratch = nullptr;
    std::vector<detail::Piece> pieces;
    std::size_t pending = 0;  // parameters not yet ready this step
  };

  enum class Stage : std::uint8_t { kReduce, kAllToAll, kGather };

  struct Task {
    std::size_t bucket = 0;
    detail::Piece piece;
    Stage stage = Stage::kReduce;
    /// Host: the current stage's collective. Device: every stage's, all enqueued at once
    /// (each must be completed for the flight recorder).
    std::vector<Work> works;
  };

  Impl(Communicator& c, BucketerOptions o) : comm(c), options(std::move(o)) {}

  Communicator& comm;
  BucketerOptions options;
  std::vector<Parameter> parameters;
  std::vector<detail::LayoutParameter> layout_parameters;
  std::vector<Bucket> buckets;
  bool built = false;
  bool in_step = false;
  bool sync = true;
  bool rebuilt = false;
  bool rebuild_pending = false;
  std::size_t next_bucket = 0;
  std::vector<std::size_t> ready_order;
  std::deque<Task> queued;     // host pieces waiting for the window
  std::deque<Task> in_flight;  // issued, not completed
  std::size_t chunk_bytes = 0;
  // Host buckets without views: pieces are packed into these, not into a bucket-sized
  // buffer, so that pack, reduce and unpack of a piece stay in cache.
  std::vector<std::byte> staging;
  std::vector<std::byte> staging_scratch;
  // Host f32 pieces when every rank is on this host (host_shared_memory), or among the
  // ranks of this host when the ranks span hosts with as many on each (hierarchical).
  std::unique_ptr<detail::SharedMemoryExchange> shared_memory;
  // Hierarchical: this host's ranks, and the ranks of this local index on every host.
  std::unique_ptr<Communicator> host_group;
  std::unique_ptr<Communicator> across_hosts;
  // ... read and written in the peers' memory (host_peer_copy), when allowed.
  std::unique_ptr<detail::PeerMemory> peers;
  std::vector<float> direct_sum;
  std::vector<float> direct_in;
  int device_index = -1;
  detail::DeviceStream stream;  // device buckets' work

  int world() const { return comm.size(); }
  bool compressed(const Bucket& b) const { return b.wire != b.layout.type; }
  std::size_t wire_size(const Bucket& b) const { return size_of(b.wire); }
  void* user_stream() const { return options.stream; }

  // ---- the first step ----------------------------------------------------------------

  void validate_options() const {
    if (options.bucket_cap_mb <= 0 || options.first_bucket_cap_mb <= 0 || options.host_chunk_mb < 0)
      throw InvalidArgument("GradBucketer: bucket caps must be positive (bucket_cap_mb " +
                            std::to_string(options.bucket_cap_mb) + ", first_bucket_cap_mb " +
                            std::to_string(options.first_bucket_cap_mb) + ")");
    if (options.wire_type) {
      const DataType wire = *options.wire_type;
      if (wire != DataType::kBF16 && wire != DataType::kF16 && wire != DataType::kF32)
        throw InvalidArgument("GradBucketer: wire_type must be bf16, f16 or f32, not " +
                              std::string(name_of(wire)));
      if (options.gradient_as_bucket_view && wire != DataType::kF32)
        throw InvalidArgument(
            "GradBucketer: gradient_as_bucket_view cannot be combined with a compressed "
            "wire_type (the bucket holds the wire type, not the gradients)");
    }
  }

  DataType wire_of(DataType type) const {
    if (!options.wire_type || *options.wire_type == type) return type;
    if (type != DataType::kF32)
      throw InvalidArgument("GradBucketer: wire compression to " +
                            std::string(name_of(*options.wire_type)) +
                            " needs f32 gradients, not " + std::string(name_of(type)));
    return *options.wire_type;
  }

  /// Every bucket on a device: small exchanges go through device memory, since ranks that
  /// are threads (ThreadBootstrap) have no host collectives.
  bool exchange_on_device() const {
    return !parameters.empty() && std::all_of(parameters.begin(), parameters.end(),
                                              [](const Parameter& p) { return p.device; });
  }

  /// Runs `op(send, recv)` on word buffers in host or device memory as above.
  template <class Op>
  void exchange(const std::vector<std::uint64_t>& send, std::vector<std::uint64_t>& recv, Op op) {
    if (!exchange_on_device()) {
      op(send.data(), recv.data());
      return;
    }
    const std::size_t send_bytes = send.size() * sizeof(std::uint64_t);
    const std::size_t recv_bytes = recv.size() * sizeof(std::uint64_t);
    detail::DeviceMemory memory = detail::allocate_device(send_bytes + recv_bytes, device_index);
    auto* base = static_cast<std::byte*>(memory.get());
    detail::copy_async(base, send.data(), send_bytes, stream.get());
    op(base, base + send_bytes);
    detail::copy_async(recv.data(), base + send_bytes, recv_bytes, stream.get());
    detail::synchronize(stream.get());
  }

  std::uint64_t layout_hash() const {
    std::uint64_t hash = 0xcbf29ce484222325ULL;
    for (const Parameter& p : parameters) {
      mix(hash, p.name.data(), p.name.size());
      mix(hash, &p.count, sizeof p.count);
      mix(hash, &p.type, sizeof p.type);
    }
    const DataType wire = options.wire_type.value_or(DataType::kF32);
    mix(hash, &wire, sizeof wire);
    mix(hash, &options.averaging, sizeof options.averaging);
    mix(hash, &options.reduce_scatter, sizeof options.reduce_scatter);
    return hash;
  }

  /// Every rank must have registered the same parameters with the same options.
  void check_models_agree() {
    std::uint64_t total = 0;
    for (const Parameter& p : parameters) total += p.count;
    const std::vector<std::uint64_t> mine = {layout_hash(), parameters.size(), total};
    std::vector<std::uint64_t> all(mine.size() * static_cast<std::size_t>(world()));
    exchange(mine, all, [&](const void* send, void* recv) {
      comm.all_gather(send, recv, mine.size(), DataType::kI64,
                      {.async = false, .stream = stream.get()});
    });
    std::vector<int> differ;
    for (int r = 0; r < world(); ++r)
      if (all[r * 3] != all[0]) differ.push_back(r);
    if (differ.empty()) return;
    std::ostringstream message;
    message << "GradBucketer: ranks registered different models or options: rank 0 has " << all[1]
            << " parameters with " << all[2] << " elements (layout hash " << std::hex << all[0]
            << std::dec << ")";
    for (const int r : differ)
      message << "; rank " << r << " has " << all[r * 3 + 1] << " parameters with "
              << all[r * 3 + 2] << " elements (layout hash " << std::hex << all[r * 3] << std::dec
              << ")";
    message << ". Every rank must register the same parameters (name, count, type) in the same "
               "order with the same wire_type, averaging and reduce_scatter.";
    throw InvalidArgument(message.str());
  }

  /// Times all-reductions of 0.25 to 64 MiB (at most the gradients' size) and takes the
  /// piece size with the best time per byte; the slowest rank's times decide, so all
  /// ranks pick the same.
  std::size_t tune_chunk_bytes(std::size_t host_bytes) {
    std::vector<std::size_t> candidates;
    for (std::size_t bytes = kMiB / 4; bytes <= 64 * kMiB; bytes *= 2) {
      candidates.push_back(bytes);
      if (bytes >= host_bytes) break;
    }
    std::vector<float> buffer(candidates.back() / sizeof(float), 1.0f);
    std::vector<double> medians;
    for (const std::size_t bytes : candidates) {
      const std::size_t count = bytes / sizeof(float);
      std::vector<double> times;
      for (int rep = 0; rep < 6; ++rep) {
        const auto start = std::chrono::steady_clock::now();
        comm.all_reduce(buffer.data(), buffer.data(), count, DataType::kF32, ReduceOp::kMax,
                        {.async = true})
            .wait();
        if (rep > 0)
          times.push_back(
              std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
      }
      std::nth_element(times.begin(), times.begin() + times.size() / 2, times.end());
      medians.push_back(times[times.size() / 2] / static_cast<double>(bytes));
    }
    comm.all_reduce(medians.data(), medians.data(), medians.size(), DataType::kF64, ReduceOp::kMax);
    const std::size_t best = static_cast<std::size_t>(
        std::min_element(medians.begin(), medians.end()) - medians.begin());
    std::ostringstream line;
    line << "GradBucketer: host pieces of " << candidates[best] / 1024 << " KiB (measured GB/s:";
    for (std::size_t i = 0; i < candidates.size(); ++i)
      line << " " << candidates[i] / 1024 << "K=" << 1e-9 / medians[i];
    line << ")";
    HAEIN_LOG(kInfo, line.str());
    return candidates[best];
  }

  /// Elements of the f32 pieces cut from `chunk` bytes (as build() cuts them).
  std::size_t slot_elements(std::size_t chunk) const {
    const std::size_t granule = 4 * static_cast<std::size_t>(world());
    return std::max(granule, chunk / sizeof(float) / granule * granule);
  }

  /// tune_chunk_bytes for the shared-memory exchange: times copying pieces of up to
  /// 32 MiB of gradients into the slot, reducing them and copying them back, at 64 KiB to
  /// 4 MiB per piece. Keeps the segment at the size chosen.
  std::size_t tune_shared_chunk_bytes(std::size_t host_bytes) {
    std::vector<std::size_t> candidates;
    for (std::size_t bytes = kMiB / 16; bytes <= kSharedPieceMax; bytes *= 2) {
      candidates.push_back(bytes);
      if (bytes >= host_bytes) break;
    }
    std::vector<float> gradients(std::min(host_bytes, 32 * kMiB) / sizeof(float), 1.0f);
    std::vector<double> seconds_per_byte;
    for (const std::size_t bytes : candidates) {
      const std::size_t piece = slot_elements(bytes);
      std::vector<double> times;
      for (int rep = 0; rep < 4; ++rep) {
        const auto start = std::chrono::steady_clock::now();
        for (std::size_t at = 0; at < gradients.size(); at += piece) {
          const std::size_t n = std::min(piece, gradients.size() - at);
          std::memcpy(shared_memory->slot(), gradients.data() + at, n * sizeof(float));
          shared_memory->reduce(n);
          for (int s = 0; s < shared_memory->ranks(); ++s) {
            const auto segment = shared_memory->segment(s);
            std::memcpy(gradients.data() + at + segment.begin, segment.data,
                        (segment.end - segment.begin) * sizeof(float));
          }
        }
        if (rep > 0)
          times.push_back(
              std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
      }
      std::nth_element(times.begin(), times.begin() + times.size() / 2, times.end());
      seconds_per_byte.push_back(times[times.size() / 2] /
                                 static_cast<double>(gradients.size() * sizeof(float)));
    }
    comm.all_reduce(seconds_per_byte.data(), seconds_per_byte.data(), seconds_per_byte.size(),
                    DataType::kF64, ReduceOp::kMax);
    const std::size_t best = static_cast<std::size_t>(
        std::min_element(seconds_per_byte.begin(), seconds_per_byte.end()) -
        seconds_per_byte.begin());
    std::ostringstream line;
    line << "GradBucketer: shared-memory pieces of " << candidates[best] / 1024
         << " KiB (measured GB/s:";
    for (std::size_t i = 0; i < candidates.size(); ++i)
      line << " " << candidates[i] / 1024 << "K=" << 1e-9 / seconds_per_byte[i];
    line << ")";
    HAEIN_LOG(kInfo, line.str());
    if (candidates[best] < kSharedPieceMax)  // a smaller segment (collective, as is the choice)
      shared_memory = make_exchange(slot_elements(candidates[best]));
    return candidates[best];
  }

  /// The shared-memory exchange of the ranks of this host: all of them, or this host's
  /// group when hierarchical. There its waits get twice the timeout: a peer that is late
  /// is waiting in a collective between hosts, whose watchdog names the rank or host
  /// that holds it up; the exchange would blame the peer instead.
  std::unique_ptr<detail::SharedMemoryExchange> make_exchange(std::size_t elements) {
    if (!host_group) return detail::SharedMemoryExchange::create(comm, elements);
    return detail::SharedMemoryExchange::create(*host_group, elements,
                                                2 * host_group->options().timeout);
  }

  /// Ranks on several hosts: shared memory inside each host and MPI between the hosts,
  /// where every host has the same number of ranks, at least two (otherwise MPI alone).
  /// Says which, and why, once (rank 0).
  void set_up_hierarchy(std::size_t elements) {
    const auto& hosts = comm.hosts();
    std::map<std::string, int> per_host;
    for (const std::string& host : hosts) ++per_host[host];
    if (per_host.size() < 2) {  // one host: its segment could not be made (logged why)
      if (comm.rank() == 0) HAEIN_LOG(kInfo, "GradBucketer: host f32 pieces go through MPI");
      return;
    }
    std::string why_not;
    const int local = per_host.begin()->second;
    if (options.reduce_scatter)
      why_not = "reduce-scatter mode reduces through MPI only";
    else if (std::any_of(per_host.begin(), per_host.end(),
                         [&](const auto& entry) { return entry.second != local; }))
      why_not = "the hosts have different numbers of ranks";
    else if (local < 2)
      why_not = "each host has one rank";
    if (why_not.empty()) {
      host_group = std::make_unique<Communicator>(comm.split_by_host());
      across_hosts = std::make_unique<Communicator>(comm.split_across_hosts());
      shared_memory = make_exchange(elements);
      // Every host must take the same path: one whose segment could not be made drops it.
      std::int32_t made = shared_memory ? 1 : 0;
      comm.all_reduce(&made, &made, 1, DataType::kI32, ReduceOp::kMin);
      if (made == 0) {
        shared_memory.reset();
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
                    << local << " ranks of each of the " << per_host.size()
                    << " hosts, MPI between the hosts");
    else
      HAEIN_LOG(kInfo, "GradBucketer: host f32 buckets go through MPI: the "
                           << world() << " ranks span " << per_host.size() << " hosts and "
                           << why_not);
  }

  void first_step() {
    validate_options();
    if (parameters.empty()) throw InvalidArgument("GradBucketer: no parameters were registered");
    for (const Parameter& p : parameters) {
      if (p.device && device_index < 0) device_index = detail::device_of(p.gradient);
      wire_of(p.type);  // throws for an impossible compression
    }
    if (device_index >= 0) stream = detail::create_stream(device_index);
    check_models_agree();
    std::size_t host_bytes = 0;
    for (const Parameter& p : parameters)
      if (!p.device) host_bytes += p.count * size_of(p.type);
    const bool shareable =
        std::any_of(parameters.begin(), parameters.end(),
                    [](const Parameter& p) { return !p.device && p.type == DataType::kF32; });
    if (options.host_shared_memory && shareable && world() > 1) {
      const std::size_t largest = options.host_chunk_mb > 0
                                      ? static_cast<std::size_t>(options.host_chunk_mb * kMiB)
                                      : kSharedPieceMax;
      shared_memory = detail::SharedMemoryExchange::create(comm, slot_elements(largest));
      if (shared_memory && options.host_peer_copy && !options.reduce_scatter) {
        peers = detail::PeerMemory::create(comm, shared_memory->group());
        if (!peers && comm.rank() == 0)
          HAEIN_LOG(kInfo, "GradBucketer: host f32 pieces are copied through the segment");
      }
      if (!shared_memory) set_up_hierarchy(slot_elements(largest));
    }
    // Host buckets that the direct path does not take still need a tuned piece.
    const bool all_direct =
        peers && std::all_of(parameters.begin(), parameters.end(), [&](const Parameter& p) {
          return p.device || (p.type == DataType::kF32 && wire_of(p.type) == DataType::kF32);
        });
    if (options.host_chunk_mb > 0)
      chunk_bytes = static_cast<std::size_t>(options.host_chunk_mb * kMiB);
    else if (all_direct)
      chunk_bytes = kDirectPieceMax;
    else if (peers && host_bytes > 0)
      chunk_bytes = tune_chunk_bytes(host_bytes);  // for the MPI pieces only
    else if (host_bytes > 0 && world() > 1)
      chunk_bytes =
          shared_memory ? tune_shared_chunk_bytes(host_bytes) : tune_chunk_bytes(host_bytes);
    else
      chunk_bytes = 64 * kMiB;
    std::vector<std::size_t> order(parameters.size());
    std::iota(order.rbegin(), order.rend(), std::size_t{0});  // reverse registration order
    build(order);
  }

  // ---- layout and memory ---------------------------------------------------------------

  /// (Re)builds the buckets for `order`. With views, gradients move into the new buckets.
  void build(const std::vector<std::size_t>& order) {
    std::vector<void*> previous(parameters.size());
    for (std::size_t id = 0; id < parameters.size(); ++id) previous[id] = gradient_of(id);
    std::vector<Bucket> old = std::move(buckets);
    buckets.clear();
    const auto cap = static_cast<std::size_t>(options.bucket_cap_mb * kMiB);
    const auto first_cap = static_cast<std::size_t>(options.first_bucket_cap_mb * kMiB);
    std::vector<detail::LayoutBucket> layout;
    {
      // Layout per wire size so that offsets are 16-byte aligned in the wire type.
      std::vector<detail::LayoutParameter> wide;
      std::vector<std::size_t> wide_order, narrow_order;
      for (const std::size_t id : order)
        (size_of(wire_of(parameters[id].type)) == 4 ? wide_order : narrow_order).push_back(id);
      for (auto [ids, alignment] :
           {std::pair{&wide_order, std::size_t{4}}, std::pair{&narrow_order, std::size_t{8}}}) {
        if (ids->empty()) continue;
        auto part = detail::assign_buckets(layout_parameters, *ids, first_cap, cap, alignment,
                                           alignment * static_cast<std::size_t>(world()));
        for (auto& b : part) layout.push_back(std::move(b));
      }
    }
    for (detail::LayoutBucket& l : layout) {
      Bucket b;
      b.wire = wire_of(l.type);
      const std::size_t bytes = l.elements * size_of(b.wire);
      if (l.device) {
        b.device_memory = detail::allocate_device(bytes, device_index);
        b.buffer = static_cast<std::byte*>(b.device_memory.get());
        if (b.wire != l.type) {
          b.device_scratch = detail::allocate_device(bytes, device_index);
          b.scratch = static_cast<std::byte*>(b.device_scratch.get());
        }
      } else {
        if (options.gradient_as_bucket_view) {
          b.host_memory.assign(bytes, std::byte{0});
          b.buffer = b.host_memory.data();
        }
      }
      if (l.device) detail::memset_async(b.buffer, 0, bytes, stream.get());
      const std::size_t granule = (16 / size_of(b.wire)) * static_cast<std::size_t>(world());
      const bool direct = peers && !l.device && l.type == DataType::kF32 && b.wire == l.type;
      const std::size_t piece_bytes =
          direct && options.host_chunk_mb <= 0 ? kDirectPieceMax : chunk_bytes;
      const std::size_t chunk =
          l.device ? l.elements
                   : std::max(granule, piece_bytes / size_of(b.wire) / granule * granule);
      b.pieces = detail::pieces_of(l.elements, chunk);
      b.layout = std::move(l);
      buckets.push_back(std::move(b));
    }
    for (std::size_t index = 0; index < buckets.size(); ++index) {
      const Bucket& b = buckets[index];
      for (std::size_t i = 0; i < b.layout.parameters.size(); ++i) {
        Parameter& p = parameters[b.layout.parameters[i]];
        p.bucket = index;
        p.offset = b.layout.offsets[i];
      }
    }
    built = true;
    if (options.gradient_as_bucket_view) {
      // Views start from what the gradients held (the registered memory, or the old bucket).
      for (std::size_t id = 0; id < parameters.size(); ++id) {
        const Parameter& p = parameters[id];
        copy(gradient_of(id), previous[id], p.count * size_of(p.type), p.device);
      }
    }
    if (peers) share_gradients();
    if (device_index >= 0) detail::synchronize(stream.get());
  }

  /// Direct path: tells every rank where this rank's gradients are (collective; they move
  /// with views), and asks for 2 MiB pages under them, which the peers' reads and writes
  /// go through much faster (peer_memory.hpp).
  void share_gradients() {
    std::vector<const void*> addresses(parameters.size());
    std::vector<std::pair<std::uintptr_t, std::uintptr_t>> ranges;
    std::size_t host_bytes = 0;
    for (std::size_t id = 0; id < parameters.size(); ++id) {
      addresses[id] = gradient_of(id);
      const Parameter& p = parameters[id];
      if (p.device || p.count == 0) continue;
      const auto begin = reinterpret_cast<std::uintptr_t>(addresses[id]);
      ranges.emplace_back(begin, begin + p.count * size_of(p.type));
      host_bytes += p.count * size_of(p.type);
    }
    peers->publish(comm, addresses);
    // Neighbouring tensors (separate allocations a header apart) count as one range.
    std::sort(ranges.begin(), ranges.end());
    std::size_t huge = 0;
    for (std::size_t i = 0; i < ranges.size();) {
      std::uintptr_t end = ranges[i].second;
      std::size_t j = i + 1;
      while (j < ranges.size() && ranges[j].first <= end + 4096)
        end = std::max(end, ranges[j++].second);
      huge += detail::PeerMemory::back_with_huge_pages(
          reinterpret_cast<const void*>(ranges[i].first), reinterpret_cast<const void*>(end));
      i = j;
    }
    HAEIN_LOG(kDebug, "GradBucketer: the peers read and write this rank's gradients in place; "
                          << huge / kMiB << " of " << host_bytes / kMiB
                          << " MiB of them are on 2 MiB pages");
  }

  void copy(void* destination, const void* source, std::size_t bytes, bool device) {
    if (destination == source || bytes == 0) return;
    if (device)
      detail::copy_async(destination, source, bytes, stream.get());
    else
      std::memmove(destination, source, bytes);
  }

  void* gradient_of(std::size_t id) const {
    const Parameter& p = parameters[id];
    if (!options.gradient_as_bucket_view || !built) return p.gradient;
    const Bucket& b = buckets[p.bucket];
    return b.buffer + p.offset * size_of(b.wire);
  }

  // ---- one step ------------------------------------------------------------------------

  void begin(bool synchronised) {
    if (in_step)
      throw InvalidArgument("GradBucketer: begin_step called again before finish() of the step");
    if (!built) first_step();
    // The layout changes between steps only, so that what finish() left (gradient views,
    // owned_ranges()) stays true until the next step begins.
    if (rebuild_pending) {
      rebuild_pending = false;
      rebuild();
    }
    sync = synchronised;
    in_step = true;
    next_bucket = 0;
    ready_order.clear();
    for (Parameter& p : parameters) p.ready = false;
    for (Bucket& b : buckets) b.pending = b.layout.parameters.size();
  }

  void ready(std::size_t id) {
    if (!in_step)
      throw InvalidArgument("GradBucketer: mark_ready outside a step (call begin_step first)");
    if (id >= parameters.size())
      throw InvalidArgument("GradBucketer: mark_ready of parameter " + std::to_string(id) +
                            ", but only " + std::to_string(parameters.size()) + " are registered");
    Parameter& p = parameters[id];
    if (p.ready)
      throw InvalidArgument("GradBucketer: parameter '" + p.name +
                            "' was marked ready twice in one step");
    p.ready = true;
    if (!sync) return;
    ready_order.push_back(id);
    --buckets[p.bucket].pending;
    launch_complete_buckets();
    progress();
  }

  void launch_complete_buckets() {
    while (next_bucket < buckets.size() && buckets[next_bucket].pending == 0) {
      const std::size_t index = next_bucket++;
      Bucket& b = buckets[index];
      // Gradients are written on the backward stream: bucket work waits for them.
      if (b.layout.device) detail::stream_wait(stream.get(), user_stream());
      for (const detail::Piece& piece : b.pieces) {
        Task task{index, piece, compressed(b) ? Stage::kAllToAll : Stage::kReduce, {}};
        if (b.layout.device) {
          issue(task);
          in_flight.push_back(std::move(task));
        } else {
          queued.push_back(std::move(task));
        }
      }
    }
    fill_window();
  }

  void fill_window() {
    while (!queued.empty() && in_flight.size() < kHostWindow) {
      Task task = std::move(queued.front());
      queued.pop_front();
      issue(task);
      in_flight.push_back(std::move(task));
    }
  }

  bool staged(const Bucket& b) const {
    return !b.layout.device && !options.gradient_as_bucket_view;
  }

  /// Where a piece is reduced: its place in the bucket, or the staging area.
  std::byte* piece_base(Bucket& b, const detail::Piece& piece) {
    if (!staged(b)) return b.buffer + piece.begin * wire_size(b);
    const std::size_t bytes = (piece.end - piece.begin) * wire_size(b);
    if (staging.size() < bytes) staging.resize(bytes);
    return staging.data();
  }

  std::byte* piece_scratch(Bucket& b, const detail::Piece& piece) {
    if (!staged(b)) return b.scratch + piece.begin * wire_size(b);
    const std::size_t bytes = (piece.end - piece.begin) * wire_size(b);
    if (staging_scratch.size() < bytes) staging_scratch.resize(bytes);
    return staging_scratch.data();
  }

  float divisor_scale() const { return 1.0f / static_cast<float>(world()); }

  /// kAvgOp uses ncclAvg on the device. On the host the MPI backend would divide in a pass
  /// of its own; the unpack's scale does it for free instead.
  bool device_average(const Bucket& b) const {
    return options.averaging == Averaging::kAvgOp && b.layout.device;
  }

  /// Uncompressed pieces divided by the unpack (compressed ones divide in sum_shards).
  bool divide_after(const Bucket& b) const {
    if (compressed(b)) return false;
    return options.averaging == Averaging::kPostDivide ||
           (options.averaging == Averaging::kAvgOp && !device_average(b));
  }

  /// Slices of the ready parameters inside [begin, end), relative to bucket element `begin`;
  /// parameters not ready get nullptr (zero-filled by pack).
  std::vector<kernels::TensorSlice> slices(const Bucket& b, std::size_t begin, std::size_t end,
                                           bool ready_only_data) const {
    std::vector<kernels::TensorSlice> out;
    for (const detail::Overlap& o : detail::overlaps(b.layout, layout_parameters, begin, end)) {
      const Parameter& p = parameters[o.parameter];
      auto* data =
          static_cast<std::byte*>(gradient_of(o.parameter)) + o.parameter_offset * size_of(p.type);
      out.push_back(
          {(ready_only_data && !p.ready) ? nullptr : data, o.count, o.bucket_offset - begin});
    }
    return out;
  }

  /// Prepares a piece (pack, or for views zero-fill and pre-scale) and starts its first
  /// collective. Device pieces enqueue every stage and the unpack at once.
  void issue(Task& task) {
    Bucket& b = buckets[task.bucket];
    if (shared(b)) return naming_piece(task, [&] { issue_shared(task); });
    const detail::Piece piece = task.piece;
    const std::size_t n = piece.end - piece.begin;
    std::byte* base = piece_base(b, piece);
    const bool device = b.layout.device;
    void* s = stream.get();
    const float pre = options.averaging == Averaging::kPreDivide ? divisor_scale() : 1.0f;
    if (!options.gradient_as_bucket_view) {
      const auto list = slices(b, piece.begin, piece.end, true);
      const kernels::PackArgs args{list.data(), list.size(),          element_type(b.layout.type),
                                   base,        element_type(b.wire), pre,
                                   nullptr};
      if (device)
        kernels::pack_device(args, s);
      else
        kernels::pack_host(args);
    } else {
      for (const detail::Overlap& o :
           detail::overlaps(b.layout, layout_parameters, piece.begin, piece.end)) {
        if (parameters[o.parameter].ready) continue;
        std::byte* at = b.buffer + o.bucket_offset * wire_size(b);
        if (device)
          detail::memset_async(at, 0, o.count * wire_size(b), s);
        else
          std::memset(at, 0, o.count * wire_size(b));
      }
      if (pre != 1.0f) {
        if (device)
          kernels::scale_device(base, n, element_type(b.wire), pre, s);
        else
          kernels::scale_host(base, n, element_type(b.wire), pre);
      }
    }
    const std::size_t shard = n / static_cast<std::size_t>(world());
    std::byte* my_shard = base + static_cast<std::size_t>(comm.rank()) * shard * wire_size(b);
    const OpOptions async{.async = device, .stream = s};
    if (!compressed(b)) {
      const ReduceOp op = device_average(b) ? ReduceOp::kAvg : ReduceOp::kSum;
      task.works.push_back(options.reduce_scatter
                               ? comm.reduce_scatter(base, my_shard, shard, b.wire, op, async)
                               : comm.all_reduce(base, base, n, b.wire, op, async));
    } else {
      task.works.push_back(comm.all_to_all(base, piece_scratch(b, piece), shard, b.wire, async));
      if (device) {
        sum_shards(task);
        if (!options.reduce_scatter)
          task.works.push_back(comm.all_gather(my_shard, base, shard, b.wire, async));
      }
    }
    if (device) unpack(task);
  }

  /// Runs a host exchange's step of `task`. A plain Error from it (a rank that did not
  /// arrive or exited, a failed read of a peer's memory) gets the bucket and the piece;
  /// the more specific errors (misuse, MPI) pass as they are.
  template <class Step>
  void naming_piece(const Task& task, Step step) {
    try {
      step();
    } catch (const Error& error) {
      if (typeid(error) != typeid(Error)) throw;
      throw Error("GradBucketer: bucket " + std::to_string(task.bucket) + ", elements " +
                  std::to_string(task.piece.begin) + "-" + std::to_string(task.piece.end) + ": " +
                  error.what());
    }
  }

  /// Reduced through the shared-memory exchange: f32 host buckets without compression,
  /// with or without views (gradient_of() says where the gradients are).
  bool shared(const Bucket& b) const {
    return shared_memory && !b.layout.device && b.layout.type == DataType::kF32 &&
           b.wire == DataType::kF32;
  }

  /// Shared buckets whose pieces are summed in the peers' memory (host_peer_copy).
  bool direct(const Bucket& b) const { return peers && shared(b); }

  /// Reduces the piece through the exchange (collective, blocking). All-reduce: the other
  /// ranks' segments are packed into this rank's slot, and this rank's own segment is
  /// summed straight from its gradients and written back to them, divided, together with
  /// the slot copy the others read. That moves each gradient byte once less than packing
  /// the whole piece and unpacking all of it. Reduce-scatter packs the whole piece.
  void issue_shared(Task& task) {
    Bucket& b = buckets[task.bucket];
    if (direct(b)) return issue_direct(task);
    if (across_hosts) return issue_hierarchical(task);
    const detail::Piece piece = task.piece;
    const std::size_t n = piece.end - piece.begin;
    const float pre = options.averaging == Averaging::kPreDivide ? divisor_scale() : 1.0f;
    float* slot = shared_memory->slot();
    if (options.reduce_scatter) {
      const auto list = slices(b, piece.begin, piece.end, true);
      kernels::pack_host(
          {list.data(), list.size(), ElementType::kF32, slot, ElementType::kF32, pre, nullptr});
      shared_memory->reduce(n);
      return;
    }
    const int me = comm.rank();
    for (int s = 0; s < world(); ++s) {
      if (s == me) continue;
      const auto [begin, end] = shared_memory->bounds(s, n);
      if (begin == end) continue;
      const auto list = slices(b, piece.begin + begin, piece.begin + end, true);
      kernels::pack_host({list.data(), list.size(), ElementType::kF32, slot + begin,
                          ElementType::kF32, pre, nullptr});
    }
    shared_memory->wait_written(n);
    const auto [begin, end] = shared_memory->bounds(me, n);
    const float post = divide_after(b) ? divisor_scale() : 1.0f;
    if (begin < end) {
      for (const detail::Overlap& o :
           detail::overlaps(b.layout, layout_parameters, piece.begin + begin, piece.begin + end)) {
        float* gradient = static_cast<float*>(gradient_of(o.parameter)) + o.parameter_offset;
        shared_memory->sum_own(o.bucket_offset - piece.begin, o.count,
                               parameters[o.parameter].ready ? gradient : nullptr, pre, post,
                               gradient);
      }
    }
    shared_memory->finish_reduction();
  }

  /// Hierarchical all-reduce of a piece: this host's ranks sum it through shared memory, one
  /// segment each, in rank order; each rank then all-reduces its segment in its slot with
  /// the ranks of the same local index on the other hosts (MPI); after a barrier every
  /// rank unpacks every segment (unpack_shared). All ranks get the same bits: the host
  /// sums are each made by one rank, the sums across hosts by MPI for all of them.
  void issue_hierarchical(Task& task) {
    Bucket& b = buckets[task.bucket];
    const detail::Piece piece = task.piece;
    const std::size_t n = piece.end - piece.begin;
    const float pre = options.averaging == Averaging::kPreDivide ? divisor_scale() : 1.0f;
    const auto list = slices(b, piece.begin, piece.end, true);
    kernels::pack_host({list.data(), list.size(), ElementType::kF32, shared_memory->slot(),
                        ElementType::kF32, pre, nullptr});
    shared_memory->reduce(n);
    const auto mine = shared_memory->segment(host_group->rank());
    if (mine.end > mine.begin) {
      // This rank's own slot: the others read it only after the barrier below.
      auto* sum = const_cast<float*>(mine.data);
      across_hosts->all_reduce(sum, sum, mine.end - mine.begin, DataType::kF32, ReduceOp::kSum);
    }
    shared_memory->sync();
  }

  /// Unpacks the reduced piece from its owners' slots: the other ranks' segments
  /// (all-reduce; this rank's own is in place already), or this rank's shard.
  void unpack_shared(const Task& task) {
    Bucket& b = buckets[task.bucket];
    if (direct(b)) return;  // every rank's gradients hold the sums already
    const bool hierarchical = across_hosts != nullptr;
    const detail::Piece range = reduced_range(task.piece);
    // Fused: this rank's own segment is in its gradients already (not hierarchical).
    const bool fused = !options.reduce_scatter && !hierarchical;
    const float post = !fused && divide_after(b) ? divisor_scale() : 1.0f;
    for (int owner = 0; owner < shared_memory->ranks(); ++owner) {
      if (fused && owner == comm.rank()) continue;
      const auto segment = shared_memory->segment(owner);
      const std::size_t begin = std::max(task.piece.begin + segment.begin, range.begin);
      const std::size_t end = std::min(task.piece.begin + segment.end, range.end);
      if (begin >= end) continue;
      const auto list = slices(b, begin, end, false);
      kernels::unpack_host({list.data(), list.size(), ElementType::kF32,
                            segment.data + (begin - task.piece.begin - segment.begin),
                            ElementType::kF32, post, false});
    }
  }

  /// The direct path: after the first barrier every rank's gradients of the piece are
  /// final; each rank sums its segment over the ranks, reading the others' terms out of
  /// their memory, and writes the result into its own gradients and theirs; after the
  /// second barrier the piece is reduced everywhere. Each gradient byte is read once and
  /// written once, by one of the ranks. The sums are the fused path's, bit for bit.
  void issue_direct(Task& task) {
    Bucket& b = buckets[task.bucket];
    const detail::Piece piece = task.piece;
    // A gradient not marked ready is a zero term. The reduced sum overwrites it anyway,
    // so zeroing it in place is what the others read.
    for (const detail::Overlap& o :
         detail::overlaps(b.layout, layout_parameters, piece.begin, piece.end))
      if (!parameters[o.parameter].ready)
        std::memset(static_cast<float*>(gradient_of(o.parameter)) + o.parameter_offset, 0,
                    o.count * sizeof(float));
    peers->sync();
    const auto [begin, end] = shared_memory->bounds(comm.rank(), piece.end - piece.begin);
    if (begin < end) sum_direct(b, piece.begin + begin, piece.begin + end);
    peers->sync();
  }

  /// Bucket elements [begin, end) summed over the ranks in rank order, a chunk at a time,
  /// and written to every rank's gradients. Per chunk: every other rank's terms are read
  /// into a buffer each; one pass over this rank's own gradients then sums all the terms
  /// in rank order and writes the result back and into the chunk's sum, which goes to the
  /// others last.
  void sum_direct(const Bucket& b, std::size_t begin, std::size_t end) {
    const auto spans = detail::overlaps(b.layout, layout_parameters, begin, end);
    const float pre = options.averaging == Averaging::kPreDivide ? divisor_scale() : 1.0f;
    const float post = divide_after(b) ? divisor_scale() : 1.0f;
    const int me = comm.rank();
    // The sum and one buffer per other rank stay in a core's L2.
    const std::size_t chunk =
        std::max<std::size_t>(4096, kDirectChunk * 2 / static_cast<std::size_t>(world()));
    direct_sum.resize(chunk);
    direct_in.resize(chunk * static_cast<std::size_t>(std::max(1, world() - 1)));
    struct Part {
      std::size_t parameter, element, count;
    };
    std::vector<Part> parts;
    std::vector<detail::PeerMemory::Run> runs;
    auto runs_of = [&](int rank) -> const std::vector<detail::PeerMemory::Run>& {
      runs.clear();
      for (const Part& part : parts)
        runs.push_back({peers->address(rank, part.parameter) + part.element * sizeof(float),
                        part.count * sizeof(float)});
      return runs;
    };
    // Rank s's terms (s != me): the buffers skip this rank.
    auto buffer_of = [&](int s) {
      return direct_in.data() + static_cast<std::size_t>(s < me ? s : s - 1) * chunk;
    };
    std::vector<kernels::SumTerm> terms(static_cast<std::size_t>(world()));
    std::size_t span = 0;
    std::size_t into = 0;  // elements of spans[span] already summed
    while (span < spans.size()) {
      parts.clear();
      std::size_t total = 0;
      while (span < spans.size() && total < chunk) {
        const detail::Overlap& o = spans[span];
        const std::size_t take = std::min(o.count - into, chunk - total);
        if (take > 0) parts.push_back({o.parameter, o.parameter_offset + into, take});
        total += take;
        into += take;
        if (into == o.count) {
          ++span;
          into = 0;
        }
      }
      float* sum = direct_sum.data();
      for (int s = 0; s < world(); ++s)
        if (s != me) peers->read(s, runs_of(s), buffer_of(s));
      std::size_t at = 0;
      for (const Part& part : parts) {
        float* own = static_cast<float*>(gradient_of(part.parameter)) + part.element;
        for (int s = 0; s < world(); ++s)
          terms[static_cast<std::size_t>(s)] = {s == me ? own : buffer_of(s) + at, pre};
        kernels::sum_in_rank_order({terms.data(), world(), part.count, post, own, sum + at});
        at += part.count;
      }
      for (int s = 0; s < world(); ++s)
        if (s != me) peers->write(s, runs_of(s), sum);
    }
  }

  /// Compressed pieces: this rank's shard is the f32 sum of what every rank sent it.
  void sum_shards(const Task& task) {
    Bucket& b = buckets[task.bucket];
    const std::size_t n = task.piece.end - task.piece.begin;
    const std::size_t shard = n / static_cast<std::size_t>(world());
    std::byte* base = piece_base(b, task.piece);
    const float scale =
        options.averaging == Averaging::kAvgOp || options.averaging == Averaging::kPostDivide
            ? divisor_scale()
            : 1.0f;
    const kernels::ShardSumArgs args{
        piece_scratch(b, task.piece),
        world(),
        shard,
        element_type(b.wire),
        base + static_cast<std::size_t>(comm.rank()) * shard * wire_size(b),
        scale};
    if (b.layout.device)
      kernels::sum_shards_device(args, stream.get());
    else
      kernels::sum_shards_host(args);
  }

  /// The reduced range of a piece: all of it, or this rank's shard in reduce-scatter mode.
  detail::Piece reduced_range(const detail::Piece& piece) const {
    if (!options.reduce_scatter) return piece;
    const std::size_t shard = (piece.end - piece.begin) / static_cast<std::size_t>(world());
    const std::size_t begin = piece.begin + static_cast<std::size_t>(comm.rank()) * shard;
    return {begin, begin + shard};
  }

  /// Brings a reduced piece to the gradients (cast back, post-divide).
  void unpack(const Task& task) {
    Bucket& b = buckets[task.bucket];
    if (shared(b)) return unpack_shared(task);
    const detail::Piece range = reduced_range(task.piece);
    const bool device = b.layout.device;
    const float post = divide_after(b) ? divisor_scale() : 1.0f;
    std::byte* base = piece_base(b, task.piece) + (range.begin - task.piece.begin) * wire_size(b);
    if (options.gradient_as_bucket_view) {
      if (post == 1.0f) return;
      if (device)
        kernels::scale_device(base, range.end - range.begin, element_type(b.wire), post,
                              stream.get());
      else
        kernels::scale_host(base, range.end - range.begin, element_type(b.wire), post);
      return;
    }
    const auto list = slices(b, range.begin, range.end, false);
    const kernels::UnpackArgs args{list.data(), list.size(),          element_type(b.layout.type),
                                   base,        element_type(b.wire), post,
                                   false};
    if (device)
      kernels::unpack_device(args, stream.get());
    else
      kernels::unpack_host(args);
  }

  /// Host pieces: the next stage once the current collective is done.
  void advance(Task& task) {
    if (task.stage == Stage::kAllToAll) {
      sum_shards(task);
      if (!options.reduce_scatter) {
        Bucket& b = buckets[task.bucket];
        const std::size_t n = task.piece.end - task.piece.begin;
        const std::size_t shard = n / static_cast<std::size_t>(world());
        std::byte* base = piece_base(b, task.piece);
        task.stage = Stage::kGather;
        task.works.back() =
            comm.all_gather(base + static_cast<std::size_t>(comm.rank()) * shard * wire_size(b),
                            base, shard, b.wire, {.async = true});
        return;
      }
    }
    unpack(task);
  }

  /// Completes host pieces whose collectives are done, in order, and issues queued ones.
  void progress() {
    while (!in_flight.empty()) {
      Task& front = in_flight.front();
      for (Work& work : front.works)
        if (!work.test()) return;
      if (buckets[front.bucket].layout.device) {
        in_flight.pop_front();
        continue;
      }
      const bool last_stage = front.stage == Stage::kReduce ||
                              (front.stage == Stage::kAllToAll && options.reduce_scatter) ||
                              front.stage == Stage::kGather;
      advance(front);
      if (last_stage) {
        in_flight.pop_front();
        fill_window();
      }
    }
  }

  void end() {
    if (!in_step) throw InvalidArgument("GradBucketer: finish() without begin_step()");
    in_step = false;
    if (!sync) return;
    // Parameters that got no gradient this step contribute zeros (pack zero-fills them).
    for (Parameter& p : parameters)
      if (!p.ready) --buckets[p.bucket].pending;
    launch_complete_buckets();
    while (!in_flight.empty() || !queued.empty()) {
      if (!in_flight.empty())
        for (Work& work : in_flight.front().works) work.wait();
      progress();
      fill_window();
    }
    if (device_index >= 0) detail::stream_wait(user_stream(), stream.get());
    if (options.rebuild_buckets && !rebuilt) rebuild_pending = true;
  }

  /// Buckets in the order gradients became ready on rank 0 (not-ready ones last).
  void rebuild() {
    rebuilt = true;
    std::vector<std::size_t> order = ready_order;
    std::vector<bool> seen(parameters.size(), false);
    for (const std::size_t id : order) seen[id] = true;
    for (std::size_t id = parameters.size(); id-- > 0;)
      if (!seen[id]) order.push_back(id);
    std::vector<std::uint64_t> words(order.begin(), order.end());
    std::vector<std::uint64_t> agreed(words.size());
    exchange(words, agreed, [&](const void* send, void* recv) {
      comm.broadcast(send, recv, words.size(), DataType::kI64, 0,
                     {.async = false, .stream = stream.get()});
    });
    const std::vector<std::size_t> new_order(agreed.begin(), agreed.end());
    std::vector<std::size_t> current;
    for (const Bucket& b : buckets)
      current.insert(current.end(), b.layout.parameters.begin(), b.layout.parameters.end());
    if (new_order == current) return;
    build(new_order);
  }
};

GradBucketer::GradBucketer(Communicator& comm, BucketerOptions options)
    : impl_(std::make_unique<Impl>(comm, std::move(options))) {}
GradBucketer::GradBucketer(GradBucketer&&) noexcept = default;
GradBucketer& GradBucketer::operator=(GradBucketer&&) noexcept = default;
GradBucketer::~GradBucketer() = default;

std::size_t GradBucketer::register_parameter(std::string name, void* gradient, std::size_t count,
                                             DataType type) {
  Impl& s = *impl_;
  if (s.built)
    throw InvalidArgument("GradBucketer: register_parameter('" + name +
                          "') after the first step; register every parameter before begin_step");
  element_type(type);  // f32, f16, bf16 only
  if (gradient == nullptr && count > 0)
    throw InvalidArgument("GradBucketer: parameter '" + name + "' has a null gradient pointer");
  const bool device = detail::is_device_memory(gradient);
  s.parameters.push_back({std::move(name), gradient, count, type, device});
  s.layout_parameters.push_back({count, type, device});
  return s.parameters.size() - 1;
}

void GradBucketer::begin_step(bool sync) { impl_->begin(sync); }
void GradBucketer::mark_ready(std::size_t parameter) { impl_->ready(parameter); }
void GradBucketer::finish() { impl_->end(); }

void* GradBucketer::gradient(std::size_t parameter) const {
  if (parameter >= impl_->parameters.size())
    throw InvalidArgument("GradBucketer: no parameter " + std::to_string(parameter));
  return impl_->gradient_of(parameter);
}

std::size_t GradBucketer::parameter_count() const { return impl_->parameters.size(); }

std::vector<BucketInfo> GradBucketer::buckets() const {
  std::vector<BucketInfo> out;
  for (const Impl::Bucket& b : impl_->buckets)
    out.push_back({b.layout.type, b.wire, b.layout.device, impl_->shared(b), impl_->direct(b),
                   impl_->shared(b) && impl_->across_hosts != nullptr, b.layout.elements,
                   b.layout.parameters});
  return out;
}

std::vector<OwnedRange> GradBucketer::owned_ranges() const {
  const Impl& s = *impl_;
  std::vector<OwnedRange> out;
  if (!s.options.reduce_scatter) return out;
  for (const Impl::Bucket& b : s.buckets)
    for (const detail::Piece& piece : b.pieces) {
      const detail::Piece range = s.reduced_range(piece);
      for (const detail::Overlap& o :
           detail::overlaps(b.layout, s.layout_parameters, range.begin, range.end))
        out.push_back({o.parameter, o.parameter_offset, o.count});
    }
  return out;
}

double GradBucketer::host_chunk_mb() const {
  return static_cast<double>(impl_->chunk_bytes) / static_cast<double>(kMiB);
}

bool GradBucketer::rebuilt() const { return impl_->rebuilt; }

}  // namespace haein::runtime
