// The files a placement is handed over in: placement JSON, rankfile, Slurm hostfile,
// NCCL topology per node.
#include <cstdint>
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

json string_or_null(const std::string& text) { return text.empty() ? json() : json(text); }
json int_or_null(int value) { return value >= 0 ? json(value) : json(); }

}  // namespace

std::string placement_json(const Placement& placement) {
  json root;
  root["version"] = kPlacementVersion;
  root["cluster"] = placement.cluster;
  root["world_size"] = placement.world_size();
  if (placement.layout) {
    const Layout& l = *placement.layout;
    root["layout"] = {{"tp", l.tp}, {"pp", l.pp}, {"dp", l.dp}, {"ep", l.ep}};
  } else {
    root["layout"] = nullptr;
  }
  json ranks = json::array();
  for (const RankPlacement& r : placement.ranks) {
    json entry;
    entry["rank"] = r.rank;
    entry["host"] = r.host;
    entry["local_rank"] = r.local_rank;
    entry["local_world_size"] = r.local_world_size;
    entry["gpu"] = int_or_null(r.gpu);
    entry["nic"] = string_or_null(r.nic);
    entry["nic_port"] = r.nic.empty() ? json() : json(r.nic_port);
    entry["cores"] = r.cores;
    entry["numa"] = int_or_null(r.numa);
    entry["nvlink_domain"] = string_or_null(r.nvlink_domain);
    entry["leaf"] = string_or_null(r.leaf);
    entry["spine"] = string_or_null(r.spine);
    entry["rail"] = int_or_null(r.rail);
    if (r.tp) {
      entry["groups"] = {{"tp", *r.tp}, {"pp", *r.pp}, {"dp", *r.dp}, {"ep", *r.ep}};
    } else {
      entry["groups"] = nullptr;
    }
    ranks.push_back(std::move(entry));
  }
  root["ranks"] = std::move(ranks);
  return root.dump(1) + "\n";
}

Placement parse_placement_json(const std::string& text, const std::string& source) {
  json root;
  try {
    root = json::parse(text);
  } catch (const json::exception& error) {
    throw ParseError(source, 0, "not JSON: " + printable(error.what()));
  }
  auto fail = [&](const std::string& what) { return ParseError(source, 0, what); };
  if (!root.is_object() || !root.contains("version") || !root["version"].is_number_integer()) {
    throw fail("expected an object with \"version\": 1");
  }
  if (root["version"].get<std::int64_t>() != kPlacementVersion) {
    throw fail("placement version " + root["version"].dump() + " is not supported (expected " +
               std::to_string(kPlacementVersion) + ")");
  }
  // Integers only, in int's range: get<int>() of 1e121 or 2^40 is undefined or wraps.
  auto as_int = [&](const json& j, const std::string& what) {
    if (!j.is_number_integer()) throw fail("\"" + what + "\" must be an integer");
    const bool in_range = j.is_number_unsigned()
                              ? j.get<std::uint64_t>() <= std::numeric_limits<int>::max()
                              : j.get<std::int64_t>() >= std::numeric_limits<int>::min() &&
                                    j.get<std::int64_t>() <= std::numeric_limits<int>::max();
    if (!in_range) throw fail("\"" + what + "\" is out of range: " + j.dump());
    return static_cast<int>(j.get<std::int64_t>());
  };
  auto int_at = [&](const json& j, const char* key) { return as_int(j.at(key), key); };
  auto int_or = [&](const json& j, const char* key, int fallback) {
    return j.contains(key) && !j[key].is_null() ? as_int(j[key], key) : fallback;
  };
  Placement placement;
  try {
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
    auto opt_string = [](const json& j, const char* key) {
      return j.contains(key) && !j[key].is_null() ? j[key].get<std::string>() : std::string();
    };
    for (const json& entry : ranks) {
      RankPlacement r;
      r.rank = int_at(entry, "rank");
      if (r.rank != static_cast<int>(placement.ranks.size())) {
        throw fail("ranks must be listed in order; found rank " + std::to_string(r.rank) +
                   " at position " + std::to_string(placement.ranks.size()));
      }
      r.host = entry.at("host").get<std::string>();
      r.local_rank = int_at(entry, "local_rank");
      r.local_world_size = int_or(entry, "local_world_size", 0);
      r.gpu = int_or(entry, "gpu", -1);
      r.nic = opt_string(entry, "nic");
      r.nic_port = r.nic.empty() ? 1 : std::max(int_or(entry, "nic_port", -1), 1);
      if (entry.contains("cores") && !entry["cores"].is_null()) {
        const json& cores = entry["cores"];
        if (!cores.is_array()) throw fail("\"cores\" must be an array of CPU numbers");
        for (const json& core : cores) r.cores.push_back(as_int(core, "cores"));
      }
      r.numa = int_or(entry, "numa", -1);
      r.nvlink_domain = opt_string(entry, "nvlink_domain");
      r.leaf = opt_string(entry, "leaf");
      r.spine = opt_string(entry, "spine");
      r.rail = int_or(entry, "rail", -1);
      if (entry.contains("groups") && !entry["groups"].is_null()) {
        const json& g = entry["groups"];
        r.tp = int_at(g, "tp");
        r.pp = int_at(g, "pp");
        r.dp = int_at(g, "dp");
        r.ep = int_or(g, "ep", 0);
      }
      placement.ranks.push_back(std::move(r));
    }
  } catch (const json::exception& error) {
    throw fail("bad placement field: " + printable(error.what()));
  }
  return placement;
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
