#pragma once
/// @file
/// `haein plan`: a placement, its quality next to the naive orders, and the files other
/// tools take (placement JSON, Open MPI rankfile, Slurm hostfile, NCCL topology, SVG).

#include <ostream>
#include <string>
#include <vector>

#include "haein/launcher/placement.hpp"
#include "haein/topology/cost_model.hpp"

namespace haein::launcher {

/// Quality of one placement: what its ring crosses and the predicted all-reduce.
struct PlanMetrics {
  std::string label;  ///< "haein", "map-by slot", "map-by node"
  int nodes = 0;
  int leaves = 0;  ///< leaf switches spanned
  int spines = 0;
  topology::RingAnalysis ring;
  topology::TreeAnalysis tree;
  topology::Prediction all_reduce_1mib;  ///< best algorithm at 1 MiB
  topology::Prediction all_reduce_1gib;  ///< best algorithm at 1 GiB
  /// Ring all-reduce of 1 GiB in rank order (MPI's and Gloo's ring; NCCL's order between
  /// nodes). The best algorithm above may reorder ranks; this one cannot.
  topology::Prediction ring_1gib;
  /// With a layout: best all-reduce of 1 GiB inside the slowest tensor-parallel group and
  /// the slowest data-parallel group (not applicable without a layout or with size 1).
  topology::Prediction tp_group_1gib;
  topology::Prediction dp_group_1gib;
};

PlanMetrics measure(const topology::CostModel& model, const Placement& placement,
                    std::string label);

/// The rank table: rank, host, local rank, GPU, NIC, cores, NUMA, domain, leaf, groups.
void print_rank_table(std::ostream& out, const Placement& placement);
/// The metrics of haein's placement side by side with the others, and the ratios.
void print_comparison(std::ostream& out, const std::vector<PlanMetrics>& metrics);

/// The placement JSON of the environment contract (docs/placement.md).
std::string placement_json(const Placement& placement);
/// Reads it back; throws ParseError naming the source and what is wrong.
Placement parse_placement_json(const std::string& text, const std::string& source);
/// Open MPI rankfile with physical CPU numbers: use with
/// `mpirun --rankfile FILE --mca rmaps_rank_file_physical 1`.
std::string placement_rankfile(const Placement& placement);
/// One hostname per rank, for `srun --distribution=arbitrary` via SLURM_HOSTFILE.
std::string placement_slurm_hostfile(const Placement& placement);
/// Writes DIR/<host>.xml, the NCCL topology of each node of the placement; returns the
/// files written.
std::vector<std::string> write_nccl_topology_dir(const topology::Cluster& cluster,
                                                 const Placement& placement,
                                                 const std::string& dir);
/// A picture of the switch tree: spines, leaves, nodes (the job's coloured, busy grey)
/// and the job's ring through its nodes.
std::string placement_svg(const topology::FabricIndex& fabric, const BusySet& busy,
                          const Placement& placement);

struct PlanOptions {
  std::string cluster;  ///< file or preset:NAME
  std::string busy;     ///< busy file, empty for none
  PlacementRequest request;
  std::string layout;  ///< unparsed --layout, empty for none
  double oversubscription = 1.0;
  bool explain = false;
  std::string json;
  std::string rankfile;
  std::string slurm_hostfile;
  std::string nccl_topo_dir;
  std::string svg;
};

/// Runs `haein plan`; returns the exit code, throws haein::Error on bad input.
int plan_command(const PlanOptions& options, std::ostream& out, std::ostream& err);

}  // namespace haein::launcher
