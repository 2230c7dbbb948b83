#pragma once
/// @file
/// One communicator for host and device buffers. Host memory goes through MPI, device
/// memory through NCCL (in CUDA builds); the backend is chosen per call from where the
/// buffers live. Every operation gets a sequence number and a fingerprint, is kept in a
/// flight recorder, and is watched: see docs/runtime.md for the safety contract.
///
/// Buffer conventions follow NCCL: counts are elements; an operation is in place when
/// `recv == send` (all_reduce, broadcast, reduce, all_to_all), when
/// `send == recv + rank * count` (all_gather) or when `recv == send + rank * count`
/// (reduce_scatter).

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "haein/common/collective.hpp"
#include "haein/common/error.hpp"
#include "haein/runtime/bootstrap.hpp"
#include "haein/runtime/types.hpp"

namespace haein::runtime {

/// Settings of a communicator; from_environment() reads the HAEIN_* variables.
struct CommunicatorOptions {
  /// HAEIN_CHECK_COLLECTIVES: compare fingerprints across ranks before each collective.
  bool check_collectives = false;
  /// HAEIN_TIMEOUT: an operation running longer than this is declared hung.
  std::chrono::milliseconds timeout{std::chrono::seconds(600)};
  /// HAEIN_TIMELINE: Chrome-trace JSON file shared by all ranks; empty for none.
  std::string timeline_file;
  /// HAEIN_DUMP_DIR: where flight-recorder dumps go.
  std::string dump_dir;

  static CommunicatorOptions from_environment();
};

/// Optional arguments of one operation.
struct OpOptions {
  /// Return at once with a pending Work instead of waiting for completion.
  bool async = false;
  /// For device buffers: the cudaStream_t to enqueue on (nullptr: the communicator's
  /// stream, ordered after the legacy default stream). Ignored for host buffers.
  void* stream = nullptr;
};

/// Where an operation stands.
enum class OpState : std::uint8_t { kIssued, kStarted, kCompleted, kFailed, kTimedOut };
std::string_view name_of(OpState state);

/// One entry of the flight recorder.
struct OpRecord {
  std::uint64_t sequence = 0;  ///< 1-based; p2p operations count separately (p2p_sequence)
  Collective op = Collective::kBarrier;
  /// A watched stretch's name (watch_section; a static string); empty for operations, and
  /// then `op` says what the record is.
  std::string_view section;
  DataType type = DataType::kF32;
  ReduceOp reduce = ReduceOp::kSum;
  std::size_t count = 0;
  int peer = -1;             ///< root, or the peer of send/recv; -1 when none
  std::string_view backend;  ///< "mpi", "nccl" or "section" (a static string)
  OpState state = OpState::kIssued;
  double start_s = 0;  ///< seconds since the communicator was created
  double end_s = 0;    ///< 0 while not finished
  /// "all_reduce(f32, count=7, sum)": what fingerprint checking compares.
  std::string describe() const;
};

class Communicator;
struct WorkState;

/// Handle of an operation. Synchronous calls return one that is already complete.
class Work {
 public:
  Work() = default;
  /// True once the operation has completed (progresses it). Throws its error, if any.
  bool test();
  /// Waits up to `timeout`; returns false when it is still running.
  bool wait(std::chrono::milliseconds timeout);
  /// Waits for completion; the communicator's watchdog bounds the wait.
  void wait();
  std::uint64_t sequence() const;

  explicit Work(std::shared_ptr<WorkState> state) : state_(std::move(state)) {}

 private:
  std::shared_ptr<WorkState> state_;
};

/// The collective-communication handle a trainer holds. Collective calls must be made by
/// every rank in the same order; with check_collectives a disagreement is an error on
/// every rank instead of a hang or a wrong result.
class Communicator {
  // The state behind the handle (communicator_impl.hpp); Section, Work and WorkState reach it.
  struct Impl;
  friend struct WorkState;
  friend class Work;

 public:
  /// Collective over `bootstrap`'s ranks.
  explicit Communicator(std::unique_ptr<Bootstrap> bootstrap,
                        CommunicatorOptions options = CommunicatorOptions::from_environment());
  /// The world through MPI (MpiBootstrap::world()).
  static Communicator world(CommunicatorOptions options = CommunicatorOptions::from_environment());
  Communicator(Communicator&&) noexcept;
  Communicator& operator=(Communicator&&) noexcept;
  ~Communicator();

  int rank() const;
  int size() const;
  const CommunicatorOptions& options() const;

  Work all_reduce(const void* send, void* recv, std::size_t count, DataType type, ReduceOp op,
                  OpOptions options = {});
  /// `send` holds size() * recv_count elements; rank r receives block r, reduced.
  Work reduce_scatter(const void* send, void* recv, std::size_t recv_count, DataType type,
                      ReduceOp op, OpOptions options = {});
  /// `recv` receives size() * send_count elements, rank-major.
  Work all_gather(const void* send, void* recv, std::size_t send_count, DataType type,
                  OpOptions options = {});
  /// `root`'s `send` lands in every rank's `recv` (`send` is read on the root only).
  Work broadcast(const void* send, void* recv, std::size_t count, DataType type, int root,
                 OpOptions options = {});
  /// The reduction lands in `recv` on `root` only.
  Work reduce(const void* send, void* recv, std::size_t count, DataType type, ReduceOp op, int root,
              OpOptions options = {});
  /// Block p (count elements) of `send` goes to rank p; block p of `recv` comes from it.
  Work all_to_all(const void* send, void* recv, std::size_t count, DataType type,
                  OpOptions options = {});
  Work send(const void* buffer, std::size_t count, DataType type, int peer, OpOptions options = {});
  Work recv(void* buffer, std::size_t count, DataType type, int peer, OpOptions options = {});
  Work barrier(OpOptions options = {});

  /// Operations issued between group_start() and group_end() are started together and
  /// completed by group_end() (ncclGroupStart/End on the device; nonblocking MPI calls
  /// on the host), so that matching send/recv pairs cannot deadlock.
  void group_start();
  void group_end();

  /// Ranks with the same color form a communicator, ordered by (key, rank). Collective.
  /// A negative color returns an empty communicator (valid() is false).
  Communicator split(int color, int key) const;
  /// The ranks on this host (for hierarchical algorithms: the NVLink level).
  Communicator split_by_host() const;
  /// The ranks with this rank's local index, one per host (the network level).
  Communicator split_across_hosts() const;

  /// Setup data of a few bytes per rank (a model's fingerprint, an agreed order) through
  /// the bootstrap: host memory whatever the backend, outside the sequence of operations
  /// (not checked against the other ranks' calls), but watched like one (watch_section):
  /// a rank that never arrives is named past the timeout. Collective; `all` gets
  /// size() * bytes, rank-major.
  void setup_all_gather(const void* mine, void* all, std::size_t bytes);
  /// Root's `bytes` of `data` to every rank through the bootstrap, as setup_all_gather.
  void setup_broadcast(void* data, std::size_t bytes, int root);
  bool valid() const { return impl_ != nullptr; }

  /// A stretch of this rank's work watched like an operation; see watch_section().
  class Section {
   public:
    Section() = default;
    Section(Section&& other) noexcept;
    Section& operator=(Section&& other) noexcept;
    ~Section();  ///< ends the stretch
    Section(const Section&) = delete;
    Section& operator=(const Section&) = delete;

   private:
    friend class Communicator;
    Impl* impl_ = nullptr;
    std::uint64_t id_ = 0;
  };
  /// Watches work outside the communicator's operations (a checkpoint's collective HDF5
  /// I/O, say) with its timeout: past HAEIN_TIMEOUT the watchdog reports it as hung like a
  /// collective, names the ranks elsewhere and stops the job, where MPI-IO would wait
  /// forever for a rank that is gone. The stretch ends when the Section is destroyed.
  /// `what` names it in messages and must have static storage ("checkpoint write").
  [[nodiscard]] Section watch_section(std::string_view what);

  /// The last 64 operations, oldest first.
  std::vector<OpRecord> flight_recorder() const;
  /// Writes the flight recorder to `out`-style text (what the watchdog dumps).
  std::string flight_recorder_text() const;
  /// The host name of every rank (gathered at creation).
  const std::vector<std::string>& hosts() const;
  /// Rank `rank` of this communicator as the job numbers it (its rank in MPI_COMM_WORLD;
  /// its own rank without MPI): what messages about a split's ranks should name.
  int world_rank(int rank) const;

 private:
  Communicator() = default;
  std::unique_ptr<Impl> impl_;
};

/// Thrown on every rank when check_collectives finds that ranks called different
/// operations at the same sequence number.
class CollectiveMismatch : public Error {
 public:
  using Error::Error;
};

}  // namespace haein::runtime
