// Parsing what a user asks for: the parallel layout and the busy file.
#include <algorithm>
#include <cctype>
#include <fstream>
#include <sstream>
#include <unordered_map>

#include "haein/common/error.hpp"
#include "haein/common/files.hpp"
#include "haein/launcher/placement.hpp"
#include "haein/topology/hostlist.hpp"

namespace haein::launcher {

Layout parse_layout(const std::string& text, int world_size) {
  Layout layout;
  bool has_dp = false;
  std::istringstream in(text);
  std::string item;
  auto bad = [&](const std::string& why) {
    return InvalidArgument("--layout '" + printable(text, 80) + "': " + why +
                           "; expected tp=T,pp=P,dp=D[,ep=E] with positive integers");
  };
  while (std::getline(in, item, ',')) {
    const auto eq = item.find('=');
    if (eq == std::string::npos) throw bad("'" + printable(item, 40) + "' has no '='");
    const std::string key = item.substr(0, eq);
    const std::string value = item.substr(eq + 1);
    if (value.empty() || value.size() > 6 ||
        !std::all_of(value.begin(), value.end(), [](unsigned char c) { return std::isdigit(c); })) {
      throw bad("'" + printable(value, 40) + "' is not a positive integer");
    }
    const int number = std::stoi(value);
    if (number <= 0) throw bad(key + " must be at least 1");
    if (key == "tp") {
      layout.tp = number;
    } else if (key == "pp") {
      layout.pp = number;
    } else if (key == "dp") {
      layout.dp = number;
      has_dp = true;
    } else if (key == "ep") {
      layout.ep = number;
    } else {
      throw bad("unknown dimension '" + printable(key, 40) + "'");
    }
  }
  // Products in 64 bits: tp=2600,pp=2501,dp=1321 wrapped around to 8 in an int.
  const long long group = static_cast<long long>(layout.tp) * layout.pp;
  if (group * (has_dp ? layout.dp : 1) > kMaxRanks)
    throw bad("more than " + std::to_string(kMaxRanks) + " ranks");
  if (!has_dp) {
    if (world_size <= 0) {
      throw InvalidArgument("--layout '" + text +
                            "': give dp=D, or the rank count (--gpus, or --gpus-per-node)");
    }
    if (world_size % group != 0) {
      throw InvalidArgument("--layout '" + text + "': " + std::to_string(world_size) +
                            " ranks do not divide into tp=" + std::to_string(layout.tp) +
                            " x pp=" + std::to_string(layout.pp) + " groups");
    }
    layout.dp = static_cast<int>(world_size / group);
  }
  if (layout.dp % layout.ep != 0) {
    throw InvalidArgument("--layout '" + text + "': ep=" + std::to_string(layout.ep) +
                          " must divide dp=" + std::to_string(layout.dp));
  }
  return layout;
}

BusySet parse_busy(const topology::Cluster& cluster, const std::string& text,
                   const std::string& source) {
  BusySet busy(cluster.nodes.size(), false);
  std::unordered_map<std::string, int> index;
  for (std::size_t i = 0; i < cluster.nodes.size(); ++i)
    index.emplace(cluster.nodes[i].hostname, i);
  std::istringstream in(text);
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (const auto hash = line.find('#'); hash != std::string::npos) line.erase(hash);
    std::istringstream words(line);
    std::string word;
    while (words >> word) {
      std::vector<std::string> hosts;
      try {
        hosts = topology::expand_hostlist(word);
      } catch (const Error& error) {
        throw ParseError(source, number, error.what());
      }
      for (const std::string& host : hosts) {
        auto found = index.find(host);
        if (found == index.end()) {
          throw ParseError(
              source, number,
              "unknown host '" + printable(host, 80) + "' (not in cluster '" + cluster.name + "')");
        }
        busy[found->second] = true;
      }
    }
  }
  return busy;
}

BusySet read_busy_file(const topology::Cluster& cluster, const std::string& path) {
  return parse_busy(cluster, read_text_file(path, "busy file"), path);
}

}  // namespace haein::launcher
