#pragma once
/// @file
/// Readers and writers of the cluster model. Readers throw ParseError naming the source,
/// the line and what was expected; they check syntax and references, while
/// validate() (validate.hpp) checks the model's consistency.

#include <string>
#include <string_view>

#include "haein/topology/model.hpp"

namespace haein::topology {

/// Formats a cluster can be read from or written to.
enum class Format { kYaml, kJson, kSlurm, kNcclXml, kHostfile };

/// Parses "yaml", "json", "slurm", "nccl-xml", "hostfile"; throws InvalidArgument.
Format parse_format(std::string_view name);
std::string_view to_string(Format format);

/// Reads a cluster from "preset:NAME" or a file path. The format follows the extension
/// (.yaml/.yml, .json, .conf, .xml, otherwise hostfile) and the model is validated:
/// the first problem is thrown as ParseError.
Cluster load_cluster(const std::string& spec);
/// Like load_cluster without validation, for `haein topo validate` that lists every problem.
Cluster read_cluster(const std::string& spec);
/// Reads a cluster from text in the given format: syntax and references only, not
/// validated (validate.hpp).
Cluster parse_cluster(std::string_view text, Format format, const std::string& source);
/// Writes a cluster in the given format. kNcclXml needs the node: use write_nccl_topology.
std::string format_cluster(const Cluster& cluster, Format format);

// haein cluster YAML (docs/cluster-format.md). JSON with the same schema is read by the
// YAML reader too.
Cluster read_cluster_yaml(std::string_view text, const std::string& source = "<string>");
std::string write_cluster_yaml(const Cluster& cluster);

/// JSON for scripts: every node listed with its hardware, no host list ranges.
std::string write_cluster_json(const Cluster& cluster);

/// Slurm topology.conf: tree syntax (SwitchName= Nodes= Switches= LinkSpeed=) and block
/// syntax (BlockName= Nodes=, BlockSizes=). Nodes carry hostnames only.
Cluster read_slurm_topology(std::string_view text, const std::string& source = "<string>");
/// Tree syntax; a cluster without switches gives one switch holding every node.
std::string write_slurm_topology(const Cluster& cluster);

/// NCCL topology XML (NCCL_TOPO_FILE: system/cpu/pci/gpu/nic/net/nvlink) of one node.
NodeHardware read_nccl_topology(std::string_view text, const std::string& source = "<string>");
std::string write_nccl_topology(const Node& node);

/// mpirun/DeepSpeed hostfile: "host slots=N" per line, '#' comments.
Cluster read_hostfile(std::string_view text, const std::string& source = "<string>");
std::string write_hostfile(const Cluster& cluster);

}  // namespace haein::topology
