// The operations of a Communicator: choose the backend from where the buffers live,
// number and record the operation, check its fingerprint, run it, and complete it.
#include "haein/runtime/communicator.hpp"

#include <mpi.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <initializer_list>
#include <sstream>
#include <thread>
#include <utility>

#include "communicator_impl.hpp"
#include "creation_watch.hpp"
#include "haein/common/log.hpp"
#include "haein/common/process.hpp"
#include "haein/common/settings.hpp"

namespace haein::runtime {

namespace {

/// What ranks compare before a collective. Fields that do not apply are zero.
struct Fingerprint {
  std::uint64_t sequence = 0;
  std::uint64_t count = 0;
  std::int32_t root = 0;
  std::uint8_t op = 0;
  std::uint8_t type = 0;
  std::uint8_t reduce = 0;
  std::uint8_t padding = 0;

  static Fingerprint of(const OpRecord& record) {
    Fingerprint f;
    f.sequence = record.sequence;
    f.count = record.count;
    f.op = static_cast<std::uint8_t>(record.op);
    f.type = static_cast<std::uint8_t>(record.type);
    f.reduce = reduces(record.op) ? static_cast<std::uint8_t>(record.reduce) : 0;
    f.root = rooted(record.op) ? record.peer : 0;
    return f;
  }
  bool operator==(const Fingerprint& other) const {
    return sequence == other.sequence && count == other.count && root == other.root &&
           op == other.op && type == other.type && reduce == other.reduce;
  }
  std::string describe() const {
    if (op >= std::size(kCollectives)) return "unknown operation #" + std::to_string(sequence);
    OpRecord record;
    record.op = static_cast<Collective>(op);
    record.type = static_cast<DataType>(type);
    record.reduce = static_cast<ReduceOp>(reduce);
    record.count = count;
    record.peer = root;
    return record.describe() + " #" + std::to_string(sequence);
  }
};
static_assert(sizeof(Fingerprint) == 24);

void check_rank(int value, int size, const char* what) {
  if (value < 0 || value >= size)
    throw InvalidArgument(std::string(what) + " " + std::to_string(value) +
                          " is not a rank of this communicator (size " + std::to_string(size) +
                          ")");
}

void require_buffer(const void* pointer, std::size_t count, const char* what) {
  if (pointer == nullptr && count > 0)
    throw InvalidArgument(std::string(what) + " buffer is null with count " +
                          std::to_string(count));
}

}  // namespace

CommunicatorOptions CommunicatorOptions::from_environment() {
  CommunicatorOptions options;
  options.check_collectives = settings::kCheckCollectives.get();
  options.timeout =
      std::chrono::milliseconds(static_cast<std::int64_t>(settings::kTimeout.get() * 1000.0));
  options.timeline_file = settings::kTimeline.get();
  options.dump_dir = settings::kDumpDir.get();
  if (options.dump_dir.empty()) {
    const char* tmpdir = std::getenv("TMPDIR");
    options.dump_dir = tmpdir != nullptr && *tmpdir != '\0' ? tmpdir : "/tmp";
  }
  return options;
}

// ---- Impl ------------------------------------------------------------------------------

namespace {

/// Throws InvalidArgument, the same on every rank, when `value_of` differs across `all`:
/// it names each value with its ranks.
template <typename Info, typename ValueOf>
void require_agreement(const std::vector<Info>& all, ValueOf value_of, const char* setting) {
  std::vector<std::pair<std::string, std::vector<int>>> groups;
  for (int r = 0; r < static_cast<int>(all.size()); ++r) {
    const std::string value = value_of(all[static_cast<std::size_t>(r)]);
    auto group = std::find_if(groups.begin(), groups.end(),
                              [&](const auto& entry) { return entry.first == value; });
    if (group == groups.end()) group = groups.insert(groups.end(), {value, {}});
    group->second.push_back(r);
  }
  if (groups.size() < 2) return;
  std::string message = std::string(setting) + " differs across ranks: ";
  for (std::size_t g = 0; g < groups.size(); ++g) {
    message += (g ? "; " : "") + std::string(groups[g].second.size() > 1 ? "ranks " : "rank ") +
               detail::join_ranks(groups[g].second) +
               (groups[g].second.size() > 1 ? " have " : " has ") + groups[g].first;
  }
  message +=
      ". It must be the same on every rank (haein run passes every HAEIN_* setting "
      "to every rank; with plain mpirun use -x " +
      std::string(setting) + ")";
  throw InvalidArgument(message);
}

}  // namespace

/// What each rank tells the others when a communicator is made.
struct Communicator::Impl::PeerInfo {
  char host[216];
  char address[16];  // IPv4 of the control server, as the other hosts reach it
  std::int64_t wall_us;
  std::int32_t port;
  std::int32_t timeline_ok;
  // Settings that must agree: a rank that checks fingerprints while another does not
  // waits for it in an exchange that never comes.
  std::int32_t check_collectives;
  std::int64_t timeout_ms;
  char timeline[256];
  std::int32_t world_rank;
};

Communicator::Impl::Impl(std::unique_ptr<Bootstrap> bootstrap_in, CommunicatorOptions options_in,
                         std::shared_ptr<const detail::ControlRoll> roll_in, int world_rank)
    : bootstrap(std::move(bootstrap_in)),
      options(std::move(options_in)),
      roll(std::move(roll_in)),
      heartbeat(Heartbeat::from_environment()) {
  if (!bootstrap) throw InvalidArgument("Communicator needs a bootstrap");
  if (options.timeout.count() <= 0) throw InvalidArgument("HAEIN_TIMEOUT must be positive");
  // Until the watchdog starts at the end, this bounds the exchanges below.
  detail::CreationWatch watch(options.timeout, "the exchange of rank information");
  rank = bootstrap->rank();
  size = bootstrap->size();
  devices_present = detail::any_device();
  if (auto* mpi_bootstrap = dynamic_cast<MpiBootstrap*>(bootstrap.get()))
    mpi = std::make_unique<detail::MpiBackend>(
        static_cast<MPI_Comm>(mpi_bootstrap->mpi_comm_handle()));
  serve_control();
  // Rank 0 creates the timeline file before the exchange, which then acts as a barrier.
  const std::string timeline_error = create_timeline_file();
  const std::vector<PeerInfo> all = exchange_peer_info(world_rank, timeline_error);
  if (!roll) make_roll();
  require_settings_agree(all);
  open_timeline(all, timeline_error);
  start_watchdog();
}

void Communicator::Impl::serve_control() {
  // The control channel's secret: drawn by rank 0, known only to the ranks through the
  // bootstrap.
  char secret[33] = {};
  if (rank == 0) std::strncpy(secret, detail::control_secret().c_str(), sizeof secret - 1);
  bootstrap->broadcast(secret, sizeof secret, 0);
  control_secret = std::string(secret, strnlen(secret, sizeof secret));
  control = detail::ControlServer::serve(
      control_secret, [this](const std::string& request, std::function<void()>& after_reply) {
        return handle_control(request, after_reply);
      });
}

std::string Communicator::Impl::create_timeline_file() const {
  if (options.timeline_file.empty() || rank != 0) return "";
  try {
    detail::Timeline::create(options.timeline_file);
  } catch (const Error& error) {
    return error.what();
  }
  return "";
}

std::vector<Communicator::Impl::PeerInfo> Communicator::Impl::exchange_peer_info(
    int world_rank, const std::string& timeline_error) {
  PeerInfo mine{};
  mine.world_rank = world_rank >= 0 ? world_rank : rank;
  if (mpi && world_rank < 0) MPI_Comm_rank(MPI_COMM_WORLD, &mine.world_rank);
  std::strncpy(mine.host, host_name().c_str(), sizeof mine.host - 1);
  mine.wall_us = detail::Timeline::wall_us();
  mine.port = control->port();
  std::strncpy(mine.address, control->address().c_str(), sizeof mine.address - 1);
  mine.timeline_ok = timeline_error.empty() ? 1 : 0;
  mine.check_collectives = options.check_collectives ? 1 : 0;
  mine.timeout_ms = options.timeout.count();
  std::strncpy(mine.timeline, options.timeline_file.c_str(), sizeof mine.timeline - 1);
  std::vector<PeerInfo> all(size);
  bootstrap->all_gather(&mine, all.data(), sizeof mine);
  for (const PeerInfo& peer : all) {
    hosts.emplace_back(peer.host);
    control_ports.push_back(peer.port);
    control_addresses.emplace_back(peer.address, strnlen(peer.address, sizeof peer.address));
    world_ranks.push_back(peer.world_rank);
  }
  return all;
}

void Communicator::Impl::make_roll() {
  auto made = std::make_shared<detail::ControlRoll>();
  // Derived from this communicator's secret: whoever knows it knows this one anyway.
  made->secret = "roll-" + control_secret;
  for (int r = 0; r < size; ++r) made->peers.push_back({control_addresses[r], control_ports[r]});
  made->hosts = hosts;
  made->world_ranks = world_ranks;
  made->registration = detail::ControlServer::serve(
      made->secret, [](const std::string& request, std::function<void()>&) {
        return std::string(request == "ALIVE" ? "ALIVE" : "ERROR unknown request");
      });
  roll = std::move(made);
}

void Communicator::Impl::require_settings_agree(const std::vector<PeerInfo>& all) {
  require_agreement(
      all, [](const PeerInfo& p) { return p.check_collectives ? "1" : "0"; },
      "HAEIN_CHECK_COLLECTIVES");
  require_agreement(
      all,
      [](const PeerInfo& p) {
        std::ostringstream text;
        text << static_cast<double>(p.timeout_ms) / 1000.0 << " s";
        return text.str();
      },
      "HAEIN_TIMEOUT");
  require_agreement(
      all,
      [](const PeerInfo& p) {
        const std::string path(p.timeline, strnlen(p.timeline, sizeof p.timeline));
        return path.empty() ? std::string("unset") : "'" + path + "'";
      },
      "HAEIN_TIMELINE");
}

void Communicator::Impl::open_timeline(const std::vector<PeerInfo>& all,
                                       const std::string& timeline_error) {
  if (options.timeline_file.empty()) return;
  if (all[0].timeline_ok == 0)
    throw InvalidArgument(rank == 0
                              ? timeline_error
                              : "HAEIN_TIMELINE: rank 0 cannot create " + options.timeline_file);
  std::error_code missing;
  if (rank != 0 && !std::filesystem::exists(options.timeline_file, missing))
    throw InvalidArgument("HAEIN_TIMELINE: " + options.timeline_file + ", which rank 0 on " +
                          hosts[0] + " created, is not seen by rank " + std::to_string(rank) +
                          " on " + hosts[rank] +
                          ": its folder is not shared by every host. Give a path on a file "
                          "system every host mounts at the same place");
  timeline = std::make_unique<detail::Timeline>(options.timeline_file, rank, hosts[rank]);
  timeline->set_epoch_us(all[0].wall_us);
}

Communicator::Impl::~Impl() {
  stop_watchdog();
  if (timeline) timeline->flush();
}

void Communicator::Impl::complete(std::uint64_t id, std::int64_t start_wall_us) {
  recorder.finish(id, OpState::kCompleted);
  heartbeat.beat();
  if (!timeline) return;
  const auto record = recorder.find(id);
  if (!record) return;
  std::ostringstream args;
  args << "\"seq\":" << record->sequence << ",\"type\":\"" << name_of(record->type)
       << "\",\"count\":" << record->count << ",\"bytes\":" << record->count * size_of(record->type)
       << ",\"backend\":\"" << record->backend << '"';
  if (reduces(record->op)) args << ",\"reduce\":\"" << name_of(record->reduce) << '"';
  if (record->peer >= 0) args << ",\"peer\":" << record->peer;
  timeline->event(std::string(name_of(record->op)), start_wall_us, detail::Timeline::wall_us(),
                  args.str());
}

void Communicator::Impl::check_fingerprint(const OpRecord& record) {
  const Fingerprint mine = Fingerprint::of(record);
  std::vector<Fingerprint> all(size);
  bootstrap->all_gather(&mine, all.data(), sizeof mine);
  if (std::all_of(all.begin(), all.end(), [&](const Fingerprint& f) { return f == mine; })) return;
  // Group the ranks by what they called, in rank order of first appearance.
  std::vector<std::pair<Fingerprint, std::vector<int>>> groups;
  for (int r = 0; r < size; ++r) {
    auto found = std::find_if(groups.begin(), groups.end(),
                              [&](const auto& group) { return group.first == all[r]; });
    if (found == groups.end())
      groups.push_back({all[r], {r}});
    else
      found->second.push_back(r);
  }
  std::ostringstream message;
  message << "collective mismatch at sequence #" << record.sequence
          << " (HAEIN_CHECK_COLLECTIVES): ";
  for (std::size_t g = 0; g < groups.size(); ++g) {
    message << (g == 0 ? "" : "; ") << (groups[g].second.size() == 1 ? "rank " : "ranks ")
            << detail::join_ranks(groups[g].second) << " called " << groups[g].first.describe();
  }
  message << ". Every rank must issue the same collectives in the same order.";
  throw CollectiveMismatch(message.str());
}

detail::DeviceBackend& Communicator::Impl::device_for(int index) {
  if (index < 0)
    throw InvalidArgument("not CUDA device memory: the pointer's device cannot be found");
  if (!device) {
    if (group_depth > 0)
      throw InvalidArgument(
          "the first device operation of a communicator cannot be inside "
          "a group (NCCL is set up then); issue one before group_start()");
    device = detail::make_device_backend(*bootstrap, index, options.timeout);
    device_index = index;
  } else if (index != device_index) {
    throw InvalidArgument("buffer on CUDA device " + std::to_string(index) +
                          " but this communicator uses device " + std::to_string(device_index));
  }
  return *device;
}

// ---- Issuing an operation ------------------------------------------------------------

Communicator::Impl::Ticket::~Ticket() {
  if (comm_ == nullptr) return;
  comm_->recorder.set_state(id_, OpState::kFailed);
  if (issuing_) comm_->close_group_after_failure(op_);
}

void Communicator::Impl::close_group_after_failure(Collective op) noexcept {
  if (!group_device_open) return;
  group_device_open = false;
  try {
    device->group_end();
  } catch (const std::exception& error) {
    HAEIN_LOG(kWarn,
              "closing the NCCL group after a failed " << name_of(op) << ": " << error.what());
  }
}

detail::DeviceBackend* Communicator::Impl::classify(OpRecord& record,
                                                    std::initializer_list<const void*> buffers) {
  if (aborting.load()) throw Error("communicator stopped after a watchdog timeout");
  // One pointer query per buffer (each costs about a microsecond on the latency path).
  detail::MemoryPlace device_place;
  if (devices_present) {
    bool host_pointer = false;
    const void* previous = nullptr;
    for (const void* pointer : buffers) {
      if (pointer == nullptr || pointer == previous) continue;
      previous = pointer;
      const detail::MemoryPlace place = detail::place_of(pointer);
      if (place.device)
        device_place = place;
      else
        host_pointer = true;
    }
    if (device_place.device && host_pointer)
      throw InvalidArgument(std::string(name_of(record.op)) +
                            ": buffers must be all in host memory or all in device memory");
  }
  record.backend = device_place.device ? "nccl" : "mpi";
  if (device_place.device) return &device_for(device_place.ordinal);
  if (!mpi)
    throw InvalidArgument(std::string(name_of(record.op)) +
                          " on host memory needs an MPI bootstrap; this "
                          "communicator's bootstrap is '" +
                          bootstrap->kind() +
                          "' (host buffers go through MPI, device buffers through NCCL)");
  return nullptr;
}

Communicator::Impl::Ticket Communicator::Impl::enter(OpRecord& record) {
  const bool p2p = is_p2p(record.op);
  // Operations are issued by one thread at a time (their order is the contract), so the
  // counters need no read-modify-write; other threads only read them.
  std::atomic<std::uint64_t>& counter = p2p ? p2p_sequence : sequence;
  record.sequence = counter.load(std::memory_order_relaxed) + 1;
  counter.store(record.sequence, std::memory_order_relaxed);
  // Without a fingerprint exchange there is nothing between issue and start.
  record.state = !p2p && options.check_collectives ? OpState::kIssued : OpState::kStarted;
  const std::uint64_t id = recorder.begin(record);
  if (!p2p) entered.store(record.sequence, std::memory_order_release);
  return Ticket(*this, record.op, id, record.sequence, timeline ? detail::Timeline::wall_us() : 0);
}

void Communicator::Impl::check(const OpRecord& record, const Ticket& ticket) {
  if (record.state != OpState::kIssued) return;
  check_fingerprint(record);
  recorder.finish(ticket.id(), OpState::kStarted);
}

void Communicator::Impl::open_device_group(detail::DeviceBackend& backend) {
  if (group_depth == 0 || group_device_open) return;
  backend.group_start();
  group_device_open = true;
}

std::shared_ptr<WorkState> Communicator::Impl::work_state(const Ticket& ticket) {
  auto state = std::make_shared<WorkState>();
  state->comm = this;
  state->id = ticket.id();
  state->sequence = ticket.sequence();
  state->start_wall_us = ticket.start_wall_us();
  return state;
}

Work Communicator::Impl::complete_host(Ticket& ticket, detail::MpiPending&& pending, bool async) {
  // The synchronous host path allocates nothing: it is the latency path.
  if (group_depth > 0) {
    group_host.merge(std::move(pending));
    group_records.emplace_back(ticket.id(), ticket.start_wall_us());
    ticket.release();
    return Work();
  }
  if (!async) {
    complete(ticket.id(), ticket.start_wall_us());
    ticket.release();
    return Work();
  }
  auto state = work_state(ticket);
  state->host = std::move(pending);
  ticket.release();
  return Work(state);
}

Work Communicator::Impl::complete_device(Ticket& ticket,
                                         std::shared_ptr<detail::DevicePending>&& pending,
                                         bool async) {
  auto state = work_state(ticket);
  state->device = std::move(pending);
  if (group_depth > 0) {
    group_device.push_back(state->device);
    group_records.emplace_back(ticket.id(), ticket.start_wall_us());
    ticket.release();
    return Work();
  }
  {
    std::lock_guard lock(device_work_mutex);
    device_work[ticket.id()] = state->device;
  }
  Work work(state);
  if (!async) work.wait();
  ticket.release();
  return work;
}

template <typename Host, typename Device>
Work Communicator::Impl::run(OpRecord record, std::initializer_list<const void*> buffers,
                             const OpOptions& options, Host host, Device device) {
  detail::DeviceBackend* backend = classify(record, buffers);
  Ticket ticket = enter(record);
  check(record, ticket);
  if (backend == nullptr) {
    detail::MpiPending pending = host(group_depth > 0 || options.async);
    return complete_host(ticket, std::move(pending), options.async);
  }
  open_device_group(*backend);
  std::shared_ptr<detail::DevicePending> pending = device(*backend, options.stream);
  return complete_device(ticket, std::move(pending), options.async);
}

// ---- Work ------------------------------------------------------------------------------

bool Work::test() {
  if (!state_ || state_->done) return true;
  WorkState& state = *state_;
  // Done until it proves still running: an error ends it too.
  state.done = true;
  Communicator::Impl::Ticket ticket(*state.comm, state.id);
  const bool complete = state.device ? state.device->test() : state.host.test();
  ticket.release();
  if (!complete) {
    state.done = false;
    return false;
  }
  if (state.device) {
    std::lock_guard lock(state.comm->device_work_mutex);
    state.comm->device_work.erase(state.id);
  }
  state.comm->complete(state.id, state.start_wall_us);
  return true;
}

bool Work::wait(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!test()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::yield();
  }
  return true;
}

void Work::wait() {
  if (state_ && !state_->done && !state_->device) {
    // Host work: MPI_Waitall progresses it without spinning here; the watchdog bounds it.
    state_->done = true;
    Communicator::Impl::Ticket ticket(*state_->comm, state_->id);
    state_->host.wait();
    ticket.release();
    state_->done = false;
  }
  while (!test()) std::this_thread::yield();
}

std::uint64_t Work::sequence() const { return state_ ? state_->sequence : 0; }

// ---- Communicator ----------------------------------------------------------------------

Communicator::Communicator(std::unique_ptr<Bootstrap> bootstrap, CommunicatorOptions options)
    : impl_(std::make_unique<Impl>(std::move(bootstrap), std::move(options))) {}

Communicator Communicator::world(CommunicatorOptions options) {
  // The constructor watches its own exchanges; this watches MPI's start before them.
  std::unique_ptr<MpiBootstrap> bootstrap;
  {
    detail::CreationWatch watch(options.timeout, "MPI_Init and MPI_Comm_dup");
    bootstrap = MpiBootstrap::world();
  }
  return Communicator(std::move(bootstrap), std::move(options));
}

Communicator::Communicator(Communicator&&) noexcept = default;
Communicator& Communicator::operator=(Communicator&&) noexcept = default;
Communicator::~Communicator() = default;

int Communicator::rank() const { return impl_->rank; }
int Communicator::size() const { return impl_->size; }
const CommunicatorOptions& Communicator::options() const { return impl_->options; }
const std::vector<std::string>& Communicator::hosts() const { return impl_->hosts; }

int Communicator::world_rank(int rank) const {
  if (rank < 0 || rank >= impl_->size)
    throw InvalidArgument("world_rank: rank " + std::to_string(rank) + " of a communicator of " +
                          std::to_string(impl_->size));
  return impl_->world_ranks[static_cast<std::size_t>(rank)];
}

namespace {
OpRecord make_record(Collective op, DataType type, ReduceOp reduce, std::size_t count, int peer) {
  OpRecord record;
  record.op = op;
  record.type = type;
  record.reduce = reduce;
  record.count = count;
  record.peer = peer;
  return record;
}
}  // namespace

Work Communicator::all_reduce(const void* send, void* recv, std::size_t count, DataType type,
                              ReduceOp op, OpOptions options) {
  require_buffer(send, count, "all_reduce send");
  require_buffer(recv, count, "all_reduce recv");
  return impl_->run(
      make_record(Collective::kAllReduce, type, op, count, -1), {send, recv}, options,
      [&](bool nonblocking) {
        return impl_->mpi->all_reduce(send, recv, count, type, op, nonblocking);
      },
      [&](detail::DeviceBackend& device, void* stream) {
        return device.all_reduce(send, recv, count, type, op, stream);
      });
}

Work Communicator::reduce_scatter(const void* send, void* recv, std::size_t recv_count,
                                  DataType type, ReduceOp op, OpOptions options) {
  require_buffer(send, recv_count, "reduce_scatter send");
  require_buffer(recv, recv_count, "reduce_scatter recv");
  return impl_->run(
      make_record(Collective::kReduceScatter, type, op, recv_count, -1), {send, recv}, options,
      [&](bool nonblocking) {
        return impl_->mpi->reduce_scatter(send, recv, recv_count, type, op, nonblocking);
      },
      [&](detail::DeviceBackend& device, void* stream) {
        return device.reduce_scatter(send, recv, recv_count, type, op, stream);
      });
}

Work Communicator::all_gather(const void* send, void* recv, std::size_t send_count, DataType type,
                              OpOptions options) {
  require_buffer(send, send_count, "all_gather send");
  require_buffer(recv, send_count, "all_gather recv");
  return impl_->run(
      make_record(Collective::kAllGather, type, ReduceOp::kSum, send_count, -1), {send, recv},
      options,
      [&](bool nonblocking) {
        return impl_->mpi->all_gather(send, recv, send_count, type, nonblocking);
      },
      [&](detail::DeviceBackend& device, void* stream) {
        return device.all_gather(send, recv, send_count, type, stream);
      });
}

Work Communicator::broadcast(const void* send, void* recv, std::size_t count, DataType type,
                             int root, OpOptions options) {
  check_rank(root, impl_->size, "broadcast root");
  if (impl_->rank == root) require_buffer(send, count, "broadcast send");
  require_buffer(recv, count, "broadcast recv");
  return impl_->run(
      make_record(Collective::kBroadcast, type, ReduceOp::kSum, count, root),
      {impl_->rank == root ? send : nullptr, recv}, options,
      [&](bool nonblocking) {
        return impl_->mpi->broadcast(send, recv, count, type, root, nonblocking);
      },
      [&](detail::DeviceBackend& device, void* stream) {
        return device.broadcast(send, recv, count, type, root, stream);
      });
}

Work Communicator::reduce(const void* send, void* recv, std::size_t count, DataType type,
                          ReduceOp op, int root, OpOptions options) {
  check_rank(root, impl_->size, "reduce root");
  require_buffer(send, count, "reduce send");
  if (impl_->rank == root) require_buffer(recv, count, "reduce recv");
  return impl_->run(
      make_record(Collective::kReduce, type, op, count, root),
      {send, impl_->rank == root ? recv : nullptr}, options,
      [&](bool nonblocking) {
        return impl_->mpi->reduce(send, recv, count, type, op, root, nonblocking);
      },
      [&](detail::DeviceBackend& device, void* stream) {
        return device.reduce(send, recv, count, type, op, root, stream);
      });
}

Work Communicator::all_to_all(const void* send, void* recv, std::size_t count, DataType type,
                              OpOptions options) {
  require_buffer(send, count, "all_to_all send");
  require_buffer(recv, count, "all_to_all recv");
  return impl_->run(
      make_record(Collective::kAllToAll, type, ReduceOp::kSum, count, -1), {send, recv}, options,
      [&](bool nonblocking) {
        return impl_->mpi->all_to_all(send, recv, count, type, nonblocking);
      },
      [&](detail::DeviceBackend& device, void* stream) {
        return device.all_to_all(send, recv, count, type, stream);
      });
}

Work Communicator::send(const void* buffer, std::size_t count, DataType type, int peer,
                        OpOptions options) {
  check_rank(peer, impl_->size, "send peer");
  require_buffer(buffer, count, "send");
  return impl_->run(
      make_record(Collective::kSend, type, ReduceOp::kSum, count, peer), {buffer}, options,
      [&](bool nonblocking) { return impl_->mpi->send(buffer, count, type, peer, nonblocking); },
      [&](detail::DeviceBackend& device, void* stream) {
        return device.send(buffer, count, type, peer, stream);
      });
}

Work Communicator::recv(void* buffer, std::size_t count, DataType type, int peer,
                        OpOptions options) {
  check_rank(peer, impl_->size, "recv peer");
  require_buffer(buffer, count, "recv");
  return impl_->run(
      make_record(Collective::kRecv, type, ReduceOp::kSum, count, peer), {buffer}, options,
      [&](bool nonblocking) { return impl_->mpi->recv(buffer, count, type, peer, nonblocking); },
      [&](detail::DeviceBackend& device, void* stream) {
        return device.recv(buffer, count, type, peer, stream);
      });
}

Work Communicator::barrier(OpOptions options) {
  if (!impl_->mpi) {
    // Without MPI (a thread bootstrap) the bootstrap's own barrier serves.
    impl_->bootstrap->barrier();
    return Work();
  }
  return impl_->run(
      make_record(Collective::kBarrier, DataType::kU8, ReduceOp::kSum, 0, -1), {}, options,
      [&](bool nonblocking) { return impl_->mpi->barrier(nonblocking); },
      [&](detail::DeviceBackend&, void*) -> std::shared_ptr<detail::DevicePending> {
        return nullptr;
      });
}

void Communicator::group_start() { ++impl_->group_depth; }

void Communicator::group_end() {
  Impl& c = *impl_;
  if (c.group_depth == 0) throw InvalidArgument("group_end() without group_start()");
  if (--c.group_depth > 0) return;
  auto records = std::move(c.group_records);
  auto device_work = std::move(c.group_device);
  if (c.group_device_open) {
    c.group_device_open = false;
    device_work.push_back(c.device->group_end());
  }
  c.group_records.clear();
  c.group_device.clear();
  detail::MpiPending host = std::move(c.group_host);
  c.group_host = detail::MpiPending();
  std::vector<Impl::Ticket> tickets;
  tickets.reserve(records.size());
  for (const auto& [id, start] : records) tickets.emplace_back(c, id);
  host.wait();
  for (const auto& pending : device_work)
    while (!pending->test()) std::this_thread::yield();
  for (Impl::Ticket& ticket : tickets) ticket.release();
  for (const auto& [id, start] : records) c.complete(id, start);
}

Communicator Communicator::split(int color, int key) const {
  // ncclCommSplit is collective over the parent, so every rank calls it, colored or not.
  std::unique_ptr<detail::DeviceBackend> device;
  if (impl_->device) device = impl_->device->split(color, key);
  std::unique_ptr<Bootstrap> child = impl_->bootstrap->split(color, key);
  Communicator result;
  if (!child) return result;
  result.impl_ = std::make_unique<Impl>(std::move(child), impl_->options, impl_->roll,
                                        impl_->world_ranks[impl_->rank]);
  if (device) {
    result.impl_->device = std::move(device);
    result.impl_->device_index = impl_->device_index;
  }
  return result;
}

Communicator Communicator::split_by_host() const {
  const auto& hosts = impl_->hosts;
  const int color =
      static_cast<int>(std::find(hosts.begin(), hosts.end(), hosts[rank()]) - hosts.begin());
  return split(color, rank());
}

Communicator Communicator::split_across_hosts() const {
  const auto& hosts = impl_->hosts;
  const int local_index =
      static_cast<int>(std::count(hosts.begin(), hosts.begin() + rank(), hosts[rank()]));
  return split(local_index, rank());
}

void Communicator::setup_all_gather(const void* mine, void* all, std::size_t bytes) {
  const Section watched = watch_section("setup all-gather");
  impl_->bootstrap->all_gather(mine, all, bytes);
}

void Communicator::setup_broadcast(void* data, std::size_t bytes, int root) {
  const Section watched = watch_section("setup broadcast");
  impl_->bootstrap->broadcast(data, bytes, root);
}

Communicator::Section Communicator::watch_section(std::string_view what) {
  OpRecord record;
  record.section = what;
  record.type = DataType::kU8;
  record.backend = "section";
  // The collective it follows: peers at it or past it are not the ones holding it up.
  record.sequence = impl_->sequence.load(std::memory_order_relaxed);
  record.state = OpState::kStarted;
  Section section;
  section.impl_ = impl_.get();
  section.id_ = impl_->recorder.begin(record);
  return section;
}

Communicator::Section::Section(Section&& other) noexcept
    : impl_(std::exchange(other.impl_, nullptr)), id_(other.id_) {}

Communicator::Section& Communicator::Section::operator=(Section&& other) noexcept {
  if (this != &other) {
    if (impl_ != nullptr) impl_->recorder.finish(id_, OpState::kCompleted);
    impl_ = std::exchange(other.impl_, nullptr);
    id_ = other.id_;
  }
  return *this;
}

Communicator::Section::~Section() {
  if (impl_ != nullptr) impl_->recorder.finish(id_, OpState::kCompleted);
}

std::vector<OpRecord> Communicator::flight_recorder() const { return impl_->recorder.records(); }

std::string Communicator::flight_recorder_text() const {
  return impl_->recorder.text(impl_->rank, impl_->hosts[impl_->rank]);
}

}  // namespace haein::runtime
