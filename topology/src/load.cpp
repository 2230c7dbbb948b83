// Chooses the reader or writer for a format and reads files and presets.
#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "haein/common/error.hpp"
#include "haein/common/files.hpp"
#include "haein/topology/formats.hpp"
#include "haein/topology/presets.hpp"
#include "haein/topology/validate.hpp"

namespace haein::topology {

namespace {

constexpr std::string_view kPresetPrefix = "preset:";

// A topology.conf by its content, whatever its name: what `scontrol show topology` prints
// saved to a file, say. Its first word is SwitchName=, BlockName= or BlockSizes=.
bool looks_like_slurm_topology(std::string_view text) {
  std::size_t at = 0;
  while (at < text.size()) {
    const std::size_t end = std::min(text.find('\n', at), text.size());
    std::string_view line = text.substr(at, end - at);
    at = end + 1;
    const std::size_t first = line.find_first_not_of(" \t\r");
    if (first == std::string_view::npos || line[first] == '#') continue;
    line.remove_prefix(first);
    std::string word(line.substr(0, line.find('=')));
    for (char& c : word) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return line.find('=') != std::string_view::npos &&
           (word == "switchname" || word == "blockname" || word == "blocksizes");
  }
  return false;
}

Format format_from_path(const std::string& path) {
  const auto ends_with = [&](std::string_view suffix) { return path.ends_with(suffix); };
  if (ends_with(".yaml") || ends_with(".yml")) return Format::kYaml;
  if (ends_with(".json")) return Format::kJson;
  if (ends_with(".conf")) return Format::kSlurm;
  if (ends_with(".xml")) return Format::kNcclXml;
  return Format::kHostfile;
}

}  // namespace

Format parse_format(std::string_view name) {
  for (Format format :
       {Format::kYaml, Format::kJson, Format::kSlurm, Format::kNcclXml, Format::kHostfile}) {
    if (name == to_string(format)) return format;
  }
  throw InvalidArgument("unknown format '" + std::string(name) +
                        "'; expected yaml, json, slurm, nccl-xml or hostfile");
}

std::string_view to_string(Format format) {
  switch (format) {
    case Format::kYaml:
      return "yaml";
    case Format::kJson:
      return "json";
    case Format::kSlurm:
      return "slurm";
    case Format::kNcclXml:
      return "nccl-xml";
    case Format::kHostfile:
      return "hostfile";
  }
  return "yaml";
}

Cluster parse_cluster(std::string_view text, Format format, const std::string& source) {
  Cluster cluster;
  switch (format) {
    case Format::kYaml:
    case Format::kJson:
      cluster = read_cluster_yaml(text, source);
      break;
    case Format::kSlurm:
      cluster = read_slurm_topology(text, source);
      break;
    case Format::kHostfile:
      cluster = read_hostfile(text, source);
      break;
    case Format::kNcclXml: {
      // An NCCL topology file describes one node; it becomes a one-node cluster.
      Node node;
      node.hostname = "node";
      node.hardware = read_nccl_topology(text, source);
      node.where = {source, 1};
      cluster.rails = static_cast<int>(node.hardware.nics.size());
      cluster.nodes.push_back(std::move(node));
      break;
    }
  }
  return cluster;
}

Cluster load_cluster(const std::string& spec) {
  Cluster cluster = read_cluster(spec);
  require_valid(cluster);
  return cluster;
}

Cluster read_cluster(const std::string& spec) {
  if (spec.starts_with(kPresetPrefix)) return load_preset(spec.substr(kPresetPrefix.size()));
  if (!std::filesystem::exists(spec)) {
    throw InvalidArgument("cannot read cluster file '" + printable(spec, 200) +
                          "': no such file (presets are written preset:NAME)");
  }
  const std::string body = read_text_file(spec, "cluster file");
  Format format = format_from_path(spec);
  if (format == Format::kHostfile && looks_like_slurm_topology(body)) format = Format::kSlurm;
  return parse_cluster(body, format, spec);
}

std::string format_cluster(const Cluster& cluster, Format format) {
  switch (format) {
    case Format::kYaml:
      return write_cluster_yaml(cluster);
    case Format::kJson:
      return write_cluster_json(cluster);
    case Format::kSlurm:
      return write_slurm_topology(cluster);
    case Format::kHostfile:
      return write_hostfile(cluster);
    case Format::kNcclXml:
      throw InvalidArgument("NCCL topology XML describes one node: give --node HOST");
  }
  return {};
}

}  // namespace haein::topology
