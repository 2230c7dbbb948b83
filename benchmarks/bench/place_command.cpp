// `haein-bench place`: placement quality and solve time. On seeded random busy patterns
// (30% of nodes), the predicted time of a 1 GiB all-reduce under mpirun's naive orders
// (map-by-slot, map-by-node) divided by haein's, and the time haein's planner takes,
// median over the instances of each job size. Exits 1 if haein is ever predicted slower.
//
// Clusters: the haein preset, whose hostnames follow the switch tree (b200-001..032 on
// su1); the same hardware with hostnames striped across the units (as when hosts are
// numbered by rack position), where hostname order and tree order part ways; and
// generated fat trees of N nodes (generated-N: 32 nodes per leaf, 16 leaves per spine).
//
//   haein-bench place [--clusters haein,haein-striped,generated-1024,generated-4096]
//                     [--instances 100] [--csv FILE] [--hdf5 FILE]
#include <algorithm>
#include <boost/program_options.hpp>
#include <chrono>
#include <cstdio>
#include <random>
#include <sstream>
#include <vector>

#include "bench/bench_results.hpp"
#include "bench/commands.hpp"
#include "bench/options.hpp"
#include "generated_cluster.hpp"
#include "haein/common/error.hpp"
#include "haein/launcher/placement.hpp"
#include "haein/launcher/plan.hpp"
#include "haein/runtime/communicator.hpp"
#include "haein/topology/formats.hpp"
#include "haein/topology/presets.hpp"
#include "statistics.hpp"

namespace haein::bench {

namespace {

namespace po = boost::program_options;

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

topology::Cluster load_cluster(const std::string& name) {
  if (name == "haein-striped")
    return topology::parse_cluster(striped_haein_yaml(), topology::Format::kYaml,
                                   "haein-striped.yaml");
  if (name.rfind("generated-", 0) == 0) {
    const std::string digits = name.substr(10);
    const bool number =
        !digits.empty() && digits.size() <= 5 &&
        std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; });
    const int nodes = number ? std::stoi(digits) : 0;
    if (nodes < 2 || nodes > 8192)
      throw InvalidArgument("--clusters: '" + name + "': generated-N takes 2 to 8192 nodes");
    return topology::parse_cluster(generated_yaml(nodes), topology::Format::kYaml, name + ".yaml");
  }
  return topology::load_preset(name);  // names the presets when it is none of them
}

struct Options : OutputOptions {
  std::vector<std::string> clusters{"haein", "haein-striped", "generated-1024", "generated-4096"};
  int instances = 100;
};

Options parse(int argc, char** argv) {
  Options o;
  std::string clusters = "haein,haein-striped,generated-1024,generated-4096";
  po::options_description d(
      "haein-bench place: placement quality (haein's order against mpirun's) and solve time");
  d.add_options()("help,h", "this help")(
      "clusters", po::value(&clusters)->default_value(clusters),
      "presets, haein-striped, generated-N (N nodes), comma-separated")(
      "instances", po::value(&o.instances)->default_value(o.instances),
      "busy patterns per job size on a 128-node cluster (larger clusters get proportionally "
      "fewer, at least 5)");
  o.add_files(d, "write the table as CSV", "write every instance's solve time to this HDF5 file");
  parse_options(d, argc, argv, "place");
  if (o.instances < 1) throw InvalidArgument("--instances must be at least 1");
  o.clusters.clear();
  std::stringstream in(clusters);
  std::string item;
  while (std::getline(in, item, ','))
    if (!item.empty()) o.clusters.push_back(item);
  if (o.clusters.empty()) throw InvalidArgument("--clusters is empty");
  return o;
}

/// Job sizes: 64 GPUs up by 4x, and half the cluster (which 70% free nodes always hold).
std::vector<int> job_sizes(int gpus) {
  std::vector<int> sizes;
  for (int size = 64; size <= gpus / 2; size *= 4) sizes.push_back(size);
  if (gpus / 2 >= 64 && sizes.back() != gpus / 2) sizes.push_back(gpus / 2);
  return sizes;
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

/// haein's placement against one naive order, over the instances of one job size.
struct Against {
  launcher::NaiveOrder order;
  std::vector<double> best, ring, ours_leaves, their_leaves, naive_seconds;
};

/// One job size on one cluster model: haein's solve times and each naive order's ratios.
struct JobResult {
  std::vector<Against> against{{launcher::NaiveOrder::kMapBySlot, {}, {}, {}, {}, {}},
                               {launcher::NaiveOrder::kMapByNode, {}, {}, {}, {}, {}}};
  std::vector<double> solve_seconds;
  int worse = 0;  ///< instances where haein is predicted slower
};

/// `instances` random busy patterns (30% of nodes busy, seeded) for a job of `gpus` GPUs.
JobResult measure_job(const topology::CostModel& model, std::size_t nodes, int gpus,
                      int instances) {
  JobResult result;
  std::mt19937 rng(2026);
  for (int instance = 0; instance < instances; ++instance) {
    launcher::BusySet busy(nodes);
    for (std::size_t i = 0; i < busy.size(); ++i) busy[i] = std::bernoulli_distribution(0.3)(rng);
    launcher::PlacementRequest request;
    request.gpus = gpus;
    auto start = std::chrono::steady_clock::now();
    const launcher::Placement placement = launcher::plan_placement(model.fabric(), busy, request);
    result.solve_seconds.push_back(seconds_since(start));
    const auto ours = launcher::measure(model, placement, "haein");
    for (Against& a : result.against) {
      start = std::chrono::steady_clock::now();
      const launcher::Placement naive =
          launcher::naive_placement(model.fabric(), busy, request, a.order);
      a.naive_seconds.push_back(seconds_since(start));
      const auto theirs = launcher::measure(model, naive, "naive");
      a.best.push_back(theirs.all_reduce_1gib.seconds / ours.all_reduce_1gib.seconds);
      a.ring.push_back(theirs.ring_1gib.seconds / ours.ring_1gib.seconds);
      a.ours_leaves.push_back(ours.leaves);
      a.their_leaves.push_back(theirs.leaves);
      if (a.best.back() < 1 - 1e-9 || a.ring.back() < 1 - 1e-9) ++result.worse;
    }
  }
  return result;
}

/// Where one job size's results go: its table lines and CSV rows (rank 0) and its dataset.
struct JobRow {
  std::string cluster;
  int nodes = 0;
  double oversubscription = 1;
  int gpus = 0;
  int instances = 0;
};

void print_heading() {
  std::printf(
      "# haein-bench place: naive order / haein for the predicted time of a 1 GiB "
      "all-reduce;\n# 30%% of nodes busy at random; medians over the instances\n");
  std::printf("# %-14s %5s %4s %6s %-12s %4s %9s %9s %9s %9s %6s %6s %9s %9s\n", "cluster", "nodes",
              "over", "gpus", "vs", "inst", "best-med", "best-min", "ring-med", "ring-max",
              "leaves", "leaves", "solve", "naive");
  std::printf("# %-14s %5s %4s %6s %-12s %4s %9s %9s %9s %9s %6s %6s %9s %9s\n", "", "", "sub", "",
              "", "", "", "", "", "", "haein", "naive", "ms", "ms");
}

void print_job(const JobRow& job, const JobResult& r, CsvFile& csv) {
  const double solve_ms = median(r.solve_seconds) * 1e3;
  const double solve_max_ms =
      *std::max_element(r.solve_seconds.begin(), r.solve_seconds.end()) * 1e3;
  for (const Against& a : r.against) {
    const std::string order(launcher::to_string(a.order));
    const double best_min = *std::min_element(a.best.begin(), a.best.end());
    const double ring_max = *std::max_element(a.ring.begin(), a.ring.end());
    const double naive_ms = median(a.naive_seconds) * 1e3;
    std::printf(
        "  %-14s %5d %4.0f %6d %-12s %4d %8.3fx %8.3fx %8.3fx %8.3fx %6.1f %6.1f "
        "%9.3f %9.3f\n",
        job.cluster.c_str(), job.nodes, job.oversubscription, job.gpus, order.c_str(),
        job.instances, median(a.best), best_min, median(a.ring), ring_max, median(a.ours_leaves),
        median(a.their_leaves), solve_ms, naive_ms);
    std::fflush(stdout);
    csv.row({job.cluster, std::to_string(job.nodes), format("%g", job.oversubscription),
             std::to_string(job.gpus), order, std::to_string(job.instances),
             format("%.4f", median(a.best)), format("%.4f", best_min),
             format("%.4f", median(a.ring)), format("%.4f", ring_max),
             format("%.1f", median(a.ours_leaves)), format("%.1f", median(a.their_leaves)),
             format("%.4f", solve_ms), format("%.4f", solve_max_ms), format("%.4f", naive_ms)});
  }
}

Measurement job_measurement(const JobRow& job, const JobResult& r) {
  std::vector<double> solve_us;
  for (const double s : r.solve_seconds) solve_us.push_back(s * 1e6);
  return {"place/" + job.cluster + "/spine_oversubscription_" + format("%g", job.oversubscription),
          std::to_string(job.gpus),
          solve_us,
          {{"nodes", static_cast<double>(job.nodes)},
           {"solve_ms_median", median(r.solve_seconds) * 1e3},
           {"best_ratio_median_map_by_slot", median(r.against[0].best)},
           {"best_ratio_median_map_by_node", median(r.against[1].best)},
           {"ring_ratio_median_map_by_slot", median(r.against[0].ring)},
           {"ring_ratio_median_map_by_node", median(r.against[1].ring)}}};
}

}  // namespace

int place_command(int argc, char** argv) {
  const Options o = parse(argc, argv);
  runtime::Communicator comm = runtime::Communicator::world();  // for the run's attributes
  const bool leader = comm.rank() == 0;
  const RunAttributes attributes = standard_attributes(argc, argv);
  std::vector<std::pair<std::string, topology::Cluster>> clusters;
  for (const std::string& name : o.clusters) clusters.emplace_back(name, load_cluster(name));

  CsvFile csv;
  if (leader) {
    csv = CsvFile(o.csv, {"cluster", "nodes", "spine_oversubscription", "gpus", "naive_order",
                          "instances", "best_ratio_median", "best_ratio_min", "ring_ratio_median",
                          "ring_ratio_max", "leaves_haein", "leaves_naive", "solve_ms_median",
                          "solve_ms_max", "naive_ms_median"});
    print_heading();
  }
  std::vector<Measurement> measurements;
  int worse = 0;
  for (const auto& [name, cluster] : clusters) {
    int gpus_in_cluster = 0;
    for (const auto& node : cluster.nodes)
      gpus_in_cluster += static_cast<int>(node.hardware.gpus.size());
    const int nodes = static_cast<int>(cluster.nodes.size());
    const int instances =
        nodes <= 128 ? o.instances : std::max(5, static_cast<int>(o.instances * 128LL / nodes));
    for (const double oversubscription : {1.0, 2.0}) {
      topology::CostParameters parameters;
      parameters.spine_oversubscription = oversubscription;
      const topology::CostModel model(cluster, parameters);
      for (const int gpus : job_sizes(gpus_in_cluster)) {
        const JobRow job{name, nodes, oversubscription, gpus, instances};
        const JobResult result = measure_job(model, cluster.nodes.size(), gpus, instances);
        worse += result.worse;
        if (leader) print_job(job, result, csv);
        measurements.push_back(job_measurement(job, result));
      }
    }
  }
  if (leader) std::printf("# instances where haein is predicted slower: %d\n", worse);
  if (!o.hdf5.empty()) {
    RunAttributes all = attributes;
    all["benchmark"] = "place";
    write_hdf5(o.hdf5, all, measurements);
    if (leader) std::printf("# HDF5: %s\n", o.hdf5.c_str());
  }
  if (leader && !o.csv.empty()) std::printf("# CSV: %s\n", o.csv.c_str());
  return worse == 0 ? 0 : 1;
}

}  // namespace haein::bench
