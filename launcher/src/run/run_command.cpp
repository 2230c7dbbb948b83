// `haein run`: place, write the job's files, pick the backend, then run attempts until
// one succeeds, the user stops the job or the restarts are used up.
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <thread>

#include "haein/common/error.hpp"
#include "haein/common/files.hpp"
#include "haein/common/process.hpp"
#include "haein/common/settings.hpp"
#include "haein/common/slurm.hpp"
#include "haein/launcher/plan.hpp"
#include "haein/launcher/topo_commands.hpp"
#include "haein/topology/discover.hpp"
#include "haein/topology/formats.hpp"
#include "haein/topology/hostlist.hpp"
#include "job.hpp"
#include "slurm.hpp"
#include "supervisor.hpp"
#include "visible_gpus.hpp"

namespace haein::launcher {

std::string_view to_string(Backend backend) {
  switch (backend) {
    case Backend::kAuto:
      return "auto";
    case Backend::kLocal:
      return "local";
    case Backend::kMpirun:
      return "mpirun";
    case Backend::kSrun:
      return "srun";
  }
  return "?";
}

Backend parse_backend(const std::string& text) {
  for (Backend backend : {Backend::kAuto, Backend::kLocal, Backend::kMpirun, Backend::kSrun}) {
    if (text == to_string(backend)) return backend;
  }
  throw InvalidArgument("--backend '" + text + "': expected local, mpirun, srun or auto");
}

}  // namespace haein::launcher

namespace haein::launcher::detail {

namespace fs = std::filesystem;

std::string Attempt::log_dir(const Job& job) const {
  if (job.log_dir.empty()) return {};
  return (fs::path(job.log_dir) / ("attempt-" + std::to_string(index))).string();
}

RankContext rank_context(const Job& job, const Attempt& attempt) {
  RankContext context;
  context.placement_path = job.placement_path;
  context.master_port = attempt.master_port;
  context.restart_count = attempt.index;
  context.nccl_topo_dir = job.nccl_topo_dir;
  if (job.options.heartbeat_timeout > 0) context.heartbeat_dir = attempt.heartbeat_dir().string();
  context.master_addr = job.master_addr;
  context.max_restarts = job.options.max_restarts;
  context.run_id = job.dir.filename().string();
  return context;
}

/// Regular files in `dir` (0 when it does not exist).
int count_files(const fs::path& dir) {
  std::error_code error;
  int files = 0;
  for (fs::directory_iterator it(dir, error), end; !error && it != end; it.increment(error))
    if (it->is_regular_file(error)) ++files;
  return files;
}

std::string format_seconds(double seconds) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f", seconds);
  return text;
}

std::string stale_ranks_line(const std::vector<int>& ranks) {
  std::vector<int> sorted = ranks;
  std::sort(sorted.begin(), sorted.end());
  std::string list;
  for (std::size_t i = 0; i < sorted.size(); ++i) {
    std::size_t j = i;
    while (j + 1 < sorted.size() && sorted[j + 1] == sorted[j] + 1) ++j;
    list += (list.empty() ? "" : ",") + std::to_string(sorted[i]) +
            (j > i ? "-" + std::to_string(sorted[j]) : "");
    i = j;
  }
  return "haein run: " + std::to_string(ranks.size()) +
         " ranks were silent for over half the heartbeat timeout: " + list +
         " (a hang they share; the stalest, rank " + std::to_string(ranks.front()) +
         ", is named above)\n";
}

void report_killed(std::ostream& err, const std::vector<int>& ranks, double grace) {
  if (ranks.empty()) return;
  std::string list;
  for (std::size_t i = 0; i < ranks.size() && i < 16; ++i)
    list += (i ? "," : "") + std::to_string(ranks[i]);
  if (ranks.size() > 16) list += ",...";
  err << "haein run: rank" << (ranks.size() == 1 ? " " : "s ") << list << " did not end within "
      << format_seconds(grace) << " s of SIGTERM and " << (ranks.size() == 1 ? "was" : "were")
      << " killed (SIGKILL); give a trainer that saves on SIGTERM more with --stop-grace\n";
}

std::string hung_description(const Job& job, double age_seconds) {
  return "hung: no heartbeat for " + format_seconds(age_seconds) + " s (--heartbeat-timeout " +
         format_seconds(job.options.heartbeat_timeout) + ")";
}

void report_failure(std::ostream& err, int rank, const std::string& host, const std::string& how,
                    const std::vector<std::string>& tail) {
  err << "haein run: root cause: rank " << rank << " on " << host << ": " << how << "\n";
  if (tail.empty()) {
    err << "haein run: rank " << rank << " printed nothing\n";
    return;
  }
  err << "haein run: last " << tail.size() << " line" << (tail.size() == 1 ? "" : "s")
      << " of rank " << rank << ":\n";
  for (const std::string& line : tail) err << "    | " << line << "\n";
}

std::string shell_quote(const std::string& word) {
  const bool plain = !word.empty() && word.find_first_not_of(
                                          "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                          "0123456789_-+=/.,:@%") == std::string::npos;
  if (plain) return word;
  std::string quoted = "'";
  for (char c : word) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return quoted + "'";
}

std::string shell_line(const LaunchCommand& command) {
  std::string line;
  for (const auto& [name, value] : command.env) line += name + "=" + shell_quote(value) + " ";
  for (std::size_t i = 0; i < command.argv.size(); ++i) {
    line += (i ? " " : "") + shell_quote(command.argv[i]);
  }
  return line;
}

namespace {

// A port nobody listens on now: bind to port 0, read what the kernel gave, let it go.
int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw Error("cannot open a socket to find a free MASTER_PORT");
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_ANY);
  socklen_t length = sizeof address;
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0 &&
                  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0;
  ::close(fd);
  if (!ok) throw Error("cannot find a free MASTER_PORT; give --master-port");
  return ntohs(address.sin_port);
}

// The program as execvp will find it; empty when it will not.
std::string find_program(const std::string& name) {
  if (name.find('/') != std::string::npos)
    return access(name.c_str(), X_OK) == 0 && !fs::is_directory(name) ? name : "";
  const char* path = std::getenv("PATH");
  std::string dirs = path ? path : "/usr/bin:/bin";
  std::size_t begin = 0;
  while (begin <= dirs.size()) {
    std::size_t end = dirs.find(':', begin);
    if (end == std::string::npos) end = dirs.size();
    const std::string dir = end > begin ? dirs.substr(begin, end - begin) : ".";
    const std::string candidate = dir + "/" + name;
    if (access(candidate.c_str(), X_OK) == 0 && !fs::is_directory(candidate)) return candidate;
    begin = end + 1;
  }
  return {};
}

// This node, discovered; without GPUs (or none visible) its ranks run on CPUs, as many as
// it has cores.
topology::Cluster local_cluster(std::ostream& err) {
  std::vector<std::string> notes;
  topology::Cluster cluster = topology::discover_local_cluster(&notes);
  topology::Node& node = cluster.nodes.front();
  detail::keep_visible_gpus(node, std::getenv("CUDA_VISIBLE_DEVICES"), err);
  if (node.hardware.gpus.empty()) {
    int cpus = 0;
    for (const topology::NumaDomain& numa : node.hardware.numa)
      cpus += static_cast<int>(numa.cpus.size());
    if (cpus == 0) cpus = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    node.slots = cpus;
    err << "haein run: no GPU on " << node.hostname << ": ranks run on its " << cpus << " CPU"
        << (cpus == 1 ? "" : "s") << "\n";
  }
  return cluster;
}

// --oversubscribe: nodes without GPUs take more ranks than slots, in proportion.
void oversubscribe(topology::Cluster& cluster, const BusySet& busy, int ranks) {
  long long slots = 0;  // up to a million nodes of kMaxSlots each
  for (std::size_t i = 0; i < cluster.nodes.size(); ++i) {
    if (!busy[i] && cluster.nodes[i].hardware.gpus.empty())
      slots += cluster.nodes[i].effective_slots();
  }
  if (slots == 0 || ranks <= slots) return;
  const long long factor = (ranks + slots - 1) / slots;
  for (std::size_t i = 0; i < cluster.nodes.size(); ++i) {
    topology::Node& node = cluster.nodes[i];
    // No node needs more slots than the job has ranks.
    if (node.hardware.gpus.empty())
      node.slots = static_cast<int>(std::min<long long>(node.effective_slots() * factor, ranks));
  }
}

// Nodes without GPUs take as many ranks as slots (their CPUs), as mpirun does, unless
// --oversubscribe.
void check_slots(const topology::Cluster& cluster, const BusySet& busy, int ranks) {
  long long slots = 0;
  std::vector<std::string> described;
  for (std::size_t i = 0; i < cluster.nodes.size(); ++i) {
    const topology::Node& node = cluster.nodes[i];
    if (busy[i]) continue;
    if (!node.hardware.gpus.empty()) return;  // GPU nodes: the placement counts GPUs
    slots += node.effective_slots();
    if (described.size() < 4)
      described.push_back(node.hostname + ": " + std::to_string(node.effective_slots()));
  }
  if (ranks <= slots) return;
  std::string list;
  for (const std::string& entry : described) list += (list.empty() ? "" : ", ") + entry;
  throw InvalidArgument(std::to_string(ranks) + " ranks but the free nodes have " +
                        std::to_string(slots) + " slot" + (slots == 1 ? "" : "s") + " (" + list +
                        (described.size() < cluster.nodes.size() ? ", ..." : "") +
                        "); add --oversubscribe to run more ranks than slots");
}

/// The variables `options` forwards to every rank; InvalidArgument for a bad --env.
std::vector<std::pair<std::string, std::string>> forwarded_environment(const RunOptions& options) {
  // haein sets these itself, per rank or per attempt.
  const std::set<std::string> own{std::string(settings::kPlacement.name()),
                                  std::string(settings::kRestartCount.name()),
                                  std::string(settings::kHeartbeatFile.name())};
  std::vector<std::pair<std::string, std::string>> forwarded;
  auto add = [&](const std::string& name, const std::string& value) {
    for (auto& [known, old] : forwarded) {
      if (known == name) {
        old = value;  // a later --env wins
        return;
      }
    }
    forwarded.emplace_back(name, value);
  };
  for (const env::Setting* setting : env::all_settings()) {
    const std::string name(setting->name());
    if (own.count(name) != 0) continue;
    if (const auto value = setting->raw()) add(name, *value);
  }
  for (const std::string& entry : options.env) {
    const std::size_t equals = entry.find('=');
    const std::string name = entry.substr(0, equals);
    const bool valid =
        !name.empty() && (std::isalpha(static_cast<unsigned char>(name[0])) || name[0] == '_') &&
        std::all_of(name.begin(), name.end(),
                    [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; });
    if (!valid) {
      throw InvalidArgument("--env '" + entry +
                            "': expected NAME or NAME=VALUE, NAME made of letters, digits and _");
    }
    if (own.count(name) != 0) {
      throw InvalidArgument("--env " + name + ": haein run sets " + name + " itself, per rank");
    }
    if (equals != std::string::npos) {
      add(name, entry.substr(equals + 1));
      continue;
    }
    const char* value = std::getenv(name.c_str());
    if (value == nullptr) {
      throw InvalidArgument("--env " + name + ": " + name + " is not set here; give --env " + name +
                            "=VALUE");
    }
    add(name, value);
  }
  return forwarded;
}

void validate(const RunOptions& options) {
  if (options.command.empty()) {
    throw InvalidArgument(
        "haein run needs a program to run after '--' (haein run -n 4 -- PROGRAM)");
  }
  if (options.command.front().empty()) throw InvalidArgument("the program name is empty");
  const PlacementRequest& request = options.request;
  if (request.gpus < 0 || request.nodes < 0 || request.gpus_per_node < 0) {
    throw InvalidArgument("-n/--gpus, --nnodes and --nproc-per-node must not be negative");
  }
  if (request.gpus > 0 && request.nodes > 0) {
    throw InvalidArgument("give either -n/--gpus N or --nnodes M --nproc-per-node K, not both");
  }
  if (request.nodes > 0 && request.gpus_per_node == 0) {
    throw InvalidArgument("--nnodes goes with --nproc-per-node K");
  }
  if (request.gpus_per_node > 0 && request.nodes == 0) {
    throw InvalidArgument("--nproc-per-node goes with --nnodes M");
  }
  if (request.gpus == 0 && request.nodes == 0) {
    throw InvalidArgument(
        "how many ranks? give -n N (or --gpus N), or --nnodes M --nproc-per-node K");
  }
  requested_world(request);  // past kMaxRanks: an error
  if (options.max_restarts < 0) throw InvalidArgument("--max-restarts must not be negative");
  if (options.heartbeat_timeout < 0 || !std::isfinite(options.heartbeat_timeout)) {
    throw InvalidArgument("--heartbeat-timeout must be a positive number of seconds");
  }
  if (options.stop_grace >= 0 && !(options.stop_grace <= 3600)) {
    throw InvalidArgument("--stop-grace must be a number of seconds from 0 to 3600");
  }
  if (!(options.heartbeat_startup >= 0) || !std::isfinite(options.heartbeat_startup)) {
    throw InvalidArgument("--heartbeat-startup must be a non-negative number of seconds");
  }
  if (options.master_port < 0 || options.master_port > 65535) {
    throw InvalidArgument("--master-port must be between 1 and 65535");
  }
  expand_tag(options.tag_template, "", 0, 0);  // throws on an unknown field
}

// Hosts the backend must reach: every one must at least have an address.
void check_hosts(const Placement& placement) {
  std::map<std::string, std::vector<int>> ranks_of;
  for (const RankPlacement& r : placement.ranks) ranks_of[r.host].push_back(r.rank);
  for (const auto& [host, ranks] : ranks_of) {
    if (is_this_host(host)) continue;
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    const int error = getaddrinfo(host.c_str(), nullptr, &hints, &found);
    if (found != nullptr) freeaddrinfo(found);
    if (error != 0) {
      throw InvalidArgument("host '" + host + "' (rank " + std::to_string(ranks.front()) +
                            (ranks.size() > 1 ? "-" + std::to_string(ranks.back()) : "") +
                            ") is unknown: " + gai_strerror(error) +
                            "; check the cluster file or DNS");
    }
  }
}

// The job's files live in --log-dir, else in a directory removed at the end: under
// $TMPDIR when every rank is here, else under the working directory, which the other
// nodes are expected to share (as they share the program).
class JobDirectory {
 public:
  JobDirectory(const std::string& log_dir, bool all_local, bool keep) : keep_(keep) {
    if (!log_dir.empty()) {
      path_ = fs::absolute(log_dir);
      keep_ = true;
      std::error_code error;
      fs::create_directories(path_, error);
      if (error) {
        throw InvalidArgument("cannot create --log-dir '" + log_dir + "': " + error.message());
      }
      return;
    }
    const fs::path parent = all_local ? fs::temp_directory_path() : fs::current_path() / ".haein";
    fs::create_directories(parent);
    std::string pattern = (parent / ("haein-run-" + host_name() + "-XXXXXX")).string();
    if (mkdtemp(pattern.data()) == nullptr) {
      throw Error("cannot create a job directory under " + parent.string());
    }
    path_ = pattern;
  }
  ~JobDirectory() {
    if (keep_) return;
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  JobDirectory(const JobDirectory&) = delete;
  JobDirectory& operator=(const JobDirectory&) = delete;
  const fs::path& path() const { return path_; }
  /// Kept after all: it holds what a failure left to look at.
  void keep() { keep_ = true; }

 private:
  fs::path path_;
  bool keep_;
};

void write_file(const fs::path& path, const std::string& text) {
  replace_file(path.string(), text);
}

void print_env(const Job& job, const Attempt& attempt, std::ostream& out) {
  const RankContext context = rank_context(job, attempt);
  for (int rank = 0; rank < job.placement.world_size(); ++rank) {
    const RankPlacement& r = job.placement.ranks[rank];
    out << "rank " << rank << " on " << r.host << " (cores "
        << (r.cores.empty() ? std::string("not bound") : topology::format_cpu_list(r.cores))
        << "):\n";
    for (const auto& [name, value] : rank_environment(job.placement, rank, context)) {
      out << "  " << name << "=" << value << "\n";
    }
  }
  out << "every rank on every host also gets (HAEIN_* in effect, --env):\n";
  for (const auto& [name, value] : job.forwarded_env) out << "  " << name << "=" << value << "\n";
  out << "haein settings in effect:\n";
  env::print_settings(out);
}

void dry_run(const Job& job, const Attempt& attempt, std::ostream& out) {
  out << "# haein run --dry-run: " << to_string(job.backend) << " backend, "
      << job.placement.world_size() << " ranks; job files in " << job.dir.string() << "\n";
  switch (job.backend) {
    case Backend::kLocal: {
      const std::vector<LaunchCommand> commands = local_commands(job, attempt);
      for (int rank = 0; rank < job.placement.world_size(); ++rank) {
        const RankPlacement& r = job.placement.ranks[rank];
        LaunchCommand line = commands[rank];
        if (!r.cores.empty()) {
          line.argv.insert(line.argv.begin(),
                           {"taskset", "-c", topology::format_cpu_list(r.cores)});
        }
        out << shell_line(line) << "\n";
      }
      break;
    }
    case Backend::kMpirun: {
      const LaunchCommand mpirun = mpirun_command(job, attempt);
      out << shell_line(mpirun) << "\n";
      const bool rankfile =
          std::find(mpirun.argv.begin(), mpirun.argv.end(), "--rankfile") != mpirun.argv.end();
      const fs::path file = job.dir / (rankfile ? "rankfile" : "hostfile");
      out << "# " << file.string() << ":\n";
      std::ifstream in(file);
      for (std::string line; std::getline(in, line);) out << line << "\n";
      break;
    }
    case Backend::kSrun: {
      const LaunchCommand srun = srun_command(job, attempt);
      out << shell_line(srun) << "\n";
      std::string unset;
      for (const std::string& name : srun.unset) unset += (unset.empty() ? "" : ", ") + name;
      out << "# srun does not inherit " << unset << " (the hostfile lays out the ranks)\n";
      out << "# " << (job.dir / "hostfile").string() << " (SLURM_HOSTFILE, one line per rank):\n";
      std::ifstream in(job.dir / "hostfile");
      for (std::string line; std::getline(in, line);) out << line << "\n";
      break;
    }
    case Backend::kAuto:
      break;
  }
}

Backend choose_backend(Backend asked, bool all_local, bool slurm) {
  if (asked != Backend::kAuto) return asked;
  // Inside an allocation the ranks run in a step of it, also those on this node; on
  // Slurm's own nodes (--cluster slurm:) Slurm starts them.
  if (slurm && !find_program("srun").empty()) return Backend::kSrun;
  if (all_local) return Backend::kLocal;
  return Backend::kMpirun;
}

// Inside a step (srun ... haein run): each task would start the whole job again, and an srun
// from inside the step waits for CPUs the step itself holds. Slurm's own steps that wrap a
// batch script, salloc's shell or the job's external processes are not such steps.
void refuse_inside_step(const std::vector<std::string>& srun_args) {
  // An interactive step (srun --pty bash) may start steps beside itself with --overlap.
  if (std::find(srun_args.begin(), srun_args.end(), "--overlap") != srun_args.end()) return;
  const std::optional<std::string> step = srun_step_id();
  const char* job = std::getenv("SLURM_JOB_ID");
  if (!step || job == nullptr) return;
  throw InvalidArgument("haein run is running inside Slurm step " + std::string(job) + "." + *step +
                        " (started by srun): it would start the job once per task, and its "
                        "srun would wait for CPUs this step holds. Run haein run from the batch "
                        "script or the salloc shell; from an interactive step (srun --pty bash) "
                        "give --srun-arg=--overlap; or --backend local for ranks on this node "
                        "only");
}

// Waits `seconds` before the next attempt; a stop signal (SIGINT, SIGTERM, SIGHUP) ends the
// wait and is returned, rather than killing haein run between attempts (0: none came).
int pause_between_attempts(double seconds) {
  sigset_t stops, old;
  sigemptyset(&stops);
  for (int s : {SIGINT, SIGTERM, SIGHUP}) sigaddset(&stops, s);
  pthread_sigmask(SIG_BLOCK, &stops, &old);
  timespec wait{};
  wait.tv_sec = static_cast<time_t>(seconds);
  wait.tv_nsec = static_cast<long>((seconds - static_cast<double>(wait.tv_sec)) * 1e9);
  int received = 0;
  for (;;) {
    const int s = sigtimedwait(&stops, nullptr, &wait);
    if (s > 0) received = s;
    if (s > 0 || errno != EINTR) break;
  }
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  return received;
}

// Why the restart loop must end: the Slurm job the attempts run in was cancelled or ran out
// of time. Empty when it still runs (or Slurm cannot tell).
std::string slurm_job_gone(const std::string& job_id) {
  if (job_id.empty()) return {};
  const std::string state = slurm_job_state(job_id);
  if (state == "RUNNING" || state == "?") return {};
  return "Slurm job " + job_id + " " +
         (state.empty() ? std::string("has ended (cancelled or out of time)")
                        : "is " + state + (state == "CANCELLED" ? "" : " (no longer running)"));
}

int run_job(const RunOptions& options, std::ostream& out, std::ostream& err) {
  validate(options);
  Job job;
  job.options = options;
  // Inside a Slurm allocation (salloc, sbatch) the job runs on its nodes only; the login
  // node is not one unless the allocation has it. --backend local opts out.
  std::optional<SlurmAllocation> allocation;
  if (options.backend != Backend::kLocal) {
    allocation = slurm_allocation_from_environment();
    if (allocation && (options.backend == Backend::kAuto || options.backend == Backend::kSrun))
      refuse_inside_step(options.srun_args);
  }
  BusySet busy;
  if (is_slurm_cluster(options.cluster)) {
    // Slurm's live state: other jobs' nodes are busy (inside an allocation, the
    // allocation decides instead).
    std::vector<std::string> notes;
    job.cluster = slurm_cluster(options.cluster, !allocation, busy, notes);
    for (const std::string& note : notes) err << "haein run: " << note << "\n";
  } else if (!options.cluster.empty()) {
    job.cluster = topology::load_cluster(options.cluster);
  } else if (allocation) {
    job.cluster = allocation_cluster(*allocation, requested_world(options.request));
  } else {
    job.cluster = local_cluster(err);
    const topology::Node& node = job.cluster.nodes.front();
    const int gpus = static_cast<int>(node.hardware.gpus.size());
    if (const int ranks = requested_world(options.request); gpus > 0 && ranks > gpus)
      throw InvalidArgument(std::to_string(ranks) + " ranks but " + node.hostname + " has " +
                            std::to_string(gpus) + " GPU" + (gpus == 1 ? "" : "s") +
                            ", one per rank; start at most " + std::to_string(gpus) +
                            ", or run the ranks on CPUs with the GPUs hidden "
                            "(CUDA_VISIBLE_DEVICES= haein run ...)");
  }
  if (busy.empty()) busy.assign(job.cluster.nodes.size(), false);
  if (!options.busy.empty()) {
    const BusySet listed = read_busy_file(job.cluster, options.busy);
    for (std::size_t n = 0; n < busy.size(); ++n) busy[n] = busy[n] || listed[n];
  }
  if (allocation) {
    job.slurm_job_id = allocation->job_id;
    confine_to_allocation(job.cluster, busy, *allocation, requested_world(options.request));
  }
  PlacementRequest request = options.request;
  if (!options.layout.empty())
    request.layout = parse_layout(options.layout, requested_world(request));
  if (options.oversubscribe) oversubscribe(job.cluster, busy, requested_world(request));
  const topology::FabricIndex fabric(job.cluster);
  if (!options.oversubscribe) check_slots(job.cluster, busy, requested_world(request));
  job.placement = plan_placement(fabric, busy, request);
  for (const std::string& warning : job.placement.warnings)
    err << "haein run: warning: " << warning << "\n";

  const bool all_local = std::all_of(job.placement.ranks.begin(), job.placement.ranks.end(),
                                     [](const RankPlacement& r) { return is_this_host(r.host); });
  job.backend = choose_backend(options.backend, all_local,
                               allocation.has_value() || is_slurm_cluster(options.cluster));
  if (job.backend == Backend::kLocal && !all_local) {
    std::vector<std::string> hosts;
    for (int node : job.placement.nodes()) {
      if (!is_this_host(job.cluster.nodes[node].hostname))
        hosts.push_back(job.cluster.nodes[node].hostname);
    }
    throw InvalidArgument("the local backend starts ranks on this host (" + host_name() +
                          ") only, but the placement uses " + topology::compress_hostlist(hosts) +
                          "; use --backend mpirun or --backend srun");
  }
  if (!options.dry_run) {
    if (job.backend != Backend::kLocal) {
      check_hosts(job.placement);
      const std::string manager(to_string(job.backend));
      if (find_program(manager).empty()) {
        throw InvalidArgument(manager + " is not in PATH; the " + manager + " backend needs it" +
                              (job.backend == Backend::kMpirun ? " (Debian: openmpi-bin)" : ""));
      }
    }
    if (const std::string& program = options.command.front();
        all_local && find_program(program).empty()) {
      // As a shell says it: 127 for a program that is not there, 126 for one that is
      // there but cannot run.
      std::error_code error;
      const auto status = fs::status(program, error);
      const bool path = program.find('/') != std::string::npos;
      const bool there = path && fs::exists(status);
      err << "haein run: cannot run '" << printable(program, 200) << "': "
          << (!path                      ? "not found in PATH"
              : !there                   ? "no such file"
              : fs::is_directory(status) ? "it is a directory"
                                         : "not executable (no execute permission)")
          << "\n";
      return there ? 126 : 127;
    }
  }

  JobDirectory directory(options.log_dir, all_local, options.dry_run);
  job.dir = directory.path();
  job.log_dir = options.log_dir.empty() ? std::string() : job.dir.string();
  job.placement_path = (job.dir / "placement.json").string();
  job.forwarded_env = forwarded_environment(options);
  job.grace = options.stop_grace >= 0 ? options.stop_grace : settings::kStopGrace.get();
  job.grace_chosen = options.stop_grace >= 0 || settings::kStopGrace.raw().has_value();
  if (options.stop_grace >= 0) {
    // exec-rank gives each rank the grace on its host.
    std::erase_if(job.forwarded_env,
                  [](const auto& entry) { return entry.first == settings::kStopGrace.name(); });
    job.forwarded_env.emplace_back(std::string(settings::kStopGrace.name()),
                                   std::to_string(options.stop_grace));
  }
  // Flight-recorder dumps go to the job's folder, per attempt (every host shares it), unless
  // the user chose a place: otherwise a remote rank's dump stays in that host's /tmp.
  const bool dump_dir_chosen =
      std::any_of(job.forwarded_env.begin(), job.forwarded_env.end(),
                  [](const auto& entry) { return entry.first == settings::kDumpDir.name(); });
  // exec-rank on other hosts sets torchrun's variables from these.
  job.forwarded_env.emplace_back("TORCHELASTIC_MAX_RESTARTS", std::to_string(options.max_restarts));
  job.forwarded_env.emplace_back("TORCHELASTIC_RUN_ID", job.dir.filename().string());
  // As torchrun: several ranks on a node each start a full OpenMP team unless told; the
  // value set here reaches every host.
  const bool shared_nodes =
      std::any_of(job.placement.ranks.begin(), job.placement.ranks.end(),
                  [](const RankPlacement& r) { return r.local_world_size > 1; });
  const bool omp_forwarded =
      std::any_of(job.forwarded_env.begin(), job.forwarded_env.end(),
                  [](const auto& entry) { return entry.first == "OMP_NUM_THREADS"; });
  if (const char* threads = std::getenv("OMP_NUM_THREADS"); !omp_forwarded && threads != nullptr) {
    job.forwarded_env.emplace_back("OMP_NUM_THREADS", threads);
  } else if (!omp_forwarded && shared_nodes) {
    job.forwarded_env.emplace_back("OMP_NUM_THREADS", "1");
    err << "haein run: OMP_NUM_THREADS=1 for every rank (not set here; several ranks share a "
           "node), as torchrun does\n";
  }
  if (!options.iface.empty()) {
    interface_address(options.iface);  // it exists here, or a clear error now
    // NCCL's and Gloo's bootstrap sockets use it too, unless the user chose otherwise.
    for (const char* name : {"NCCL_SOCKET_IFNAME", "GLOO_SOCKET_IFNAME"}) {
      const bool chosen = std::any_of(job.forwarded_env.begin(), job.forwarded_env.end(),
                                      [&](const auto& entry) { return entry.first == name; }) ||
                          std::getenv(name) != nullptr;
      if (!chosen) job.forwarded_env.emplace_back(name, options.iface);
    }
  }
  if (job.backend != Backend::kLocal && !options.dry_run)
    job.master_addr = master_address(job.placement, options.iface);
  if (job.backend == Backend::kSrun) {
    // Debian's Open MPI, like most builds today, finds its peers under srun only through
    // PMIx; without it every rank would be a world of one. The site's or the user's choice
    // (SLURM_MPI_TYPE, --srun-arg=--mpi=...) wins.
    const bool chosen =
        std::getenv("SLURM_MPI_TYPE") != nullptr ||
        std::any_of(options.srun_args.begin(), options.srun_args.end(),
                    [](const std::string& arg) { return arg.rfind("--mpi", 0) == 0; });
    if (!chosen && srun_has_pmix()) job.srun_mpi = "pmix";
    const std::string partition = is_slurm_cluster(options.cluster)
                                      ? options.cluster.substr(std::string("slurm:").size())
                                      : "";
    const bool partition_given =
        std::any_of(options.srun_args.begin(), options.srun_args.end(), [](const std::string& arg) {
          return arg.rfind("--partition", 0) == 0 || arg.rfind("-p", 0) == 0;
        });
    if (!allocation && !partition.empty() && !partition_given) job.srun_partition = partition;
  }
  write_file(job.placement_path, placement_json(job.placement));
  write_file(job.dir / "rankfile", placement_rankfile(job.placement));
  write_file(job.dir / "hostfile", placement_slurm_hostfile(job.placement));
  if (options.nccl_topo) {
    job.nccl_topo_dir = (job.dir / "nccl-topo").string();
    write_nccl_topology_dir(job.cluster, job.placement, job.nccl_topo_dir);
  }

  std::vector<std::string> hosts;
  for (int node : job.placement.nodes()) hosts.push_back(job.cluster.nodes[node].hostname);
  err << "haein run: " << job.placement.world_size() << " rank"
      << (job.placement.world_size() == 1 ? "" : "s") << " on "
      << topology::compress_hostlist(hosts) << " (" << to_string(job.backend) << " backend"
      << (job.slurm_job_id.empty() ? std::string() : ", in Slurm job " + job.slurm_job_id)
      << (job.srun_mpi.empty() ? std::string() : ", --mpi=" + job.srun_mpi) << "); placement "
      << job.placement_path << "\n";
  // Where each rank runs, as torchrun and mpirun --report-bindings would show it; a large
  // job's table is in placement.json (and `haein plan`).
  if (job.placement.world_size() <= 16) print_rank_table(err, job.placement);

  const auto started = std::chrono::steady_clock::now();
  for (int index = 0;; ++index) {
    Attempt attempt;
    attempt.index = index;
    attempt.master_port = options.master_port > 0 ? options.master_port : free_port();
    attempt.dir = job.dir / ("attempt-" + std::to_string(index));
    fs::create_directories(attempt.heartbeat_dir());
    fs::create_directories(attempt.status_dir());
    if (!dump_dir_chosen) {
      fs::create_directories(attempt.dump_dir());
      std::erase_if(job.forwarded_env,
                    [](const auto& entry) { return entry.first == settings::kDumpDir.name(); });
      job.forwarded_env.emplace_back(std::string(settings::kDumpDir.name()),
                                     attempt.dump_dir().string());
    }
    if (!job.log_dir.empty()) fs::create_directories(attempt.log_dir(job));
    if (options.print_env && index == 0) print_env(job, attempt, out);
    if (options.dry_run) {
      dry_run(job, attempt, out);
      return 0;
    }
    out.flush();
    Outcome outcome;
    switch (job.backend) {
      case Backend::kLocal:
        outcome = run_local(job, attempt, err);
        break;
      case Backend::kMpirun:
        outcome = run_remote(job, attempt, mpirun_command(job, attempt), err);
        break;
      case Backend::kSrun:
        outcome = run_remote(job, attempt, srun_command(job, attempt), err);
        break;
      case Backend::kAuto:
        break;
    }
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    if (const int dumps = count_files(attempt.dump_dir()); dumps > 0 && !dump_dir_chosen) {
      directory.keep();
      err << "haein run: flight-recorder dumps of " << dumps << " rank" << (dumps > 1 ? "s" : "")
          << " in " << attempt.dump_dir().string() << "\n";
    }
    if (outcome.exit_code == 0) {
      err << "haein run: all " << job.placement.world_size() << " ranks finished in "
          << format_seconds(seconds) << " s"
          << (index > 0 ? " after " + std::to_string(index) + " restart" + (index > 1 ? "s" : "")
                        : std::string())
          << "\n";
      return 0;
    }
    // A cancelled or expired allocation cannot run another attempt. (A job srun created for
    // an attempt ends with it; a cancel of that one reaches the ranks as SIGTERM.)
    if (const std::string gone =
            outcome.interrupted ? std::string() : slurm_job_gone(job.slurm_job_id);
        !gone.empty()) {
      outcome.interrupted = true;
      outcome.exit_code = 128 + SIGTERM;
      outcome.summary = gone + "; " + outcome.summary;
    }
    if (outcome.interrupted || index >= options.max_restarts) {
      err << "haein run: job " << (outcome.interrupted ? "stopped" : "failed") << " ("
          << outcome.summary << "); exit code " << outcome.exit_code;
      if (options.max_restarts > 0 && !outcome.interrupted) {
        err << " after " << index << " of " << options.max_restarts << " restarts";
      }
      err << "\n";
      return outcome.exit_code;
    }
    // A back-off: a job that fails at once must not restart dozens of times a second.
    const double pause = std::min(0.5 * std::pow(2.0, index), 30.0);
    err << "haein run: " << outcome.summary << "; restarting the job in " << format_seconds(pause)
        << " s (restart " << index + 1 << " of " << options.max_restarts << ")\n";
    if (const int signal = pause_between_attempts(pause); signal != 0) {
      err << "haein run: job stopped (" << signal_name(signal) << " between attempts); exit code "
          << 128 + signal << "\n";
      return 128 + signal;
    }
    if (!outcome.lost_hosts.empty() && job.backend != Backend::kLocal) {
      // Recovery by re-placement: the lost hosts are excluded; each is replaced node for
      // node by the nearest free node of the same hardware, so every other rank keeps its
      // place; where one has no such spare, the job is planned again on the nodes left
      // free, by the same rules (fewest leaf switches, best fit).
      std::ofstream excluded_file(job.dir / "excluded-hosts", std::ios::app);
      std::vector<int> lost_nodes;
      for (const std::string& host : outcome.lost_hosts) {
        for (std::size_t n = 0; n < job.cluster.nodes.size(); ++n) {
          if (job.cluster.nodes[n].hostname != host) continue;
          busy[n] = true;
          lost_nodes.push_back(static_cast<int>(n));
        }
        err << "haein run: excluding " << host << " (" << outcome.summary << ")\n";
        excluded_file << host << "\tattempt " << index << "\t" << outcome.summary << "\n";
      }
      try {
        if (auto replaced = replace_nodes(fabric, busy, job.placement, lost_nodes)) {
          job.placement = std::move(replaced->placement);
          for (const NodeSwap& swap : replaced->swaps) {
            const std::string line = "replacing " + job.cluster.nodes[swap.lost].hostname + " by " +
                                     job.cluster.nodes[swap.spare].hostname + " (" + swap.nearness +
                                     ")";
            err << "haein run: " << line << "\n";
            excluded_file << line << "\n";
          }
        } else {
          err << "haein run: no free node can stand in for "
              << topology::compress_hostlist(outcome.lost_hosts)
              << " node for node (the same hardware, enough slots, the same NVLink rack); planning "
                 "the job again\n";
          job.placement = plan_placement(fabric, busy, request);
        }
      } catch (const Error& error) {
        err << "haein run: cannot place the job again without "
            << topology::compress_hostlist(outcome.lost_hosts) << ": " << error.what() << "\n";
        return outcome.exit_code;
      }
      job.master_addr = master_address(job.placement, options.iface);
      write_file(job.placement_path, placement_json(job.placement));
      write_file(job.dir / "rankfile", placement_rankfile(job.placement));
      write_file(job.dir / "hostfile", placement_slurm_hostfile(job.placement));
      if (!job.nccl_topo_dir.empty())
        write_nccl_topology_dir(job.cluster, job.placement, job.nccl_topo_dir);
      std::vector<std::string> now;
      for (int node : job.placement.nodes()) now.push_back(job.cluster.nodes[node].hostname);
      err << "haein run: re-placed on " << topology::compress_hostlist(now) << "\n";
      if (job.placement.world_size() <= 16) print_rank_table(err, job.placement);
      excluded_file << "re-placed on " << topology::compress_hostlist(now) << "\n";
    }
  }
}

}  // namespace

}  // namespace haein::launcher::detail

namespace haein::launcher {

int run_command(const RunOptions& options, std::ostream& out, std::ostream& err) {
  return detail::run_job(options, out, err);
}

}  // namespace haein::launcher
