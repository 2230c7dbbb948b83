#include "supervisor.hpp"

#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string_view>
#include <thread>

#include "cpu_binding.hpp"
#include "haein/common/error.hpp"
#include "memory_binding.hpp"
#include "rank_status.hpp"

namespace haein::launcher::detail {

std::string signal_name(int signal) {
  const char* abbreviation = sigabbrev_np(signal);
  if (abbreviation == nullptr) return "signal " + std::to_string(signal);
  return std::string("SIG") + abbreviation;
}

std::string ChildResult::describe() const {
  if (signal != 0) return "signal " + signal_name(signal) + " (" + std::to_string(signal) + ")";
  return "exit code " + std::to_string(exit_code);
}

std::string expand_tag(const std::string& tag_template, const std::string& host, int rank,
                       int local_rank) {
  std::string out;
  std::size_t at = 0;
  while (at < tag_template.size()) {
    const std::size_t open = tag_template.find('{', at);
    if (open == std::string::npos) {
      out += tag_template.substr(at);
      break;
    }
    out += tag_template.substr(at, open - at);
    const std::size_t close = tag_template.find('}', open);
    const std::string name = close == std::string::npos
                                 ? std::string()
                                 : tag_template.substr(open + 1, close - open - 1);
    if (name == "host") {
      out += host;
    } else if (name == "rank") {
      out += std::to_string(rank);
    } else if (name == "local_rank") {
      out += std::to_string(local_rank);
    } else {
      throw InvalidArgument("--tag-output '" + tag_template + "': unknown field '{" + name +
                            "}'; the fields are {host}, {rank} and {local_rank}");
    }
    at = close + 1;
  }
  return out;
}

namespace {

using Clock = std::chrono::steady_clock;

constexpr int kWatchedSignals[] = {SIGCHLD, SIGINT, SIGTERM, SIGHUP, SIGUSR1, SIGUSR2};
constexpr std::size_t kLongestLine = 64 * 1024;
// A heartbeat file's access time unchanged across this process's scans for this long: its
// process stopped running; one changed within kRunningSeconds: its process runs (the
// runtime's watchdog sets it every 0.5 s or more often).
constexpr double kFrozenSeconds = 2.0;
constexpr double kRunningSeconds = 1.5;

double seconds_between(const timespec& then, const timespec& now) {
  return static_cast<double>(now.tv_sec - then.tv_sec) +
         static_cast<double>(now.tv_nsec - then.tv_nsec) * 1e-9;
}

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

void write_all(int fd, const std::string& text) {
  std::size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // a closed terminal or pipe: the output has nowhere to go
    done += static_cast<std::size_t>(n);
  }
}

// When we die without stopping the children (SIGKILL), their process groups (a rank and
// what it started) would run on: the parent-death signal reaches each child only. A small
// process started first holds a pipe from us and, when the pipe closes without our
// "done", kills every group we told it about. It keeps no other file of ours open and
// ignores the terminal's signals; between fork and its end it calls only
// async-signal-safe functions.
class GroupWatcher {
 public:
  void start() {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) return;  // no watcher: the old behaviour
    const pid_t pid = ::fork();
    if (pid < 0) {
      ::close(fds[0]);
      ::close(fds[1]);
      return;
    }
    if (pid == 0) watch(fds[0]);
    ::close(fds[0]);
    fd_ = fds[1];
    pid_ = pid;
  }
  void add(pid_t group) {
    if (fd_ < 0) return;
    const std::string line = std::to_string(group) + "\n";
    if (::write(fd_, line.data(), line.size()) < 0) {
    }
  }
  // Our own end: the groups are gone or ours to stop; the watcher leaves quietly.
  void done() {
    if (fd_ < 0) return;
    if (::write(fd_, "done\n", 5) < 0) {
    }
    ::close(fd_);
    fd_ = -1;
    waitpid(pid_, nullptr, 0);
  }
  ~GroupWatcher() { done(); }

 private:
  [[noreturn]] static void watch(int in) {
    ::setsid();  // Ctrl-C and a hung-up terminal reach the job, not us
    struct sigaction ignore {};
    ignore.sa_handler = SIG_IGN;
    ::sigaction(SIGINT, &ignore, nullptr);
    ::sigaction(SIGHUP, &ignore, nullptr);
    ::sigaction(SIGPIPE, &ignore, nullptr);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    const int null = ::open("/dev/null", O_RDWR);
    if (null >= 0) {
      ::dup2(null, 0);
      ::dup2(null, 1);
      ::dup2(null, 2);
    }
    ::dup2(in, 3);
    ::syscall(SYS_close_range, 4U, ~0U, 0U);  // nothing of ours held open (pipes, logs)
    static pid_t groups[1 << 16];
    std::size_t count = 0;
    long long value = 0;
    bool digits = false, word = false;
    char buffer[4096];
    for (;;) {
      const ssize_t n = ::read(3, buffer, sizeof buffer);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      for (ssize_t i = 0; i < n; ++i) {
        const char c = buffer[i];
        if (c >= '0' && c <= '9') {
          value = value * 10 + (c - '0');
          digits = true;
        } else if (c == '\n') {
          if (word) ::_exit(0);  // "done"
          if (digits && value > 1 && count < sizeof groups / sizeof groups[0])
            groups[count++] = static_cast<pid_t>(value);
          value = 0;
          digits = false;
        } else {
          word = true;
        }
      }
    }
    for (std::size_t i = 0; i < count; ++i) ::kill(-groups[i], SIGKILL);
    ::_exit(0);
  }

  int fd_ = -1;
  pid_t pid_ = -1;
};

// One captured stream of a child: bytes come in, whole lines go out.
struct Stream {
  int fd = -1;
  int target = 1;  // our stdout or stderr
  std::string partial;
  std::string segment;  // Open MPI tag of the chunk being read; empty: at a chunk's start
};

// Where a chunk with Open MPI tag `tag` goes: our stdout for <stdout>, else our stderr.
int target_of(const std::string& tag) { return tag.find("<stdout>") != std::string::npos ? 1 : 2; }

// Open MPI's "[1,17]<stdout>:" at `at`: its length; 0 when the bytes there are not one;
// npos when `text` ends before that can be told.
std::size_t open_mpi_tag(const std::string& text, std::size_t at) {
  std::size_t i = at;
  const auto more = [&] { return i < text.size(); };
  if (!more()) return std::string::npos;
  if (text[i++] != '[') return 0;
  for (int field = 0; field < 2; ++field) {
    const std::size_t digits = i;
    while (more() && std::isdigit(static_cast<unsigned char>(text[i])) && i - digits < 12) ++i;
    if (!more()) return std::string::npos;
    if (i == digits || text[i++] != (field == 0 ? ',' : ']')) return 0;
  }
  for (const char* kind : {"<stdout>:", "<stderr>:", "<stddiag>:"}) {
    const std::string_view want(kind);
    const std::size_t have = std::min(want.size(), text.size() - i);
    if (text.compare(i, have, want.substr(0, have)) != 0) continue;
    return have < want.size() ? std::string::npos : i + want.size() - at;
  }
  return 0;
}

struct Running {
  const ChildSpec* spec = nullptr;
  pid_t pid = -1;
  bool alive = false;
  Clock::time_point started;
  Stream out, err;
  int log = -1;
  std::deque<std::string> tail;
  ChildResult result;
};

class Supervisor {
 public:
  Supervisor(const std::vector<ChildSpec>& specs, const SupervisorOptions& options)
      : options_(options), children_(specs.size()) {
    for (std::size_t i = 0; i < specs.size(); ++i) children_[i].spec = &specs[i];
  }

  ~Supervisor() {
    for (Running& child : children_) {
      // Only after an exception: no child outlives the supervisor.
      if (child.alive) {
        ::kill(-child.pid, SIGKILL);
        waitpid(child.pid, nullptr, 0);
      }
      close_fd(child.out.fd);
      close_fd(child.err.fd);
      close_fd(child.log);
    }
    close_fd(signals_);
    if (masked_) sigprocmask(SIG_SETMASK, &old_mask_, nullptr);
    if (old_sigpipe_ != SIG_ERR) signal(SIGPIPE, old_sigpipe_);
  }

  SupervisorResult run() {
    for (Running& child : children_) {
      open_log(child);
      if (child.spec->numa >= 0 && !memory_) memory_ = std::make_unique<MemoryBinder>();
    }
    // Whatever the children leave behind (mpirun's ranks when mpirun exits first, a rank's
    // daemonised helpers) becomes ours, to be stopped and reaped before we return.
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    // A closed terminal or a gone mpirun must not kill us before the children are stopped.
    old_sigpipe_ = signal(SIGPIPE, SIG_IGN);
    if (std::any_of(children_.begin(), children_.end(),
                    [](const Running& child) { return child.spec->signal_group; }))
      watcher_.start();
    block_signals();
    for (std::size_t i = 0; i < children_.size(); ++i) {
      start(children_[i]);
      // A signal that arrived during the starts is handled before the next start.
      if (stop_signal_ != 0 || first_failure_ >= 0) break;
      drain_signals();
      if (stop_signal_ != 0 || first_failure_ >= 0) break;
    }
    loop();
    finish_output();
    SupervisorResult result;
    for (Running& child : children_) {
      child.result.tail.assign(child.tail.begin(), child.tail.end());
      result.children.push_back(std::move(child.result));
    }
    result.first_failure = first_failure_;
    result.hung = hung_;
    result.hung_age = hung_age_;
    result.hung_frozen = hung_frozen_;
    result.hung_still = hung_still_;
    result.stale = stale_;
    result.stop_signal = stop_signal_;
    result.manager_overdue = manager_overdue_;
    return result;
  }

 private:
  static void close_fd(int& fd) {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }

  void block_signals() {
    sigset_t mask;
    sigemptyset(&mask);
    for (int s : kWatchedSignals) sigaddset(&mask, s);
    if (sigprocmask(SIG_BLOCK, &mask, &old_mask_) != 0) {
      throw SysError("cannot block signals", errno);
    }
    masked_ = true;
    signals_ = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
    if (signals_ < 0) throw SysError("signalfd failed", errno);
  }

  void open_pipe(int fds[2]) {
    if (pipe2(fds, O_CLOEXEC) != 0) {
      throw SysError("cannot create a pipe", errno);
    }
  }

  static void open_log(Running& child) {
    const std::string& path = child.spec->log_file;
    if (path.empty()) return;
    child.log = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (child.log < 0) {
      throw SysError("cannot write log file '" + path + "'", errno);
    }
  }

  void start(Running& child) {
    const ChildSpec& spec = *child.spec;
    int out[2] = {-1, -1}, err[2] = {-1, -1};
    if (spec.capture) {
      open_pipe(out);
      open_pipe(err);
    }
    std::vector<char*> argv;
    for (const std::string& arg : spec.argv) argv.push_back(const_cast<char*>(arg.c_str()));
    argv.push_back(nullptr);
    // Worked out before the fork: between fork and exec the child only makes system calls.
    const CpuBinding binding(spec.cores);
    const pid_t parent = getpid();
    const pid_t pid = fork();
    if (pid < 0) throw SysError("fork failed", errno);
    if (pid == 0) exec_child(spec, binding, argv, out[1], err[1], parent);
    // Set in both processes so that signals to the group cannot race the child's setpgid.
    setpgid(pid, pid);
    if (spec.signal_group) watcher_.add(pid);
    child.pid = pid;
    child.alive = true;
    child.started = Clock::now();
    ++alive_;
    if (spec.capture) {
      ::close(out[1]);
      ::close(err[1]);
      child.out = {out[0], 1, {}, {}};
      child.err = {err[0], 2, {}, {}};
      fcntl(out[0], F_SETFL, O_NONBLOCK);
      fcntl(err[0], F_SETFL, O_NONBLOCK);
    }
  }

  // In the child: its own process group, killed with us, our signals back to default,
  // its output into the pipes, its environment and cores, then the program.
  [[noreturn]] void exec_child(const ChildSpec& spec, const CpuBinding& binding,
                               std::vector<char*>& argv, int out, int err, pid_t parent) {
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, spec.parent_death_signal);
    if (getppid() != parent) _exit(128 + SIGKILL);
    for (int s : kWatchedSignals) signal(s, SIG_DFL);
    signal(SIGPIPE, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    if (spec.stdin_null) {
      const int null = ::open("/dev/null", O_RDONLY);
      if (null >= 0) dup2(null, 0);
    }
    if (out >= 0) dup2(out, 1);
    if (err >= 0) dup2(err, 2);
    for (const std::string& name : spec.unset) unsetenv(name.c_str());
    for (const auto& [name, value] : spec.env) setenv(name.c_str(), value.c_str(), 1);
    binding.apply();
    if (spec.numa >= 0 && memory_ && memory_->supported()) {
      const std::string why = memory_->bind(spec.numa);
      if (!why.empty()) write_all(2, "haein: memory not bound: " + why + "\n");
    }
    execvp(argv[0], argv.data());
    const int error = errno;
    const std::string message = "haein: cannot run '" + spec.argv.front() +
                                "': " + std::strerror(error) +
                                (error == ENOENT ? " (not found in PATH)\n" : "\n");
    write_all(2, message);
    _exit(error == EACCES || error == ENOEXEC ? 126 : 127);
  }

  void signal_child(Running& child, int signal, bool group) {
    if (!child.alive) return;
    if (child.spec->deliver && child.spec->deliver(signal) && signal != SIGKILL) return;
    const pid_t target = group ? -child.pid : child.pid;
    ::kill(target, signal);
    // A stopped process (SIGSTOP, a debugger) acts on a signal that ends it only once
    // continued: without this it waits for the SIGKILL after the grace, and records nothing.
    if (signal == SIGTERM || signal == SIGINT || signal == SIGHUP || signal == SIGQUIT)
      ::kill(target, SIGCONT);
  }

  // Stops every running child: `signal` now (SIGTERM, or one we forward), SIGKILL when the
  // grace period is over.
  void stop_all(int signal) {
    for (Running& child : children_) {
      if (!child.alive) continue;
      child.result.stopped = true;
      signal_child(child, signal, child.spec->signal_group);
    }
    if (!kill_deadline_) {
      kill_deadline_ = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                          std::chrono::duration<double>(options_.grace_seconds));
    }
  }

  // SIGKILL to every child: the first time also in its manager's own way (deliver), after
  // that (every pass until reaped) by kill(2) alone.
  void kill_all() {
    const bool first = !killed_;
    killed_ = true;
    for (Running& child : children_) {
      if (first) {
        signal_child(child, SIGKILL, true);
      } else if (child.alive) {
        ::kill(-child.pid, SIGKILL);
      }
    }
  }

  void reap() {
    for (std::size_t i = 0; i < children_.size(); ++i) {
      Running& child = children_[i];
      if (!child.alive) continue;
      int status = 0;
      const pid_t done = waitpid(child.pid, &status, WNOHANG);
      if (done != child.pid) continue;
      child.alive = false;
      --alive_;
      child.result.seconds = seconds_since(child.started);
      child.result.ended_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                                  std::chrono::system_clock::now().time_since_epoch())
                                  .count();
      if (WIFSIGNALED(status)) {
        child.result.signal = WTERMSIG(status);
      } else {
        child.result.exit_code = WEXITSTATUS(status);
      }
      // What it started may still run in its group; that is killed when the job ends.
      if (child.result.failed() && !child.result.stopped && first_failure_ < 0 && hung_ < 0 &&
          stop_signal_ == 0) {
        first_failure_ = static_cast<int>(i);
        stop_all(SIGTERM);
      }
    }
  }

  void drain_signals() {
    signalfd_siginfo info;
    while (::read(signals_, &info, sizeof info) == static_cast<ssize_t>(sizeof info)) {
      const int s = static_cast<int>(info.ssi_signo);
      if (s == SIGCHLD) {
        reap();
      } else if (s == SIGUSR1 || s == SIGUSR2) {
        for (Running& child : children_) signal_child(child, s, child.spec->signal_group);
      } else if (stop_signal_ != 0) {
        if (options_.repeat_kills) kill_all();  // asked twice: no more grace
      } else {
        stop_signal_ = s;
        stop_all(s);
      }
    }
    reap();  // SIGCHLDs coalesce; a child may also have ended before the first read
  }

  void emit(Running& child, Stream& stream, std::string_view line) {
    emit_to(child, stream.target, line);
  }

  // mpirun --tag-output's stream: chunks appended to their rank's partial line, whole lines
  // emitted; untagged text (mpirun's own messages) line by line. Consumes what it can of
  // stream.partial and keeps the rest for the next read.
  void untag(Running& child, Stream& stream, bool at_end) {
    std::string& in = stream.partial;
    std::size_t pos = 0;
    while (pos < in.size()) {
      if (stream.segment.empty()) {
        const std::size_t tag = open_mpi_tag(in, pos);
        if (tag == std::string::npos && !at_end) break;
        if (tag != 0 && tag != std::string::npos) {
          stream.segment = in.substr(pos, tag);
          pos += tag;
          continue;
        }
        const std::size_t newline = in.find('\n', pos);
        if (newline == std::string::npos && !at_end) break;
        const std::size_t end = newline == std::string::npos ? in.size() : newline;
        emit(child, stream, std::string_view(in).substr(pos, end - pos));
        pos = end + 1;
        continue;
      }
      // In a chunk: up to a newline, or to the next chunk's tag (mpirun cut the line).
      std::size_t end = pos;
      bool undecided = false;
      for (; end < in.size() && in[end] != '\n'; ++end) {
        if (in[end] != '[') continue;
        const std::size_t tag = open_mpi_tag(in, end);
        if (tag == std::string::npos && !at_end) undecided = true;
        if (undecided || (tag != 0 && tag != std::string::npos)) break;
      }
      std::string& line = untagged_[stream.segment];
      line.append(in, pos, end - pos);
      pos = end;
      if (line.size() >= kLongestLine) {  // as for untagged streams: a line in pieces
        emit_to(child, target_of(stream.segment), line);
        line.clear();
      }
      if (undecided || end == in.size()) break;
      if (in[end] == '\n') {
        emit_to(child, target_of(stream.segment), line);
        line.clear();
        ++pos;
      }
      stream.segment.clear();
    }
    in.erase(0, std::min(pos, in.size()));
    if (at_end) {
      for (auto& [tag, line] : untagged_)
        if (!line.empty()) emit_to(child, target_of(tag), line);
      untagged_.clear();
    }
  }

  void emit_to(Running& child, int target, std::string_view line) {
    std::string text = child.spec->tag;
    text.append(line);
    text += '\n';
    if (child.spec->echo) queue_output(target, text);
    if (child.log >= 0) write_all(child.log, std::string(line) + "\n");
    child.tail.emplace_back(line);
    if (child.tail.size() > options_.tail_lines) child.tail.pop_front();
  }

  // Reads what is there; returns false at end of file.
  bool read_stream(Running& child, Stream& stream) {
    char buffer[65536];
    int chunks = 0;
    for (;;) {
      const ssize_t n = ::read(stream.fd, buffer, sizeof buffer);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK;
      if (n == 0) {
        consume(child, stream, true);
        close_fd(stream.fd);
        return false;
      }
      stream.partial.append(buffer, static_cast<std::size_t>(n));
      consume(child, stream, false);
      if (static_cast<std::size_t>(n) < sizeof buffer) return true;
      // A fast writer keeps the pipe full: back to the loop now and then (signals, other
      // ranks), and when our own reader is behind.
      if (++chunks >= 16 || pending_[stream.target].size() > kMaxPendingOutput) return true;
    }
  }

  // What has arrived on `stream`: whole lines emitted (a line past kLongestLine in pieces),
  // the rest kept for the next read; at the end, all of it.
  void consume(Running& child, Stream& stream, bool at_end) {
    if (child.spec->open_mpi_tagged) {
      untag(child, stream, at_end);
      return;
    }
    std::size_t begin = 0;
    for (std::size_t end; (end = stream.partial.find('\n', begin)) != std::string::npos;
         begin = end + 1) {
      emit(child, stream, std::string_view(stream.partial).substr(begin, end - begin));
    }
    stream.partial.erase(0, begin);
    if ((at_end && !stream.partial.empty()) || stream.partial.size() >= kLongestLine) {
      emit(child, stream, stream.partial);
      stream.partial.clear();
    }
  }

  void check_heartbeats() {
    if (options_.heartbeat_timeout <= 0 || hung_ >= 0 || first_failure_ >= 0 || stop_signal_ != 0) {
      return;
    }
    timespec now{};
    clock_gettime(CLOCK_REALTIME, &now);
    if (first_mtimes_.empty()) first_mtimes_.assign(options_.heartbeats.size(), {-1, 0});
    // Every silent heartbeat, not the first one found: in a collective hang all ranks stop
    // beating within moments of each other, and the stalest is the one that stopped first.
    // Once one is past its allowance, those silent for half of theirs are listed with it.
    std::vector<std::pair<double, int>> stale;
    std::optional<std::pair<double, int>> stalest_past;  // the root cause: past its allowance
    // The access time says the process runs (the runtime's watchdog threads set it, and
    // only it, while the rank waits): a rank whose access time stood still, while another's
    // moved, stopped running; the others wait for it. Judged by this process's own clock
    // between scans (the files' times may come from other hosts' clocks), and only for
    // files the runtime's watchdog marked with a line (a trainer that only touches its
    // file leaves it empty).
    if (atimes_.empty()) atimes_.assign(options_.heartbeats.size(), {});
    const auto scanned = Clock::now();
    std::optional<std::pair<double, int>> frozen;  // the longest still among the stale
    bool others_run = false;
    for (std::size_t i = 0; i < options_.heartbeats.size(); ++i) {
      const HeartbeatFile& heartbeat = options_.heartbeats[i];
      if (!children_.at(heartbeat.child).alive) continue;
      struct stat info {};
      // Opened, not only stat'ed: on NFS an open revalidates the cached attributes.
      const int fd = ::open(heartbeat.file.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
      if (fd < 0) continue;
      const bool seen = ::fstat(fd, &info) == 0;
      ::close(fd);
      if (!seen) continue;
      if (first_mtimes_[i].first < 0)
        first_mtimes_[i] = {info.st_mtim.tv_sec, info.st_mtim.tv_nsec};
      const bool beat =
          first_mtimes_[i] != std::pair<long, long>{info.st_mtim.tv_sec, info.st_mtim.tv_nsec};
      const double allowed = beat
                                 ? options_.heartbeat_timeout
                                 : std::max(options_.heartbeat_timeout, options_.heartbeat_startup);
      const double age = seconds_between(info.st_mtim, now);
      AccessTime& access = atimes_[i];
      const std::pair<long, long> atime{info.st_atim.tv_sec, info.st_atim.tv_nsec};
      if (atime != access.value) {
        access.value = atime;
        access.changed = scanned;
      }
      const bool watched = info.st_size > 0;  // the runtime's watchdog marked it
      const double still = std::chrono::duration<double>(scanned - access.changed).count();
      if (age > allowed / 2) {
        stale.emplace_back(age, static_cast<int>(i));
        if (watched && still > kFrozenSeconds && (!frozen || still > frozen->first))
          frozen = std::pair<double, int>{still, static_cast<int>(i)};
      }
      if (watched && still < kRunningSeconds) others_run = true;
      if (age > allowed && (!stalest_past || age > stalest_past->first))
        stalest_past = std::pair<double, int>{age, static_cast<int>(i)};
    }
    if (!stalest_past) return;
    std::sort(stale.begin(), stale.end(), [](const auto& a, const auto& b) {
      return a.first != b.first ? a.first > b.first : a.second < b.second;
    });
    hung_ = stalest_past->second;
    hung_age_ = stalest_past->first;
    if (frozen && others_run) {
      hung_ = frozen->second;
      hung_frozen_ = true;
      hung_still_ = frozen->first;
      for (const auto& [age, index] : stale)
        if (index == hung_) hung_age_ = age;
    }
    stale_.push_back(hung_);
    for (const auto& [age, index] : stale)
      if (index != hung_) stale_.push_back(index);
    stop_all(SIGTERM);
  }

  // The manager's ranks: once one failed, the manager gets failure_deadline to end.
  void check_statuses() {
    if (options_.status_dir.empty() || kill_deadline_ || alive_ == 0) return;
    const auto now = Clock::now();
    if (!rank_failed_at_) {
      if (now - statuses_read_ < std::chrono::milliseconds(200)) return;
      statuses_read_ = now;
      if (first_failure(read_rank_statuses(options_.status_dir)) != nullptr) rank_failed_at_ = now;
      return;
    }
    if (now - *rank_failed_at_ < std::chrono::duration<double>(options_.failure_deadline)) return;
    manager_overdue_ = true;
    stop_all(SIGTERM);
  }

  // Our stdout and stderr are written without blocking: a reader that stops reading (a full
  // pipe) must not stop us from answering signals. What does not fit waits here; past
  // kMaxPendingOutput the children's output is no longer read (they wait, as they would on
  // a full pipe of their own).
  static constexpr std::size_t kMaxPendingOutput = std::size_t{1} << 20;

  void queue_output(int target, const std::string& text) {
    pending_[target] += text;
    flush_output(target);
  }

  // Writes what the target takes now: a pipe that polls writable takes PIPE_BUF bytes
  // without blocking, whatever its O_NONBLOCK (which we leave alone: the shell shares it).
  void flush_output(int target) {
    std::string& pending = pending_[target];
    std::size_t done = 0;
    while (done < pending.size()) {
      pollfd writable{target, POLLOUT, 0};
      if (::poll(&writable, 1, 0) != 1 || (writable.revents & POLLOUT) == 0) {
        if ((writable.revents & (POLLERR | POLLHUP | POLLNVAL)) != 0) done = pending.size();
        break;
      }
      const ssize_t n = ::write(target, pending.data() + done,
                                std::min<std::size_t>(PIPE_BUF, pending.size() - done));
      if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      if (n <= 0) {  // a closed terminal or pipe: the output has nowhere to go
        done = pending.size();
        break;
      }
      done += static_cast<std::size_t>(n);
    }
    pending.erase(0, done);
  }

  // At the end: what is left goes out, waiting for the reader; after a stop signal at most
  // the grace period (a reader that never reads must not keep a stopped job alive).
  void finish_output() {
    const bool bounded = stop_signal_ != 0;
    const auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                             std::chrono::duration<double>(options_.grace_seconds));
    for (int target : {1, 2}) {
      while (!pending_[target].empty()) {
        flush_output(target);
        if (pending_[target].empty()) break;
        pollfd writable{target, POLLOUT, 0};
        int wait_ms = -1;
        if (bounded) {
          wait_ms = static_cast<int>(
              std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now())
                  .count());
          if (wait_ms <= 0) break;
        }
        if (::poll(&writable, 1, wait_ms) == 0) break;
      }
    }
  }

  void loop() {
    const bool watch = options_.heartbeat_timeout > 0 && !options_.heartbeats.empty();
    int heartbeat_ms =
        watch ? std::max(20, std::min(500, static_cast<int>(options_.heartbeat_timeout * 250)))
              : -1;
    if (!options_.status_dir.empty())
      heartbeat_ms = heartbeat_ms < 0 ? 250 : std::min(heartbeat_ms, 250);
    std::optional<Clock::time_point> drain_deadline;
    // A SIGCHLD can still be lost to a thread some library started with the signal
    // unblocked; asking for every child once a second bounds what that costs.
    constexpr auto kReapEvery = std::chrono::seconds(1);
    auto next_reap = Clock::now() + kReapEvery;
    for (;;) {
      std::vector<pollfd> fds{{signals_, POLLIN, 0}};
      std::vector<std::pair<Running*, Stream*>> owners{{nullptr, nullptr}};
      std::size_t open_streams = 0;
      for (Running& child : children_) {
        for (Stream* stream : {&child.out, &child.err}) {
          if (stream->fd < 0) continue;
          ++open_streams;
          if (pending_[stream->target].size() > kMaxPendingOutput) continue;  // reader behind
          fds.push_back({stream->fd, POLLIN, 0});
          owners.emplace_back(&child, stream);
        }
      }
      for (int target : {1, 2}) {
        if (pending_[target].empty()) continue;
        fds.push_back({target, POLLOUT, 0});
        owners.emplace_back(nullptr, nullptr);
      }
      if (alive_ == 0) {
        if (!drain_deadline) {
          // Everyone ended: nothing a rank started may outlive the job, and what such
          // helpers still hold open of the pipes ends with them.
          kill_all_groups();
          watcher_.done();
          stop_orphans();
          drain_deadline = Clock::now() + std::chrono::seconds(1);
        }
        if (open_streams == 0 || Clock::now() >= *drain_deadline) break;
      }
      int timeout = heartbeat_ms;
      auto shorten = [&](Clock::time_point deadline) {
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
        const int ms = static_cast<int>(std::max<long long>(0, left)) + 1;
        timeout = timeout < 0 ? ms : std::min(timeout, ms);
      };
      if (kill_deadline_ && alive_ > 0) shorten(*kill_deadline_);
      if (drain_deadline) shorten(*drain_deadline);
      if (alive_ > 0) shorten(next_reap);
      const int ready = ::poll(fds.data(), fds.size(), timeout);
      if (ready < 0 && errno != EINTR) throw SysError("poll", errno);
      for (std::size_t i = 1; ready > 0 && i < fds.size(); ++i) {
        if (fds[i].revents == 0) continue;
        if (owners[i].first == nullptr)
          flush_output(fds[i].fd);
        else
          read_stream(*owners[i].first, *owners[i].second);
      }
      if (ready > 0 && fds[0].revents != 0) drain_signals();
      if (alive_ > 0 && Clock::now() >= next_reap) {
        reap();
        next_reap = Clock::now() + kReapEvery;
      }
      if (kill_deadline_ && alive_ > 0 && Clock::now() >= *kill_deadline_) kill_all();
      check_heartbeats();
      check_statuses();
    }
  }

  // Processes reparented to us (we are a subreaper): SIGTERM, then SIGKILL after the grace
  // period, reaped either way.
  void stop_orphans() {
    const auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                             std::chrono::duration<double>(options_.grace_seconds));
    bool terminated = false, killed = false;
    for (;;) {
      while (waitpid(-1, nullptr, WNOHANG) > 0) {
      }
      const std::vector<pid_t> orphans = own_children();
      // Gone, or past SIGKILL and stuck in the kernel: nothing more we can do.
      if (orphans.empty() || (killed && Clock::now() >= deadline + std::chrono::seconds(2))) return;
      const int signal = !terminated ? SIGTERM : Clock::now() >= deadline && !killed ? SIGKILL : 0;
      if (signal != 0) {
        for (pid_t pid : orphans) ::kill(pid, signal);
        terminated = true;
        killed = signal == SIGKILL;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }

  // Our children by /proc: after the supervised ones are reaped, only adopted orphans.
  static std::vector<pid_t> own_children() {
    std::vector<pid_t> found;
    const std::string self = std::to_string(getpid());
    std::error_code error;
    for (const auto& entry : std::filesystem::directory_iterator("/proc", error)) {
      const std::string name = entry.path().filename().string();
      if (name.empty() || !std::isdigit(static_cast<unsigned char>(name[0]))) continue;
      std::ifstream stat(entry.path() / "stat");
      std::string line;
      if (!std::getline(stat, line)) continue;
      const auto paren = line.rfind(')');
      if (paren == std::string::npos) continue;
      std::istringstream fields(line.substr(paren + 2));
      std::string state, parent;
      fields >> state >> parent;
      if (parent == self && state != "Z") found.push_back(std::stoi(name));
    }
    return found;
  }

  void kill_all_groups() {
    for (Running& child : children_) {
      if (child.pid > 0) ::kill(-child.pid, SIGKILL);
    }
  }

  const SupervisorOptions& options_;
  GroupWatcher watcher_;
  std::unique_ptr<MemoryBinder> memory_;  // loaded when a child binds its memory
  std::vector<Running> children_;
  int alive_ = 0;
  int signals_ = -1;
  sigset_t old_mask_{};
  sighandler_t old_sigpipe_ = SIG_ERR;
  bool masked_ = false;
  int first_failure_ = -1;
  int hung_ = -1;
  double hung_age_ = 0;
  bool hung_frozen_ = false;
  double hung_still_ = 0;
  std::vector<int> stale_;
  std::vector<std::pair<long, long>> first_mtimes_;  ///< each heartbeat's mtime when first seen
  struct AccessTime {
    std::pair<long, long> value{-1, 0};  ///< the file's access time when last seen
    Clock::time_point changed{};         ///< when a scan first saw that value
    bool watched = false;                ///< once seen past the mtime: a watchdog keeps it moving
  };
  std::vector<AccessTime> atimes_;
  int stop_signal_ = 0;
  std::string pending_[3];  ///< output for our stdout (1) and stderr (2) not yet written
  std::map<std::string, std::string> untagged_;  ///< per Open MPI tag: its partial line
  std::optional<Clock::time_point> kill_deadline_;
  bool killed_ = false;
  std::optional<Clock::time_point> rank_failed_at_;  // a status file first showed a failure
  Clock::time_point statuses_read_{};
  bool manager_overdue_ = false;
};

}  // namespace

SupervisorResult supervise(const std::vector<ChildSpec>& children,
                           const SupervisorOptions& options) {
  Supervisor supervisor(children, options);
  return supervisor.run();
}

}  // namespace haein::launcher::detail
