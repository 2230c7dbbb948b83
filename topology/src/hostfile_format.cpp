// mpirun / DeepSpeed hostfiles: "host slots=N [max_slots=M]" per line.
#include <sstream>

#include "haein/common/error.hpp"
#include "haein/topology/formats.hpp"

namespace haein::topology {

Cluster read_hostfile(std::string_view text, const std::string& source) {
  Cluster cluster;
  cluster.where = {source, 1};
  std::istringstream in{std::string(text)};
  std::string raw;
  int number = 0;
  while (std::getline(in, raw)) {
    ++number;
    if (const auto hash = raw.find('#'); hash != std::string::npos) raw.erase(hash);
    std::istringstream words(raw);
    std::string hostname;
    if (!(words >> hostname)) continue;
    if (hostname.find('=') != std::string::npos) {
      throw ParseError(source, number,
                       "expected a host name first, got '" + printable(hostname, 80) + "'");
    }
    if (cluster.nodes.size() >= kMaxNodes)
      throw ParseError(source, number, "more than " + std::to_string(kMaxNodes) + " hosts");
    Node& node = cluster.nodes.emplace_back();
    node.hostname = hostname;
    node.where = {source, number};
    std::string word;
    while (words >> word) {
      const auto equals = word.find('=');
      const std::string key = word.substr(0, equals);
      if (equals == std::string::npos ||
          (key != "slots" && key != "max_slots" && key != "max-slots")) {
        throw ParseError(source, number,
                         "expected slots=N after the host name, got '" + printable(word, 80) + "'");
      }
      const std::string value = word.substr(equals + 1);
      int slots = 0;
      try {
        std::size_t used = 0;
        slots = std::stoi(value, &used);
        if (used != value.size()) slots = 0;
      } catch (const std::exception&) {
      }
      if (slots <= 0)
        throw ParseError(
            source, number,
            printable(key, 40) + "='" + printable(value, 40) + "' is not a positive integer");
      if (slots > kMaxSlots)
        throw ParseError(source, number,
                         key + "=" + value + " is more than " + std::to_string(kMaxSlots));
      if (key == "slots") node.slots = slots;
    }
  }
  if (cluster.nodes.empty()) throw ParseError(source, 0, "the hostfile lists no hosts");
  return cluster;
}

std::string write_hostfile(const Cluster& cluster) {
  std::ostringstream out;
  for (const Node& node : cluster.nodes)
    out << node.hostname << " slots=" << node.effective_slots() << "\n";
  return out.str();
}

}  // namespace haein::topology
