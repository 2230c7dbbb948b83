// nccl-tests output read into measured points, and the cost model's parameters fitted to
// them (`haein topo calibrate`).
#include "haein/topology/calibration.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <map>
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

struct Errors {
  double rms = 0;
  double worst = 0;
};

Errors errors_of(std::span<const CalibrationSet> sets, const CostParameters& parameters) {
  Errors errors;
  std::size_t count = 0;
  for (const CalibrationSet& set : sets) {
    CostParameters with_fabric = parameters;
    with_fabric.spine_oversubscription = set.spine_oversubscription;
    const CostModel model(*set.cluster, with_fabric);
    for (const Measurement& point : set.points) {
      const double e = log_error(model, point);
      errors.rms += e * e;
      errors.worst = std::max(errors.worst, std::abs(std::exp(e) - 1));
      ++count;
    }
  }
  errors.rms = count == 0 ? 0 : std::sqrt(errors.rms / count);
  return errors;
}

}  // namespace

NcclTestsRun parse_nccl_tests(std::string_view text, const std::string& source,
                              std::optional<Collective> fallback) {
  NcclTestsRun run;
  run.source = source;
  std::optional<Collective> collective;
  std::size_t time_column = 5;  // size count type redop root time algbw busbw ...
  int line_number = 0;
  std::size_t start = 0;
  while (start <= text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view line = untagged(text.substr(start, end - start));
    start = end + 1;
    ++line_number;
    if (const auto at = line.find("NCCL_ALGO"); at != std::string_view::npos) {
      // "NCCL_ALGO=Ring" or NCCL's "NCCL_ALGO set by environment to Ring".
      std::string_view rest = line.substr(at + 9);
      if (rest.starts_with("=")) {
        rest.remove_prefix(1);
      } else if (const auto to = rest.find(" to "); to != std::string_view::npos) {
        rest.remove_prefix(to + 4);
      } else {
        rest = {};
      }
      const auto words = split_words(rest);
      if (!words.empty()) run.algorithm = std::string(words.front());
    }
    const auto words = split_words(line);
    if (words.empty()) continue;
    if (words.front().starts_with("#")) {
      if (const auto at = line.find("Collective test starting:"); at != std::string_view::npos) {
        const auto name = split_words(line.substr(at + 25));
        if (!name.empty()) collective = collective_from_string(name.front());
      }
      // "#  Rank  0 Group  0 Pid  14840 on host device  3 [0x01] NVIDIA ..."
      if (words.size() >= 9 && words[0] == "#" && words[1] == "Rank") {
        const auto on = std::find(words.begin(), words.end(), "on");
        const auto device = std::find(words.begin(), words.end(), "device");
        if (on != words.end() && on + 1 != words.end() && device != words.end() &&
            device + 1 != words.end()) {
          const std::optional<double> d = number(*(device + 1));
          const std::optional<double> rank = number(words[2]);
          if (d && rank) run.ranks.push_back({std::string(*(on + 1)), static_cast<int>(*d)});
        }
      }
      // The column header names where "time" is (older versions have no redop/root).
      if (words.size() >= 7 && words[0] == "#" && words[1] == "size") {
        const auto time = std::find(words.begin(), words.end(), "time");
        if (time != words.end()) time_column = static_cast<std::size_t>(time - words.begin()) - 1;
      }
      continue;
    }
    const std::optional<double> size = number(words.front());
    if (!size) continue;  // NCCL INFO lines, warnings, anything else
    auto fail = [&](const std::string& what) -> ParseError {
      return ParseError(source, line_number, what);
    };
    if (words.size() < time_column + 3) {
      throw fail("a result row needs size, count, type, ..., time, algbw and busbw; this one has " +
                 std::to_string(words.size()) + " columns");
    }
    const std::optional<double> time = number(words[time_column]);
    const std::optional<double> busbw = number(words[time_column + 2]);
    if (!time || !busbw || *size <= 0 || *time <= 0 || *busbw < 0 || *size != std::floor(*size)) {
      throw fail("a result row must hold a positive size, a positive time and a bus bandwidth");
    }
    run.rows.push_back({*size, *time, *busbw, line_number});
  }
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

std::vector<Measurement> measurements_of(const NcclTestsRun& run, const Cluster& cluster,
                                         int gpus_per_node_hint, double min_bytes) {
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
  bool all_known = true;
  for (const std::string& host : hosts) all_known = all_known && cluster.find_node(host) >= 0;
  std::vector<int> node_of_host(hosts.size(), -1);
  if (all_known) {
    for (std::size_t h = 0; h < hosts.size(); ++h) node_of_host[h] = cluster.find_node(hosts[h]);
  } else {
    // Hosts not in the cluster file (a log from elsewhere, or generated): take the
    // cluster's nodes in switch-tree order, as a scheduler's tree-aware allocation would.
    const FabricIndex fabric(cluster);
    std::vector<int> order(cluster.nodes.size());
    std::iota(order.begin(), order.end(), 0);
    std::sort(order.begin(), order.end(),
              [&](int a, int b) { return fabric.tree_key(a) < fabric.tree_key(b); });
    std::size_t next = 0;
    for (std::size_t h = 0; h < hosts.size(); ++h) {
      const int needed = std::max(ranks_per_host[hosts[h]], gpus_per_node_hint);
      while (next < order.size() &&
             static_cast<int>(cluster.nodes[order[next]].hardware.gpus.size()) < needed) {
        ++next;
      }
      if (next == order.size()) {
        throw InvalidArgument(run.source + ": its " + std::to_string(hosts.size()) +
                              " hosts are not in cluster '" + cluster.name +
                              "', which has too few nodes with " + std::to_string(needed) +
                              " GPUs to stand in for them");
      }
      node_of_host[h] = order[next++];
    }
  }
  std::vector<RankSite> sites;
  for (const auto& rank : run.ranks) {
    const int node = node_of_host[host_index[rank.host]];
    const NodeHardware& hardware = cluster.nodes[node].hardware;
    if (rank.device < 0 || rank.device >= static_cast<int>(hardware.gpus.size())) {
      throw InvalidArgument(run.source + ": a rank runs on device " + std::to_string(rank.device) +
                            " of " + rank.host + ", but node " + cluster.nodes[node].hostname +
                            " has " + std::to_string(hardware.gpus.size()) + " GPUs");
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
  FitReport report;
  report.parameters = start;
  const Errors before = errors_of(sets, start);
  report.rms_before = before.rms;
  report.worst_before = before.worst;
  std::size_t count = 0;
  for (const CalibrationSet& set : sets) count += set.points.size();
  if (count == 0 || free.empty()) {
    report.rms_after = before.rms;
    report.worst_after = before.worst;
    return report;
  }
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
    double sum = 0;
    for (const CalibrationSet& set : sets) {
      CostParameters with_fabric = parameters;
      with_fabric.spine_oversubscription = set.spine_oversubscription;
      const CostModel model(*set.cluster, with_fabric);
      for (const Measurement& point : set.points) {
        const double e = log_error(model, point);
        sum += e * e;
      }
    }
    sum /= count;
    for (CostParam p : free) {
      const double d = std::log((parameters[p] + shift(p)) / (start[p] + shift(p)));
      sum += kPull * d * d;
    }
    return sum;
  };
  double current = loss(report.parameters);
  for (double step = 1.0; step > 1e-4; step /= 2) {
    for (int sweep = 0; sweep < 8; ++sweep) {
      bool moved = false;
      for (CostParam p : free) {
        const CostParamInfo& info = table[static_cast<int>(p)];
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
      }
      if (!moved) break;
    }
  }
  for (CostParam p : free) {
    if (report.parameters[p] != start[p]) report.fitted.push_back(p);
  }
  const Errors after = errors_of(sets, report.parameters);
  report.rms_after = after.rms;
  report.worst_after = after.worst;
  return report;
}

std::vector<CostParam> informed_parameters(const Cluster& cluster,
                                           std::span<const Measurement> points) {
  constexpr double kSmall = 1 << 20;  // latency decides below 1 MiB
  constexpr double kLarge = 1 << 28;  // bandwidth decides above 256 MiB
  const FabricIndex fabric(cluster);
  std::set<CostParam> chosen;
  for (const Measurement& point : points) {
    std::set<int> domains;
    bool multi_node_domain = false;
    int cc = 1000;
    std::map<int, std::set<int>> nodes_of_domain;
    for (const RankSite& site : point.ranks) {
      const int domain = fabric.domain_of(site.node);
      const int key = domain >= 0 ? domain : -1 - site.node;
      domains.insert(key);
      nodes_of_domain[key].insert(site.node);
      cc = std::min(cc, cluster.nodes[site.node].hardware.compute_capability);
    }
    for (const auto& [key, nodes] : nodes_of_domain) multi_node_domain |= nodes.size() > 1;
    const bool one_domain = domains.size() == 1;
    if (point.bytes >= kLarge) {
      if (one_domain) {
        chosen.insert(cc >= 100  ? P::kBlackwellRingEfficiency
                      : cc >= 90 ? P::kHopperRingEfficiency
                                 : P::kOtherRingEfficiency);
        if (cc >= 90) {
          chosen.insert(cc >= 100 ? P::kBlackwellNvlsEfficiency : P::kHopperNvlsEfficiency);
        }
      } else {
        chosen.insert(P::kNetEfficiency);
        if (cc >= 90 && !multi_node_domain) chosen.insert(P::kNvlsTreeEfficiency);
        if (multi_node_domain) chosen.insert(P::kNetChannelsPerDomain);
      }
    } else if (point.bytes <= kSmall) {
      if (one_domain) {
        chosen.insert(P::kNvlinkStepLlUs);
        chosen.insert(P::kLlMaxOneDomainGbs);
      } else {
        chosen.insert(P::kTreeNetStepLlUs);
        chosen.insert(P::kLlMaxNetGbs);
      }
    } else {
      if (one_domain) {
        if (cc >= 90) chosen.insert(P::kNvlsBaseUs);
        chosen.insert(P::kNvlinkStepSimpleUs);
      } else {
        chosen.insert(P::kNetStepSimpleUs);
        chosen.insert(P::kTreeNetStepSimpleUs);
        if (cc >= 90 && !multi_node_domain) chosen.insert(P::kNvlsTreeNetStepUs);
      }
    }
  }
  return {chosen.begin(), chosen.end()};
}

}  // namespace haein::topology
