// nccl-tests output read into measured points, and the cost model's parameters fitted to
// them (`haein topo calibrate`).
#include "haein/topology/calibration.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <map>
#include <memory>
#include <numeric>
#include <set>

#include "haein/common/error.hpp"

namespace haein::topology {

namespace {

using P = CostParam;

std::vector<std::string_view> split_words(std::string_view line) {
  std::vector<std::string_view> words;
  std::size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r')) ++i;
    std::size_t j = i;
    while (j < line.size() && line[j] != ' ' && line[j] != '\t' && line[j] != '\r') ++j;
    if (j > i) words.push_back(line.substr(i, j - i));
    i = j;
  }
  return words;
}

std::optional<double> number(std::string_view word) {
  double value = 0;
  const auto [end, error] = std::from_chars(word.data(), word.data() + word.size(), value);
  if (error != std::errc() || end != word.data() + word.size() || !std::isfinite(value)) {
    return std::nullopt;
  }
  return value;
}

// The text of a line after an mpirun tag ("[1,0]<stdout>:") or an srun label ("0: ").
std::string_view untagged(std::string_view line) {
  if (const auto tag = line.find(">:"); tag != std::string_view::npos && line.starts_with("[")) {
    line.remove_prefix(tag + 2);
  }
  std::size_t digits = 0;
  while (digits < line.size() && std::isdigit(static_cast<unsigned char>(line[digits]))) ++digits;
  if (digits > 0 && digits + 1 < line.size() && line[digits] == ':' && line[digits + 1] == ' ') {
    line.remove_prefix(digits + 2);
  }
  return line;
}

std::optional<Collective> collective_of_file(const std::string& source) {
  const std::size_t slash = source.find_last_of('/');
  std::string name = slash == std::string::npos ? source : source.substr(slash + 1);
  for (const Collective known : kModelledCollectives) {
    if (name.find(name_of(known)) != std::string::npos) return known;
  }
  return std::nullopt;
}

// The sets of a fit with their fabric indexes, built once: a trial of the parameters only
// builds the models over them.
class Scorer {
 public:
  explicit Scorer(std::span<const CalibrationSet> sets) : sets_(sets) {
    for (const CalibrationSet& set : sets) {
      fabrics_.push_back(std::make_shared<const FabricIndex>(*set.cluster));
      count_ += set.points.size();
    }
  }
  std::size_t count() const { return count_; }

  struct Errors {
    double sum = 0;  ///< of squared log errors
    double rms = 0;
    double worst = 0;  ///< largest |predicted / measured - 1|
  };
  Errors errors(const CostParameters& parameters) const {
    Errors errors;
    for (std::size_t s = 0; s < sets_.size(); ++s) {
      CostParameters with_fabric = parameters;
      with_fabric.spine_oversubscription = sets_[s].spine_oversubscription;
      const CostModel model(fabrics_[s], with_fabric);
      for (const Measurement& point : sets_[s].points) {
        const double e = log_error(model, point);
        errors.sum += e * e;
        errors.worst = std::max(errors.worst, std::abs(std::exp(e) - 1));
      }
    }
    errors.rms = count_ == 0 ? 0 : std::sqrt(errors.sum / count_);
    return errors;
  }

 private:
  std::span<const CalibrationSet> sets_;
  std::vector<std::shared_ptr<const FabricIndex>> fabrics_;
  std::size_t count_ = 0;
};

}  // namespace

namespace {

// The largest size and time a row may hold: 1 PiB, and a day.
constexpr double kMaxRowBytes = 1125899906842624.0;
constexpr double kMaxRowMicroseconds = 86400e6;

// Reads one nccl-tests output file line by line.
class NcclTestsReader {
 public:
  NcclTestsReader(const std::string& source, NcclTestsRun& run) : source_(source), run_(run) {}

  void line(std::string_view text, int number) {
    number_ = number;
    text = untagged(text);
    algorithm_setting(text);
    const auto words = split_words(text);
    if (words.empty()) return;
    if (words.front().starts_with("#")) {
      comment(text, words);
      return;
    }
    row(words);
  }

  std::optional<Collective> collective() const { return collective_; }

 private:
  ParseError fail(const std::string& what) const { return ParseError(source_, number_, what); }

  // "NCCL_ALGO=Ring" or NCCL's "NCCL_ALGO set by environment to Ring".
  void algorithm_setting(std::string_view text) {
    const auto at = text.find("NCCL_ALGO");
    if (at == std::string_view::npos) return;
    std::string_view rest = text.substr(at + 9);
    if (rest.starts_with("=")) {
      rest.remove_prefix(1);
    } else if (const auto to = rest.find(" to "); to != std::string_view::npos) {
      rest.remove_prefix(to + 4);
    } else {
      return;
    }
    const auto words = split_words(rest);
    if (words.empty()) return;
    const std::string value(words.front());
    if (!algorithm_from_string(value) ||
        *algorithm_from_string(value) == Algorithm::kHierarchical) {
      throw fail("NCCL_ALGO=" + printable(value, 60) +
                 ": the cost model knows ring, tree, nvls, nvlstree and collnet (no lists or "
                 "exclusions); leave such runs out");
    }
    run_.algorithm = value;
  }

  void comment(std::string_view text, const std::vector<std::string_view>& words) {
    if (const auto at = text.find("Collective test starting:"); at != std::string_view::npos) {
      const auto name = split_words(text.substr(at + 25));
      if (name.empty()) return;
      collective_ = collective_from_string(name.front());
      if (!collective_) {
        throw fail(printable(std::string(name.front()), 60) +
                   ": the cost model knows all_reduce, all_gather and reduce_scatter");
      }
    }
    // "#  Rank  0 Group  0 Pid  14840 on host device  3 [0x01] NVIDIA ..."
    if (words.size() >= 9 && words[0] == "#" && words[1] == "Rank") rank_line(words);
    // The column header names where "time" is (older versions have no redop/root).
    if (words.size() >= 7 && words[0] == "#" && words[1] == "size") {
      const auto time = std::find(words.begin(), words.end(), "time");
      if (time != words.end()) time_column_ = static_cast<std::size_t>(time - words.begin()) - 1;
    }
  }

  void rank_line(const std::vector<std::string_view>& words) {
    const auto on = std::find(words.begin(), words.end(), "on");
    const auto device = std::find(words.begin(), words.end(), "device");
    if (on == words.end() || on + 1 == words.end() || device == words.end() ||
        device + 1 == words.end()) {
      return;
    }
    const std::optional<int> rank = small_integer(words[2]);
    const std::optional<int> d = small_integer(*(device + 1));
    if (!rank || !d) throw fail("a '# Rank N ... device D' line needs whole numbers N and D");
    // Ranks come once each, in order: a second block means two runs in one file.
    if (*rank != static_cast<int>(run_.ranks.size())) {
      throw fail("rank " + std::to_string(*rank) + " where rank " +
                 std::to_string(run_.ranks.size()) +
                 " was due: one run per file, its ranks listed once in order");
    }
    run_.ranks.push_back({std::string(*(on + 1)), *d});
  }

  void row(const std::vector<std::string_view>& words) {
    const std::optional<double> size = number(words.front());
    if (!size) return;  // NCCL INFO lines, warnings, anything else
    if (words.size() < time_column_ + 3) {
      throw fail("a result row needs size, count, type, ..., time, algbw and busbw; this one has " +
                 std::to_string(words.size()) + " columns");
    }
    const std::optional<double> time = number(words[time_column_]);
    const std::optional<double> busbw = number(words[time_column_ + 2]);
    if (!time || !busbw || !(*size >= 1 && *size <= kMaxRowBytes) || *size != std::floor(*size) ||
        !(*time > 0 && *time <= kMaxRowMicroseconds) || !(*busbw >= 0 && *busbw < 1e9)) {
      throw fail(
          "a result row must hold a whole size of 1 B to 1 PiB, a time above 0 and up to a "
          "day (us), and a bus bandwidth");
    }
    run_.rows.push_back({*size, *time, *busbw, number_});
  }

  static std::optional<int> small_integer(std::string_view word) {
    int value = 0;
    const auto [end, error] = std::from_chars(word.data(), word.data() + word.size(), value);
    if (error != std::errc() || end != word.data() + word.size() || value < 0 || value > 1 << 24) {
      return std::nullopt;
    }
    return value;
  }

  const std::string& source_;
  NcclTestsRun& run_;
  std::optional<Collective> collective_;
  std::size_t time_column_ = 5;  // size count type redop root time algbw busbw ...
  int number_ = 0;
};

}  // namespace

NcclTestsRun parse_nccl_tests(std::string_view text, const std::string& source,
                              std::optional<Collective> fallback) {
  NcclTestsRun run;
  run.source = source;
  NcclTestsReader reader(source, run);
  int line_number = 0;
  for (std::size_t start = 0; start <= text.size();) {
    std::size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    reader.line(text.substr(start, end - start), ++line_number);
    start = end + 1;
  }
  std::optional<Collective> collective = reader.collective();
  if (!collective) collective = collective_of_file(source);
  if (!collective) collective = fallback;
  if (!collective) {
    throw ParseError(source, 0,
                     "cannot tell which collective this is: no 'Collective test starting' line "
                     "and no all_reduce/all_gather/reduce_scatter in the file name");
  }
  run.collective = *collective;
  run.ranks_declared = static_cast<int>(run.ranks.size());
  if (run.rows.empty()) throw ParseError(source, 0, "no result rows (size count type ... busbw)");
  return run;
}

namespace {

// Nodes for hosts the cluster file does not know: the cluster's nodes in switch-tree
// order, as a scheduler's tree-aware allocation would give them.
std::vector<int> stand_in_nodes(const NcclTestsRun& run, const Cluster& cluster,
                                const std::vector<std::string>& hosts,
                                const std::map<std::string, int>& ranks_per_host,
                                int gpus_per_node_hint) {
  const FabricIndex fabric(cluster);
  std::vector<int> order(cluster.nodes.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(),
            [&](int a, int b) { return fabric.tree_key(a) < fabric.tree_key(b); });
  std::vector<int> nodes;
  std::size_t next = 0;
  for (const std::string& host : hosts) {
    const int needed = std::max(ranks_per_host.at(host), gpus_per_node_hint);
    while (next < order.size() &&
           static_cast<int>(cluster.nodes[order[next]].hardware.gpus.size()) < needed) {
      ++next;
    }
    if (next == order.size()) {
      throw InvalidArgument(run.source + ": " + std::to_string(hosts.size()) +
                            " hosts need stand-ins in cluster '" + printable(cluster.name, 80) +
                            "', which has too few nodes with " + std::to_string(needed) + " GPUs");
    }
    nodes.push_back(order[next++]);
  }
  return nodes;
}

}  // namespace

std::vector<Measurement> measurements_of(const NcclTestsRun& run, const Cluster& cluster,
                                         int gpus_per_node_hint, double min_bytes,
                                         std::vector<std::string>* notes) {
  if (run.ranks.empty()) {
    throw InvalidArgument(run.source +
                          ": no '# Rank N ... on HOST device D' lines, so the placement of its "
                          "ranks is unknown (run nccl-tests without -q)");
  }
  // Hosts in order of first appearance, and the ranks on each.
  std::vector<std::string> hosts;
  std::map<std::string, int> host_index;
  std::map<std::string, int> ranks_per_host;
  for (const auto& rank : run.ranks) {
    if (host_index.try_emplace(rank.host, static_cast<int>(hosts.size())).second) {
      hosts.push_back(rank.host);
    }
    ++ranks_per_host[rank.host];
  }
  std::vector<std::string> unknown;
  for (const std::string& host : hosts) {
    if (cluster.find_node(host) < 0) unknown.push_back(printable(host, 80));
  }
  std::vector<int> node_of_host(hosts.size(), -1);
  if (unknown.empty()) {
    for (std::size_t h = 0; h < hosts.size(); ++h) node_of_host[h] = cluster.find_node(hosts[h]);
  } else {
    node_of_host = stand_in_nodes(run, cluster, hosts, ranks_per_host, gpus_per_node_hint);
    if (notes) {
      std::string names;
      for (std::size_t i = 0; i < unknown.size() && i < 4; ++i)
        names += (i ? ", " : "") + unknown[i];
      if (unknown.size() > 4) names += ", ...";
      notes->push_back(run.source + ": " + std::to_string(unknown.size()) + " of its " +
                       std::to_string(hosts.size()) + " hosts are not in the cluster (" + names +
                       "): its hosts stand on the cluster's first nodes in switch-tree order");
    }
  }
  std::vector<RankSite> sites;
  for (const auto& rank : run.ranks) {
    const int node = node_of_host[host_index[rank.host]];
    const NodeHardware& hardware = cluster.nodes[node].hardware;
    if (rank.device >= static_cast<int>(hardware.gpus.size())) {
      throw InvalidArgument(run.source + ": a rank runs on device " + std::to_string(rank.device) +
                            " of " + printable(rank.host, 80) + ", but node " +
                            cluster.nodes[node].hostname + " has " +
                            std::to_string(hardware.gpus.size()) + " GPUs");
    }
    sites.push_back({node, hardware.gpus[rank.device].index,
                     cluster.rails > 0 ? rank.device % cluster.rails : -1});
  }
  std::optional<Algorithm> algorithm;
  if (!run.algorithm.empty()) algorithm = algorithm_from_string(run.algorithm);
  std::vector<Measurement> points;
  for (const NcclTestsRun::Row& row : run.rows) {
    if (row.bytes < min_bytes) continue;
    points.push_back({run.source + ":" + std::to_string(row.line), run.collective, sites, row.bytes,
                      row.busbw_gbs, row.time_us * 1e-6, algorithm});
  }
  return points;
}

double log_error(const CostModel& model, const Measurement& point) {
  const Prediction p = predict_measurement(model, point);
  if (!p.applicable || p.seconds <= 0) return 10.0;
  if (point.seconds > 0) return std::log(point.seconds / p.seconds);
  if (point.busbw_gbs <= 0) return 10.0;
  return std::log(p.busbw_gbs / point.busbw_gbs);
}

Prediction predict_measurement(const CostModel& model, const Measurement& point) {
  if (point.algorithm) {
    return model.predict(point.collective, *point.algorithm, point.ranks, point.bytes);
  }
  return model.best(point.collective, point.ranks, point.bytes);
}

FitReport fit_parameters(const Cluster& cluster, const CostParameters& start,
                         std::span<const Measurement> points, std::span<const CostParam> free) {
  const CalibrationSet set{&cluster, {points.begin(), points.end()}};
  return fit_parameters(std::span<const CalibrationSet>(&set, 1), start, free);
}

FitReport fit_parameters(std::span<const CalibrationSet> sets, const CostParameters& start,
                         std::span<const CostParam> free) {
  const Scorer scorer(sets);
  FitReport report;
  report.parameters = start;
  const Scorer::Errors before = scorer.errors(start);
  report.rms_before = report.rms_after = before.rms;
  report.worst_before = report.worst_after = before.worst;
  if (scorer.count() == 0 || free.empty()) return report;
  const auto table = cost_param_table();
  // Each parameter moves in x = log(p + s), s a small share of its range, so that
  // parameters of every size (and those that may be 0) take steps of the same weight.
  auto shift = [&](CostParam p) {
    const CostParamInfo& info = table[static_cast<int>(p)];
    return 1e-3 * (info.max - info.min) + 1e-9;
  };
  // The weak pull toward the start: the points decide what they can; the rest stays.
  constexpr double kPull = 1e-4;
  auto loss = [&](const CostParameters& parameters) {
    double sum = scorer.errors(parameters).sum / scorer.count();
    for (CostParam p : free) {
      const double d = std::log((parameters[p] + shift(p)) / (start[p] + shift(p)));
      sum += kPull * d * d;
    }
    return sum;
  };
  double current = loss(report.parameters);
  // Moves `p` by `step` (in x) while that lowers the loss, either way; true if it moved.
  auto move_along = [&](CostParam p, double step) {
    const CostParamInfo& info = table[static_cast<int>(p)];
    bool moved = false;
    for (double direction : {1.0, -1.0}) {
      for (int tries = 0; tries < 64; ++tries) {
        CostParameters trial = report.parameters;
        const double x = std::log(trial[p] + shift(p)) + direction * step;
        trial[p] = std::clamp(std::exp(x) - shift(p), info.min, info.max);
        if (trial[p] == report.parameters[p]) break;
        const double value = loss(trial);
        if (!(value < current - 1e-12)) break;
        report.parameters = trial;
        current = value;
        moved = true;
      }
    }
    return moved;
  };
  // Coordinate descent, halving the step. Rates go first, alone: a time moved first can
  // stand in for a wrong rate over a range of sizes and hold the search in that valley.
  // Then every parameter.
  auto descend = [&](const std::vector<CostParam>& order) {
    for (double step = 1.0; step > 1e-4; step /= 2) {
      for (int sweep = 0; sweep < 8; ++sweep) {
        bool moved = false;
        for (CostParam p : order) moved = move_along(p, step) || moved;
        if (!moved) break;
      }
    }
  };
  std::vector<CostParam> rates;
  for (CostParam p : free) {
    if (table[static_cast<int>(p)].kind == CostParamKind::kRate) rates.push_back(p);
  }
  descend(rates);
  descend({free.begin(), free.end()});
  // Moves too small to matter are not fits: the parameter keeps its starting value.
  for (CostParam p : free) {
    if (std::abs(report.parameters[p] - start[p]) <= 1e-3 * (std::abs(start[p]) + shift(p))) {
      report.parameters[p] = start[p];
    } else {
      report.fitted.push_back(p);
    }
  }
  const Scorer::Errors after = scorer.errors(report.parameters);
  report.rms_after = after.rms;
  report.worst_after = after.worst;
  return report;
}

namespace {

enum class SizeClass { kSmall, kMedium, kLarge };

// What a point informs, by its size, where it runs, and the algorithm it was pinned to.
struct PointKind {
  SizeClass size = SizeClass::kMedium;
  bool one_domain = true;
  bool multi_node_domain = false;
  bool sharp = false;  ///< the cluster has in-network reduction (CollNet can run)
  int cc = 0;
  std::optional<Algorithm> algorithm;
};

void add_informed(const PointKind& k, std::set<CostParam>& chosen) {
  const bool hopper_up = k.cc >= 90;
  const CostParam ring_efficiency = k.cc >= 100 ? P::kBlackwellRingEfficiency
                                    : hopper_up ? P::kHopperRingEfficiency
                                                : P::kOtherRingEfficiency;
  const CostParam nvls_efficiency =
      k.cc >= 100 ? P::kBlackwellNvlsEfficiency : P::kHopperNvlsEfficiency;
  const bool any = !k.algorithm;
  const auto is = [&](Algorithm a) { return any || k.algorithm == a; };
  switch (k.size) {
    case SizeClass::kLarge:
      if (k.one_domain) {
        if (is(Algorithm::kRing)) chosen.insert(ring_efficiency);
        if (hopper_up && is(Algorithm::kNvls)) chosen.insert(nvls_efficiency);
      } else {
        chosen.insert(P::kNetEfficiency);
        if (hopper_up && !k.multi_node_domain && is(Algorithm::kNvlsTree)) {
          chosen.insert(P::kNvlsTreeEfficiency);
        }
        if (k.multi_node_domain) chosen.insert(P::kNetChannelsPerDomain);
        // CollNet: the switches' share of the NICs, and the two passes over NVLink.
        if (k.sharp && is(Algorithm::kCollNet)) {
          chosen.insert(P::kCollNetEfficiency);
          chosen.insert(ring_efficiency);
        }
      }
      return;
    case SizeClass::kSmall:
      if (k.one_domain) {
        chosen.insert(P::kNvlinkStepLlUs);
        chosen.insert(P::kLlMaxOneDomainGbs);
      } else {
        chosen.insert(k.algorithm == Algorithm::kRing ? P::kNetStepLlUs : P::kTreeNetStepLlUs);
        chosen.insert(P::kLlMaxNetGbs);
      }
      return;
    case SizeClass::kMedium:
      if (k.one_domain) {
        if (hopper_up && is(Algorithm::kNvls)) chosen.insert(P::kNvlsBaseUs);
        if (is(Algorithm::kRing)) chosen.insert(P::kNvlinkStepSimpleUs);
      } else {
        if (is(Algorithm::kRing)) chosen.insert(P::kNetStepSimpleUs);
        if (is(Algorithm::kTree)) chosen.insert(P::kTreeNetStepSimpleUs);
        if (hopper_up && !k.multi_node_domain && is(Algorithm::kNvlsTree)) {
          chosen.insert(P::kNvlsTreeNetStepUs);
        }
      }
      return;
  }
}

}  // namespace

std::vector<CostParam> informed_parameters(const Cluster& cluster,
                                           std::span<const Measurement> points) {
  constexpr double kSmall = 1 << 20;  // latency decides below 1 MiB
  constexpr double kLarge = 1 << 28;  // bandwidth decides above 256 MiB
  const FabricIndex fabric(cluster);
  const bool sharp = cluster.has_sharp();
  std::set<CostParam> chosen;
  for (const Measurement& point : points) {
    PointKind kind;
    kind.cc = 1000;
    kind.sharp = sharp;
    kind.algorithm = point.algorithm;
    kind.size = point.bytes >= kLarge   ? SizeClass::kLarge
                : point.bytes <= kSmall ? SizeClass::kSmall
                                        : SizeClass::kMedium;
    std::map<int, std::set<int>> nodes_of_domain;
    for (const RankSite& site : point.ranks) {
      nodes_of_domain[domain_key(fabric, site.node)].insert(site.node);
      kind.cc = std::min(kind.cc, cluster.nodes[site.node].hardware.compute_capability);
    }
    kind.one_domain = nodes_of_domain.size() == 1;
    for (const auto& [key, nodes] : nodes_of_domain) kind.multi_node_domain |= nodes.size() > 1;
    add_informed(kind, chosen);
  }
  return {chosen.begin(), chosen.end()};
}

}  // namespace haein::topology
