#pragma once
// The state behind a Communicator: backends, sequence numbers, flight recorder, control
// channel, timeline and watchdog. Split from communicator.cpp (the operations) so that
// the safety machinery (watchdog.cpp) reads on its own.

#include <atomic>
#include <condition_variable>
#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "control_channel.hpp"
#include "device_backend.hpp"
#include "flight_recorder.hpp"
#include "haein/runtime/communicator.hpp"
#include "haein/runtime/heartbeat.hpp"
#include "mpi_backend.hpp"
#include "timeline.hpp"

namespace haein::runtime {

namespace detail {

/// "0, 2, 3": ranks in messages.
inline std::string join_ranks(const std::vector<int>& ranks) {
  std::string out;
  for (const int r : ranks) out += (out.empty() ? "" : ", ") + std::to_string(r);
  return out;
}

/// Every process of the communicator a split descends from (the world, mostly): where its
/// control server is reached and a secret under which each process answers "ALIVE" for as
/// long as any communicator of that family lives in it. A watchdog that fires in a split
/// whose peers did not all join or answer asks the processes outside the split too, so
/// that a rank stopped elsewhere (holding up this split through a peer that waits for it)
/// is named and not its waiting peer, and a host cut off is seen as a whole.
struct ControlRoll {
  std::string secret;
  std::vector<ControlPeer> peers;
  std::vector<std::string> hosts;
  std::vector<int> world_ranks;
  std::unique_ptr<ControlServer::Registration> registration;
};

}  // namespace detail

struct WorkState {
  Communicator::Impl* comm = nullptr;
  std::uint64_t id = 0;  ///< flight-recorder id
  std::uint64_t sequence = 0;
  std::int64_t start_wall_us = 0;
  detail::MpiPending host;
  std::shared_ptr<detail::DevicePending> device;
  bool done = false;
};

struct Communicator::Impl {
  /// A split passes its parent's `roll` and this rank's `world_rank` in the parent; a
  /// communicator made from scratch makes its roll and takes its rank in MPI_COMM_WORLD
  /// (its own rank without MPI).
  Impl(std::unique_ptr<Bootstrap> bootstrap, CommunicatorOptions options,
       std::shared_ptr<const detail::ControlRoll> roll = nullptr, int world_rank = -1);
  ~Impl();

  std::unique_ptr<Bootstrap> bootstrap;
  CommunicatorOptions options;
  int rank = 0;
  int size = 1;
  std::vector<std::string> hosts;
  /// Each rank's rank in MPI_COMM_WORLD (its own rank without MPI): what the watchdog's
  /// messages and dump files name, so that a split's rank 0 is not taken for world rank 0.
  std::vector<int> world_ranks;
  /// `ranks` of this communicator as world ranks.
  std::vector<int> as_world(const std::vector<int>& ranks) const {
    std::vector<int> out;
    for (int r : ranks) out.push_back(world_ranks[r]);
    return out;
  }
  std::vector<int> control_ports;
  std::vector<std::string> control_addresses;  ///< IPv4, as each rank published it
  std::string control_secret;                  ///< drawn by rank 0, sent through the bootstrap
  /// Where `peer`'s control server is reached: the address it published.
  const std::string& control_address_of(int peer) const { return control_addresses[peer]; }
  std::shared_ptr<const detail::ControlRoll> roll;

  std::unique_ptr<detail::MpiBackend> mpi;        // when the bootstrap is MPI
  std::unique_ptr<detail::DeviceBackend> device;  // created by the first device operation
  int device_index = -1;
  bool devices_present = false;  ///< CUDA reports a device: buffers need a pointer check

  detail::FlightRecorder recorder;
  std::atomic<std::uint64_t> sequence{0};
  std::atomic<std::uint64_t> p2p_sequence{0};
  /// The last collective sequence this rank entered (what STATUS reports).
  std::atomic<std::uint64_t> entered{0};

  std::unique_ptr<detail::Timeline> timeline;
  Heartbeat heartbeat;

  // Group state: operations issued since group_start().
  int group_depth = 0;
  bool group_device_open = false;
  detail::MpiPending group_host;
  std::vector<std::shared_ptr<detail::DevicePending>> group_device;
  std::vector<std::pair<std::uint64_t, std::int64_t>> group_records;  // id, start

  // Watchdog (watchdog.cpp).
  std::unique_ptr<detail::ControlServer::Registration> control;
  std::thread watchdog;
  std::mutex watchdog_mutex;
  std::condition_variable watchdog_wake;
  bool stopping = false;
  std::atomic<bool> aborting{false};
  /// This rank's flight-recorder file is on disk (see write_dump_file).
  std::atomic<bool> dump_written{false};
  /// Device work the watchdog may find complete: flight-recorder id → completion.
  std::mutex device_work_mutex;
  std::map<std::uint64_t, std::weak_ptr<detail::DevicePending>> device_work;

  void start_watchdog();
  void stop_watchdog();
  void watch();
  /// Reports the timed-out `record`, makes the peers dump and stop, dumps, exits.
  [[noreturn]] void fire(std::uint64_t id, const OpRecord& record);
  struct PeerStatus;
  /// Asks the peers of `record` (all, or the p2p peer) how far they went.
  PeerStatus ask_peers(const OpRecord& record);
  /// The headline's verdict: who never joined, who disagrees, who did not answer.
  std::string verdict(const OpRecord& record, const PeerStatus& status);
  /// ABORT to every peer (those that did not answer STATUS with less patience).
  void tell_peers_to_abort(const OpRecord& record, const std::vector<int>& unreachable);
  std::string handle_control(const std::string& request, std::function<void()>& after_reply);
  /// World ranks outside this communicator (of its roll) that do not answer "ALIVE".
  std::vector<int> silent_outside() const;
  /// Writes `headline` and the flight recorder to stderr and the dump file.
  void dump(const std::string& headline);
  /// Writes the dump file (headline first, then the flight recorder); returns the flight
  /// recorder and where it went, which dump() prints before the headline.
  std::string write_dump_file(const std::string& headline);
  [[noreturn]] void exit_after_abort();

  // ---- Creation (communicator.cpp): the control channel, the exchange of each rank's
  // host, address and settings, the roll, the settings' agreement, the timeline.
  struct PeerInfo;
  void serve_control();
  /// Rank 0 creates HAEIN_TIMELINE's file; the error, if it could not ("" otherwise).
  std::string create_timeline_file() const;
  /// Every rank's PeerInfo; fills hosts, control ports and addresses, world ranks.
  std::vector<PeerInfo> exchange_peer_info(int world_rank, const std::string& timeline_error);
  void make_roll();
  /// InvalidArgument, the same on every rank, naming a setting that differs across ranks.
  static void require_settings_agree(const std::vector<PeerInfo>& all);
  void open_timeline(const std::vector<PeerInfo>& all, const std::string& timeline_error);

  /// Marks `id` complete: recorder, timeline, heartbeat.
  void complete(std::uint64_t id, std::int64_t start_wall_us);
  void check_fingerprint(const OpRecord& record);
  /// The NCCL backend of CUDA device `index`, made by the first device operation.
  detail::DeviceBackend& device_for(int index);

  // ---- Issuing an operation (communicator.cpp): classify → enter (number and record) →
  // check → launch (run's host or device call) → complete_host / complete_device.
  class Ticket;
  /// Issues one operation: `host(nonblocking)` runs it through MPI, `device(backend,
  /// stream)` through NCCL, whichever `buffers` call for.
  template <typename Host, typename Device>
  Work run(OpRecord record, std::initializer_list<const void*> buffers, const OpOptions& options,
           Host host, Device device);
  /// Where the operation runs: the NCCL backend of the buffers' device, or nullptr for host
  /// memory (MPI). Sets `record.backend`; throws on mixed or unusable buffers.
  detail::DeviceBackend* classify(OpRecord& record, std::initializer_list<const void*> buffers);
  /// Numbers `record` and enters it in the flight recorder; the ticket marks it failed
  /// unless the operation is handed on.
  Ticket enter(OpRecord& record);
  /// Compares fingerprints when HAEIN_CHECK_COLLECTIVES asks for it.
  void check(const OpRecord& record, const Ticket& ticket);
  /// Opens the thread's NCCL group for the first device operation of a group.
  void open_device_group(detail::DeviceBackend& backend);
  /// The pending state of the operation `ticket` holds.
  std::shared_ptr<WorkState> work_state(const Ticket& ticket);
  /// Hands a launched operation on: to the open group, to a pending Work, or completes it.
  Work complete_host(Ticket& ticket, detail::MpiPending&& pending, bool async);
  Work complete_device(Ticket& ticket, std::shared_ptr<detail::DevicePending>&& pending,
                       bool async);
  /// Closes an NCCL group that a failed operation left open (NCCL's group is thread-local:
  /// left open, it would hold the thread's next calls). Logs instead of throwing.
  void close_group_after_failure(Collective op) noexcept;
};

/// One operation between its entry in the flight recorder and the moment it is handed on
/// (to a group, a pending Work, or completion): destroyed while still held, by an
/// exception, it marks the entry failed, and while issuing it also closes an NCCL group
/// left open. The one failure path of issuing, testing, waiting and ending a group.
class Communicator::Impl::Ticket {
 public:
  /// While issuing `op`, numbered `sequence`, entered in the recorder as `id`.
  Ticket(Impl& comm, Collective op, std::uint64_t id, std::uint64_t sequence,
         std::int64_t start_wall_us) noexcept
      : comm_(&comm),
        op_(op),
        id_(id),
        sequence_(sequence),
        start_wall_us_(start_wall_us),
        issuing_(true) {}
  /// While completing the operation entered as `id` (Work::test, Work::wait, group_end).
  Ticket(Impl& comm, std::uint64_t id) noexcept : comm_(&comm), id_(id) {}
  Ticket(Ticket&& other) noexcept
      : comm_(std::exchange(other.comm_, nullptr)),
        op_(other.op_),
        id_(other.id_),
        sequence_(other.sequence_),
        start_wall_us_(other.start_wall_us_),
        issuing_(other.issuing_) {}
  Ticket& operator=(Ticket&&) = delete;
  Ticket(const Ticket&) = delete;
  Ticket& operator=(const Ticket&) = delete;
  ~Ticket();

  /// The operation went on as it should: nothing to mark.
  void release() noexcept { comm_ = nullptr; }
  std::uint64_t id() const { return id_; }
  std::uint64_t sequence() const { return sequence_; }
  std::int64_t start_wall_us() const { return start_wall_us_; }

 private:
  Impl* comm_;
  Collective op_ = Collective::kBarrier;
  std::uint64_t id_;
  std::uint64_t sequence_ = 0;
  std::int64_t start_wall_us_ = 0;
  bool issuing_ = false;
};

}  // namespace haein::runtime
