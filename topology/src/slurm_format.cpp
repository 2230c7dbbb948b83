// Slurm topology.conf: the tree plugin's SwitchName lines and the block plugin's
// BlockName/BlockSizes lines.
#include <algorithm>
#include <cctype>
#include <functional>
#include <map>
#include <set>
#include <sstream>

#include "haein/common/error.hpp"
#include "haein/topology/formats.hpp"
#include "haein/topology/hostlist.hpp"

namespace haein::topology {

namespace {

std::string lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text;
}

struct Line {
  int number = 0;
  std::vector<std::pair<std::string, std::string>> pairs;  // key lower-cased
};

// Splits the text into logical lines of key=value pairs ('#' comments, '\' continuations).
std::vector<Line> tokenize(std::string_view text, const std::string& source) {
  std::vector<Line> lines;
  std::istringstream in{std::string(text)};
  std::string raw;
  std::string pending;
  int number = 0;
  int start_number = 0;
  while (std::getline(in, raw)) {
    ++number;
    if (const auto hash = raw.find('#'); hash != std::string::npos) raw.erase(hash);
    if (pending.empty()) start_number = number;
    const bool continued = !raw.empty() && raw.back() == '\\';
    if (continued) raw.pop_back();
    pending += raw + " ";
    if (continued) continue;
    Line line{start_number, {}};
    std::istringstream words(pending);
    std::string word;
    while (words >> word) {
      const auto equals = word.find('=');
      if (equals == std::string::npos || equals == 0) {
        throw ParseError(source, start_number,
                         "expected Key=Value, got '" + printable(word, 80) + "'");
      }
      line.pairs.emplace_back(lower(word.substr(0, equals)), word.substr(equals + 1));
    }
    if (!line.pairs.empty()) lines.push_back(std::move(line));
    pending.clear();
  }
  return lines;
}

std::vector<std::string> expand(const std::string& value, const std::string& source, int line) {
  try {
    return expand_hostlist(value);
  } catch (const InvalidArgument& error) {
    throw ParseError(source, line, error.what());
  }
}

// Reads the lines of a topology.conf one by one, in file order. What needs the whole tree
// (duplicate names, unknown children, levels) is checked after the last line.
class LineReader {
 public:
  explicit LineReader(const std::string& source) : source_(source) {}

  void read(const Line& line, Cluster& cluster) {
    if (line.pairs.front().first == "blocksizes") {
      read_block_sizes(line, cluster.block_sizes);
      block_ = true;
      return;
    }
    const bool is_block = check_syntax(line);
    Switch s = read_switch(line, is_block);
    add_listed_nodes(s, line.number, cluster);
    cluster.switches.push_back(std::move(s));
  }

 private:
  void read_block_sizes(const Line& line, std::vector<int>& sizes) const {
    if (line.pairs.size() != 1)
      throw ParseError(source_, line.number, "BlockSizes= stands on its own line");
    std::istringstream items(line.pairs.front().second);
    std::string item;
    while (std::getline(items, item, ',')) {
      try {
        std::size_t used = 0;
        const int size = std::stoi(item, &used);
        if (used != item.size() || size <= 0) throw std::invalid_argument(item);
        sizes.push_back(size);
      } catch (const std::exception&) {
        throw ParseError(source_, line.number,
                         "BlockSizes: '" + printable(item, 40) + "' is not a positive integer");
      }
    }
  }

  // Checks that the line starts a switch in the syntax of the lines before it; returns
  // whether it is a BlockName line (otherwise a SwitchName line).
  bool check_syntax(const Line& line) {
    const std::string& first_key = line.pairs.front().first;
    if (first_key != "switchname" && first_key != "blockname") {
      throw ParseError(
          source_, line.number,
          "expected SwitchName=, BlockName= or BlockSizes= at the start of the line, got '" +
              first_key + "='");
    }
    const bool is_block = first_key == "blockname";
    (is_block ? block_ : tree_) = true;
    if (tree_ && block_) {
      throw ParseError(source_, line.number,
                       "mixes the tree syntax (SwitchName=) and the block syntax (BlockName=)");
    }
    return is_block;
  }

  Switch read_switch(const Line& line, bool is_block) const {
    Switch s;
    s.name = line.pairs.front().second;
    s.where = {source_, line.number};
    if (s.name.empty()) throw ParseError(source_, line.number, "empty switch name");
    for (std::size_t i = 1; i < line.pairs.size(); ++i) {
      const auto& [key, value] = line.pairs[i];
      read_switch_key(key, value, is_block, line.number, s);
    }
    if (s.nodes.empty() && s.children.empty()) {
      throw ParseError(source_, line.number,
                       "switch '" + printable(s.name, 80) + "' has neither Nodes= nor Switches=");
    }
    return s;
  }

  void read_switch_key(const std::string& key, const std::string& value, bool is_block, int line,
                       Switch& s) const {
    if (key == "nodes") {
      s.nodes = expand(value, source_, line);
    } else if (key == "switches" && !is_block) {
      s.children = expand(value, source_, line);
    } else if (key == "level" && !is_block) {
      // scontrol show topology prints it; the level follows from the tree here.
      if (value.empty() || value.find_first_not_of("0123456789") != std::string::npos)
        throw ParseError(source_, line,
                         "Level='" + printable(value, 40) + "' is not a level number");
    } else if (key == "linkspeed" && !is_block) {
      try {
        s.link_gbps = std::stod(value);
      } catch (const std::exception&) {
        throw ParseError(source_, line, "LinkSpeed='" + printable(value, 40) + "' is not a number");
      }
    } else {
      throw ParseError(
          source_, line,
          "unknown key '" + printable(key, 40) + "=' in " +
              (is_block ? "a BlockName line; expected Nodes="
                        : "a SwitchName line; expected Nodes=, Switches=, LinkSpeed= or Level="));
    }
  }

  // A node is created by the first switch that lists it.
  void add_listed_nodes(const Switch& s, int line, Cluster& cluster) {
    listed_names_ += s.nodes.size();
    if (listed_names_ > 4 * kMaxNodes)
      throw ParseError(source_, line,
                       "the switches list more than " + std::to_string(4 * kMaxNodes) +
                           " node names in all; check the ranges");
    for (const std::string& hostname : s.nodes) {
      if (seen_nodes_.insert(hostname).second) {
        if (cluster.nodes.size() >= kMaxNodes)
          throw ParseError(source_, line,
                           "more than " + std::to_string(kMaxNodes) + " nodes; check the ranges");
        Node& node = cluster.nodes.emplace_back();
        node.hostname = hostname;
        node.where = s.where;
      }
    }
  }

  const std::string& source_;
  bool tree_ = false;   // a SwitchName line was read
  bool block_ = false;  // a BlockName or BlockSizes line was read
  std::set<std::string> seen_nodes_;
  std::size_t listed_names_ = 0;  // node names listed by all switches
};

// Walks the switch tree down from each switch, remembering the depths found. Throws on a
// name defined twice, an unknown child or a cycle.
class DepthSearch {
 public:
  DepthSearch(const std::vector<Switch>& switches, const std::string& source) : source_(source) {
    for (const Switch& s : switches) {
      if (!by_name_.emplace(s.name, &s).second) {
        throw ParseError(source_, s.where.line,
                         "switch '" + printable(s.name, 80) + "' is defined twice");
      }
    }
  }

  // 0 for a switch without child switches, else one above its highest child.
  int depth_of(const Switch& s) {
    if (auto it = depth_.find(s.name); it != depth_.end()) return it->second;
    if (!in_progress_.insert(s.name).second) {
      throw ParseError(source_, s.where.line,
                       "switch '" + printable(s.name, 80) + "' is its own ancestor");
    }
    // Fabrics are a few levels deep; a bound keeps a hostile chain off the stack.
    if (in_progress_.size() > 64) {
      throw ParseError(source_, s.where.line,
                       "the switch tree is more than 64 levels deep at switch '" + s.name + "'");
    }
    int level = 0;
    for (const std::string& child : s.children) {
      auto it = by_name_.find(child);
      if (it == by_name_.end()) {
        throw ParseError(source_, s.where.line,
                         "switch '" + printable(s.name, 80) + "' lists unknown switch '" +
                             printable(child, 80) + "'");
      }
      level = std::max(level, depth_of(*it->second) + 1);
    }
    in_progress_.erase(s.name);
    depth_[s.name] = level;
    return level;
  }

  std::map<std::string, int> depths() && { return std::move(depth_); }

 private:
  const std::string& source_;
  std::map<std::string, const Switch*> by_name_;
  std::map<std::string, int> depth_;
  std::set<std::string> in_progress_;
};

std::map<std::string, int> switch_depths(const std::vector<Switch>& switches,
                                         const std::string& source) {
  DepthSearch search(switches, source);
  for (const Switch& s : switches) search.depth_of(s);
  return std::move(search).depths();
}

// scontrol show topology lists under an upper switch every node below it: those are its
// children's, not its own. `depth` holds every switch's (switch_depths).
void drop_nodes_of_children(std::vector<Switch>& switches,
                            const std::map<std::string, int>& depth) {
  // Switches are visited lowest first, so children are done.
  std::vector<Switch*> by_level;
  for (Switch& s : switches) by_level.push_back(&s);
  std::stable_sort(by_level.begin(), by_level.end(), [&](const Switch* a, const Switch* b) {
    return depth.at(a->name) < depth.at(b->name);
  });
  std::map<std::string, std::set<std::string>> below;  // switch -> every node under it
  for (Switch* s : by_level) {
    std::set<std::string>& under = below[s->name];
    for (const std::string& child : s->children) {
      const std::set<std::string>& theirs = below[child];
      under.insert(theirs.begin(), theirs.end());
    }
    std::erase_if(s->nodes, [&](const std::string& node) { return under.count(node) != 0; });
    under.insert(s->nodes.begin(), s->nodes.end());
  }
}

}  // namespace

Cluster read_slurm_topology(std::string_view text, const std::string& source) {
  Cluster cluster;
  cluster.where = {source, 1};
  LineReader reader(source);
  for (const Line& line : tokenize(text, source)) reader.read(line, cluster);
  if (cluster.switches.empty()) {
    throw ParseError(source, 0, "no SwitchName= or BlockName= line; not a topology.conf");
  }

  // Slurm has no levels: a switch with nodes is a leaf, the others sit one above their
  // highest child. Levels above the core are folded into the core.
  const std::map<std::string, int> depth = switch_depths(cluster.switches, source);
  for (Switch& s : cluster.switches) {
    s.level =
        static_cast<SwitchLevel>(std::min(depth.at(s.name), static_cast<int>(SwitchLevel::kCore)));
  }
  drop_nodes_of_children(cluster.switches, depth);
  return cluster;
}

std::string write_slurm_topology(const Cluster& cluster) {
  std::ostringstream out;
  out << "# Slurm topology.conf (topology/tree) written by haein";
  if (!cluster.name.empty()) out << " for cluster " << cluster.name;
  out << "\n";
  if (cluster.switches.empty()) {
    std::vector<std::string> all;
    for (const Node& node : cluster.nodes) all.push_back(node.hostname);
    out << "SwitchName=" << (cluster.name.empty() ? "switch" : cluster.name)
        << " Nodes=" << compress_hostlist(all, HostlistRanges::kOne) << "\n";
    return out.str();
  }
  // Slurm's tree holds each node under one leaf: a fabric drawn per rail is written as
  // the tree of its lowest rail (the rail's leaves and the switches above them), which
  // groups nodes as every rail does.
  int written_rail = -1;
  for (const Switch& s : cluster.switches) {
    if (s.level == SwitchLevel::kLeaf && s.rail >= 0)
      written_rail = written_rail < 0 ? s.rail : std::min(written_rail, s.rail);
  }
  std::set<std::string> left_out;
  for (const Switch& s : cluster.switches) {
    if (s.rail >= 0 && s.rail != written_rail) left_out.insert(s.name);
  }
  for (int level = 0; level <= static_cast<int>(SwitchLevel::kCore); ++level) {
    for (const Switch& s : cluster.switches) {
      if (static_cast<int>(s.level) != level) continue;
      if (s.rail >= 0 && s.rail != written_rail) continue;
      out << "SwitchName=" << s.name;
      // Slurm documents one bracketed range per name.
      if (!s.nodes.empty()) out << " Nodes=" << compress_hostlist(s.nodes, HostlistRanges::kOne);
      std::vector<std::string> children;
      for (const std::string& child : s.children) {
        if (!left_out.contains(child)) children.push_back(child);
      }
      if (!children.empty())
        out << " Switches=" << compress_hostlist(children, HostlistRanges::kOne);
      if (s.link_gbps > 0) out << " LinkSpeed=" << s.link_gbps;
      out << "\n";
    }
  }
  return out.str();
}

}  // namespace haein::topology
