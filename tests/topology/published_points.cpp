#include "published_points.hpp"

#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>

#include "haein/topology/formats.hpp"

namespace haein::topology::testing {

namespace {

// Splits one CSV line; fields may be quoted ("a, b" and "" for a quote).
std::vector<std::string> csv_fields(const std::string& line) {
  std::vector<std::string> fields(1);
  bool quoted = false;
  for (std::size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
        fields.back() += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        fields.back() += c;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      fields.emplace_back();
    } else if (c != '\r') {
      fields.back() += c;
    }
  }
  return fields;
}

// The cluster a system was measured on: DGX nodes under one leaf switch (with SHARP for
// the runs that used CollNet), or GB200 trays split evenly over NVL72 racks, one leaf per 8
// racks (a DGX GB200 SuperPOD scalable unit) whose up-links have the given
// oversubscription.
std::shared_ptr<const Cluster> build_cluster(const std::string& system, int racks, int nodes,
                                             double oversubscription, bool sharp) {
  std::ostringstream yaml;
  yaml << "version: 1\nname: " << system << "\n";
  if (system == "dgx-h100" || system == "dgx-b200") {
    if (oversubscription != 1) throw std::runtime_error("one leaf: nothing is oversubscribed");
    yaml << "rails: 8\nnodes:\n  - {hostname: \"n[1-" << nodes << "]\", node_type: " << system
         << "}\nswitches:\n  - {name: leaf, level: leaf, nodes: \"n[1-" << nodes << "]\""
         << (sharp ? ", sharp: true" : "") << "}\n";
  } else if (system == "gb200-nvl72") {
    if (racks < 1 || nodes % racks != 0 || nodes / racks > 18) {
      throw std::runtime_error("gb200-nvl72: " + std::to_string(nodes) +
                               " trays do not split evenly over " + std::to_string(racks) +
                               " racks of at most 18");
    }
    const int per_rack = nodes / racks;
    yaml << "rails: 4\nnodes:\n  - {hostname: \"t[1-" << nodes
         << "]\", node_type: gb200-nvl72}\nnvlink_domains:\n";
    for (int r = 0; r < racks; ++r) {
      yaml << "  - {name: rack" << r + 1 << ", nodes: \"t[" << r * per_rack + 1 << "-"
           << (r + 1) * per_rack << "]\"}\n";
    }
    yaml << "switches:\n";
    const int leaves = (racks + 7) / 8;
    for (int l = 0; l < leaves; ++l) {
      const int first = l * 8 * per_rack + 1;
      const int last = std::min(nodes, (l + 1) * 8 * per_rack);
      yaml << "  - {name: su" << l + 1 << ", level: leaf, nodes: \"t[" << first << "-" << last
           << "]\", oversubscription: " << oversubscription << "}\n";
    }
    if (leaves > 1)
      yaml << "  - {name: spine, level: spine, switches: \"su[1-" << leaves << "]\"}\n";
  } else {
    throw std::runtime_error("unknown system '" + system + "'");
  }
  return std::make_shared<const Cluster>(parse_cluster(yaml.str(), Format::kYaml, system));
}

}  // namespace

std::vector<PublishedPoint> load_published_points(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open " + path);
  std::map<std::string, std::shared_ptr<const Cluster>> clusters;
  std::vector<PublishedPoint> points;
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (number == 1 || line.empty() || line.starts_with("#")) continue;
    const std::vector<std::string> f = csv_fields(line);
    if (f.size() != 14) {
      throw std::runtime_error(path + ":" + std::to_string(number) + ": expected 14 fields, got " +
                               std::to_string(f.size()));
    }
    PublishedPoint point;
    point.system = f[0];
    point.racks = std::stoi(f[1]);
    point.nodes = std::stoi(f[2]);
    point.gpus_per_node = std::stoi(f[3]);
    point.oversubscription = std::stod(f[4]);
    point.check = f[10] == "yes";
    point.spread = f[10] == "spread";
    point.source = f[12];
    point.note = f[13];
    point.line = number;
    const bool sharp = algorithm_from_string(f[9]) == Algorithm::kCollNet;
    const std::string key = f[0] + "/" + f[1] + "/" + f[2] + "/" + f[4] + (sharp ? "/sharp" : "");
    auto& cluster = clusters[key];
    if (!cluster) {
      cluster =
          build_cluster(point.system, point.racks, point.nodes, point.oversubscription, sharp);
    }
    point.cluster = cluster;
    Measurement& m = point.measurement;
    m.label = path.substr(path.find_last_of('/') + 1) + ":" + std::to_string(number);
    const auto collective = collective_from_string(f[5]);
    if (!collective) throw std::runtime_error(m.label + ": unknown collective " + f[5]);
    m.collective = *collective;
    m.bytes = std::stod(f[6]);
    m.busbw_gbs = std::stod(f[7]);
    m.seconds = f[8].empty() ? 0 : std::stod(f[8]) * 1e-6;
    if (f[9] != "best") {
      m.algorithm = algorithm_from_string(f[9]);
      if (!m.algorithm) throw std::runtime_error(m.label + ": unknown algorithm " + f[9]);
    }
    for (int node = 0; node < point.nodes; ++node) {
      const auto& gpus = cluster->nodes[node].hardware.gpus;
      for (int g = 0; g < point.gpus_per_node && g < static_cast<int>(gpus.size()); ++g) {
        m.ranks.push_back({node, gpus[g].index, g % std::max(cluster->rails, 1)});
      }
    }
    points.push_back(std::move(point));
  }
  return points;
}

}  // namespace haein::topology::testing
