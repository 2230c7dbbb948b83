// The bucketer's state machine: registration, the collective first step (model check, the
// host exchanges this job can use, the piece size, the bucket plan), launching complete
// buckets in order, and walking each piece through its bucket's exchange. What a bucket is
// and how it is reduced is its plan (bucket_plan.hpp); how, its exchange
// (bucket_exchange.hpp); where the element work runs, its executor (bucket_executor.hpp);
// which host exchanges the job can take and the piece size, host_paths.hpp.
#include "haein/runtime/grad_bucketer.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <deque>
#include <numeric>
#include <sstream>

#include "bucket_exchange.hpp"
#include "bucket_plan.hpp"
#include "device_backend.hpp"
#include "haein/common/error.hpp"
#include "haein/common/log.hpp"
#include "host_paths.hpp"

namespace haein::runtime {

namespace {

using detail::Bucket;
using detail::ExchangeKind;
using detail::HostF32Path;
using detail::Parameter;
using detail::PieceTask;

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

/// Where the bucketer is between calls.
enum class Phase : std::uint8_t {
  kRegistering,   ///< parameters may be registered; no buckets yet
  kBetweenSteps,  ///< buckets built; begin_step next
  kSyncedStep,    ///< a step whose gradients are reduced as they become ready
  kLocalStep,     ///< a step that only accumulates (begin_step(false))
};

/// The one rebuild of the buckets in the order gradients became ready (rebuild_buckets).
enum class Rebuild : std::uint8_t { kNotYet, kDue, kDone };

}  // namespace

struct GradBucketer::Impl {
  Impl(Communicator& c, BucketerOptions o)
      : comm(c), options(std::move(o)), space(comm, options), host(comm, options) {}

  Communicator& comm;
  BucketerOptions options;
  detail::BucketSpace space;
  Phase phase = Phase::kRegistering;
  Rebuild rebuild_state = Rebuild::kNotYet;
  std::size_t next_bucket = 0;
  std::vector<std::size_t> ready_order;
  std::deque<PieceTask> queued;     // host pieces waiting for the window
  std::deque<PieceTask> in_flight;  // started, not finished
  std::size_t piece_bytes = 0;
  int device_index = -1;   ///< of the device gradients, if any
  detail::HostPaths host;  // the host exchanges f32 buckets can take
  std::array<std::unique_ptr<detail::Exchange>, 5> exchanges;

  int world() const { return comm.size(); }
  bool in_step() const { return phase == Phase::kSyncedStep || phase == Phase::kLocalStep; }
  std::vector<Parameter>& parameters() { return space.parameters; }
  std::vector<Bucket>& buckets() { return space.buckets; }
  detail::Exchange& exchange_of(const Bucket& b) {
    return *exchanges[static_cast<std::size_t>(b.plan.exchange)];
  }

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

  std::uint64_t layout_hash() const {
    std::uint64_t hash = 0xcbf29ce484222325ULL;
    for (const Parameter& p : space.parameters) {
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

  /// Every rank must have registered the same parameters with the same options. Through
  /// the bootstrap: host memory, whatever the backend.
  void check_models_agree() {
    std::uint64_t total = 0;
    for (const Parameter& p : space.parameters) total += p.count;
    const std::array<std::uint64_t, 3> mine = {layout_hash(), space.parameters.size(), total};
    std::vector<std::uint64_t> all(mine.size() * static_cast<std::size_t>(world()));
    comm.setup_all_gather(mine.data(), all.data(), sizeof mine);
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

  void make_exchanges() {
    auto at = [&](ExchangeKind kind) -> auto& { return exchanges[static_cast<std::size_t>(kind)]; };
    at(ExchangeKind::kCollective) = detail::make_collective_exchange(space);
    at(ExchangeKind::kCompressed) = detail::make_compressed_exchange(space);
    detail::SharedMemoryExchange* segment = host.segment.get();
    if (segment) at(ExchangeKind::kSegment) = detail::make_segment_exchange(space, *segment);
    if (segment && host.across_hosts)
      at(ExchangeKind::kHierarchical) =
          detail::make_hierarchical_exchange(space, *segment, *host.host_group, *host.across_hosts);
    if (segment && host.peers)
      at(ExchangeKind::kPeerMemory) =
          detail::make_peer_memory_exchange(space, *segment, *host.peers);
  }

  void first_step() {
    validate_options();
    if (space.parameters.empty())
      throw InvalidArgument("GradBucketer: no parameters were registered");
    for (const Parameter& p : space.parameters) {
      if (p.device && device_index < 0) device_index = detail::device_of(p.gradient);
      detail::wire_of(p.type, options.wire_type);  // throws for an impossible compression
    }
    if (device_index >= 0) {
      space.stream = detail::create_stream(device_index);
      space.device = std::make_unique<detail::DeviceExecutor>(space.stream.get());
    }
    check_models_agree();
    host.set_up(space.parameters);
    piece_bytes = host.choose_piece_bytes(space.parameters);
    make_exchanges();
    std::vector<std::size_t> order(space.parameters.size());
    std::iota(order.rbegin(), order.rend(), std::size_t{0});  // reverse registration order
    build(order);
  }

  // ---- layout and memory ---------------------------------------------------------------

  detail::PlanInputs plan_inputs(const std::vector<std::size_t>& order) const {
    detail::PlanInputs in;
    in.parameters = space.layout_parameters;
    in.order = order;
    in.first_cap_bytes = static_cast<std::size_t>(options.first_bucket_cap_mb * kMiB);
    in.cap_bytes = static_cast<std::size_t>(options.bucket_cap_mb * kMiB);
    in.world = world();
    in.wire_type = options.wire_type;
    in.averaging = options.averaging;
    in.reduce_scatter = options.reduce_scatter;
    in.views = options.gradient_as_bucket_view;
    in.host_f32 = host.path();
    in.piece_bytes = piece_bytes;
    in.peer_piece_bytes = options.host_chunk_mb > 0 ? piece_bytes : detail::kPeerPieceMax;
    return in;
  }

  /// A planned bucket with its memory: device buckets always, host buckets with views.
  Bucket allocate(detail::BucketPlan plan) {
    Bucket b;
    b.plan = std::move(plan);
    const std::size_t bytes = b.layout().elements * b.wire_size();
    if (b.device()) {
      b.device_memory = detail::allocate_device(bytes, device_index);
      b.buffer = static_cast<std::byte*>(b.device_memory.get());
      if (b.plan.exchange == ExchangeKind::kCompressed) {
        b.device_scratch = detail::allocate_device(bytes, device_index);
        b.scratch = static_cast<std::byte*>(b.device_scratch.get());
      }
      detail::memset_async(b.buffer, 0, bytes, space.stream.get());
      b.executor = space.device.get();
    } else {
      if (options.gradient_as_bucket_view) {
        b.host_memory.assign(bytes, std::byte{0});
        b.buffer = b.host_memory.data();
      }
      b.executor = &space.host;
    }
    return b;
  }

  /// (Re)builds the buckets for `order`. With views, gradients move into the new buckets.
  void build(const std::vector<std::size_t>& order) {
    std::vector<void*> previous(space.parameters.size());
    for (std::size_t id = 0; id < space.parameters.size(); ++id)
      previous[id] = space.gradient_of(id);
    const std::vector<Bucket> old = std::move(space.buckets);  // freed once the views moved
    space.buckets.clear();
    for (detail::BucketPlan& plan : detail::plan_buckets(plan_inputs(order)))
      space.buckets.push_back(allocate(std::move(plan)));
    for (std::size_t index = 0; index < space.buckets.size(); ++index) {
      const detail::LayoutBucket& layout = space.buckets[index].layout();
      for (std::size_t i = 0; i < layout.parameters.size(); ++i) {
        Parameter& p = space.parameters[layout.parameters[i]];
        p.bucket = index;
        p.offset = layout.offsets[i];
      }
    }
    space.laid_out = true;
    if (phase == Phase::kRegistering) phase = Phase::kBetweenSteps;
    if (options.gradient_as_bucket_view) {
      // Views start from what the gradients held (the registered memory, or the old bucket),
      // after what the program queued on its stream (a zero_grad) has written them.
      if (space.stream.get() != nullptr) detail::stream_wait(space.stream.get(), options.stream);
      for (std::size_t id = 0; id < space.parameters.size(); ++id) {
        const Parameter& p = space.parameters[id];
        detail::Executor& x = p.device ? *space.device : static_cast<detail::Executor&>(space.host);
        x.copy(space.gradient_of(id), previous[id], p.count * size_of(p.type));
      }
    }
    if (host.peers) share_gradients();
    if (space.stream.get() != nullptr) detail::synchronize(space.stream.get());
  }

  /// Peer memory: tells every rank where this rank's gradients are (collective; they move
  /// with views), and asks for 2 MiB pages under them, which the peers' reads and writes
  /// go through much faster (peer_memory.hpp).
  void share_gradients() {
    std::vector<const void*> addresses(space.parameters.size());
    std::vector<std::pair<std::uintptr_t, std::uintptr_t>> ranges;
    std::size_t host_bytes = 0;
    for (std::size_t id = 0; id < space.parameters.size(); ++id) {
      addresses[id] = space.gradient_of(id);
      const Parameter& p = space.parameters[id];
      if (p.device || p.count == 0) continue;
      const auto begin = reinterpret_cast<std::uintptr_t>(addresses[id]);
      ranges.emplace_back(begin, begin + p.count * size_of(p.type));
      host_bytes += p.count * size_of(p.type);
    }
    host.peers->publish(comm, addresses);
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

  // ---- one step ------------------------------------------------------------------------

  void begin(bool synchronised) {
    if (in_step())
      throw InvalidArgument("GradBucketer: begin_step called again before finish() of the step");
    if (phase == Phase::kRegistering) first_step();
    // The layout changes between steps only, so that what finish() left (gradient views,
    // owned_ranges()) stays true until the next step begins.
    if (rebuild_state == Rebuild::kDue) rebuild();
    phase = synchronised ? Phase::kSyncedStep : Phase::kLocalStep;
    next_bucket = 0;
    ready_order.clear();
    for (Parameter& p : space.parameters) p.ready = false;
    for (Bucket& b : space.buckets) b.pending = b.layout().parameters.size();
  }

  void ready(std::size_t id) {
    if (!in_step())
      throw InvalidArgument("GradBucketer: mark_ready outside a step (call begin_step first)");
    if (id >= space.parameters.size())
      throw InvalidArgument("GradBucketer: mark_ready of parameter " + std::to_string(id) +
                            ", but only " + std::to_string(space.parameters.size()) +
                            " are registered");
    Parameter& p = space.parameters[id];
    if (p.ready)
      throw InvalidArgument("GradBucketer: parameter '" + p.name +
                            "' was marked ready twice in one step");
    p.ready = true;
    if (phase != Phase::kSyncedStep) return;
    ready_order.push_back(id);
    --space.buckets[p.bucket].pending;
    launch_complete_buckets();
    progress();
  }

  void launch_complete_buckets() {
    std::vector<Bucket>& buckets = space.buckets;
    while (next_bucket < buckets.size() && buckets[next_bucket].pending == 0) {
      const std::size_t index = next_bucket++;
      Bucket& b = buckets[index];
      // Gradients are written on the backward stream: bucket work waits for them.
      if (b.device()) detail::stream_wait(space.stream.get(), options.stream);
      for (const detail::Piece& piece : b.plan.pieces) {
        PieceTask task{index, piece, 0, {}};
        if (b.device()) {
          exchange_of(b).start(task);
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
      PieceTask task = std::move(queued.front());
      queued.pop_front();
      exchange_of(space.buckets[task.bucket]).start(task);
      in_flight.push_back(std::move(task));
    }
  }

  /// Finishes pieces whose collectives are done, in order, and starts queued ones.
  void progress() {
    while (!in_flight.empty()) {
      PieceTask& front = in_flight.front();
      for (Work& work : front.works)
        if (!work.test()) return;
      const bool host_piece = !space.buckets[front.bucket].device();
      if (exchange_of(space.buckets[front.bucket]).advance(front)) {
        in_flight.pop_front();
        // A finished device piece starts no host piece: when it finishes differs by rank,
        // and host collectives start at launches, after host pieces and in finish().
        if (host_piece) fill_window();
      }
    }
  }

  void end() {
    if (!in_step()) throw InvalidArgument("GradBucketer: finish() without begin_step()");
    const bool synced = phase == Phase::kSyncedStep;
    phase = Phase::kBetweenSteps;
    if (!synced) return;
    // Parameters that got no gradient this step contribute zeros (pack zero-fills them).
    for (Parameter& p : space.parameters)
      if (!p.ready) --space.buckets[p.bucket].pending;
    launch_complete_buckets();
    while (!in_flight.empty() || !queued.empty()) {
      if (!in_flight.empty())
        for (Work& work : in_flight.front().works) work.wait();
      progress();
      fill_window();
    }
    if (space.stream.get() != nullptr) detail::stream_wait(options.stream, space.stream.get());
    if (options.rebuild_buckets && rebuild_state == Rebuild::kNotYet) rebuild_state = Rebuild::kDue;
  }

  /// Buckets in the order gradients became ready on rank 0 (not-ready ones last), agreed
  /// through the bootstrap.
  void rebuild() {
    rebuild_state = Rebuild::kDone;
    std::vector<std::uint64_t> order(ready_order.begin(), ready_order.end());
    std::vector<bool> seen(space.parameters.size(), false);
    for (const std::size_t id : ready_order) seen[id] = true;
    for (std::size_t id = space.parameters.size(); id-- > 0;)
      if (!seen[id]) order.push_back(id);
    comm.setup_broadcast(order.data(), order.size() * sizeof(std::uint64_t), 0);
    const std::vector<std::size_t> agreed(order.begin(), order.end());
    std::vector<std::size_t> current;
    for (const Bucket& b : space.buckets)
      current.insert(current.end(), b.layout().parameters.begin(), b.layout().parameters.end());
    if (agreed == current) return;
    build(agreed);
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
  if (s.phase != Phase::kRegistering)
    throw InvalidArgument("GradBucketer: register_parameter('" + name +
                          "') after the first step; register every parameter before begin_step");
  detail::element_type(type);  // f32, f16, bf16 only
  if (gradient == nullptr && count > 0)
    throw InvalidArgument("GradBucketer: parameter '" + name + "' has a null gradient pointer");
  const bool device = detail::is_device_memory(gradient);
  s.space.parameters.push_back({std::move(name), gradient, count, type, device});
  s.space.layout_parameters.push_back({count, type, device});
  return s.space.parameters.size() - 1;
}

void GradBucketer::begin_step(bool sync) { impl_->begin(sync); }
void GradBucketer::mark_ready(std::size_t parameter) { impl_->ready(parameter); }
void GradBucketer::finish() { impl_->end(); }

void* GradBucketer::gradient(std::size_t parameter) const {
  if (parameter >= impl_->space.parameters.size())
    throw InvalidArgument("GradBucketer: no parameter " + std::to_string(parameter));
  return impl_->space.gradient_of(parameter);
}

std::size_t GradBucketer::parameter_count() const { return impl_->space.parameters.size(); }

std::vector<BucketInfo> GradBucketer::buckets() const {
  std::vector<BucketInfo> out;
  for (const Bucket& b : impl_->space.buckets) {
    const ExchangeKind kind = b.plan.exchange;
    const bool segment = kind == ExchangeKind::kSegment || kind == ExchangeKind::kHierarchical ||
                         kind == ExchangeKind::kPeerMemory;
    out.push_back({b.layout().type, b.plan.wire, b.device(), segment,
                   kind == ExchangeKind::kPeerMemory, kind == ExchangeKind::kHierarchical,
                   b.layout().elements, b.layout().parameters});
  }
  return out;
}

std::vector<OwnedRange> GradBucketer::owned_ranges() const {
  const detail::BucketSpace& space = impl_->space;
  std::vector<OwnedRange> out;
  if (!space.options.reduce_scatter) return out;
  for (const Bucket& b : space.buckets)
    for (const detail::Piece& piece : b.plan.pieces) {
      const detail::Piece range = space.reduced_range(piece);
      for (const detail::Overlap& o : space.overlaps(b, range.begin, range.end))
        out.push_back({o.parameter, o.parameter_offset, o.count});
    }
  return out;
}

double GradBucketer::host_chunk_mb() const {
  return static_cast<double>(impl_->piece_bytes) / static_cast<double>(kMiB);
}

bool GradBucketer::rebuilt() const { return impl_->rebuild_state == Rebuild::kDone; }

}  // namespace haein::runtime
