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

// Where the drawing puts things: one column group of nodes per leaf switch, plus one for
// nodes on no leaf, side by side.
struct SvgLayout {
  std::vector<std::vector<int>> groups;
  std::vector<std::string> group_names;
  std::vector<int> group_x;                   // left edge of each group
  std::map<int, std::pair<int, int>> centre;  // node -> (x, y)
  int columns = 0;
  int rows = 0;
  int group_width = 0;
  int width = 0;
  int height = 0;
};

SvgLayout lay_out(const topology::FabricIndex& fabric) {
  SvgLayout layout;
  for (int leaf = 0; leaf < fabric.leaf_count(); ++leaf) {
    layout.groups.push_back(fabric.nodes_of_leaf(leaf));
    layout.group_names.push_back(fabric.leaf_name(leaf));
  }
  std::vector<int> loose;
  for (int n = 0; n < fabric.node_count(); ++n) {
    if (fabric.leaf_of(n) < 0) loose.push_back(n);
  }
  if (!loose.empty()) {
    layout.groups.push_back(loose);
    layout.group_names.push_back("(no leaf)");
  }
  std::size_t largest = 1;
  for (const auto& g : layout.groups) largest = std::max(largest, g.size());
  const int columns = std::max(4, static_cast<int>(std::ceil(std::sqrt(largest * 2.0))));
  layout.columns = columns;
  layout.rows = static_cast<int>((largest + columns - 1) / columns);

  int x = kMargin;
  for (const auto& g : layout.groups) {
    layout.group_x.push_back(x);
    for (std::size_t i = 0; i < g.size(); ++i) {
      layout.centre[g[i]] = {x + static_cast<int>(i % columns) * kCell + kSquare / 2,
                             kNodesY + static_cast<int>(i / columns) * (kCell + 8) + kSquare / 2};
    }
    x += columns * kCell + kGroupGap;
  }
  layout.group_width = columns * kCell - (kCell - kSquare);
  layout.width = std::max(x - kGroupGap + kMargin, 400);
  layout.height = kNodesY + layout.rows * (kCell + 8) + 70;
  return layout;
}

// The job's ranks per node and, on each node it uses, its lowest and highest rank.
struct JobNodes {
  std::vector<int> ranks_on;  // node -> the job's ranks there
  std::map<int, std::pair<int, int>> rank_range;
};

JobNodes job_nodes(int node_count, const Placement& placement) {
  JobNodes job;
  job.ranks_on.assign(node_count, 0);
  for (const RankPlacement& r : placement.ranks) {
    ++job.ranks_on[r.node];
    auto [it, added] = job.rank_range.try_emplace(r.node, r.rank, r.rank);
    if (!added) {
      it->second.first = std::min(it->second.first, r.rank);
      it->second.second = std::max(it->second.second, r.rank);
    }
  }
  return job;
}

// Spines above, joined to their leaves.
void draw_spines(std::ostream& svg, const topology::FabricIndex& fabric, const SvgLayout& layout) {
  std::map<int, std::vector<int>> leaves_of_spine;
  for (int leaf = 0; leaf < fabric.leaf_count(); ++leaf) {
    if (fabric.spine_of_leaf(leaf) >= 0)
      leaves_of_spine[fabric.spine_of_leaf(leaf)].push_back(leaf);
  }
  for (const auto& [spine, leaves] : leaves_of_spine) {
    const int left = layout.group_x[leaves.front()];
    const int right = layout.group_x[leaves.back()] + layout.group_width;
    const int sx = (left + right) / 2;
    for (int leaf : leaves) {
      svg << "<line x1=\"" << sx << "\" y1=\"" << kSpineY + 16 << "\" x2=\""
          << layout.group_x[leaf] + layout.group_width / 2 << "\" y2=\"" << kLeafY
          << "\" stroke=\"#999\"/>\n";
    }
    svg << "<rect x=\"" << sx - 50 << "\" y=\"" << kSpineY << "\" width=\"100\" height=\"16\" "
        << "rx=\"3\" fill=\"#dde3ea\" stroke=\"#556\"/><text x=\"" << sx << "\" y=\""
        << kSpineY + 12 << "\" text-anchor=\"middle\">" << escape(fabric.spine_name(spine))
        << "</text>\n";
  }
}

// Each leaf (or the no-leaf group) with its nodes beneath: the job's coloured, busy grey.
void draw_leaves(std::ostream& svg, const topology::Cluster& cluster, const BusySet& busy,
                 const SvgLayout& layout, const JobNodes& job) {
  for (std::size_t g = 0; g < layout.groups.size(); ++g) {
    const int gx = layout.group_x[g];
    svg << "<rect x=\"" << gx << "\" y=\"" << kLeafY << "\" width=\"" << layout.group_width
        << "\" height=\"16\" rx=\"3\" fill=\"#eef1f4\" stroke=\"#556\"/><text x=\""
        << gx + layout.group_width / 2 << "\" y=\"" << kLeafY + 12 << "\" text-anchor=\"middle\">"
        << escape(layout.group_names[g]) << "</text>\n";
    for (int n : layout.groups[g]) {
      const auto [cx, cy] = layout.centre.at(n);
      const char* fill = job.ranks_on[n] > 0 ? "#2b7bd6" : busy[n] ? "#b8b8b8" : "#ffffff";
      svg << "<rect x=\"" << cx - kSquare / 2 << "\" y=\"" << cy - kSquare / 2 << "\" width=\""
          << kSquare << "\" height=\"" << kSquare << "\" fill=\"" << fill
          << "\" stroke=\"#333\" stroke-width=\"0.6\"><title>" << escape(cluster.nodes[n].hostname);
      if (job.ranks_on[n] > 0) {
        svg << ": ranks " << job.rank_range.at(n).first << "-" << job.rank_range.at(n).second;
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
}

// The ring, node by node in rank order, back to the first.
void draw_ring(std::ostream& svg, const Placement& placement, const SvgLayout& layout) {
  std::vector<int> hops;
  for (const RankPlacement& r : placement.ranks) {
    if (hops.empty() || hops.back() != r.node) hops.push_back(r.node);
  }
  if (hops.size() > 1) {
    svg << "<polyline fill=\"none\" stroke=\"#e0483e\" stroke-width=\"1.2\" "
           "stroke-opacity=\"0.8\" points=\"";
    for (int n : hops) svg << layout.centre.at(n).first << "," << layout.centre.at(n).second << " ";
    svg << layout.centre.at(hops.front()).first << "," << layout.centre.at(hops.front()).second
        << "\"/>\n";
  }
}

void draw_legend(std::ostream& svg, const Placement& placement, const SvgLayout& layout) {
  const int legend_y = layout.height - 30;
  svg << "<rect x=\"" << kMargin << "\" y=\"" << legend_y << "\" width=\"10\" height=\"10\" "
      << "fill=\"#2b7bd6\"/><text x=\"" << kMargin + 14 << "\" y=\"" << legend_y + 9
      << "\">this job (" << placement.nodes().size() << " nodes, " << placement.world_size()
      << " ranks)</text>\n<rect x=\"" << kMargin + 170 << "\" y=\"" << legend_y
      << "\" width=\"10\" height=\"10\" fill=\"#b8b8b8\"/><text x=\"" << kMargin + 184 << "\" y=\""
      << legend_y + 9 << "\">busy</text>\n<rect x=\"" << kMargin + 230 << "\" y=\"" << legend_y
      << "\" width=\"10\" height=\"10\" fill=\"white\" stroke=\"#333\"/><text x=\"" << kMargin + 244
      << "\" y=\"" << legend_y + 9 << "\">free</text>\n<line x1=\"" << kMargin + 280 << "\" y1=\""
      << legend_y + 5 << "\" x2=\"" << kMargin + 300 << "\" y2=\"" << legend_y + 5
      << "\" stroke=\"#e0483e\"/><text x=\"" << kMargin + 304 << "\" y=\"" << legend_y + 9
      << "\">ring in rank order</text>\n</svg>\n";
}

}  // namespace

std::string placement_svg(const topology::FabricIndex& fabric, const BusySet& busy,
                          const Placement& placement) {
  const topology::Cluster& cluster = fabric.cluster();
  const SvgLayout layout = lay_out(fabric);
  const JobNodes job = job_nodes(fabric.node_count(), placement);
  std::ostringstream svg;
  svg << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << layout.width << "\" height=\""
      << layout.height << "\" viewBox=\"0 0 " << layout.width << " " << layout.height
      << "\" font-family=\"sans-serif\" font-size=\"10\">\n"
      << "<title>" << escape(cluster.name) << ": " << placement.world_size() << " ranks on "
      << job.rank_range.size() << " nodes</title>\n"
      << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  draw_spines(svg, fabric, layout);
  draw_leaves(svg, cluster, busy, layout, job);
  draw_ring(svg, placement, layout);
  draw_legend(svg, placement, layout);
  return svg.str();
}

}  // namespace haein::launcher
