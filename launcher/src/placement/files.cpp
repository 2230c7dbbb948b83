// The files a placement is handed over in: placement JSON, rankfile, Slurm hostfile,
// NCCL topology per node.
#include <algorithm>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "haein/common/error.hpp"
#include "haein/launcher/plan.hpp"
#include "haein/launcher/topo_commands.hpp"
#include "haein/topology/formats.hpp"
#include "haein/topology/hostlist.hpp"

namespace haein::launcher {

using nlohmann::json;

namespace {

constexpr int kPlacementVersion = 1;

// The placement JSON is written directly, one rank per line: building an nlohmann tree of
// 100,000 ranks and dumping it took 0.8 s and 250 MiB of haein plan's 1.4 s and 400 MiB
// (issue 23 §6); this writer takes a fraction of both and is plainer to read.
class JsonWriter {
 public:
  explicit JsonWriter(std::size_t reserve) { text_.reserve(reserve); }

  JsonWriter& raw(std::string_view text) {
    text_.append(text);
    return *this;
  }
  JsonWriter& key(std::string_view name) {
    text_ += '"';
    text_.append(name);
    text_.append("\": ");
    return *this;
  }
  JsonWriter& number(long long value) {
    char buffer[24];
    const auto end = std::to_chars(buffer, buffer + sizeof buffer, value).ptr;
    text_.append(buffer, end);
    return *this;
  }
  JsonWriter& string(const std::string& value) {
    if (std::any_of(value.begin(), value.end(), [](char c) { return c & 0x80; })) {
      // Beyond ASCII: nlohmann checks the UTF-8 (and throws on bad bytes), as before.
      text_.append(json(value).dump());
      return *this;
    }
    text_ += '"';
    for (const char c : value) {
      if (c == '"' || c == '\\') {
        text_ += '\\';
        text_ += c;
      } else if (static_cast<unsigned char>(c) < 0x20) {
        char buffer[8];
        std::snprintf(buffer, sizeof buffer, "\\u%04x", static_cast<unsigned char>(c));
        text_.append(buffer);
      } else {
        text_ += c;
      }
    }
    text_ += '"';
    return *this;
  }
  JsonWriter& string_or_null(const std::string& value) {
    return value.empty() ? raw("null") : string(value);
  }
  JsonWriter& int_or_null(int value) { return value >= 0 ? number(value) : raw("null"); }
  JsonWriter& coordinates(int tp, int pp, int dp, int ep) {
    key("tp").number(tp).raw(", ").key("pp").number(pp).raw(", ");
    return key("dp").number(dp).raw(", ").key("ep").number(ep);
  }

  std::string take() { return std::move(text_); }

 private:
  std::string text_;
};

void write_rank(JsonWriter& out, const RankPlacement& r) {
  out.raw("  {").key("rank").number(r.rank).raw(", ").key("host").string(r.host);
  out.raw(", ").key("local_rank").number(r.local_rank);
  out.raw(", ").key("local_world_size").number(r.local_world_size);
  out.raw(", ").key("gpu").int_or_null(r.gpu);
  out.raw(", ").key("nic").string_or_null(r.nic).raw(", ").key("nic_port");
  if (r.nic.empty()) {
    out.raw("null");
  } else {
    out.number(r.nic_port);
  }
  out.raw(", ").key("cores").raw("[");
  for (std::size_t i = 0; i < r.cores.size(); ++i) out.raw(i ? ", " : "").number(r.cores[i]);
  out.raw("], ").key("numa").int_or_null(r.numa);
  out.raw(", ").key("nvlink_domain").string_or_null(r.nvlink_domain);
  out.raw(", ").key("leaf").string_or_null(r.leaf);
  out.raw(", ").key("spine").string_or_null(r.spine);
  out.raw(", ").key("rail").int_or_null(r.rail).raw(", ").key("groups");
  if (r.tp) {
    out.raw("{").coordinates(*r.tp, *r.pp, *r.dp, *r.ep).raw("}");
  } else {
    out.raw("null");
  }
  out.raw("}");
}

}  // namespace

std::string placement_json(const Placement& placement) {
  std::size_t size = 256;
  for (const RankPlacement& r : placement.ranks) size += 300 + 5 * r.cores.size();
  JsonWriter out(size);
  out.raw("{\n ").key("version").number(kPlacementVersion);
  out.raw(",\n ").key("cluster").string(placement.cluster);
  out.raw(",\n ").key("world_size").number(placement.world_size());
  out.raw(",\n ").key("layout");
  if (placement.layout) {
    const Layout& l = *placement.layout;
    out.raw("{").coordinates(l.tp, l.pp, l.dp, l.ep).raw("}");
  } else {
    out.raw("null");
  }
  out.raw(",\n ").key("ranks").raw(placement.ranks.empty() ? "[" : "[\n");
  for (std::size_t i = 0; i < placement.ranks.size(); ++i) {
    write_rank(out, placement.ranks[i]);
    out.raw(i + 1 < placement.ranks.size() ? ",\n" : "\n ");
  }
  out.raw("]\n}\n");
  return out.take();
}

namespace {

/// Reads a placement JSON's fields, naming the source in every error.
class PlacementReader {
 public:
  explicit PlacementReader(const std::string& source) : source_(source) {}

  ParseError fail(const std::string& what) const { return ParseError(source_, 0, what); }

  void check_version(const json& root) const {
    if (!root.is_object() || !root.contains("version") || !root["version"].is_number_integer()) {
      throw fail("expected an object with \"version\": 1");
    }
    if (root["version"].get<std::int64_t>() != kPlacementVersion) {
      throw fail("placement version " + root["version"].dump() + " is not supported (expected " +
                 std::to_string(kPlacementVersion) + ")");
    }
  }

  Placement read(const json& root) const {
    Placement placement;
    placement.cluster = root.at("cluster").get<std::string>();
    const int world = int_at(root, "world_size");
    if (world < 0 || world > kMaxRanks) throw fail("\"world_size\" is out of range");
    if (root.contains("layout") && !root["layout"].is_null()) {
      const json& l = root["layout"];
      placement.layout =
          Layout{int_at(l, "tp"), int_at(l, "pp"), int_at(l, "dp"), int_or(l, "ep", 1)};
    }
    const json& ranks = root.at("ranks");
    if (!ranks.is_array() || static_cast<long long>(ranks.size()) != world) {
      throw fail("\"ranks\" must be an array of world_size (" + std::to_string(world) +
                 ") entries");
    }
    for (const json& entry : ranks)
      placement.ranks.push_back(read_rank(entry, static_cast<int>(placement.ranks.size())));
    return placement;
  }

 private:
  RankPlacement read_rank(const json& entry, int position) const {
    RankPlacement r;
    r.rank = int_at(entry, "rank");
    if (r.rank != position) {
      throw fail("ranks must be listed in order; found rank " + std::to_string(r.rank) +
                 " at position " + std::to_string(position));
    }
    r.host = entry.at("host").get<std::string>();
    r.local_rank = int_at(entry, "local_rank");
    r.local_world_size = int_or(entry, "local_world_size", 0);
    r.gpu = int_or(entry, "gpu", -1);
    r.nic = string_or_empty(entry, "nic");
    r.nic_port = r.nic.empty() ? 1 : std::max(int_or(entry, "nic_port", -1), 1);
    if (entry.contains("cores") && !entry["cores"].is_null()) {
      const json& cores = entry["cores"];
      if (!cores.is_array()) throw fail("\"cores\" must be an array of CPU numbers");
      for (const json& core : cores) r.cores.push_back(as_int(core, "cores"));
    }
    r.numa = int_or(entry, "numa", -1);
    r.nvlink_domain = string_or_empty(entry, "nvlink_domain");
    r.leaf = string_or_empty(entry, "leaf");
    r.spine = string_or_empty(entry, "spine");
    r.rail = int_or(entry, "rail", -1);
    if (entry.contains("groups") && !entry["groups"].is_null()) {
      const json& g = entry["groups"];
      r.tp = int_at(g, "tp");
      r.pp = int_at(g, "pp");
      r.dp = int_at(g, "dp");
      r.ep = int_or(g, "ep", 0);
    }
    return r;
  }

  // Integers only, in int's range: get<int>() of 1e121 or 2^40 is undefined or wraps.
  int as_int(const json& j, const std::string& what) const {
    if (!j.is_number_integer()) throw fail("\"" + what + "\" must be an integer");
    const bool in_range = j.is_number_unsigned()
                              ? j.get<std::uint64_t>() <= std::numeric_limits<int>::max()
                              : j.get<std::int64_t>() >= std::numeric_limits<int>::min() &&
                                    j.get<std::int64_t>() <= std::numeric_limits<int>::max();
    if (!in_range) throw fail("\"" + what + "\" is out of range: " + j.dump());
    return static_cast<int>(j.get<std::int64_t>());
  }
  int int_at(const json& j, const char* key) const { return as_int(j.at(key), key); }
  int int_or(const json& j, const char* key, int fallback) const {
    return j.contains(key) && !j[key].is_null() ? as_int(j[key], key) : fallback;
  }
  static std::string string_or_empty(const json& j, const char* key) {
    return j.contains(key) && !j[key].is_null() ? j[key].get<std::string>() : std::string();
  }

  const std::string& source_;
};

}  // namespace

Placement parse_placement_json(const std::string& text, const std::string& source) {
  json root;
  try {
    root = json::parse(text);
  } catch (const json::exception& error) {
    throw ParseError(source, 0, "not JSON: " + printable(error.what()));
  }
  const PlacementReader reader(source);
  reader.check_version(root);
  try {
    return reader.read(root);
  } catch (const json::exception& error) {
    throw reader.fail("bad placement field: " + printable(error.what()));
  }
}

std::string placement_rankfile(const Placement& placement) {
  std::ostringstream out;
  for (const RankPlacement& r : placement.ranks) {
    out << "rank " << r.rank << "=" << r.host;
    if (!r.cores.empty()) out << " slot=" << topology::format_cpu_list(r.cores);
    out << "\n";
  }
  return out.str();
}

std::string placement_slurm_hostfile(const Placement& placement) {
  std::ostringstream out;
  for (const RankPlacement& r : placement.ranks) out << r.host << "\n";
  return out.str();
}

std::vector<std::string> write_nccl_topology_dir(const topology::Cluster& cluster,
                                                 const Placement& placement,
                                                 const std::string& dir) {
  std::error_code error;
  std::filesystem::create_directories(dir, error);
  if (error) throw InvalidArgument("cannot create directory '" + dir + "': " + error.message());
  std::vector<std::string> written;
  std::ostringstream ignored;
  for (int node : placement.nodes()) {
    const std::string path = (std::filesystem::path(dir) / (cluster.nodes[node].hostname + ".xml"));
    write_output(topology::write_nccl_topology(cluster.nodes[node]), path, ignored);
    written.push_back(path);
  }
  return written;
}

}  // namespace haein::launcher
