// The cost model against every published nccl-tests point of
// topology/calibration/published.csv, and `haein topo calibrate`'s pieces: the nccl-tests
// reader and the fit, which must recover parameters that generated a log.
#include "haein/topology/calibration.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <set>
#include <sstream>
#include <tuple>

#include "haein/common/error.hpp"
#include "haein/topology/formats.hpp"
#include "haein/topology/presets.hpp"
#include "nccl_tests_log.hpp"
#include "published_points.hpp"

namespace haein::topology {
namespace {

using testing::load_published_points;
using testing::PublishedPoint;

constexpr double kGoal = 0.15;

std::string published_path() { return HAEIN_PUBLISHED_POINTS; }

// The defaults, or trial values while choosing them: HAEIN_TRY_PARAMETERS="name=value ...".
CostParameters trial_parameters() {
  std::map<std::string, double> overrides;
  if (const char* text = std::getenv("HAEIN_TRY_PARAMETERS")) {
    std::istringstream words(text);
    std::string word;
    while (words >> word) {
      const auto eq = word.find('=');
      if (eq != std::string::npos) overrides[word.substr(0, eq)] = std::stod(word.substr(eq + 1));
    }
  }
  return CostParameters::from(overrides);
}

// Every held point against the model (HAEIN_SHOW_POINTS=1 prints the table
// docs/cost-model.md quotes): each within the goal, +-15%. Where published runs of one
// system differ among themselves (by up to 30%), their geometric mean is held.
TEST(PublishedPoints, HeldPointsMeetTheGoal) {
  constexpr double kLarge = 64.0 * 1024 * 1024;
  const std::vector<PublishedPoint> points = load_published_points(published_path());
  ASSERT_GE(points.size(), 100u);
  struct Held {
    std::string labels;
    double bytes = 0;
    double log_error_sum = 0;
    int count = 0;
  };
  // Spread runs of one system, algorithm, node count and size merge.
  std::map<std::tuple<std::string, int, int, double>, Held> held;
  const bool verbose = std::getenv("HAEIN_SHOW_POINTS") != nullptr;
  const CostParameters parameters = trial_parameters();
  for (const PublishedPoint& point : points) {
    const CostModel model(*point.cluster, parameters);
    const Prediction p = predict_measurement(model, point.measurement);
    ASSERT_TRUE(p.applicable) << point.measurement.label << ": " << p.why_not;
    const double e = log_error(model, point.measurement);
    if (verbose) {
      std::printf(
          "%-22s %-12s r%-2d n%-3d %12.0f B meas %8.2f GB/s pred %8.2f %+6.1f%% %s/%s "
          "%.2f us %s\n",
          point.measurement.label.c_str(), point.system.c_str(), point.racks, point.nodes,
          point.measurement.bytes, point.measurement.busbw_gbs, p.busbw_gbs,
          100 * (std::exp(e) - 1), std::string(to_string(p.algorithm)).c_str(),
          std::string(to_string(p.protocol)).c_str(), p.seconds * 1e6,
          point.check    ? ""
          : point.spread ? "(mean held)"
                         : "(not held)");
    }
    if (!point.check && !point.spread) {
      EXPECT_FALSE(point.note.empty()) << point.measurement.label << ": a point left out says why";
      continue;
    }
    const auto key =
        point.spread ? std::tuple(point.system + "/" +
                                      (point.measurement.algorithm
                                           ? std::string(to_string(*point.measurement.algorithm))
                                           : "best"),
                                  point.racks, point.nodes, point.measurement.bytes)
                     : std::tuple(point.measurement.label, 0, 0, 0.0);
    Held& h = held[key];
    h.labels += (h.labels.empty() ? "" : " ") + point.measurement.label;
    h.bytes = point.measurement.bytes;
    h.log_error_sum += e;
    ++h.count;
  }
  int within = 0, large = 0, large_within = 0;
  double worst = 0;
  for (const auto& [key, h] : held) {
    // A spread group's geometric mean: the mean of its log errors.
    const double error = std::exp(h.log_error_sum / h.count) - 1;
    worst = std::max(worst, std::abs(error));
    within += std::abs(error) <= kGoal;
    if (h.bytes >= kLarge) {
      ++large;
      large_within += std::abs(error) <= kGoal;
    }
    EXPECT_LE(std::abs(error), kGoal) << h.labels << ": " << 100 * error << "%";
  }
  const int total = static_cast<int>(held.size());
  std::printf("published points: %d of %d within +-15%% (64 MiB and up: %d of %d), worst %.1f%%\n",
              within, total, large_within, large, 100 * worst);
}

Cluster dgx_h100_nodes(int nodes) {
  const std::string last = std::to_string(nodes);
  return parse_cluster(
      "version: 1\nname: four\nrails: 8\nnodes:\n"
      "  - {hostname: \"node[01-0" +
          last +
          "]\", node_type: dgx-h100}\n"
          "switches:\n  - {name: leaf, level: leaf, nodes: \"node[01-0" +
          last + "]\"}\n",
      Format::kYaml, "four.yaml");
}

std::vector<RankSite> whole_nodes(const Cluster& cluster, int nodes) {
  std::vector<RankSite> sites;
  for (int n = 0; n < nodes; ++n) {
    for (const Gpu& gpu : cluster.nodes[n].hardware.gpus)
      sites.push_back({n, gpu.index, gpu.index});
  }
  return sites;
}

std::vector<double> sizes(double from, double to) {
  std::vector<double> list;
  for (double s = from; s <= to; s *= 4) list.push_back(s);
  return list;
}

TEST(NcclTestsOutput, ReadsRowsRanksAndTheCollective) {
  const std::string text =
      "# Collective test starting: all_gather_perf\n"
      "#  Rank  0 Group  0 Pid  14840 on gpu-a device  0 [0x1b] NVIDIA H100\n"
      "#  Rank  1 Group  0 Pid  14841 on gpu-a device  1 [0x43] NVIDIA H100\n"
      "#  Rank  2 Group  0 Pid  14842 on gpu-b device  0 [0x1b] NVIDIA H100\n"
      "#       size         count      type   redop    root     time   algbw   busbw #wrong     "
      "time\n"
      "gpu-a:1:1 [0] NCCL INFO NCCL_ALGO set by environment to Ring\n"
      "[1,0]<stdout>:     1048576        262144     float    none      -1    27.37   38.31   25.54 "
      "     0\n"
      "  1073741824     268435456     float    none      -1   4029.4  266.48  177.65      0\n"
      "# Avg bus bandwidth    : 101.6\n";
  const NcclTestsRun run = parse_nccl_tests(text, "ag.log");
  EXPECT_EQ(run.collective, Collective::kAllGather);
  ASSERT_EQ(run.ranks.size(), 3u);
  EXPECT_EQ(run.ranks[2].host, "gpu-b");
  EXPECT_EQ(run.ranks[1].device, 1);
  EXPECT_EQ(run.algorithm, "Ring");
  ASSERT_EQ(run.rows.size(), 2u);
  EXPECT_DOUBLE_EQ(run.rows[0].bytes, 1048576);
  EXPECT_DOUBLE_EQ(run.rows[0].time_us, 27.37);
  EXPECT_DOUBLE_EQ(run.rows[1].busbw_gbs, 177.65);
  EXPECT_EQ(run.rows[1].line, 8);
}

TEST(NcclTestsOutput, MalformedRowsAreNamedByLine) {
  try {
    parse_nccl_tests(
        "#  Rank  0 Group  0 Pid  1 on a device  0 [0] X\n  1048576  262144  float  sum  -1  abc  "
        "1  2  0\n",
        "all_reduce_perf.log");
    FAIL() << "a row with a bad time was read";
  } catch (const ParseError& e) {
    EXPECT_NE(std::string(e.what()).find("all_reduce_perf.log:2"), std::string::npos) << e.what();
  }
  EXPECT_THROW(parse_nccl_tests("# nothing here\n", "all_reduce_perf.log"), ParseError);
  // No collective anywhere: neither a header line nor the file name says.
  EXPECT_THROW(
      parse_nccl_tests("  1048576  262144  float  sum  -1  27.4  38.3  67.0  0\n", "out.txt"),
      ParseError);
}

TEST(NcclTestsOutput, RefusesWhatItCannotModelByLine) {
  const std::string ranks =
      "#  Rank  0 Group  0 Pid  1 on a device  0 [0] X\n"
      "#  Rank  1 Group  0 Pid  2 on a device  1 [0] X\n";
  const std::string row = "  1048576  262144  float  sum  -1  27.4  38.3  67.0  0\n";
  auto refused = [](const std::string& text, const std::string& expect) {
    try {
      parse_nccl_tests(text, "all_reduce_perf.log");
      ADD_FAILURE() << "read: " << text;
    } catch (const ParseError& e) {
      EXPECT_NE(std::string(e.what()).find(expect), std::string::npos) << e.what();
    }
  };
  // Two runs in one file: the second rank block is named.
  refused(ranks + row + ranks + row, "all_reduce_perf.log:4: rank 0 where rank 2 was due");
  // NCCL's exclusion syntax and algorithms the model does not know.
  refused(ranks + "NCCL_ALGO=^NVLS\n" + row, "NCCL_ALGO=^NVLS");
  refused(ranks + "x NCCL INFO NCCL_ALGO set by environment to Ring,CollNetDirect\n" + row,
          "Ring,CollNetDirect");
  refused("# Collective test starting: broadcast_perf\n" + ranks + row, "broadcast_perf");
  // Devices and sizes past any machine.
  refused("#  Rank  0 Group  0 Pid  1 on a device 1e10 [0] X\n" + row, "whole numbers");
  refused(ranks + "  1e300  262144  float  sum  -1  27.4  38.3  67.0  0\n", "1 PiB");
  refused(ranks + "  1048576  262144  float  sum  -1  1e300  38.3  67.0  0\n", "a day");
  // srun's labels ("0: ") are read like mpirun's tags.
  std::string labelled;
  for (const std::string& line :
       {ranks.substr(0, ranks.find('\n') + 1), ranks.substr(ranks.find('\n') + 1), row}) {
    labelled += "0: " + line;
  }
  const NcclTestsRun run = parse_nccl_tests(labelled, "all_reduce_perf.log");
  EXPECT_EQ(run.ranks.size(), 2u);
  EXPECT_EQ(run.rows.size(), 1u);
}

TEST(NcclTestsOutput, ForeignHostsTakeTheClustersNodesInTreeOrder) {
  const Cluster cluster = dgx_h100_nodes(4);
  const NcclTestsRun run = parse_nccl_tests(
      "#  Rank  0 Group  0 Pid  1 on elsewhere-7 device  3 [0] X\n"
      "#  Rank  1 Group  0 Pid  2 on elsewhere-9 device  3 [0] X\n"
      "  1048576  262144  float  sum  -1  27.4  38.3  67.0  0\n",
      "all_reduce_perf.log");
  std::vector<std::string> notes;
  const std::vector<Measurement> points = measurements_of(run, cluster, 0, 0, &notes);
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_NE(notes[0].find("2 of its 2 hosts are not in the cluster (elsewhere-7, elsewhere-9)"),
            std::string::npos)
      << notes[0];
  ASSERT_EQ(points.size(), 1u);
  EXPECT_EQ(points[0].ranks[0].node, 0);
  EXPECT_EQ(points[0].ranks[1].node, 1);
  EXPECT_EQ(points[0].ranks[1].gpu, 3);
  EXPECT_NEAR(points[0].seconds, 27.4e-6, 1e-12);
  // A device the node does not have is refused.
  const NcclTestsRun bad = parse_nccl_tests(
      "#  Rank  0 Group  0 Pid  1 on node01 device  9 [0] X\n  1048576  262144  float  sum  -1  "
      "27.4  38.3  67.0  0\n",
      "all_reduce_perf.log");
  EXPECT_THROW(measurements_of(bad, cluster), InvalidArgument);
}

// `haein topo calibrate`'s promise: logs made with known parameters give them back.
TEST(Calibration, RecoversPerturbedParametersFromGeneratedLogs) {
  const Cluster cluster = dgx_h100_nodes(4);
  CostParameters truth;
  // Far enough apart that each decides some points: a ring over four nodes is NIC-bound
  // (0.70 x 400 < 0.75 x 450), an NVLS tree over two is NVLS-bound.
  truth[CostParam::kHopperRingEfficiency] = 0.75;
  truth[CostParam::kHopperNvlsEfficiency] = 0.47;
  truth[CostParam::kNvlsTreeEfficiency] = 0.80;
  truth[CostParam::kNetEfficiency] = 0.70;
  truth[CostParam::kNvlinkStepLlUs] = 0.9;
  truth[CostParam::kNvlsBaseUs] = 35;
  const CostModel generator(cluster, truth);
  std::vector<Measurement> points;
  auto add = [&](int nodes, const char* algorithm, double from, double to) {
    const auto sites = whole_nodes(cluster, nodes);
    const std::string log = testing::nccl_tests_log(generator, sites, Collective::kAllReduce,
                                                    sizes(from, to), algorithm);
    const auto run = parse_nccl_tests(log, "all_reduce_perf." + std::to_string(nodes) + ".log");
    const auto more = measurements_of(run, cluster);
    points.insert(points.end(), more.begin(), more.end());
  };
  add(1, "Ring", 1 << 10, 8.0 * (1 << 30));     // NCCL_ALGO=Ring: NVLink ring, LL at small sizes
  add(1, nullptr, 1 << 20, 8.0 * (1 << 30));    // default: NVLS from a few MiB
  add(1, "NVLS", 2 << 20, 64 << 20);            // NVLS forced where its latency shows
  add(2, nullptr, 256 << 20, 8.0 * (1 << 30));  // NVLS tree, NVLS-bound at two nodes
  add(4, "Ring", 64 << 20, 8.0 * (1 << 30));    // ring over the NICs
  const std::vector<CostParam> free = informed_parameters(cluster, points);
  for (CostParam p : {CostParam::kHopperRingEfficiency, CostParam::kHopperNvlsEfficiency,
                      CostParam::kNvlsTreeEfficiency, CostParam::kNetEfficiency,
                      CostParam::kNvlinkStepLlUs, CostParam::kNvlsBaseUs}) {
    EXPECT_NE(std::find(free.begin(), free.end(), p), free.end())
        << cost_param_table()[static_cast<int>(p)].name << " is not among the informed ones";
  }
  const FitReport report = fit_parameters(cluster, CostParameters{}, points, free);
  std::printf("fit: rms %.4f -> %.4f over %zu points\n", report.rms_before, report.rms_after,
              points.size());
  EXPECT_GT(report.rms_before, 0.05);
  EXPECT_LT(report.rms_after, 0.01);
  for (CostParam p : {CostParam::kHopperRingEfficiency, CostParam::kHopperNvlsEfficiency,
                      CostParam::kNvlsTreeEfficiency, CostParam::kNetEfficiency,
                      CostParam::kNvlinkStepLlUs, CostParam::kNvlsBaseUs}) {
    EXPECT_NEAR(report.parameters[p] / truth[p], 1.0, 0.05)
        << cost_param_table()[static_cast<int>(p)].name << ": fitted " << report.parameters[p]
        << ", generated with " << truth[p];
  }
}

// A fabric with SHARP: logs of NCCL_ALGO=CollNetChain runs give back the switches' share
// of the NICs (B200 nodes, where the NICs and not NVLink bound CollNet).
TEST(Calibration, RecoversCollNetEfficiencyFromSharpRuns) {
  const Cluster cluster = parse_cluster(
      "version: 1\nname: sharp\nrails: 8\nnodes:\n"
      "  - {hostname: \"node[01-04]\", node_type: dgx-b200}\n"
      "switches:\n  - {name: leaf, level: leaf, nodes: \"node[01-04]\", sharp: true}\n",
      Format::kYaml, "sharp.yaml");
  CostParameters truth;
  truth[CostParam::kCollNetEfficiency] = 0.6;
  truth[CostParam::kNetEfficiency] = 0.85;
  const CostModel generator(cluster, truth);
  // A CollNet run alone cannot tell the NICs' bound from NVLink's; a ring on one node pins
  // NVLink, a ring over the four the NICs.
  std::vector<Measurement> points;
  for (const auto& [nodes, algorithm] : {std::pair{4, "CollNetChain"}, {4, "Ring"}, {1, "Ring"}}) {
    const std::string log =
        testing::nccl_tests_log(generator, whole_nodes(cluster, nodes), Collective::kAllReduce,
                                sizes(256 << 20, 8.0 * (1 << 30)), algorithm);
    const auto more = measurements_of(parse_nccl_tests(log, "all_reduce_perf.log"), cluster);
    ASSERT_FALSE(more.empty());
    EXPECT_EQ(more.front().algorithm,
              std::string(algorithm) == "Ring" ? Algorithm::kRing : Algorithm::kCollNet);
    points.insert(points.end(), more.begin(), more.end());
  }
  const std::vector<CostParam> free = informed_parameters(cluster, points);
  ASSERT_NE(std::find(free.begin(), free.end(), CostParam::kCollNetEfficiency), free.end());
  const FitReport report = fit_parameters(cluster, CostParameters{}, points, free);
  EXPECT_LT(report.rms_after, 0.01);
  EXPECT_NEAR(report.parameters[CostParam::kCollNetEfficiency], 0.6, 0.6 * 0.05);
  EXPECT_NEAR(report.parameters[CostParam::kNetEfficiency], 0.85, 0.85 * 0.05);
}

TEST(Calibration, ParametersRoundTripThroughTheClusterFile) {
  Cluster cluster = dgx_h100_nodes(2);
  cluster.cost_model["net_efficiency"] = 0.81;
  cluster.cost_model["nvls_base_us"] = 31.5;
  for (Format format : {Format::kYaml, Format::kJson}) {
    const Cluster back = parse_cluster(format_cluster(cluster, format), format, "back");
    EXPECT_EQ(back.cost_model, cluster.cost_model);
    EXPECT_DOUBLE_EQ(CostModel(back).parameters()[CostParam::kNetEfficiency], 0.81);
  }
  const std::string yaml = format_cluster(cluster, Format::kYaml);
  try {
    parse_cluster(yaml + "  net_eficiency: 0.8\n", Format::kYaml, "typo.yaml");
    FAIL() << "an unknown cost_model name was read";
  } catch (const ParseError& e) {
    EXPECT_NE(std::string(e.what()).find("net_eficiency"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("typo.yaml:"), std::string::npos) << e.what();
  }
  std::string out_of_range = yaml;
  out_of_range.replace(out_of_range.find("0.81"), 4, "7.5");
  EXPECT_THROW(parse_cluster(out_of_range, Format::kYaml, "range.yaml"), ParseError);
}

// `haein topo calibrate` on published tables: each system's held points, fitted on their
// own from the defaults, never end farther from what was measured, and closer wherever
// the defaults were more than 5% off.
TEST(Calibration, FitsEachPublishedTable) {
  const std::vector<PublishedPoint> points = load_published_points(published_path());
  // One table per source and cluster (a fabric with SHARP is a cluster of its own).
  std::map<std::tuple<std::string, std::string, int, const Cluster*>, CalibrationSet> tables;
  for (const PublishedPoint& point : points) {
    if (!point.check) continue;
    CalibrationSet& set = tables[{point.source, point.system, point.nodes, point.cluster.get()}];
    set.cluster = point.cluster.get();
    set.points.push_back(point.measurement);
  }
  int fitted = 0;
  for (const auto& [key, set] : tables) {
    if (set.points.size() < 5) continue;
    const auto free = informed_parameters(*set.cluster, set.points);
    const FitReport report = fit_parameters(
        *set.cluster, CostParameters::from(set.cluster->cost_model), set.points, free);
    std::printf("  %-50s %-12s %3d nodes: %2zu points, rms %.3f -> %.3f, worst %.1f%% -> %.1f%%\n",
                std::get<0>(key).c_str(), std::get<1>(key).c_str(), std::get<2>(key),
                set.points.size(), report.rms_before, report.rms_after, 100 * report.worst_before,
                100 * report.worst_after);
    EXPECT_LE(report.rms_after, report.rms_before + 1e-12) << std::get<0>(key);
    if (report.rms_before > 0.05) {
      EXPECT_LT(report.rms_after, report.rms_before) << std::get<0>(key);
    }
    ++fitted;
  }
  EXPECT_GE(fitted, 6);
}

// Not a test either (HAEIN_FIT_HOLDOUT=1): how the model does on points it has not seen.
// For each source, fits the parameters the defaults were fitted with to every other
// source's held points, then prints the left-out source's errors.
TEST(PublishedPoints, FitWithoutEachSource) {
  if (std::getenv("HAEIN_FIT_HOLDOUT") == nullptr) GTEST_SKIP() << "set HAEIN_FIT_HOLDOUT=1";
  const std::vector<PublishedPoint> points = load_published_points(published_path());
  std::set<std::string> sources;
  for (const PublishedPoint& point : points) {
    if (point.check || point.spread) sources.insert(point.source);
  }
  std::vector<CostParam> free;
  for (const CostParamInfo& info : cost_param_table()) free.push_back(info.id);
  for (const std::string& left_out : sources) {
    std::map<const Cluster*, CalibrationSet> train, test;
    for (const PublishedPoint& point : points) {
      if (!point.check && !point.spread) continue;
      auto& sets = point.source == left_out ? test : train;
      CalibrationSet& set = sets[point.cluster.get()];
      set.cluster = point.cluster.get();
      set.points.push_back(point.measurement);
    }
    std::vector<CalibrationSet> train_sets, test_sets;
    for (auto& [cluster, set] : train) train_sets.push_back(std::move(set));
    for (auto& [cluster, set] : test) test_sets.push_back(std::move(set));
    const FitReport fit = fit_parameters(train_sets, CostParameters{}, free);
    // The left-out points under the parameters fitted without them.
    const FitReport unseen = fit_parameters(test_sets, fit.parameters, {});
    int within = 0, count = 0;
    for (const CalibrationSet& set : test_sets) {
      const CostModel model(*set.cluster, fit.parameters);
      for (const Measurement& m : set.points) {
        const double e = std::exp(log_error(model, m)) - 1;
        within += std::abs(e) <= kGoal;
        ++count;
        if (std::abs(e) > kGoal) {
          const Prediction p = predict_measurement(model, m);
          std::printf("  unseen %-22s %4zu ranks %12.0f B %+7.1f%% %s/%s\n", m.label.c_str(),
                      m.ranks.size(), m.bytes, 100 * e, std::string(to_string(p.algorithm)).c_str(),
                      std::string(to_string(p.protocol)).c_str());
        }
      }
    }
    std::printf("without %-52s: %3d of %3d within +-15%%, rms %.3f, worst %.1f%%\n",
                left_out.c_str(), within, count, unseen.rms_before, 100 * unseen.worst_before);
  }
}

// Not a test: fits every parameter to the held points and prints the values, to choose
// the defaults (HAEIN_FIT_DEFAULTS=1; HAEIN_FIT="name name ..." limits the fit).
TEST(PublishedPoints, FitDefaults) {
  if (std::getenv("HAEIN_FIT_DEFAULTS") == nullptr) GTEST_SKIP() << "set HAEIN_FIT_DEFAULTS=1";
  const std::vector<PublishedPoint> points = load_published_points(published_path());
  std::map<std::pair<const Cluster*, double>, CalibrationSet> by_cluster;
  for (const PublishedPoint& point : points) {
    if (!point.check && !point.spread) continue;
    CalibrationSet& set = by_cluster[{point.cluster.get(), point.oversubscription}];
    set.cluster = point.cluster.get();
    set.points.push_back(point.measurement);
  }
  std::vector<CalibrationSet> sets;
  for (auto& [cluster, set] : by_cluster) sets.push_back(std::move(set));
  std::vector<CostParam> free;
  const char* only = std::getenv("HAEIN_FIT");
  for (const CostParamInfo& info : cost_param_table()) {
    if (!only || std::string(only).find(std::string(info.name)) != std::string::npos) {
      free.push_back(info.id);
    }
  }
  const FitReport report = fit_parameters(sets, CostParameters{}, free);
  std::printf("rms %.3f -> %.3f, worst %.1f%% -> %.1f%%\n", report.rms_before, report.rms_after,
              100 * report.worst_before, 100 * report.worst_after);
  for (const CostParamInfo& info : cost_param_table()) {
    std::printf("  %-28s %10.4f (default %10.4f)\n", std::string(info.name).c_str(),
                report.parameters[info.id], info.value);
  }
  for (const CalibrationSet& set : sets) {
    CostParameters with_fabric = report.parameters;
    with_fabric.spine_oversubscription = set.spine_oversubscription;
    const CostModel model(*set.cluster, with_fabric);
    for (const Measurement& m : set.points) {
      const double e = std::exp(log_error(model, m)) - 1;
      const Prediction p = predict_measurement(model, m);
      if (std::abs(e) > 0.15) {
        std::printf("  %-22s %-12s %4zu ranks %12.0f B %+7.1f%% %s/%s\n", m.label.c_str(),
                    set.cluster->name.c_str(), m.ranks.size(), m.bytes, 100 * e,
                    std::string(to_string(p.algorithm)).c_str(),
                    std::string(to_string(p.protocol)).c_str());
      }
    }
  }
}

}  // namespace
}  // namespace haein::topology
