// `haein plan --explain`: the rank table and the comparison with the naive orders.
#include <cmath>
#include <cstdio>
#include <iomanip>
#include <map>
#include <set>
#include <sstream>
#include <tuple>

#include "haein/launcher/plan.hpp"
#include "haein/topology/hostlist.hpp"

namespace haein::launcher {

namespace {

constexpr double kMiB = 1024.0 * 1024;
constexpr double kGiB = 1024.0 * kMiB;

std::string or_dash(const std::string& text) { return text.empty() ? "-" : text; }

std::string format_time(double seconds) {
  char buffer[32];
  if (seconds < 1e-3) {
    std::snprintf(buffer, sizeof buffer, "%.1f us", seconds * 1e6);
  } else {
    std::snprintf(buffer, sizeof buffer, "%.3f ms", seconds * 1e3);
  }
  return buffer;
}

std::string format_prediction(const topology::Prediction& p) {
  if (!p.applicable) return "n/a";
  char buffer[96];
  std::snprintf(buffer, sizeof buffer, "%s %.1f GB/s (%s)", format_time(p.seconds).c_str(),
                p.busbw_gbs, std::string(to_string(p.algorithm)).c_str());
  return buffer;
}

bool ours_has(const std::vector<PlanMetrics>& metrics, topology::Prediction PlanMetrics::*field) {
  return (metrics.front().*field).applicable;
}

}  // namespace

PlanMetrics measure(const topology::CostModel& model, const Placement& placement,
                    std::string label) {
  PlanMetrics metrics;
  metrics.label = std::move(label);
  const auto sites = placement.sites();
  std::set<int> leaves, spines;
  const auto nodes = placement.nodes();
  metrics.nodes = static_cast<int>(nodes.size());
  for (int node : nodes) {
    leaves.insert(model.fabric().leaf_of(node));
    spines.insert(model.fabric().spine_of(node));
  }
  metrics.leaves = static_cast<int>(leaves.size());
  metrics.spines = static_cast<int>(spines.size());
  metrics.ring = model.analyze_ring(sites);
  metrics.tree = model.analyze_tree(sites);
  metrics.all_reduce_1mib = model.best(Collective::kAllReduce, sites, kMiB);
  metrics.all_reduce_1gib = model.best(Collective::kAllReduce, sites, kGiB);
  metrics.ring_1gib =
      model.predict(Collective::kAllReduce, topology::Algorithm::kRing, sites, kGiB);
  if (placement.layout) {
    const Layout& layout = *placement.layout;
    // Slowest group of each kind; groups are the ranks that share every other coordinate.
    auto slowest = [&](auto key_of) {
      std::map<std::tuple<int, int, int>, std::vector<topology::RankSite>> groups;
      for (std::size_t i = 0; i < placement.ranks.size(); ++i) {
        groups[key_of(placement.ranks[i])].push_back(sites[i]);
      }
      topology::Prediction worst;
      for (const auto& [key, members] : groups) {
        const topology::Prediction p = model.best(Collective::kAllReduce, members, kGiB);
        if (p.applicable && (!worst.applicable || p.seconds > worst.seconds)) worst = p;
      }
      return worst;
    };
    if (layout.tp > 1) {
      metrics.tp_group_1gib =
          slowest([](const RankPlacement& r) { return std::tuple(*r.pp, *r.dp, 0); });
    }
    if (layout.dp > 1) {
      metrics.dp_group_1gib =
          slowest([](const RankPlacement& r) { return std::tuple(*r.pp, *r.tp, 0); });
    }
  }
  return metrics;
}

void print_rank_table(std::ostream& out, const Placement& placement) {
  const bool groups = placement.layout.has_value();
  out << std::left << std::setw(6) << "rank" << std::setw(18) << "host" << std::setw(6) << "local"
      << std::setw(5) << "gpu" << std::setw(10) << "nic" << std::setw(5) << "rail" << std::setw(5)
      << "numa" << std::setw(22) << "cores" << std::setw(14) << "nvlink" << std::setw(10) << "leaf";
  if (groups) out << "tp/pp/dp/ep";
  out << "\n";
  for (const RankPlacement& r : placement.ranks) {
    out << std::setw(6) << r.rank << std::setw(18) << r.host << std::setw(6) << r.local_rank
        << std::setw(5) << (r.gpu >= 0 ? std::to_string(r.gpu) : "-") << std::setw(10)
        << or_dash(r.nic) << std::setw(5) << (r.rail >= 0 ? std::to_string(r.rail) : "-")
        << std::setw(5) << (r.numa >= 0 ? std::to_string(r.numa) : "-") << std::setw(22)
        << or_dash(topology::format_cpu_list(r.cores)) << std::setw(14) << or_dash(r.nvlink_domain)
        << std::setw(10) << or_dash(r.leaf);
    if (groups) out << *r.tp << "/" << *r.pp << "/" << *r.dp << "/" << *r.ep;
    out << "\n";
  }
  out << std::right;
}

void print_comparison(std::ostream& out, const std::vector<PlanMetrics>& metrics) {
  if (metrics.empty()) return;
  const int width = 32;
  auto row = [&](const std::string& name, auto value) {
    out << std::left << std::setw(38) << name;
    for (const PlanMetrics& m : metrics) out << std::setw(width) << value(m);
    out << "\n";
  };
  row("", [](const PlanMetrics& m) { return m.label; });
  row("nodes", [](const PlanMetrics& m) { return std::to_string(m.nodes); });
  row("leaf switches spanned", [](const PlanMetrics& m) { return std::to_string(m.leaves); });
  row("spines spanned", [](const PlanMetrics& m) { return std::to_string(m.spines); });
  row("consecutive pairs crossing node",
      [](const PlanMetrics& m) { return std::to_string(m.ring.node_crossings); });
  row("consecutive pairs crossing leaf",
      [](const PlanMetrics& m) { return std::to_string(m.ring.leaf_crossings); });
  row("consecutive pairs crossing spine",
      [](const PlanMetrics& m) { return std::to_string(m.ring.spine_crossings); });
  row("max ring congestion (leaf uplink)",
      [](const PlanMetrics& m) { return std::to_string(m.ring.max_uplink_congestion); });
  row("max ring edges leaving a node",
      [](const PlanMetrics& m) { return std::to_string(m.ring.max_node_egress); });
  row("NCCL tree edges crossing leaf",
      [](const PlanMetrics& m) { return std::to_string(m.tree.leaf_crossings); });
  row("all-reduce 1 MiB, best algorithm",
      [](const PlanMetrics& m) { return format_prediction(m.all_reduce_1mib); });
  row("all-reduce 1 GiB, best algorithm",
      [](const PlanMetrics& m) { return format_prediction(m.all_reduce_1gib); });
  row("all-reduce 1 GiB, rank-order ring",
      [](const PlanMetrics& m) { return format_prediction(m.ring_1gib); });
  const bool tp = ours_has(metrics, &PlanMetrics::tp_group_1gib);
  const bool dp = ours_has(metrics, &PlanMetrics::dp_group_1gib);
  if (tp) {
    row("TP group all-reduce 1 GiB (slowest)",
        [](const PlanMetrics& m) { return format_prediction(m.tp_group_1gib); });
  }
  if (dp) {
    row("DP group all-reduce 1 GiB (slowest)",
        [](const PlanMetrics& m) { return format_prediction(m.dp_group_1gib); });
  }
  out << std::right;
  const PlanMetrics& ours = metrics.front();
  auto ratio = [](const topology::Prediction& theirs, const topology::Prediction& mine) {
    char text[32];
    if (!theirs.applicable || !mine.applicable || mine.seconds <= 0) return std::string("n/a");
    const double r = theirs.seconds / mine.seconds;
    // Within half a percent the model sees no difference, and says so.
    if (std::abs(r - 1) < 0.005) return std::string("no difference");
    std::snprintf(text, sizeof text, "%.2fx", r);
    return std::string(text);
  };
  for (std::size_t i = 1; i < metrics.size(); ++i) {
    const PlanMetrics& other = metrics[i];
    out << "time " << other.label << " / " << ours.label << ": all-reduce best 1 MiB "
        << ratio(other.all_reduce_1mib, ours.all_reduce_1mib) << ", 1 GiB "
        << ratio(other.all_reduce_1gib, ours.all_reduce_1gib) << ", ring 1 GiB "
        << ratio(other.ring_1gib, ours.ring_1gib);
    if (tp) out << ", TP group " << ratio(other.tp_group_1gib, ours.tp_group_1gib);
    if (dp) out << ", DP group " << ratio(other.dp_group_1gib, ours.dp_group_1gib);
    out << "\n";
  }
}

}  // namespace haein::launcher
