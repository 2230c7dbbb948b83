#include "haein/launcher/topo_commands.hpp"

#include <unistd.h>

#include <cstdio>
#include <fstream>

#include "haein/common/error.hpp"
#include "haein/common/files.hpp"
#include "haein/topology/discover.hpp"
#include "haein/topology/formats.hpp"
#include "haein/topology/summary.hpp"
#include "haein/topology/validate.hpp"

namespace haein::launcher {

using topology::Cluster;

void write_output(const std::string& text, const std::string& path, std::ostream& out) {
  if (path.empty() || path == "-") {
    out << text;
    return;
  }
  replace_file(path, text);
}

int topo_show(const std::string& cluster, std::ostream& out) {
  topology::print_summary(topology::load_cluster(cluster), out);
  return 0;
}

int topo_convert(const TopoConvertOptions& options, std::ostream& out) {
  const topology::Format format = topology::parse_format(options.to);
  const Cluster cluster = topology::load_cluster(options.cluster);
  std::string text;
  if (format == topology::Format::kNcclXml) {
    if (options.node.empty()) {
      if (cluster.nodes.size() != 1) {
        throw InvalidArgument(
            "--to nccl-xml describes one node: give --node HOST (the cluster has " +
            std::to_string(cluster.nodes.size()) + " nodes)");
      }
      text = topology::write_nccl_topology(cluster.nodes.front());
    } else {
      const int index = cluster.find_node(options.node);
      if (index < 0)
        throw InvalidArgument("--node " + options.node + ": no such node in " + options.cluster);
      text = topology::write_nccl_topology(cluster.nodes[static_cast<std::size_t>(index)]);
    }
  } else {
    if (!options.node.empty()) throw InvalidArgument("--node applies to --to nccl-xml only");
    text = topology::format_cluster(cluster, format);
  }
  write_output(text, options.output, out);
  return 0;
}

int topo_discover(const std::string& output, std::ostream& out, std::ostream& err) {
  std::vector<std::string> notes;
  const Cluster cluster = topology::discover_local_cluster(&notes);
  for (const std::string& note : notes) err << "haein topo discover: " << note << "\n";
  const topology::Node& node = cluster.nodes.front();
  err << "haein topo discover: " << node.hostname << ": " << node.hardware.gpus.size() << " GPUs, "
      << node.hardware.nics.size() << " NIC ports, " << node.hardware.numa.size()
      << " NUMA domains\n";
  write_output(topology::write_cluster_yaml(cluster), output, out);
  return 0;
}

int topo_validate(const std::string& cluster_spec, std::ostream& out, std::ostream& err) {
  const Cluster cluster = topology::read_cluster(cluster_spec);
  const std::vector<topology::Problem> problems = topology::validate(cluster);
  if (problems.empty()) {
    out << cluster_spec << ": valid (" << cluster.nodes.size() << " nodes, " << cluster.gpu_count()
        << " GPUs)\n";
    return 0;
  }
  for (const topology::Problem& problem : problems) err << topology::describe(problem) << "\n";
  err << cluster_spec << ": " << problems.size() << " problem" << (problems.size() > 1 ? "s" : "")
      << "\n";
  return static_cast<int>(ExitCode::kBadInput);
}

}  // namespace haein::launcher
