// Fragmentation of haein's spine rules (issue 23 §5): which spine a job that fits under one
// spine goes to, spine-first (the spine with the least free capacity) or leaf-first (the
// spine whose leaves fit the job best, as Slurm's tree plugin picks a leaf). Each trial
// starts from a random busy pattern (30% of nodes by default, held by other tenants for the whole
// trial) and runs the same sequence of random jobs under both rules: a job arrives at each
// step, holds its nodes for a random number of steps, then leaves. Reported per rule, as
// medians over the trials:
//   placed      jobs placed
//   refused     jobs refused although enough nodes were free in all (stranded capacity:
//               on NVL72 racks, a rack that holds no whole TP group)
//   extra-leaf  leaves spanned by the placed jobs beyond the fewest an idle cluster needs
//   extra-spine the same for spines
//   leaf-free   after the last job: the most free nodes under one leaf (the largest job
//               that still fits one leaf), and spine-free the same under one spine
// and how many trials each rule wins: "wins" by fewer refused, then fewer extra leaves;
// "wins-s" by fewer refused, then fewer extra spines, then fewer extra leaves.
//
//   haein_fragmentation_bench [--trials 201] [--jobs 80] [--busy-percent 30] [--csv FILE]
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "haein/common/error.hpp"
#include "haein/launcher/placement.hpp"
#include "haein/topology/formats.hpp"
#include "haein/topology/presets.hpp"
#include "placement/plan_stages.hpp"
#include "statistics.hpp"

namespace {

using namespace haein;
using launcher::detail::SpineRule;

// A fat tree of `nodes` nodes of `type`, `per_leaf` nodes per leaf, `per_spine` leaves per
// spine, one core; with `rack` > 0, NVLink domains of `rack` consecutive nodes.
std::string tree_yaml(const std::string& name, int nodes, const std::string& type, int per_leaf,
                      int per_spine, int rack) {
  std::ostringstream out;
  auto range = [](const char* prefix, int first, int last) {
    char text[64];
    std::snprintf(text, sizeof text, "%s[%04d-%04d]", prefix, first, last);
    return std::string(text);
  };
  out << "version: 1\nname: " << name << "\nrails: " << (rack > 0 ? 4 : 8) << "\nnodes:\n"
      << "  - {hostname: \"" << range("n", 1, nodes) << "\", node_type: " << type << "}\n";
  if (rack > 0) {
    out << "nvlink_domains:\n";
    for (int r = 0; r * rack < nodes; ++r)
      out << "  - {name: rack" << r << ", nodes: \""
          << range("n", r * rack + 1, std::min(nodes, r * rack + rack)) << "\"}\n";
  }
  out << "switches:\n";
  const int leaves = (nodes + per_leaf - 1) / per_leaf;
  for (int l = 0; l < leaves; ++l)
    out << "  - {name: leaf" << l << ", level: leaf, nodes: \""
        << range("n", l * per_leaf + 1, std::min(nodes, l * per_leaf + per_leaf)) << "\"}\n";
  const int spines = (leaves + per_spine - 1) / per_spine;
  for (int s = 0; s < spines; ++s)
    out << "  - {name: spine" << s << ", level: spine, switches: \"leaf[" << s * per_spine << "-"
        << std::min(leaves, s * per_spine + per_spine) - 1 << "]\"}\n";
  out << "  - {name: core, level: core, switches: \"spine[0-" << spines - 1 << "]\"}\n";
  return out.str();
}

struct Case {
  std::string name;
  topology::Cluster cluster;
  bool racks = false;  ///< NVL72 trays: jobs ask for TP groups that must stay in a rack
};

struct Job {
  launcher::PlacementRequest request;
  int steps = 0;  ///< how long it holds its nodes
};

// Random jobs: whole nodes, sizes spread evenly on a log scale from 1 node to two leaves;
// on racks, tp of 4 to 72 GPUs (1 to 18 trays) and a size in whole TP groups.
std::vector<Job> random_jobs(int count, int leaf_nodes, bool racks, std::mt19937& rng) {
  std::vector<Job> jobs;
  std::uniform_real_distribution<double> log_size(0, std::log(2.0 * leaf_nodes));
  for (int i = 0; i < count; ++i) {
    Job job;
    job.steps = std::uniform_int_distribution(5, 30)(rng);
    const int nodes = static_cast<int>(std::exp(log_size(rng)));
    if (racks) {
      const int trays_per_group =
          std::array{1, 2, 4, 8, 18}[std::uniform_int_distribution(0, 4)(rng)];
      const int groups = std::max(1, nodes / trays_per_group);
      job.request.nodes = groups * trays_per_group;
      job.request.gpus_per_node = 4;
      job.request.layout = launcher::Layout{4 * trays_per_group, 1, groups, 1};
    } else {
      job.request.nodes = std::max(1, nodes);
    }
    jobs.push_back(job);
  }
  return jobs;
}

struct Outcome {
  double placed = 0, refused = 0, extra_leaves = 0, extra_spines = 0, leaf_free = 0, spine_free = 0;
};

Outcome run_trial(const topology::FabricIndex& fabric, const launcher::BusySet& tenants,
                  const std::vector<Job>& jobs, SpineRule rule, int leaf_nodes, int spine_nodes) {
  launcher::BusySet busy = tenants;
  std::vector<std::pair<int, std::vector<int>>> running;  // (step it leaves, nodes)
  Outcome outcome;
  for (std::size_t step = 0; step < jobs.size(); ++step) {
    std::erase_if(running, [&](const auto& job) {
      if (job.first > static_cast<int>(step)) return false;
      for (int node : job.second) busy[node] = false;
      return true;
    });
    const launcher::PlacementRequest& request = jobs[step].request;
    try {
      const launcher::Placement placement =
          launcher::detail::plan_placement(fabric, busy, request, rule);
      std::vector<int> nodes = placement.nodes();
      std::set<int> leaves, spines;
      for (int node : nodes) {
        busy[node] = true;
        leaves.insert(fabric.leaf_of(node));
        spines.insert(fabric.spine_of(node));
      }
      outcome.extra_leaves +=
          static_cast<double>(leaves.size()) - (request.nodes + leaf_nodes - 1) / leaf_nodes;
      outcome.extra_spines +=
          static_cast<double>(spines.size()) - (request.nodes + spine_nodes - 1) / spine_nodes;
      running.emplace_back(static_cast<int>(step) + jobs[step].steps, std::move(nodes));
      ++outcome.placed;
    } catch (const InvalidArgument&) {
      const long free = std::count(busy.begin(), busy.end(), false);
      if (free >= request.nodes) ++outcome.refused;
    }
  }
  std::vector<int> leaf_free(fabric.leaf_count(), 0), spine_free(fabric.spine_count(), 0);
  for (int n = 0; n < fabric.node_count(); ++n) {
    if (busy[n]) continue;
    if (fabric.leaf_of(n) >= 0) ++leaf_free[fabric.leaf_of(n)];
    if (fabric.spine_of(n) >= 0) ++spine_free[fabric.spine_of(n)];
  }
  leaf_free.push_back(0);
  spine_free.push_back(0);
  outcome.leaf_free = *std::max_element(leaf_free.begin(), leaf_free.end());
  outcome.spine_free = *std::max_element(spine_free.begin(), spine_free.end());
  return outcome;
}

int option(int argc, char** argv, const std::string& name, int fallback) {
  for (int i = 1; i + 1 < argc; ++i) {
    if (argv[i] == name) return std::atoi(argv[i + 1]);
  }
  return fallback;
}

std::string string_option(int argc, char** argv, const std::string& name) {
  for (int i = 1; i + 1 < argc; ++i) {
    if (argv[i] == name) return argv[i + 1];
  }
  return {};
}

/// The clusters compared: the haein preset, two generated trees and sixteen NVL72 racks.
std::vector<Case> benchmark_cases() {
  std::vector<Case> cases;
  cases.push_back({"haein", topology::load_preset("haein"), false});
  for (const auto& [name, nodes, per_leaf, per_spine] :
       {std::tuple{"tree-512", 512, 16, 4}, std::tuple{"generated-2048", 2048, 32, 16}}) {
    cases.push_back(
        {name,
         topology::parse_cluster(tree_yaml(name, nodes, "dgx-b200", per_leaf, per_spine, 0),
                                 topology::Format::kYaml, std::string(name) + ".yaml"),
         false});
  }
  cases.push_back(
      {"nvl72-16-racks",
       topology::parse_cluster(tree_yaml("nvl72-16-racks", 288, "gb200-nvl72", 36, 2, 18),
                               topology::Format::kYaml, "nvl72-16-racks.yaml"),
       true});
  return cases;
}

/// One rule's outcomes over the trials, and the trials it won outright.
struct RuleTally {
  std::vector<Outcome> outcomes;
  int wins = 0;        ///< fewer refused jobs, then fewer extra leaves
  int spine_wins = 0;  ///< fewer refused jobs, then fewer extra spines, then leaves

  double median_of(double Outcome::*field) const {
    std::vector<double> values;
    for (const Outcome& o : outcomes) values.push_back(o.*field);
    return bench::median(values);
  }
  double mean_of(double Outcome::*field) const {
    double sum = 0;
    for (const Outcome& o : outcomes) sum += o.*field;
    return sum / static_cast<double>(outcomes.size());
  }
};

constexpr SpineRule kRules[2] = {SpineRule::kSpineFirst, SpineRule::kLeafFirst};

/// Both rules on the same random busy sets and job streams, trial by trial.
std::array<RuleTally, 2> compare_rules(const Case& c, const topology::FabricIndex& fabric,
                                       int trials, int job_count, double tenant_share) {
  const int leaf_nodes = static_cast<int>(fabric.nodes_of_leaf(0).size());
  int spine_nodes = 0;
  for (int l = 0; l < fabric.leaf_count(); ++l)
    if (fabric.spine_of_leaf(l) == 0)
      spine_nodes += static_cast<int>(fabric.nodes_of_leaf(l).size());
  std::array<RuleTally, 2> tally;
  for (int trial = 0; trial < trials; ++trial) {
    std::mt19937 rng(1000 + trial);
    launcher::BusySet tenants(c.cluster.nodes.size());
    for (std::size_t n = 0; n < tenants.size(); ++n)
      tenants[n] = std::bernoulli_distribution(tenant_share)(rng);
    const std::vector<Job> jobs = random_jobs(job_count, leaf_nodes, c.racks, rng);
    Outcome outcome[2];
    for (int r = 0; r < 2; ++r) {
      outcome[r] = run_trial(fabric, tenants, jobs, kRules[r], leaf_nodes, spine_nodes);
      tally[r].outcomes.push_back(outcome[r]);
    }
    const auto key = [](const Outcome& o) { return std::pair(o.refused, o.extra_leaves); };
    const auto spine_key = [](const Outcome& o) {
      return std::tuple(o.refused, o.extra_spines, o.extra_leaves);
    };
    for (int r = 0; r < 2; ++r) {
      if (key(outcome[r]) < key(outcome[1 - r])) ++tally[r].wins;
      if (spine_key(outcome[r]) < spine_key(outcome[1 - r])) ++tally[r].spine_wins;
    }
  }
  return tally;
}

void print_heading(int trials, int job_count, double tenant_share) {
  std::printf(
      "# haein_fragmentation_bench: %d trials of %d jobs per cluster; %.0f%% of nodes busy "
      "throughout; medians (and means) over the trials\n",
      trials, job_count, tenant_share * 100);
  std::printf("# %-15s %5s %6s %6s %-11s %7s %8s %7s %11s %7s %11s %7s %9s %10s %5s %6s\n",
              "cluster", "nodes", "leaves", "spines", "rule", "placed", "refused", "(mean)",
              "extra-leaf", "(mean)", "extra-spine", "(mean)", "leaf-free", "spine-free", "wins",
              "wins-s");
}

void report_rule(const Case& c, const topology::FabricIndex& fabric, const std::string& rule,
                 const RuleTally& t, int trials, int job_count, std::ofstream& csv) {
  std::printf(
      "  %-15s %5d %6d %6d %-11s %7.1f %8.1f %7.2f %11.1f %7.2f %11.1f %7.2f %9.1f %10.1f "
      "%5d %6d\n",
      c.name.c_str(), fabric.node_count(), fabric.leaf_count(), fabric.spine_count(), rule.c_str(),
      t.median_of(&Outcome::placed), t.median_of(&Outcome::refused), t.mean_of(&Outcome::refused),
      t.median_of(&Outcome::extra_leaves), t.mean_of(&Outcome::extra_leaves),
      t.median_of(&Outcome::extra_spines), t.mean_of(&Outcome::extra_spines),
      t.median_of(&Outcome::leaf_free), t.median_of(&Outcome::spine_free), t.wins, t.spine_wins);
  if (!csv.is_open()) return;
  csv << c.name << "," << fabric.node_count() << "," << fabric.leaf_count() << ","
      << fabric.spine_count() << "," << rule << "," << trials << "," << job_count << ","
      << t.median_of(&Outcome::placed) << "," << t.median_of(&Outcome::refused) << ","
      << t.median_of(&Outcome::extra_leaves) << "," << t.median_of(&Outcome::extra_spines) << ","
      << t.median_of(&Outcome::leaf_free) << "," << t.median_of(&Outcome::spine_free) << ","
      << t.wins << "," << t.spine_wins << "\n";
}

}  // namespace

int main(int argc, char** argv) {
  const int trials = std::max(1, option(argc, argv, "--trials", 201));
  const int job_count = std::max(1, option(argc, argv, "--jobs", 80));
  const std::string csv_path = string_option(argc, argv, "--csv");
  const double tenant_share = std::clamp(option(argc, argv, "--busy-percent", 30), 0, 95) / 100.0;
  std::ofstream csv;
  if (!csv_path.empty()) {
    csv.open(csv_path);
    csv << "cluster,nodes,leaves,spines,rule,trials,jobs,placed_median,refused_median,extra_leaves_"
           "median,"
           "extra_spines_median,leaf_free_median,spine_free_median,wins,wins_spines_first\n";
  }
  print_heading(trials, job_count, tenant_share);
  for (const Case& c : benchmark_cases()) {
    const topology::FabricIndex fabric(c.cluster);
    const std::array<RuleTally, 2> tally =
        compare_rules(c, fabric, trials, job_count, tenant_share);
    for (int r = 0; r < 2; ++r)
      report_rule(c, fabric, std::string(launcher::detail::to_string(kRules[r])), tally[r], trials,
                  job_count, csv);
    std::fflush(stdout);
  }
  return 0;
}
