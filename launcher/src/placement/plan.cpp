// haein's placement: the request checked, the stages of plan_stages.hpp run in turn, and
// the tensor-parallel rule kept: no TP group crosses an NVLink domain when a placement
// exists where none does; when none exists the request is refused (exit 2) unless
// --allow-cross-domain-tp, which places it anyway with a warning.
#include <map>
#include <numeric>
#include <sstream>

#include "haein/common/error.hpp"
#include "plan_stages.hpp"

namespace haein::launcher {

using topology::FabricIndex;

namespace {

using detail::DomainBin;
using detail::Units;

std::string describe_free(const FabricIndex& fabric, const std::vector<DomainBin>& bins,
                          const Units& units) {
  std::map<int, std::pair<long, int>> per_leaf;  // leaf -> (units, nodes)
  for (const DomainBin& bin : bins) {
    auto& [count, nodes] = per_leaf[bin.leaf];
    count += bin.capacity;
    if (bin.capacity > 0) {
      for (long c : bin.node_capacity) nodes += c > 0;
    }
  }
  std::ostringstream text;
  long total = 0;
  for (const auto& [leaf, entry] : per_leaf) total += entry.first;
  text << total << (units.nodes_mode ? " qualifying nodes" : " usable GPUs") << " are free";
  if (units.tp > 1) text << " in whole TP groups of " << units.tp << " inside NVLink domains";
  bool first = true;
  for (const auto& [leaf, entry] : per_leaf) {
    if (entry.first == 0) continue;
    text << (first ? " (" : ", ")
         << (leaf < fabric.leaf_count() ? fabric.leaf_name(leaf) : std::string("no leaf")) << ": "
         << entry.first << " on " << entry.second << " nodes";
    first = false;
  }
  if (!first) text << ")";
  return text.str();
}

Units request_units(const topology::Cluster& cluster, const BusySet& busy,
                    const PlacementRequest& request) {
  if (busy.size() != cluster.nodes.size()) {
    throw InvalidArgument("busy set has " + std::to_string(busy.size()) + " entries for " +
                          std::to_string(cluster.nodes.size()) + " nodes");
  }
  Units units;
  units.nodes_mode = request.nodes > 0;
  if (units.nodes_mode && request.gpus > 0) {
    throw InvalidArgument("give either --gpus N or --nodes N (with --gpus-per-node K), not both");
  }
  if (!units.nodes_mode && request.gpus <= 0) {
    throw InvalidArgument("request at least one GPU (--gpus N) or node (--nodes N)");
  }
  units.need = units.nodes_mode ? request.nodes : request.gpus;
  return units;
}

void check_layout_size(const PlacementRequest& request, long world) {
  if (!request.layout || request.layout->size() == world) return;
  const Layout& layout = *request.layout;
  throw InvalidArgument(
      "layout tp=" + std::to_string(layout.tp) + " x pp=" + std::to_string(layout.pp) +
      " x dp=" + std::to_string(layout.dp) + " = " + std::to_string(layout.size()) +
      " ranks, but the request is " + std::to_string(world) + " ranks");
}

// The GPUs of the largest NVLink domain any node of the cluster belongs to (a node in no
// domain counts as one GPU: its GPUs talk over PCIe or the network).
long largest_domain(const FabricIndex& fabric, const PlacementRequest& request) {
  std::map<int, long> domain_gpus;
  long largest = 0;
  for (int n = 0; n < fabric.node_count(); ++n) {
    const int gpus = detail::usable_gpus(fabric.cluster().nodes[n], request);
    const int domain = fabric.domain_of(n);
    largest = std::max<long>(largest, domain >= 0 ? gpus : 1);
    if (domain >= 0) largest = std::max(largest, domain_gpus[domain] += gpus);
  }
  return largest;
}

// The TP size whose groups must stay inside NVLink domains: the layout's, or 1 when TP is
// larger than every domain (an error unless --allow-cross-domain-tp).
int domain_tp(const FabricIndex& fabric, const PlacementRequest& request,
              std::vector<std::string>& warnings) {
  if (!request.layout || request.layout->tp <= 1) return 1;
  const int tp = request.layout->tp;
  const long largest = largest_domain(fabric, request);
  if (tp <= largest) return tp;
  const std::string what = "tensor-parallel size " + std::to_string(tp) +
                           " is larger than the largest NVLink domain of cluster '" +
                           fabric.cluster().name + "' (" + std::to_string(largest) + " GPUs)";
  if (!request.allow_cross_domain_tp) {
    throw InvalidArgument(what +
                          "; its groups would talk over the network. Use a smaller tp "
                          "or --allow-cross-domain-tp");
  }
  warnings.push_back(what + ": TP groups cross the network (--allow-cross-domain-tp)");
  return 1;
}

// Stage 1 with the TP rule: the bins that hold the job in whole TP groups; when none do,
// a refusal naming the free capacity, or with --allow-cross-domain-tp the bins without
// the rule (units.tp becomes 1) and a warning.
std::vector<DomainBin> bins_that_hold(const FabricIndex& fabric, const BusySet& busy,
                                      const PlacementRequest& request, Units& units,
                                      std::vector<std::string>& warnings) {
  std::vector<DomainBin> bins = detail::collect_bins(fabric, busy, request, units);
  auto total = [](const std::vector<DomainBin>& of) {
    long sum = 0;
    for (const DomainBin& bin : of) sum += bin.capacity;
    return sum;
  };
  if (total(bins) >= units.need) return bins;
  const std::string free = describe_free(fabric, bins, units);
  const std::string what = "cannot place " + std::to_string(units.need) +
                           (units.nodes_mode ? " nodes" : " GPUs") + ": only " + free;
  if (units.tp <= 1) throw InvalidArgument(what);
  Units crossing = units;
  crossing.tp = 1;
  std::vector<DomainBin> any = detail::collect_bins(fabric, busy, request, crossing);
  const std::string all = describe_free(fabric, any, crossing);
  if (total(any) < units.need) throw InvalidArgument(what + "; " + all);
  if (!request.allow_cross_domain_tp) {
    throw InvalidArgument(what + "; " + all +
                          ", but TP groups placed there would cross NVLink domains. Use a "
                          "smaller tp, or --allow-cross-domain-tp to place them anyway");
  }
  warnings.push_back("no placement keeps every tensor-parallel group of " +
                     std::to_string(units.tp) + " inside an NVLink domain (only " + free +
                     "): placed across domains (--allow-cross-domain-tp)");
  units = crossing;
  return any;
}

// Stage 5: TP groups that cross a domain are an error, or with --allow-cross-domain-tp a
// warning. (They cross only when crossing was allowed, or when one domain holds nodes
// with different GPU counts, which --nodes cannot cut into whole groups in advance.)
void check_tp_groups(Placement& placement, const PlacementRequest& request) {
  if (!request.layout || request.layout->tp <= 1) return;
  const int tp = request.layout->tp;
  const int crossing = detail::crossing_tp_groups(placement, tp);
  if (crossing == 0) return;
  const std::string what = std::to_string(crossing) + " of " +
                           std::to_string(placement.world_size() / tp) +
                           " tensor-parallel groups span more than one NVLink domain";
  if (!request.allow_cross_domain_tp) {
    throw InvalidArgument(what +
                          " (an NVLink domain with nodes of different GPU counts); use "
                          "--gpus-per-node or --allow-cross-domain-tp");
  }
  placement.warnings.push_back(what);
}

}  // namespace

int requested_world(const PlacementRequest& request) {
  const long long world =
      request.nodes > 0 ? static_cast<long long>(request.nodes) * std::max(request.gpus_per_node, 0)
                        : request.gpus;
  if (world > kMaxRanks)
    throw InvalidArgument((request.nodes > 0
                               ? std::to_string(request.nodes) + " nodes x " +
                                     std::to_string(request.gpus_per_node) + " per node"
                               : std::to_string(request.gpus)) +
                          " is more than " + std::to_string(kMaxRanks) + " ranks");
  return static_cast<int>(std::max(world, 0LL));
}

Placement detail::plan_placement(const FabricIndex& fabric, const BusySet& busy,
                                 const PlacementRequest& request, SpineRule rule) {
  Units units = request_units(fabric.cluster(), busy, request);
  // With --nodes and nodes of different sizes the world size is known after choosing.
  const bool world_known = !units.nodes_mode || request.gpus_per_node > 0;
  if (world_known) check_layout_size(request, requested_world(request));
  std::vector<std::string> warnings;
  units.tp = domain_tp(fabric, request, warnings);

  const std::vector<DomainBin> bins = bins_that_hold(fabric, busy, request, units, warnings);
  const std::vector<Bin> leaves = choose_spines(fabric, leaf_bins(fabric, bins), units.need, rule);
  const std::vector<ChosenNode> chosen = choose_nodes(fabric, bins, best_fit(leaves, units.need));
  const std::vector<NodeRanks> nodes =
      order_gpus_by_rail(fabric.cluster(), chosen, request, units.nodes_mode);
  if (!world_known) {
    long world = 0;
    for (const NodeRanks& node : nodes) world += static_cast<long>(node.gpus.size());
    check_layout_size(request, world);
  }

  Placement placement = assemble(fabric, nodes, request);
  placement.warnings = std::move(warnings);
  check_tp_groups(placement, request);
  return placement;
}

Placement plan_placement(const FabricIndex& fabric, const BusySet& busy,
                         const PlacementRequest& request) {
  return detail::plan_placement(fabric, busy, request, detail::kDefaultSpineRule);
}

}  // namespace haein::launcher
