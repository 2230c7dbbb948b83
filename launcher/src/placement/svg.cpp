// `haein plan --svg`: the switch tree with the job's nodes and its ring.
#include <algorithm>
#include <cmath>
#include <map>
#include <sstream>

#include "haein/launcher/plan.hpp"

namespace haein::launcher {

namespace {

constexpr int kCell = 18;  // node square plus gap
constexpr int kSquare = 14;
constexpr int kMargin = 20;
constexpr int kGroupGap = 24;  // between leaves
constexpr int kSpineY = 40;
constexpr int kLeafY = 110;
constexpr int kNodesY = 150;

std::string escape(const std::string& text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

// The short label under a node square: the trailing digits of its hostname.
std::string short_name(const std::string& host) {
  std::size_t start = host.size();
  while (start > 0 && std::isdigit(static_cast<unsigned char>(host[start - 1]))) --start;
  return start < host.size() ? host.substr(start) : host.substr(0, 4);
}

}  // namespace

std::string placement_svg(const topology::FabricIndex& fabric, const BusySet& busy,
                          const Placement& placement) {
  const topology::Cluster& cluster = fabric.cluster();
  // Columns: one group of nodes per leaf, plus one for nodes on no leaf.
  std::vector<std::vector<int>> groups;
  std::vector<std::string> group_names;
  for (int leaf = 0; leaf < fabric.leaf_count(); ++leaf) {
    groups.push_back(fabric.nodes_of_leaf(leaf));
    group_names.push_back(fabric.leaf_name(leaf));
  }
  std::vector<int> loose;
  for (int n = 0; n < fabric.node_count(); ++n) {
    if (fabric.leaf_of(n) < 0) loose.push_back(n);
  }
  if (!loose.empty()) {
    groups.push_back(loose);
    group_names.push_back("(no leaf)");
  }
  std::size_t largest = 1;
  for (const auto& g : groups) largest = std::max(largest, g.size());
  const int columns = std::max(4, static_cast<int>(std::ceil(std::sqrt(largest * 2.0))));
  const int rows = static_cast<int>((largest + columns - 1) / columns);

  std::map<int, std::pair<int, int>> centre;  // node -> (x, y)
  std::vector<int> group_x;
  int x = kMargin;
  for (const auto& g : groups) {
    group_x.push_back(x);
    for (std::size_t i = 0; i < g.size(); ++i) {
      centre[g[i]] = {x + static_cast<int>(i % columns) * kCell + kSquare / 2,
                      kNodesY + static_cast<int>(i / columns) * (kCell + 8) + kSquare / 2};
    }
    x += columns * kCell + kGroupGap;
  }
  const int width = std::max(x - kGroupGap + kMargin, 400);
  const int height = kNodesY + rows * (kCell + 8) + 70;

  std::vector<int> used_count(fabric.node_count(), 0);
  std::map<int, std::pair<int, int>> rank_range;
  for (const RankPlacement& r : placement.ranks) {
    ++used_count[r.node];
    auto [it, added] = rank_range.try_emplace(r.node, r.rank, r.rank);
    if (!added) {
      it->second.first = std::min(it->second.first, r.rank);
      it->second.second = std::max(it->second.second, r.rank);
    }
  }

  std::ostringstream svg;
  svg << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << width << "\" height=\"" << height
      << "\" viewBox=\"0 0 " << width << " " << height
      << "\" font-family=\"sans-serif\" font-size=\"10\">\n"
      << "<title>" << escape(cluster.name) << ": " << placement.world_size() << " ranks on "
      << rank_range.size() << " nodes</title>\n"
      << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";

  // Spines above, joined to their leaves.
  std::map<int, std::vector<int>> leaves_of_spine;
  for (int leaf = 0; leaf < fabric.leaf_count(); ++leaf) {
    if (fabric.spine_of_leaf(leaf) >= 0)
      leaves_of_spine[fabric.spine_of_leaf(leaf)].push_back(leaf);
  }
  const int group_width = columns * kCell - (kCell - kSquare);
  for (const auto& [spine, leaves] : leaves_of_spine) {
    const int left = group_x[leaves.front()];
    const int right = group_x[leaves.back()] + group_width;
    const int sx = (left + right) / 2;
    for (int leaf : leaves) {
      svg << "<line x1=\"" << sx << "\" y1=\"" << kSpineY + 16 << "\" x2=\""
          << group_x[leaf] + group_width / 2 << "\" y2=\"" << kLeafY << "\" stroke=\"#999\"/>\n";
    }
    svg << "<rect x=\"" << sx - 50 << "\" y=\"" << kSpineY << "\" width=\"100\" height=\"16\" "
        << "rx=\"3\" fill=\"#dde3ea\" stroke=\"#556\"/><text x=\"" << sx << "\" y=\""
        << kSpineY + 12 << "\" text-anchor=\"middle\">" << escape(fabric.spine_name(spine))
        << "</text>\n";
  }
  for (std::size_t g = 0; g < groups.size(); ++g) {
    const int gx = group_x[g];
    svg << "<rect x=\"" << gx << "\" y=\"" << kLeafY << "\" width=\"" << group_width
        << "\" height=\"16\" rx=\"3\" fill=\"#eef1f4\" stroke=\"#556\"/><text x=\""
        << gx + group_width / 2 << "\" y=\"" << kLeafY + 12 << "\" text-anchor=\"middle\">"
        << escape(group_names[g]) << "</text>\n";
    for (int n : groups[g]) {
      const auto [cx, cy] = centre[n];
      const char* fill = used_count[n] > 0 ? "#2b7bd6" : busy[n] ? "#b8b8b8" : "#ffffff";
      svg << "<rect x=\"" << cx - kSquare / 2 << "\" y=\"" << cy - kSquare / 2 << "\" width=\""
          << kSquare << "\" height=\"" << kSquare << "\" fill=\"" << fill
          << "\" stroke=\"#333\" stroke-width=\"0.6\"><title>" << escape(cluster.nodes[n].hostname);
      if (used_count[n] > 0) {
        svg << ": ranks " << rank_range[n].first << "-" << rank_range[n].second;
      } else if (busy[n]) {
        svg << ": busy";
      } else {
        svg << ": free";
      }
      svg << "</title></rect>\n<text x=\"" << cx << "\" y=\"" << cy + kSquare / 2 + 8
          << "\" text-anchor=\"middle\" font-size=\"6\">"
          << escape(short_name(cluster.nodes[n].hostname)) << "</text>\n";
    }
  }
  // The ring, node by node in rank order, back to the first.
  const std::vector<int> ring = placement.nodes();
  std::vector<int> hops;
  for (const RankPlacement& r : placement.ranks) {
    if (hops.empty() || hops.back() != r.node) hops.push_back(r.node);
  }
  if (hops.size() > 1) {
    svg << "<polyline fill=\"none\" stroke=\"#e0483e\" stroke-width=\"1.2\" "
           "stroke-opacity=\"0.8\" points=\"";
    for (int n : hops) svg << centre[n].first << "," << centre[n].second << " ";
    svg << centre[hops.front()].first << "," << centre[hops.front()].second << "\"/>\n";
  }
  const int legend_y = height - 30;
  svg << "<rect x=\"" << kMargin << "\" y=\"" << legend_y << "\" width=\"10\" height=\"10\" "
      << "fill=\"#2b7bd6\"/><text x=\"" << kMargin + 14 << "\" y=\"" << legend_y + 9
      << "\">this job (" << ring.size() << " nodes, " << placement.world_size()
      << " ranks)</text>\n<rect x=\"" << kMargin + 170 << "\" y=\"" << legend_y
      << "\" width=\"10\" height=\"10\" fill=\"#b8b8b8\"/><text x=\"" << kMargin + 184 << "\" y=\""
      << legend_y + 9 << "\">busy</text>\n<rect x=\"" << kMargin + 230 << "\" y=\"" << legend_y
      << "\" width=\"10\" height=\"10\" fill=\"white\" stroke=\"#333\"/><text x=\"" << kMargin + 244
      << "\" y=\"" << legend_y + 9 << "\">free</text>\n<line x1=\"" << kMargin + 280 << "\" y1=\""
      << legend_y + 5 << "\" x2=\"" << kMargin + 300 << "\" y2=\"" << legend_y + 5
      << "\" stroke=\"#e0483e\"/><text x=\"" << kMargin + 304 << "\" y=\"" << legend_y + 9
      << "\">ring in rank order</text>\n</svg>\n";
  return svg.str();
}

}  // namespace haein::launcher
