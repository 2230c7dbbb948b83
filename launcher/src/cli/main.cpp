// The `haein` command: parses the command line into plain option structs and calls the
// launcher's commands; turns exceptions into a message and an exit code.
#include <algorithm>
#include <boost/program_options.hpp>
#include <cctype>
#include <filesystem>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "haein/common/cli.hpp"
#include "haein/common/env.hpp"
#include "haein/common/error.hpp"
#include "haein/common/settings.hpp"
#include "haein/common/version.hpp"
#include "haein/launcher/calibrate.hpp"
#include "haein/launcher/exec_rank.hpp"
#include "haein/launcher/plan.hpp"
#include "haein/launcher/run.hpp"
#include "haein/launcher/topo_commands.hpp"
#include "haein/topology/presets.hpp"

namespace po = boost::program_options;

namespace {

constexpr const char* kUsage = R"(usage: haein <command> [options]

commands:
  topo show CLUSTER                 summary: nodes, GPUs, NVLink domains, rails, switches
  topo convert CLUSTER --to FORMAT  write as yaml, json, slurm, nccl-xml (--node HOST), hostfile
  topo discover [-o FILE]           this node as cluster YAML
  topo validate CLUSTER             check a cluster file; every problem with file:line
  topo calibrate CLUSTER LOG...     fit the cost model to nccl-tests output (all_reduce_perf
                                    and friends) and write it into the cluster file
  plan --cluster CLUSTER --gpus N   pick nodes, order ranks, pin GPU/NIC/cores; compare
                                    with mpirun's orders (--explain); write --json,
                                    --rankfile, --slurm-hostfile, --nccl-topo-dir, --svg
  run [-c CLUSTER] -n N -- PROG     place N ranks (this node without --cluster), start them
                                    locally or through mpirun/srun, supervise: tagged output,
                                    root cause of a failure, restarts, heartbeat watchdog
  exec-rank --placement F -- PROG   run PROG as one rank of a placement: its environment
                                    (RANK, MASTER_ADDR, CUDA_VISIBLE_DEVICES, NCCL_IB_HCA, ...)
                                    and CPU binding; the rank comes from mpirun/srun or --rank
  env                               every HAEIN_* setting in effect
  help                              this text
  --version                         haein's version and build

CLUSTER is a file (.yaml, .json, Slurm .conf, NCCL .xml, hostfile) or preset:NAME.
Run 'haein topo <subcommand> --help' for the options of a subcommand.
)";

struct Usage {
  std::string text;
};

// Parses args into vm with one optional positional CLUSTER; with --help, prints the help
// and throws HelpShown.
void parse(const std::vector<std::string>& args, po::options_description& options,
           const char* synopsis, po::variables_map& vm, bool cluster_positional) {
  options.add_options()("help,h", "show this help");
  po::positional_options_description positional;
  if (cluster_positional) {
    options.add_options()("cluster", po::value<std::string>(), "file path or preset:NAME");
    positional.add("cluster", 1);
  }
  po::store(po::command_line_parser(args).options(options).positional(positional).run(), vm);
  if (vm.count("help")) {
    std::cout << "usage: " << synopsis << "\n\n" << options;
    if (cluster_positional) {
      std::cout << "\npresets:";
      for (const std::string& name : haein::topology::preset_names())
        std::cout << " preset:" << name;
      std::cout << "\n";
    }
    throw haein::HelpShown{};
  }
  po::notify(vm);
  if (cluster_positional && !vm.count("cluster")) {
    throw haein::InvalidArgument(std::string("missing CLUSTER (a file or preset:NAME); usage: ") +
                                 synopsis);
  }
}

// `haein topo calibrate CLUSTER LOG...`: one positional cluster, then the logs.
int calibrate_main(const std::vector<std::string>& rest) {
  po::variables_map vm;
  haein::launcher::CalibrateOptions calibrate;
  std::string fit;
  po::options_description options("haein topo calibrate options");
  options.add_options()("help,h", "show this help")(
      "output,o", po::value<std::string>(&calibrate.output),
      "write the calibrated cluster here (default: back into CLUSTER)")(
      "fit", po::value<std::string>(&fit),
      "parameters to fit, comma-separated (default: those the logs inform)")(
      "min-bytes", po::value<double>(&calibrate.min_bytes)->default_value(0),
      "leave out rows smaller than this")("dry-run", po::bool_switch(&calibrate.dry_run),
                                          "print the comparison, write nothing");
  po::options_description hidden;
  hidden.add_options()("cluster", po::value<std::string>(&calibrate.cluster))(
      "log", po::value<std::vector<std::string>>(&calibrate.logs));
  po::options_description all;
  all.add(options).add(hidden);
  po::positional_options_description positional;
  positional.add("cluster", 1).add("log", -1);
  po::store(po::command_line_parser(rest).options(all).positional(positional).run(), vm);
  const char* synopsis = "haein topo calibrate CLUSTER LOG... [--fit a,b] [-o FILE] [--dry-run]";
  if (vm.count("help")) {
    std::cout << "usage: " << synopsis << "\n\n"
              << "LOG: nccl-tests output (all_reduce_perf, all_gather_perf, "
                 "reduce_scatter_perf), with its '# Rank N ... on HOST device D' lines\n\n"
              << options;
    throw haein::HelpShown{};
  }
  po::notify(vm);
  if (calibrate.cluster.empty()) {
    throw haein::InvalidArgument(std::string("missing CLUSTER; usage: ") + synopsis);
  }
  for (std::size_t start = 0; !fit.empty() && start <= fit.size();) {
    const std::size_t comma = std::min(fit.find(',', start), fit.size());
    if (comma > start) calibrate.fit.push_back(fit.substr(start, comma - start));
    start = comma + 1;
  }
  return haein::launcher::topo_calibrate(calibrate, std::cout);
}

int topo_main(const std::vector<std::string>& args) {
  if (args.empty()) {
    std::cerr << kUsage;
    return static_cast<int>(haein::ExitCode::kBadInput);
  }
  if (args[0] == "help" || args[0] == "--help" || args[0] == "-h") {
    std::cout << kUsage;
    return 0;
  }
  const std::string sub = args[0];
  const std::vector<std::string> rest(args.begin() + 1, args.end());
  po::variables_map vm;
  if (sub == "show") {
    po::options_description options("haein topo show options");
    parse(rest, options, "haein topo show CLUSTER", vm, true);
    return haein::launcher::topo_show(vm["cluster"].as<std::string>(), std::cout);
  }
  if (sub == "convert") {
    haein::launcher::TopoConvertOptions convert;
    po::options_description options("haein topo convert options");
    options.add_options()("to", po::value<std::string>(&convert.to)->required(),
                          "yaml, json, slurm, nccl-xml or hostfile")(
        "node", po::value<std::string>(&convert.node),
        "host whose NCCL topology XML to write (nccl-xml)")(
        "output,o", po::value<std::string>(&convert.output), "output file (default: stdout)");
    parse(rest, options, "haein topo convert CLUSTER --to FORMAT [--node HOST] [-o FILE]", vm,
          true);
    convert.cluster = vm["cluster"].as<std::string>();
    return haein::launcher::topo_convert(convert, std::cout);
  }
  if (sub == "discover") {
    std::string output;
    po::options_description options("haein topo discover options");
    options.add_options()("output,o", po::value<std::string>(&output),
                          "output file (default: stdout)");
    parse(rest, options, "haein topo discover [-o FILE]", vm, false);
    return haein::launcher::topo_discover(output, std::cout, std::cerr);
  }
  if (sub == "validate") {
    po::options_description options("haein topo validate options");
    parse(rest, options, "haein topo validate CLUSTER", vm, true);
    return haein::launcher::topo_validate(vm["cluster"].as<std::string>(), std::cout, std::cerr);
  }
  if (sub == "calibrate") return calibrate_main(rest);
  throw haein::InvalidArgument("unknown subcommand 'topo " + sub +
                               "'; expected show, convert, discover, validate or calibrate");
}

int plan_main(const std::vector<std::string>& args) {
  haein::launcher::PlanOptions plan;
  po::options_description options("haein plan options");
  options.add_options()(
      "cluster,c", po::value<std::string>(&plan.cluster)->required(),
      "cluster file, preset:NAME, or slurm:[PARTITION] (Slurm's nodes, tree and busy nodes, now)")(
      "gpus,g", po::value<int>(&plan.request.gpus), "ranks to place, one per GPU")(
      "nodes,N", po::value<int>(&plan.request.nodes), "nodes to place on (instead of --gpus)")(
      "gpus-per-node", po::value<int>(&plan.request.gpus_per_node),
      "ranks per node with --nodes (default: every GPU of the node)")(
      "busy", po::value<std::string>(&plan.busy),
      "file of busy nodes: one hostname or hostlist range per line")(
      "layout", po::value<std::string>(&plan.layout), "parallel layout tp=T,pp=P,dp=D[,ep=E]")(
      "allow-cross-domain-tp", po::bool_switch(&plan.request.allow_cross_domain_tp),
      "let tensor-parallel groups span NVLink domains (a warning, not an error)")(
      "oversubscription", po::value<double>(&plan.oversubscription)->default_value(1.0),
      "leaf down-links per up-link, for the cost model")(
      "explain", po::bool_switch(&plan.explain),
      "print the rank table and the comparison with mpirun's orders")(
      "json", po::value<std::string>(&plan.json), "write the placement JSON (HAEIN_PLACEMENT)")(
      "rankfile", po::value<std::string>(&plan.rankfile),
      "write an Open MPI rankfile (physical CPUs: --mca rmaps_rank_file_physical 1)")(
      "slurm-hostfile", po::value<std::string>(&plan.slurm_hostfile),
      "write a hostfile for srun --distribution=arbitrary (SLURM_HOSTFILE)")(
      "nccl-topo-dir", po::value<std::string>(&plan.nccl_topo_dir),
      "write one NCCL topology XML per node into this directory")(
      "svg", po::value<std::string>(&plan.svg), "draw the switch tree, the job and its ring");
  po::variables_map vm;
  parse(args, options, "haein plan --cluster CLUSTER (--gpus N | --nodes N) [options]", vm, false);
  return haein::launcher::plan_command(plan, std::cout, std::cerr);
}

// Splits "OPTIONS -- PROGRAM ARGS": returns the options, fills `command`.
std::vector<std::string> split_command(const std::vector<std::string>& args,
                                       std::vector<std::string>& command) {
  const auto dashes = std::find(args.begin(), args.end(), "--");
  if (dashes != args.end()) command.assign(dashes + 1, args.end());
  return {args.begin(), dashes};
}

/// "0,3" (torchrun's --local-ranks-filter): local ranks, each a non-negative integer.
std::vector<int> parse_local_ranks(const std::string& text) {
  std::vector<int> ranks;
  std::istringstream in(text);
  for (std::string item; std::getline(in, item, ',');) {
    if (item.empty() || item.size() > 6 ||
        !std::all_of(item.begin(), item.end(), [](unsigned char c) { return std::isdigit(c); }))
      throw haein::InvalidArgument("--local-ranks-filter '" + haein::printable(text, 80) +
                                   "': expected local ranks like 0,3");
    ranks.push_back(std::stoi(item));
  }
  if (ranks.empty())
    throw haein::InvalidArgument("--local-ranks-filter '': expected local ranks like 0,3");
  return ranks;
}

int exec_rank_main(const std::vector<std::string>& args) {
  haein::launcher::ExecRankOptions exec;
  const std::vector<std::string> own = split_command(args, exec.command);
  bool no_bind = false;
  std::string local_ranks;
  po::options_description options("haein exec-rank options");
  options.add_options()("placement,p", po::value<std::string>(&exec.placement_path),
                        "placement JSON (default: $HAEIN_PLACEMENT)")(
      "rank,r", po::value<int>(&exec.rank),
      "rank to run (default: OMPI_COMM_WORLD_RANK, SLURM_PROCID or RANK)")(
      "nccl-topo-dir", po::value<std::string>(&exec.nccl_topo_dir),
      "directory of <host>.xml NCCL topology files (sets NCCL_TOPO_FILE)")(
      "no-bind", po::bool_switch(&no_bind), "leave CPU affinity and memory policy alone")(
      "heartbeat-dir", po::value<std::string>(&exec.heartbeat_dir),
      "set HAEIN_HEARTBEAT_FILE=<dir>/rank-R")("master-addr",
                                               po::value<std::string>(&exec.master_addr),
                                               "MASTER_ADDR (default: rank 0's hostname)")(
      "tag-output", po::value<std::string>(&exec.tag_template),
      "watch the rank: prefix each output line ({host} {rank} {local_rank})")(
      "log-dir", po::value<std::string>(&exec.log_dir),
      "watch the rank: its output also into <dir>/rank-R.log")(
      "status-dir", po::value<std::string>(&exec.status_dir),
      "watch the rank: record how it ended in <dir>/rank-R (for haein run)")(
      "local-ranks-filter", po::value<std::string>(&local_ranks),
      "watch the rank: its output on the console only if its local rank is listed");
  po::variables_map vm;
  parse(own, options, "haein exec-rank [--placement FILE] [--rank R] -- PROGRAM [ARGS...]", vm,
        false);
  exec.bind = !no_bind;
  if (!local_ranks.empty()) exec.local_ranks_filter = parse_local_ranks(local_ranks);
  if (exec.placement_path.empty()) exec.placement_path = haein::settings::kPlacement.get();
  return haein::launcher::exec_rank(exec, std::cerr);
}

/// torchrun's way, without "--": the program is the first word that is neither an option
/// nor an option's value; it and what follows are the command.
std::vector<std::string> split_at_program(const std::vector<std::string>& args,
                                          const po::options_description& options,
                                          std::vector<std::string>& command) {
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& word = args[i];
    if (word == "--") return split_command(args, command);  // the options end first
    if (word.size() < 2 || word[0] != '-') {
      command.assign(args.begin() + static_cast<std::ptrdiff_t>(i), args.end());
      return {args.begin(), args.begin() + static_cast<std::ptrdiff_t>(i)};
    }
    if (word.find('=') != std::string::npos) continue;  // --name=value
    const bool is_long = word[1] == '-';
    // (boost keeps a short name with its dash: "-n")
    const std::string name = is_long ? word.substr(2) : word.substr(0, 2);
    const po::option_description* option = options.find_nothrow(name, false, false, false);
    // -n4: the value is in the word; an unknown option is po's to name.
    if (option == nullptr || (!is_long && word.size() > 2)) continue;
    if (option->semantic()->max_tokens() > 0) ++i;
  }
  return args;
}

// `haein run`'s command line: the options as given, before they become RunOptions.
struct RunCommandLine {
  haein::launcher::RunOptions run;
  int np = 0;
  std::string local_ranks, module;
  bool standalone = false, no_python = false, no_python_underscore = false;
  std::string backend = "auto";
};

void add_run_options(po::options_description& options, RunCommandLine& line) {
  haein::launcher::RunOptions& run = line.run;
  options.add_options()(
      "cluster,c", po::value<std::string>(&run.cluster),
      "cluster file, preset:NAME, or slurm:[PARTITION] (Slurm's nodes, tree and busy "
      "nodes, now); default: the Slurm allocation, else this node, discovered")(
      "busy", po::value<std::string>(&run.busy), "file of busy nodes (hostnames or ranges)")(
      "np,n", po::value<int>(&line.np), "ranks to start")(
      "gpus,g", po::value<int>(&run.request.gpus), "ranks to start, one per GPU (as -n)")(
      "nnodes", po::value<int>(&run.request.nodes), "nodes, with --nproc-per-node")(
      "nproc-per-node", po::value<int>(&run.request.gpus_per_node), "ranks per node")(
      "layout", po::value<std::string>(&run.layout), "parallel layout tp=T,pp=P,dp=D[,ep=E]")(
      "backend", po::value<std::string>(&line.backend)->default_value("auto"),
      "local, mpirun, srun, or auto (srun inside a Slurm job, else local when every rank is "
      "on this host, else mpirun)")("oversubscribe", po::bool_switch(&run.oversubscribe),
                                    "allow more ranks than a node without GPUs has cores")(
      "max-restarts", po::value<int>(&run.max_restarts)->default_value(0),
      "restart the whole job up to R times after a failure (HAEIN_RESTART_COUNT)")(
      "log-dir", po::value<std::string>(&run.log_dir),
      "keep the job's files and per-rank logs (attempt-K/rank-R.log) here")(
      "tag-output", po::value<std::string>(&run.tag_template)->default_value("[{host}:{rank}] "),
      "prefix of each output line; fields {host} {rank} {local_rank}; '' for none")(
      "heartbeat-timeout", po::value<double>(&run.heartbeat_timeout)->default_value(0),
      "seconds without a heartbeat (HAEIN_HEARTBEAT_FILE) before a rank counts as hung")(
      "stop-grace", po::value<double>(&run.stop_grace),
      "seconds from SIGTERM to SIGKILL when the job stops, for a trainer to save (default "
      "HAEIN_STOP_GRACE, 3; torchrun waits 30)")(
      "heartbeat-startup", po::value<double>(&run.heartbeat_startup)->default_value(0),
      "seconds a rank may take to its first heartbeat (imports, rendezvous); default: "
      "--heartbeat-timeout")("master-port", po::value<int>(&run.master_port)->default_value(0),
                             "MASTER_PORT (default: a free port chosen at start)")(
      "nccl-topo", po::bool_switch(&run.nccl_topo),
      "write each node's NCCL topology XML and set NCCL_TOPO_FILE")(
      "dry-run", po::bool_switch(&run.dry_run), "print the commands and files, start nothing")(
      "print-env", po::bool_switch(&run.print_env), "print every rank's variables first")(
      "env", po::value<std::vector<std::string>>(&run.env)->composing(),
      "NAME[=VALUE]: set for every rank on every host (as mpirun -x); repeatable")(
      "iface", po::value<std::string>(&run.iface),
      "network interface between the hosts: MASTER_ADDR, Open MPI's TCP, NCCL_SOCKET_IFNAME")(
      "srun-arg", po::value<std::vector<std::string>>(&run.srun_args)->composing(),
      "an option for srun, after haein's own: --srun-arg=--mpi=pmi2; repeatable")(
      "local-ranks-filter", po::value<std::string>(&line.local_ranks),
      "only these local ranks' output on the console, e.g. 0 (all of it in --log-dir)");
}

void add_torchrun_options(po::options_description& torchrun, RunCommandLine& line) {
  torchrun.add_options()("nproc_per_node", po::value<int>(&line.run.request.gpus_per_node),
                         "as --nproc-per-node")(
      "standalone", po::bool_switch(&line.standalone),
      "this node only (as torchrun: no rendezvous to set up); refuses --cluster")(
      "no-python", po::bool_switch(&line.no_python),
      "run PROGRAM as it is; without it a PROGRAM ending in .py runs under python3, as "
      "torchrun runs every script")("no_python", po::bool_switch(&line.no_python_underscore),
                                    "as --no-python")(
      "module,m", po::value<std::string>(&line.module),
      "run python3 -m MODULE [ARGS...] (ARGS after the options, or after --)");
}

// Completes `line.run` from the parsed command line: -n and torchrun's words checked and
// folded in, the backend named, haein's own binary found (exec-rank runs it on every host).
void finish_run_options(RunCommandLine& line) {
  haein::launcher::RunOptions& run = line.run;
  if (line.np > 0 && run.request.gpus > 0 && line.np != run.request.gpus) {
    throw haein::InvalidArgument("-n " + std::to_string(line.np) + " and --gpus " +
                                 std::to_string(run.request.gpus) + " disagree; give one");
  }
  if (line.np != 0) run.request.gpus = line.np;
  if (!line.local_ranks.empty()) run.local_ranks_filter = parse_local_ranks(line.local_ranks);
  const bool no_python = line.no_python || line.no_python_underscore;
  if (line.standalone && !run.cluster.empty())
    throw haein::InvalidArgument(
        "--standalone runs on this node only; it cannot go with --cluster");
  if (line.standalone && run.request.nodes > 1)
    throw haein::InvalidArgument("--standalone runs on this node only, not --nnodes " +
                                 std::to_string(run.request.nodes));
  if (!line.module.empty()) {
    // torchrun -m MODULE ARGS: the arguments are the command's words.
    if (no_python) throw haein::InvalidArgument("-m/--module needs Python; drop --no-python");
    run.command.insert(run.command.begin(), {"python3", "-m", line.module});
  } else if (!no_python && !run.command.empty() && run.command.front().size() > 3 &&
             run.command.front().ends_with(".py")) {
    std::cerr << "haein run: running " << haein::printable(run.command.front(), 200)
              << " under python3, as torchrun does (--no-python runs it as a program)\n";
    run.command.insert(run.command.begin(), "python3");
  }
  run.backend = haein::launcher::parse_backend(line.backend);
  std::error_code error;
  run.haein_binary = std::filesystem::read_symlink("/proc/self/exe", error).string();
  if (error) run.haein_binary = "haein";
}

int run_main(const std::vector<std::string>& args) {
  RunCommandLine line;
  po::options_description options("haein run options");
  add_run_options(options, line);
  po::options_description torchrun("torchrun's options, for scripts written for it");
  add_torchrun_options(torchrun, line);
  options.add(torchrun);
  const std::vector<std::string> own = split_at_program(args, options, line.run.command);
  po::variables_map vm;
  parse(own, options,
        "haein run [options] (-n N | --nnodes M --nproc-per-node K) -- PROGRAM [ARGS...]", vm,
        false);
  finish_run_options(line);
  return haein::launcher::run_command(line.run, std::cout, std::cerr);
}

int run(int argc, char** argv) {
  const std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty()) {
    std::cerr << kUsage;
    return 2;
  }
  const std::string& command = args[0];
  if (command == "help" || command == "--help" || command == "-h") {
    std::cout << kUsage;
    return 0;
  }
  if (command == "--version" || command == "-V" || command == "version") {
    std::cout << "haein " << haein::kVersion << " ("
              << (haein::kBuiltWithCuda ? "CUDA + NCCL" : "host-only build, no CUDA") << ")\n";
    return 0;
  }
  if (command == "topo") return topo_main({args.begin() + 1, args.end()});
  if (command == "exec-rank") return exec_rank_main({args.begin() + 1, args.end()});
  if (command == "plan") return plan_main({args.begin() + 1, args.end()});
  if (command == "run") return run_main({args.begin() + 1, args.end()});
  if (command == "env") {
    haein::env::print_settings(std::cout);
    return 0;
  }
  throw haein::InvalidArgument("unknown command '" + command + "'; run 'haein help'");
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const haein::HelpShown&) {
    return 0;
  } catch (const po::error& error) {
    std::cerr << "haein: " << error.what() << " (see --help)\n";
    return static_cast<int>(haein::ExitCode::kBadInput);
  } catch (const std::exception& error) {
    std::cerr << "haein: error: " << error.what() << "\n";
    return static_cast<int>(haein::exit_code_for(error));
  }
}
