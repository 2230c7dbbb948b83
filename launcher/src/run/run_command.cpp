// `haein run`: the options checked, the job planned (planner.cpp), its settings and
// files (job_files.cpp) made, its backend picked (local.cpp, remote.cpp), then its
// attempts run by the agent loop (agent.cpp).
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <optional>
#include <set>
#include <sstream>

#include "agent.hpp"
#include "haein/common/error.hpp"
#include "haein/common/process.hpp"
#include "haein/common/settings.hpp"
#include "haein/common/slurm.hpp"
#include "haein/launcher/plan.hpp"
#include "haein/topology/hostlist.hpp"
#include "job.hpp"
#include "job_files.hpp"
#include "planner.hpp"
#include "slurm.hpp"
#include "supervisor.hpp"

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

std::string format_seconds(double seconds) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f", seconds);
  return text;
}

std::string stale_ranks_line(const std::vector<int>& ranks, bool first_stopped) {
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
         (first_stopped ? " (they waited for rank " + std::to_string(ranks.front()) +
                              ", named above, which stopped running)\n"
                        : " (a hang they share; the stalest, rank " +
                              std::to_string(ranks.front()) + ", is named above)\n");
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

// The backend `options` asks for, or the one that fits; the local backend cannot reach
// the placement's other hosts.
Backend job_backend(const RunOptions& options, const Job& job, const Planner& planner,
                    bool all_local) {
  const Backend backend =
      choose_backend(options.backend, all_local,
                     planner.allocation().has_value() || is_slurm_cluster(options.cluster));
  if (backend == Backend::kLocal && !all_local) {
    std::vector<std::string> hosts;
    for (int node : job.placement.nodes()) {
      if (!is_this_host(job.cluster.nodes[node].hostname))
        hosts.push_back(job.cluster.nodes[node].hostname);
    }
    throw InvalidArgument("the local backend starts ranks on this host (" + host_name() +
                          ") only, but the placement uses " + topology::compress_hostlist(hosts) +
                          "; use --backend mpirun or --backend srun");
  }
  return backend;
}

// Before anything is written: the hosts and the manager the backend needs (InvalidArgument
// when one is missing) and, for a job on this host only, the program. Returns the exit code
// of a program that cannot run, as a shell gives it; none when the job may start.
std::optional<int> check_before_start(const RunOptions& options, const Job& job, bool all_local,
                                      std::ostream& err) {
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
  return std::nullopt;
}

// Adds what every rank on every host gets besides --env and the HAEIN_* settings: the stop
// grace, torchrun's variables, OMP_NUM_THREADS and the bootstrap interface.
void add_job_variables(Job& job, const RunOptions& options, std::ostream& err) {
  if (options.stop_grace >= 0) {
    // exec-rank gives each rank the grace on its host.
    std::erase_if(job.forwarded_env,
                  [](const auto& entry) { return entry.first == settings::kStopGrace.name(); });
    job.forwarded_env.emplace_back(std::string(settings::kStopGrace.name()),
                                   std::to_string(options.stop_grace));
  }
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
}

// srun's --mpi and --partition, where neither the site nor the user chose them.
void choose_srun_options(Job& job, const RunOptions& options, const Planner& planner) {
  // Debian's Open MPI, like most builds today, finds its peers under srun only through
  // PMIx; without it every rank would be a world of one. The site's or the user's choice
  // (SLURM_MPI_TYPE, --srun-arg=--mpi=...) wins.
  const bool chosen =
      std::getenv("SLURM_MPI_TYPE") != nullptr ||
      std::any_of(options.srun_args.begin(), options.srun_args.end(),
                  [](const std::string& arg) { return arg.rfind("--mpi", 0) == 0; });
  if (!chosen && srun_has_pmix()) job.srun_mpi = "pmix";
  const std::string partition =
      is_slurm_cluster(options.cluster) ? options.cluster.substr(std::string("slurm:").size()) : "";
  const bool partition_given =
      std::any_of(options.srun_args.begin(), options.srun_args.end(), [](const std::string& arg) {
        return arg.rfind("--partition", 0) == 0 || arg.rfind("-p", 0) == 0;
      });
  if (!planner.allocation() && !partition.empty() && !partition_given)
    job.srun_partition = partition;
}

// The job in one line, and where each rank runs.
void report_job(const Job& job, std::ostream& err) {
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
}

int run_job(const RunOptions& options, std::ostream& out, std::ostream& err) {
  validate(options);
  Planner planner(options, err);
  Job job;
  job.options = options;
  job.cluster = planner.cluster();
  if (planner.allocation()) job.slurm_job_id = planner.allocation()->job_id;
  job.placement = planner.place(err);

  const bool all_local = std::all_of(job.placement.ranks.begin(), job.placement.ranks.end(),
                                     [](const RankPlacement& r) { return is_this_host(r.host); });
  job.backend = job_backend(options, job, planner, all_local);
  if (!options.dry_run) {
    if (const std::optional<int> cannot_run = check_before_start(options, job, all_local, err))
      return *cannot_run;
  }

  JobDirectory directory(options.log_dir, all_local, options.dry_run);
  job.dir = directory.path();
  job.log_dir = options.log_dir.empty() ? std::string() : job.dir.string();
  job.placement_path = (job.dir / "placement.json").string();
  job.forwarded_env = forwarded_environment(options);
  job.grace = options.stop_grace >= 0 ? options.stop_grace : settings::kStopGrace.get();
  job.grace_chosen = options.stop_grace >= 0 || settings::kStopGrace.raw().has_value();
  add_job_variables(job, options, err);
  if (job.backend != Backend::kLocal && !options.dry_run)
    job.master_addr = master_address(job.placement, options.iface);
  if (job.backend == Backend::kSrun) choose_srun_options(job, options, planner);
  if (options.nccl_topo) job.nccl_topo_dir = (job.dir / "nccl-topo").string();
  write_job_files(job);

  report_job(job, err);
  const std::unique_ptr<JobBackend> backend = make_backend(job);
  return run_attempts(job, planner, *backend, directory, out, err);
}

}  // namespace

}  // namespace haein::launcher::detail

namespace haein::launcher {

int run_command(const RunOptions& options, std::ostream& out, std::ostream& err) {
  return detail::run_job(options, out, err);
}

}  // namespace haein::launcher
