// `haein plan`: load, place, compare, write.
#include <cmath>
#include <iostream>
#include <set>

#include "../run/slurm.hpp"
#include "haein/common/error.hpp"
#include "haein/launcher/plan.hpp"
#include "haein/launcher/topo_commands.hpp"
#include "haein/topology/formats.hpp"
#include "haein/topology/hostlist.hpp"

namespace haein::launcher {

namespace {

// The cost model runs only for --explain: at 100,000 ranks it took a quarter of a --json
// run that prints none of its numbers.
std::vector<PlanMetrics> compare_with_naive(const topology::Cluster& cluster,
                                            const topology::FabricIndex& fabric,
                                            const BusySet& busy, const PlacementRequest& request,
                                            const PlanOptions& options, const Placement& placement,
                                            std::ostream& err) {
  topology::CostParameters parameters;
  parameters.spine_oversubscription = options.oversubscription;
  const topology::CostModel model(cluster, parameters);
  std::vector<PlanMetrics> metrics{measure(model, placement, "haein")};
  for (NaiveOrder order : {NaiveOrder::kMapBySlot, NaiveOrder::kMapByNode}) {
    try {
      metrics.push_back(measure(model, naive_placement(fabric, busy, request, order),
                                "mpirun " + std::string(to_string(order))));
    } catch (const InvalidArgument& error) {
      err << "haein: note: no " << to_string(order) << " comparison: " << error.what() << "\n";
    }
  }
  return metrics;
}

// "placed N ranks on M nodes (hosts) across L leaf switches of cluster 'C'"
void print_summary(std::ostream& out, const topology::FabricIndex& fabric,
                   const Placement& placement) {
  const topology::Cluster& cluster = fabric.cluster();
  const std::vector<int> nodes = placement.nodes();
  std::vector<std::string> hosts;
  std::set<int> leaves;
  for (int node : nodes) {
    hosts.push_back(cluster.nodes[node].hostname);
    leaves.insert(fabric.leaf_of(node));
  }
  out << "placed " << placement.world_size() << " ranks on " << nodes.size()
      << (nodes.size() == 1 ? " node (" : " nodes (") << topology::compress_hostlist(hosts) << ")";
  if (fabric.leaf_count() > 0) {
    out << " across " << leaves.size() << " leaf switch" << (leaves.size() == 1 ? "" : "es");
  }
  out << " of cluster '" << cluster.name << "'\n";
}

}  // namespace

int plan_command(const PlanOptions& options, std::ostream& out, std::ostream& err) {
  // --cluster slurm:[PARTITION]: Slurm's nodes, tree and who holds what, now.
  BusySet busy;
  topology::Cluster cluster;
  if (detail::is_slurm_cluster(options.cluster)) {
    std::vector<std::string> notes;
    cluster = detail::slurm_cluster(options.cluster, true, busy, notes);
    for (const std::string& note : notes) err << "haein plan: " << note << "\n";
  } else {
    cluster = topology::load_cluster(options.cluster);
    busy.assign(cluster.nodes.size(), false);
  }
  const topology::FabricIndex fabric(cluster);
  if (!options.busy.empty()) {
    const BusySet listed = read_busy_file(cluster, options.busy);
    for (std::size_t n = 0; n < busy.size(); ++n) busy[n] = busy[n] || listed[n];
  }
  PlacementRequest request = options.request;
  if (request.gpus < 0 || request.nodes < 0 || request.gpus_per_node < 0) {
    throw InvalidArgument("--gpus, --nodes and --gpus-per-node must not be negative");
  }
  if (request.gpus_per_node > 0 && request.nodes == 0) {
    throw InvalidArgument("--gpus-per-node goes with --nodes N");
  }
  requested_world(request);  // past kMaxRanks: an error
  if (!options.layout.empty()) {
    request.layout = parse_layout(options.layout, requested_world(request));
  }
  if (!(options.oversubscription >= 1.0) || !std::isfinite(options.oversubscription)) {
    throw InvalidArgument("--oversubscription must be at least 1 (down-links per up-link)");
  }
  const Placement placement = plan_placement(fabric, busy, request);
  for (const std::string& warning : placement.warnings)
    err << "haein: warning: " << warning << "\n";

  const std::vector<PlanMetrics> metrics =
      options.explain ? compare_with_naive(cluster, fabric, busy, request, options, placement, err)
                      : std::vector<PlanMetrics>{};
  print_summary(out, fabric, placement);
  if (options.explain) {
    out << "\n";
    print_rank_table(out, placement);
    out << "\n";
    print_comparison(out, metrics);
  }

  if (!options.json.empty()) write_output(placement_json(placement), options.json, out);
  if (!options.rankfile.empty()) {
    write_output(placement_rankfile(placement), options.rankfile, out);
  }
  if (!options.slurm_hostfile.empty()) {
    write_output(placement_slurm_hostfile(placement), options.slurm_hostfile, out);
  }
  if (!options.nccl_topo_dir.empty()) {
    const auto files = write_nccl_topology_dir(cluster, placement, options.nccl_topo_dir);
    out << "wrote " << files.size() << " NCCL topology files to " << options.nccl_topo_dir << "\n";
  }
  if (!options.svg.empty()) write_output(placement_svg(fabric, busy, placement), options.svg, out);
  return 0;
}

}  // namespace haein::launcher
