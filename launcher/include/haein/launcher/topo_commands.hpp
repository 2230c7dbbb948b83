#pragma once
/// @file
/// `haein topo` subcommands, as functions of plain option structs (the CLI front end in
/// launcher/src/cli fills them). Each returns the process exit code and throws
/// haein::Error for failures that main() reports.

#include <ostream>
#include <string>

namespace haein::launcher {

struct TopoConvertOptions {
  std::string cluster;  ///< file path or preset:NAME
  std::string to;       ///< yaml, json, slurm, nccl-xml, hostfile
  std::string node;     ///< host for nccl-xml
  std::string output;   ///< file; empty for stdout
};

int topo_show(const std::string& cluster, std::ostream& out);
int topo_convert(const TopoConvertOptions& options, std::ostream& out);
/// Discovers this node; writes its cluster YAML to `output` (or `out`) and the notes
/// about what was not found to `err`.
int topo_discover(const std::string& output, std::ostream& out, std::ostream& err);
/// Prints "FILE: valid (N nodes, M GPUs)" and returns 0, or prints every problem as
/// "FILE:LINE: message" to `err` and returns 2.
int topo_validate(const std::string& cluster, std::ostream& out, std::ostream& err);

/// Writes text to a file through a temporary file and a rename, so that readers never see
/// half a file; an empty path writes to `out`.
void write_output(const std::string& text, const std::string& path, std::ostream& out);

}  // namespace haein::launcher
