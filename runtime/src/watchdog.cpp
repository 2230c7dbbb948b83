// The watchdog: a thread per communicator that declares an operation hung once it has run
// longer than the timeout, asks the other ranks over the control channel how far they
// got, makes every reachable rank dump its flight recorder, aborts and exits.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <sstream>
#include <system_error>
#include <thread>

#include "communicator_impl.hpp"
#include "creation_watch.hpp"
#include "haein/common/error.hpp"
#include "haein/common/files.hpp"
#include "haein/common/log.hpp"

namespace haein::runtime {

namespace {

constexpr auto kPeerExitDelay = std::chrono::seconds(2);

void write_stderr(const std::string& text) {
  std::size_t written = 0;
  while (written < text.size()) {
    const ssize_t n = ::write(STDERR_FILENO, text.data() + written, text.size() - written);
    if (n <= 0) return;
    written += static_cast<std::size_t>(n);
  }
}

}  // namespace

void Communicator::Impl::start_watchdog() {
  watchdog = std::thread([this] { watch(); });
}

void Communicator::Impl::stop_watchdog() {
  {
    std::lock_guard lock(watchdog_mutex);
    stopping = true;
  }
  watchdog_wake.notify_all();
  if (watchdog.joinable()) watchdog.join();
  control.reset();
}

void Communicator::Impl::watch() {
  const auto interval = std::clamp(options.timeout / 20, std::chrono::milliseconds(10),
                                   std::chrono::milliseconds(500));
  const double timeout_s = std::chrono::duration<double>(options.timeout).count();
  heartbeat.alive();  // at once: marks the heartbeat file as kept moving
  std::unique_lock lock(watchdog_mutex);
  while (!watchdog_wake.wait_for(lock, interval, [this] { return stopping; })) {
    // This process runs, whatever its progress; a file on a stalled shared file system
    // must not hold the lock that stop_watchdog() takes.
    lock.unlock();
    heartbeat.alive();
    lock.lock();
    // Device work that has finished counts as finished even if nobody waited for it yet.
    {
      std::lock_guard work_lock(device_work_mutex);
      for (auto it = device_work.begin(); it != device_work.end();) {
        const auto pending = it->second.lock();
        bool finished = !pending;
        try {
          finished = finished || pending->test();
        } catch (const std::exception&) {
          finished = true;  // the waiting thread reports the error
        }
        if (finished && pending) recorder.set_state(it->first, OpState::kCompleted);
        it = finished ? device_work.erase(it) : std::next(it);
      }
    }
    const auto oldest = recorder.oldest_unfinished();
    if (oldest && recorder.now_s() - oldest->second.start_s >= timeout_s) {
      lock.unlock();
      fire(oldest->first, oldest->second);
    }
  }
}

std::string Communicator::Impl::handle_control(const std::string& request,
                                               std::function<void()>& after_reply) {
  if (request == "STATUS") {
    const std::uint64_t at = entered.load();
    std::string last;
    for (const OpRecord& record : recorder.records())
      if (record.sequence == at && !is_p2p(record.op))
        last = record.describe() + " " + std::string(name_of(record.state));
    return "entered " + std::to_string(at) + " " + last;
  }
  if (request.rfind("ABORT ", 0) == 0) {
    if (aborting.exchange(true)) {
      // This rank's own timeout is dumping. The reporter exits once everyone answered, and
      // under mpirun that exit kills this rank: answer once the dump is on disk (bounded,
      // for a rank starved of CPU).
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
      while (!dump_written.load() && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      return "OK";
    }
    dump("haein: rank " + std::to_string(world_ranks[rank]) + " (" + hosts[rank] +
         "): stopping because " + request.substr(6));
    // Give the reporting rank time to reach the others before this process exits: under
    // mpirun the first exit makes mpirun kill every rank, dumped or not.
    // The control thread keeps answering meanwhile: other ranks may still be asking.
    after_reply = [this] {
      std::thread([this] {
        std::this_thread::sleep_for(kPeerExitDelay);
        exit_after_abort();
      }).detach();
    };
    return "OK";
  }
  return "ERROR unknown request";
}

/// Where the peers of a timed-out operation are, from their answers to STATUS.
struct Communicator::Impl::PeerStatus {
  std::vector<int> missing;                            ///< last entered an earlier collective
  std::vector<int> joined;                             ///< in this one too
  std::vector<int> unreachable;                        ///< did not answer
  std::map<std::string, std::vector<int>> entered_as;  ///< other operations at this sequence
  std::string details;                                 ///< "; rank 3 (host) last entered #7 ..."
};

void Communicator::Impl::fire(std::uint64_t id, const OpRecord& record) {
  if (aborting.exchange(true)) {
    // A peer's ABORT got here first; the control thread is dumping and will exit.
    for (;;) std::this_thread::sleep_for(std::chrono::seconds(1));
  }
  recorder.set_state(id, OpState::kTimedOut);
  // The dump file first: if another rank's exit makes mpirun kill this one while it asks
  // around, the record is already on disk.
  write_dump_file(record.describe() + " #" + std::to_string(record.sequence) + " timed out");
  std::ostringstream headline;
  headline << "haein: rank " << world_ranks[rank] << " (" << hosts[rank]
           << "): " << record.describe() << " #" << record.sequence << " via " << record.backend
           << " timed out after " << std::chrono::duration<double>(options.timeout).count()
           << " s (HAEIN_TIMEOUT)";
  const PeerStatus status = ask_peers(record);
  headline << verdict(record, status);
  tell_peers_to_abort(record, status.unreachable);
  dump(headline.str());
  exit_after_abort();
}

Communicator::Impl::PeerStatus Communicator::Impl::ask_peers(const OpRecord& record) {
  // Who never got there? Ask every peer how far it went, all at once.
  const bool p2p = is_p2p(record.op);
  PeerStatus status;
  std::ostringstream details;
  std::vector<int> asked;
  std::vector<detail::ControlPeer> asked_at;
  for (int peer = 0; peer < size; ++peer) {
    if (peer == rank || (p2p && peer != record.peer)) continue;
    asked.push_back(peer);
    asked_at.push_back({control_address_of(peer), control_ports[peer]});
  }
  const auto replies = detail::control_request_all(asked_at, control_secret, "STATUS",
                                                   std::chrono::milliseconds(1500));
  for (std::size_t i = 0; i < asked.size(); ++i) {
    const int peer = asked[i];
    const auto& reply = replies[i];
    if (!reply || reply->rfind("entered ", 0) != 0) {
      status.unreachable.push_back(peer);
      continue;
    }
    std::istringstream fields(reply->substr(8));
    std::uint64_t at = 0;
    fields >> at;
    std::string last;
    std::getline(fields, last);
    if (p2p) {
      details << "; peer rank " << world_ranks[peer] << " (" << hosts[peer]
              << ") is at collective #" << at << last;
    } else if (at < record.sequence) {
      status.missing.push_back(peer);
      details << "; rank " << world_ranks[peer] << " (" << hosts[peer] << ") last entered #" << at
              << last;
    } else if (at == record.sequence && last.rfind(" " + record.describe() + " ", 0) != 0) {
      // The same place in the sequence, another operation: the ranks disagree on the
      // program's order (HAEIN_CHECK_COLLECTIVES=1 finds that before it hangs).
      const std::size_t state = last.rfind(' ');
      status.entered_as[last.substr(1, state == 0 ? std::string::npos : state - 1)].push_back(peer);
    } else {
      status.joined.push_back(peer);
    }
  }
  status.details = details.str();
  return status;
}

std::string Communicator::Impl::verdict(const OpRecord& record, const PeerStatus& status) {
  std::ostringstream headline;
  if (!is_p2p(record.op)) {
    headline << "; ranks that never joined: "
             << (status.missing.empty() ? "none" : detail::join_ranks(as_world(status.missing)));
    if (!status.entered_as.empty()) {
      // Which side is wrong is the program's to say: name every operation and its ranks.
      std::vector<int> same = status.joined;
      same.push_back(rank);
      std::sort(same.begin(), same.end());
      headline << "; ranks disagree on #" << record.sequence << ": " << record.describe() << " on "
               << detail::join_ranks(as_world(same));
      for (const auto& [what, ranks] : status.entered_as)
        headline << ", " << what << " on " << detail::join_ranks(as_world(ranks));
    } else if (!status.joined.empty()) {
      headline << "; ranks waiting in it: " << detail::join_ranks(as_world(status.joined));
    }
  }
  // In a split, peers that never joined may be waiting for a rank outside it (the
  // hierarchical bucketer's ranks across hosts wait for their host's ranks), and peers that
  // did not answer may be on a host cut off: then the job's other processes are asked
  // whether they still answer at all, so that the verdict covers the whole job.
  std::vector<int> silent = as_world(status.unreachable);
  if (!status.missing.empty() || !status.unreachable.empty())
    for (const int world_rank : silent_outside()) silent.push_back(world_rank);
  std::sort(silent.begin(), silent.end());
  if (!silent.empty())
    headline << "; ranks that did not answer (exited, stopped or unreachable): "
             << detail::join_ranks(silent);
  headline << status.details;
  return headline.str();
}

void Communicator::Impl::tell_peers_to_abort(const OpRecord& record,
                                             const std::vector<int>& unreachable) {
  // Peers dump first (they acknowledge after writing), then this rank, then exit.
  const std::string notice = "rank " + std::to_string(world_ranks[rank]) + " (" + hosts[rank] +
                             ") reported: " + record.describe() + " #" +
                             std::to_string(record.sequence) + " timed out";
  // A rank that did not answer STATUS may still be there (its port was busy, its host
  // slow): it is told too, with less patience.
  std::vector<detail::ControlPeer> answered, silent_peers;
  for (int peer = 0; peer < size; ++peer) {
    if (peer == rank) continue;
    const bool answered_status =
        std::find(unreachable.begin(), unreachable.end(), peer) == unreachable.end();
    (answered_status ? answered : silent_peers)
        .push_back({control_address_of(peer), control_ports[peer]});
  }
  // The silent ones with less patience, at the same time as the others.
  const auto tell_silent = [&] {
    detail::control_request_all(silent_peers, control_secret, "ABORT " + notice,
                                std::chrono::milliseconds(1000));
  };
  std::thread teller;
  try {
    teller = std::thread(tell_silent);
  } catch (const std::system_error&) {
    tell_silent();
  }
  detail::control_request_all(answered, control_secret, "ABORT " + notice,
                              std::chrono::milliseconds(5000));
  if (teller.joinable()) teller.join();
}

std::vector<int> Communicator::Impl::silent_outside() const {
  std::vector<int> silent;
  if (!roll || roll->peers.size() <= static_cast<std::size_t>(size)) return silent;
  std::vector<int> outside;
  std::vector<detail::ControlPeer> peers;
  for (std::size_t r = 0; r < roll->peers.size(); ++r) {
    if (std::find(world_ranks.begin(), world_ranks.end(), roll->world_ranks[r]) !=
        world_ranks.end())
      continue;
    outside.push_back(roll->world_ranks[r]);
    peers.push_back(roll->peers[r]);
  }
  const auto replies =
      detail::control_request_all(peers, roll->secret, "ALIVE", std::chrono::milliseconds(1500));
  for (std::size_t i = 0; i < outside.size(); ++i)
    if (replies[i] != "ALIVE") silent.push_back(outside[i]);
  return silent;
}

std::string Communicator::Impl::write_dump_file(const std::string& headline) {
  const std::string records = recorder.text(world_ranks[rank], hosts[rank]);
  const std::string body = headline + "\n" + records;
  const std::string path = options.dump_dir + "/haein-flight-recorder-rank-" +
                           std::to_string(world_ranks[rank]) + ".txt";
  // A fresh file renamed into place: a symlink or file planted in a shared /tmp is
  // replaced, never followed or written into.
  std::string problem;
  try {
    replace_file(path, body);
  } catch (const Error& error) {
    problem = error.what();
  }
  dump_written.store(true);
  // The file leads with the headline; what is printed ends with it (see dump()).
  return records +
         (problem.empty() ? "flight recorder written to " + path
                          : "flight recorder not written: " + problem) +
         "\n";
}

void Communicator::Impl::dump(const std::string& headline) {
  // The verdict as the last line: what a launcher keeps of a rank's output is its last
  // lines (haein run names hosts whose ranks did not answer from them).
  write_stderr(write_dump_file(headline) + headline + "\n");
}

void Communicator::Impl::exit_after_abort() {
  if (device) device->abort();
  if (timeline) timeline->flush();
  std::fflush(stdout);
  std::fflush(stderr);
  std::_Exit(detail::kTimeoutExitCode);
}

}  // namespace haein::runtime
