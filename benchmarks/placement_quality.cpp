// Placement quality: on seeded random busy patterns (30% of nodes), the predicted time of
// a 1 GiB all-reduce under the naive orders divided by haein's, median over 100
// instances per job size. Exits non-zero if haein is ever predicted slower.
//
// Two clusters: the haein preset, whose hostnames follow the switch tree (b200-001..032
// on su1), and the same hardware with hostnames striped across the units (as when hosts
// are numbered by rack position), where hostname order and tree order part ways.
#include <algorithm>
#include <cstdio>
#include <random>
#include <sstream>
#include <vector>

#include "bench/commands.hpp"
#include "haein/common/error.hpp"
#include "haein/launcher/placement.hpp"
#include "haein/launcher/plan.hpp"
#include "haein/topology/formats.hpp"
#include "haein/topology/presets.hpp"

namespace {

using namespace haein;

std::string striped_haein_yaml() {
  std::ostringstream out;
  out << "version: 1\nname: haein-striped\nrails: 8\nnodes:\n"
         "  - {hostname: \"b200-[001-128]\", node_type: dgx-b200}\nswitches:\n";
  for (int leaf = 0; leaf < 4; ++leaf) {
    out << "  - {name: su" << leaf + 1 << ", level: leaf, nodes: \"";
    for (int n = leaf + 1; n <= 128; n += 4) {
      char host[16];
      std::snprintf(host, sizeof host, "b200-%03d", n);
      out << (n > leaf + 1 ? "," : "") << host;
    }
    out << "\"}\n";
  }
  out << "  - {name: spine, level: spine, switches: \"su[1-4]\"}\n";
  return out.str();
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const std::size_t n = values.size();
  return n % 2 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

}  // namespace

int haein::bench::place_command(int argc, char** argv) {
  if (argc > 1) throw haein::InvalidArgument(std::string("place takes no options, got ") + argv[1]);
  const std::vector<std::pair<std::string, topology::Cluster>> clusters{
      {"haein", topology::load_preset("haein")},
      {"haein-striped", topology::parse_cluster(striped_haein_yaml(), topology::Format::kYaml,
                                                "haein-striped.yaml")}};
  int worse = 0;
  std::printf("time of a 1 GiB all-reduce, naive order / haein (100 instances each)\n");
  std::printf("%-14s %4s %5s %-12s %9s %9s %9s %9s %7s %7s\n", "cluster", "over", "gpus", "vs",
              "best-med", "best-min", "ring-med", "ring-max", "leaves", "leaves");
  std::printf("%-14s %4s %5s %-12s %9s %9s %9s %9s %7s %7s\n", "", "sub", "", "", "", "", "", "",
              "haein", "naive");
  for (const auto& [name, cluster] : clusters) {
    for (const double oversubscription : {1.0, 2.0}) {
      topology::CostParameters parameters;
      parameters.spine_oversubscription = oversubscription;
      const topology::CostModel model(cluster, parameters);
      for (int gpus : {64, 128, 256, 512}) {
        for (auto order : {launcher::NaiveOrder::kMapBySlot, launcher::NaiveOrder::kMapByNode}) {
          std::mt19937 rng(2026);
          std::vector<double> best_ratio, ring_ratio, our_leaves, their_leaves;
          for (int instance = 0; instance < 100; ++instance) {
            launcher::BusySet busy(cluster.nodes.size());
            for (std::size_t i = 0; i < busy.size(); ++i) {
              busy[i] = std::bernoulli_distribution(0.3)(rng);
            }
            launcher::PlacementRequest request;
            request.gpus = gpus;
            const auto ours = launcher::measure(
                model, launcher::plan_placement(model.fabric(), busy, request), "haein");
            const auto theirs = launcher::measure(
                model, launcher::naive_placement(model.fabric(), busy, request, order), "naive");
            best_ratio.push_back(theirs.all_reduce_1gib.seconds / ours.all_reduce_1gib.seconds);
            ring_ratio.push_back(theirs.ring_1gib.seconds / ours.ring_1gib.seconds);
            our_leaves.push_back(ours.leaves);
            their_leaves.push_back(theirs.leaves);
            if (best_ratio.back() < 1 - 1e-9 || ring_ratio.back() < 1 - 1e-9) ++worse;
          }
          std::printf("%-14s %4.0f %5d %-12s %8.3fx %8.3fx %8.3fx %8.3fx %7.1f %7.1f\n",
                      name.c_str(), oversubscription, gpus,
                      std::string(launcher::to_string(order)).c_str(), median(best_ratio),
                      *std::min_element(best_ratio.begin(), best_ratio.end()), median(ring_ratio),
                      *std::max_element(ring_ratio.begin(), ring_ratio.end()), median(our_leaves),
                      median(their_leaves));
        }
      }
    }
  }
  std::printf("instances where haein is predicted slower: %d\n", worse);
  return worse == 0 ? 0 : 1;
}
