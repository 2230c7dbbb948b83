// haein run's planner: the cluster, its busy nodes and the request, the first placement
// and placements without lost hosts.
#include "planner.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include "haein/common/error.hpp"
#include "haein/common/process.hpp"
#include "haein/common/slurm.hpp"
#include "haein/topology/discover.hpp"
#include "haein/topology/formats.hpp"
#include "haein/topology/hostlist.hpp"
#include "visible_gpus.hpp"

namespace haein::launcher::detail {

namespace fs = std::filesystem;

namespace {

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

}  // namespace

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

Backend choose_backend(Backend asked, bool all_local, bool slurm) {
  if (asked != Backend::kAuto) return asked;
  // Inside an allocation the ranks run in a step of it, also those on this node; on
  // Slurm's own nodes (--cluster slurm:) Slurm starts them.
  if (slurm && !find_program("srun").empty()) return Backend::kSrun;
  if (all_local) return Backend::kLocal;
  return Backend::kMpirun;
}

Planner::Planner(const RunOptions& options, std::ostream& err) {
  // Inside a Slurm allocation (salloc, sbatch) the job runs on its nodes only; the login
  // node is not one unless the allocation has it. --backend local opts out.
  if (options.backend != Backend::kLocal) {
    allocation_ = slurm_allocation_from_environment();
    if (allocation_ && (options.backend == Backend::kAuto || options.backend == Backend::kSrun))
      refuse_inside_step(options.srun_args);
  }
  if (is_slurm_cluster(options.cluster)) {
    // Slurm's live state: other jobs' nodes are busy (inside an allocation, the
    // allocation decides instead).
    std::vector<std::string> notes;
    cluster_ = slurm_cluster(options.cluster, !allocation_, busy_, notes);
    for (const std::string& note : notes) err << "haein run: " << note << "\n";
  } else if (!options.cluster.empty()) {
    cluster_ = topology::load_cluster(options.cluster);
  } else if (allocation_) {
    cluster_ = allocation_cluster(*allocation_, requested_world(options.request));
  } else {
    cluster_ = local_cluster(err);
    const topology::Node& node = cluster_.nodes.front();
    const int gpus = static_cast<int>(node.hardware.gpus.size());
    if (const int ranks = requested_world(options.request); gpus > 0 && ranks > gpus)
      throw InvalidArgument(std::to_string(ranks) + " ranks but " + node.hostname + " has " +
                            std::to_string(gpus) + " GPU" + (gpus == 1 ? "" : "s") +
                            ", one per rank; start at most " + std::to_string(gpus) +
                            ", or run the ranks on CPUs with the GPUs hidden "
                            "(CUDA_VISIBLE_DEVICES= haein run ...)");
  }
  if (busy_.empty()) busy_.assign(cluster_.nodes.size(), false);
  if (!options.busy.empty()) {
    const BusySet listed = read_busy_file(cluster_, options.busy);
    for (std::size_t n = 0; n < busy_.size(); ++n) busy_[n] = busy_[n] || listed[n];
  }
  if (allocation_)
    confine_to_allocation(cluster_, busy_, *allocation_, requested_world(options.request));
  request_ = options.request;
  if (!options.layout.empty())
    request_.layout = parse_layout(options.layout, requested_world(request_));
  if (options.oversubscribe) oversubscribe(cluster_, busy_, requested_world(request_));
  fabric_ = std::make_unique<topology::FabricIndex>(cluster_);
  if (!options.oversubscribe) check_slots(cluster_, busy_, requested_world(request_));
}

Placement Planner::place(std::ostream& err) const {
  Placement placement = plan_placement(*fabric_, busy_, request_);
  for (const std::string& warning : placement.warnings)
    err << "haein run: warning: " << warning << "\n";
  return placement;
}

Placement Planner::without(const Placement& current, const std::vector<std::string>& lost,
                           std::vector<std::string>& lines) {
  std::vector<int> lost_nodes;
  for (const std::string& host : lost) {
    for (std::size_t n = 0; n < cluster_.nodes.size(); ++n) {
      if (cluster_.nodes[n].hostname != host) continue;
      busy_[n] = true;
      lost_nodes.push_back(static_cast<int>(n));
    }
  }
  if (auto replaced = replace_nodes(*fabric_, busy_, current, lost_nodes)) {
    for (const NodeSwap& swap : replaced->swaps) {
      lines.push_back("replacing " + cluster_.nodes[swap.lost].hostname + " by " +
                      cluster_.nodes[swap.spare].hostname + " (" + swap.nearness + ")");
    }
    return std::move(replaced->placement);
  }
  lines.push_back("no free node can stand in for " + topology::compress_hostlist(lost) +
                  " node for node (the same hardware, enough slots, the same NVLink rack); "
                  "planning the job again");
  return plan_placement(*fabric_, busy_, request_);
}

}  // namespace haein::launcher::detail
