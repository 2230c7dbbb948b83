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

}  // namespace

Cluster read_slurm_topology(std::string_view text, const std::string& source) {
  Cluster cluster;
  cluster.where = {source, 1};
  bool tree = false;
  bool block = false;
  std::set<std::string> seen_nodes;
  std::size_t names = 0;  // node names listed by all switches
  for (const Line& line : tokenize(text, source)) {
    const auto& [first_key, first_value] = line.pairs.front();
    if (first_key == "blocksizes") {
      if (line.pairs.size() != 1)
        throw ParseError(source, line.number, "BlockSizes= stands on its own line");
      std::istringstream sizes(first_value);
      std::string item;
      while (std::getline(sizes, item, ',')) {
        try {
          std::size_t used = 0;
          const int size = std::stoi(item, &used);
          if (used != item.size() || size <= 0) throw std::invalid_argument(item);
          cluster.block_sizes.push_back(size);
        } catch (const std::exception&) {
          throw ParseError(source, line.number,
                           "BlockSizes: '" + printable(item, 40) + "' is not a positive integer");
        }
      }
      block = true;
      continue;
    }
    if (first_key != "switchname" && first_key != "blockname") {
      throw ParseError(
          source, line.number,
          "expected SwitchName=, BlockName= or BlockSizes= at the start of the line, got '" +
              first_key + "='");
    }
    const bool is_block = first_key == "blockname";
    (is_block ? block : tree) = true;
    if (tree && block) {
      throw ParseError(source, line.number,
                       "mixes the tree syntax (SwitchName=) and the block syntax (BlockName=)");
    }
    Switch s;
    s.name = first_value;
    s.where = {source, line.number};
    if (s.name.empty()) throw ParseError(source, line.number, "empty switch name");
    for (std::size_t i = 1; i < line.pairs.size(); ++i) {
      const auto& [key, value] = line.pairs[i];
      if (key == "nodes") {
        s.nodes = expand(value, source, line.number);
      } else if (key == "switches" && !is_block) {
        s.children = expand(value, source, line.number);
      } else if (key == "level" && !is_block) {
        // scontrol show topology prints it; the level follows from the tree here.
        if (value.empty() || value.find_first_not_of("0123456789") != std::string::npos)
          throw ParseError(source, line.number,
                           "Level='" + printable(value, 40) + "' is not a level number");
      } else if (key == "linkspeed" && !is_block) {
        try {
          s.link_gbps = std::stod(value);
        } catch (const std::exception&) {
          throw ParseError(source, line.number,
                           "LinkSpeed='" + printable(value, 40) + "' is not a number");
        }
      } else {
        throw ParseError(
            source, line.number,
            "unknown key '" + printable(key, 40) + "=' in " +
                (is_block ? "a BlockName line; expected Nodes="
                          : "a SwitchName line; expected Nodes=, Switches=, LinkSpeed= or Level="));
      }
    }

    if (s.nodes.empty() && s.children.empty()) {
      throw ParseError(source, line.number,
                       "switch '" + s.name + "' has neither Nodes= nor Switches=");
    }
    names += s.nodes.size();
    if (names > 4 * kMaxNodes)
      throw ParseError(source, line.number,
                       "the switches list more than " + std::to_string(4 * kMaxNodes) +
                           " node names in all; check the ranges");
    for (const std::string& hostname : s.nodes) {
      if (seen_nodes.insert(hostname).second) {
        if (cluster.nodes.size() >= kMaxNodes)
          throw ParseError(source, line.number,
                           "more than " + std::to_string(kMaxNodes) + " nodes; check the ranges");
        Node& node = cluster.nodes.emplace_back();
        node.hostname = hostname;
        node.where = s.where;
      }
    }
    cluster.switches.push_back(std::move(s));
  }
  if (cluster.switches.empty()) {
    throw ParseError(source, 0, "no SwitchName= or BlockName= line; not a topology.conf");
  }

  // Slurm has no levels: a switch with nodes is a leaf, the others sit one above their
  // highest child. Levels above the core are folded into the core.
  std::map<std::string, Switch*> by_name;
  for (Switch& s : cluster.switches) {
    if (!by_name.emplace(s.name, &s).second) {
      throw ParseError(source, s.where.line, "switch '" + s.name + "' is defined twice");
    }
  }
  std::map<std::string, int> depth;
  std::set<std::string> in_progress;
  std::function<int(Switch&)> depth_of = [&](Switch& s) -> int {
    if (auto it = depth.find(s.name); it != depth.end()) return it->second;
    if (!in_progress.insert(s.name).second) {
      throw ParseError(source, s.where.line, "switch '" + s.name + "' is its own ancestor");
    }
    // Fabrics are a few levels deep; a bound keeps a hostile chain off the stack.
    if (in_progress.size() > 64) {
      throw ParseError(source, s.where.line,
                       "the switch tree is more than 64 levels deep at switch '" + s.name + "'");
    }
    int level = 0;
    for (const std::string& child : s.children) {
      auto it = by_name.find(child);
      if (it == by_name.end()) {
        throw ParseError(source, s.where.line,
                         "switch '" + printable(s.name, 80) + "' lists unknown switch '" +
                             printable(child, 80) + "'");
      }
      level = std::max(level, depth_of(*it->second) + 1);
    }
    in_progress.erase(s.name);
    depth[s.name] = level;
    return level;
  };
  for (Switch& s : cluster.switches) {
    s.level = static_cast<SwitchLevel>(std::min(depth_of(s), static_cast<int>(SwitchLevel::kCore)));
  }
  // scontrol show topology lists under an upper switch every node below it: those are its
  // children's, not its own. (Switches are visited lowest first, so children are done.)
  std::vector<Switch*> by_level;
  for (Switch& s : cluster.switches) by_level.push_back(&s);
  std::stable_sort(by_level.begin(), by_level.end(), [&](const Switch* a, const Switch* b) {
    return depth[a->name] < depth[b->name];
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
