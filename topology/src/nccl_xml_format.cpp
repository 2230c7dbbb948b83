// NCCL topology XML (the NCCL_TOPO_FILE format) for one node.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <pugixml.hpp>
#include <sstream>

#include "haein/common/error.hpp"
#include "haein/topology/formats.hpp"

namespace haein::topology {

namespace {

constexpr std::string_view kNvswitchClass = "0x068000";
constexpr std::string_view kBridgeClassPrefix = "0x0604";

// Per-link NVLink bandwidth, one direction, GB/s: NVLink 5 (Blackwell) 50, NVLink 3/4 25.
double nvlink_link_gbps(int compute_capability) { return compute_capability >= 100 ? 50.0 : 25.0; }

class LineTable {
 public:
  explicit LineTable(std::string_view text) {
    for (std::size_t i = 0; i < text.size(); ++i) {
      if (text[i] == '\n') starts_.push_back(i + 1);
    }
  }
  int line_of(std::ptrdiff_t offset) const {
    if (offset < 0) return 0;
    const auto it =
        std::upper_bound(starts_.begin(), starts_.end(), static_cast<std::size_t>(offset));
    return static_cast<int>(it - starts_.begin()) + 1;
  }

 private:
  std::vector<std::size_t> starts_;
};

// NCCL writes CPU affinity as comma-separated 32-bit hex words, most significant first.
std::vector<int> cpus_from_mask(std::string_view mask) {
  std::vector<std::string> words;
  std::string word;
  for (char c : mask) {
    if (c == ',') {
      words.push_back(word);
      word.clear();
    } else {
      word += c;
    }
  }
  words.push_back(word);
  std::vector<int> cpus;
  const int count = static_cast<int>(words.size());
  for (int w = count - 1; w >= 0; --w) {
    const std::uint32_t bits =
        static_cast<std::uint32_t>(std::stoul(words[w].empty() ? "0" : words[w], nullptr, 16));
    for (int bit = 0; bit < 32; ++bit) {
      if (bits & (1u << bit)) cpus.push_back((count - 1 - w) * 32 + bit);
    }
  }
  return cpus;
}

std::string mask_from_cpus(const std::vector<int>& cpus) {
  const int highest = cpus.empty() ? 0 : *std::max_element(cpus.begin(), cpus.end());
  std::vector<std::uint32_t> words(static_cast<std::size_t>(highest / 32 + 1), 0);
  for (int cpu : cpus) words[static_cast<std::size_t>(cpu / 32)] |= 1u << (cpu % 32);
  std::ostringstream out;
  for (std::size_t i = words.size(); i-- > 0;) {
    char buffer[9];
    std::snprintf(buffer, sizeof buffer, "%08x", words[i]);
    out << buffer << (i > 0 ? "," : "");
  }
  return out.str();
}

struct Walker {
  const LineTable& lines;
  std::string source;
  NodeHardware hardware;

  [[noreturn]] void fail(const pugi::xml_node& at, const std::string& what) const {
    throw ParseError(source, lines.line_of(at.offset_debug()), what);
  }

  int int_attribute(const pugi::xml_node& element, const char* name, bool required) const {
    const pugi::xml_attribute attribute = element.attribute(name);
    if (!attribute) {
      if (required)
        fail(element, std::string("<") + element.name() + "> needs attribute '" + name + "'");
      return 0;
    }
    try {
      std::size_t used = 0;
      const std::string value = attribute.value();
      const long result = std::stol(value, &used, 0);
      if (used == value.size()) return static_cast<int>(result);
    } catch (const std::exception&) {
    }
    fail(element,
         std::string("attribute ") + name + "='" + attribute.value() + "' is not an integer");
  }

  // Real files nest a handful of levels (cpu, a few PCIe bridges, the device); a bound
  // keeps a hostile file from running the recursion off the stack.
  static constexpr int kMaxDepth = 64;

  void walk(const pugi::xml_node& element, int numa, const std::string& bridge,
            const std::string& bus_id, int depth = 0) {
    if (depth > kMaxDepth) {
      fail(element, "elements nested more than " + std::to_string(kMaxDepth) +
                        " deep; not an NCCL topology");
    }
    for (const pugi::xml_node& child : element.children()) {
      if (child.type() != pugi::node_element) continue;
      const std::string name = child.name();
      if (name == "cpu") {
        NumaDomain domain;
        domain.id = int_attribute(child, "numaid", true);
        domain.where = {source, lines.line_of(child.offset_debug())};
        if (const auto mask = child.attribute("affinity")) {
          try {
            domain.cpus = cpus_from_mask(mask.value());
          } catch (const std::exception&) {
            fail(child, std::string("affinity='") + mask.value() + "' is not a hex CPU mask");
          }
        }
        hardware.numa.push_back(domain);
        walk(child, domain.id, "", "", depth + 1);
      } else if (name == "pci") {
        const std::string busid = child.attribute("busid").value();
        if (busid.empty()) fail(child, "<pci> needs attribute 'busid'");
        const bool is_bridge =
            std::string_view(child.attribute("class").value()).starts_with(kBridgeClassPrefix);
        walk(child, numa, is_bridge ? busid : bridge, busid, depth + 1);
      } else if (name == "gpu") {
        if (bus_id.empty()) fail(child, "<gpu> must sit inside a <pci busid=...> element");
        Gpu gpu;
        gpu.index = int_attribute(child, "dev", true);
        gpu.pci_bus_id = bus_id;
        gpu.numa = numa;
        gpu.pci_switch = bridge;
        gpu.where = {source, lines.line_of(child.offset_debug())};
        const int sm = int_attribute(child, "sm", false);
        if (sm > 0) hardware.compute_capability = sm;
        int links = 0;
        for (const pugi::xml_node& link : child.children("nvlink")) {
          links += link.attribute("count") ? int_attribute(link, "count", false) : 1;
          if (std::string_view(link.attribute("tclass").value()) == kNvswitchClass ||
              hardware.nvlink == NvlinkScope::kNone) {
            hardware.nvlink = NvlinkScope::kNode;
          }
        }
        if (links > 0) hardware.nvlink_gbps = links * nvlink_link_gbps(hardware.compute_capability);
        hardware.gpus.push_back(gpu);
      } else if (name == "nic") {
        for (const pugi::xml_node& net : child.children("net")) {
          Nic nic;
          nic.name = net.attribute("name").value();
          if (nic.name.empty()) fail(net, "<net> needs attribute 'name'");
          nic.port = net.attribute("port") ? int_attribute(net, "port", false) : 1;
          nic.speed_gbps = int_attribute(net, "speed", false) / 1000.0;  // NCCL writes Mb/s
          nic.pci_bus_id = bus_id;
          nic.numa = numa;
          nic.pci_switch = bridge;
          nic.where = {source, lines.line_of(net.offset_debug())};
          hardware.nics.push_back(nic);
        }
      } else {
        walk(child, numa, bridge, bus_id, depth + 1);
      }
    }
  }
};

}  // namespace

NodeHardware read_nccl_topology(std::string_view text, const std::string& source) {
  pugi::xml_document document;
  const pugi::xml_parse_result result = document.load_buffer(text.data(), text.size());
  const LineTable lines(text);
  if (!result) {
    throw ParseError(source, lines.line_of(result.offset),
                     std::string("malformed XML: ") + result.description());
  }
  const pugi::xml_node system = document.child("system");
  if (!system) throw ParseError(source, 1, "expected a <system> root element (NCCL topology XML)");
  Walker walker{lines, source, {}};
  walker.walk(system, 0, "", "");
  // Rails follow the order of the NICs, as NCCL numbers its network devices.
  int rail = 0;
  for (Nic& nic : walker.hardware.nics) nic.rail = rail++;
  std::sort(walker.hardware.gpus.begin(), walker.hardware.gpus.end(),
            [](const Gpu& a, const Gpu& b) { return a.index < b.index; });
  return walker.hardware;
}

std::string write_nccl_topology(const Node& node) {
  const NodeHardware& hw = node.hardware;
  if (hw.placeholder_pci) {
    // NCCL finds GPUs and NICs in the file by the bus ids CUDA and the NIC driver report;
    // stand-in ids would give it a machine that does not exist.
    throw InvalidArgument(
        "node " + node.hostname +
        (node.type.empty() ? std::string() : " (node type " + node.type + ")") +
        " carries placeholder PCI bus ids, not a real machine's; refusing to write an NCCL "
        "topology file from them. Run 'haein topo discover' on a real node and use its "
        "output as the node type (or set placeholder_pci: false once the ids are checked)");
  }
  pugi::xml_document document;
  pugi::xml_node system = document.append_child("system");
  system.append_attribute("version") = "1";
  const int sm = hw.compute_capability > 0 ? hw.compute_capability : 90;
  const int links =
      hw.nvlink_gbps > 0 ? static_cast<int>(std::lround(hw.nvlink_gbps / nvlink_link_gbps(sm))) : 0;
  int net_dev = 0;
  for (const NumaDomain& numa : hw.numa) {
    pugi::xml_node cpu = system.append_child("cpu");
    cpu.append_attribute("numaid") = numa.id;
    cpu.append_attribute("affinity") = mask_from_cpus(numa.cpus).c_str();
    // One <pci> per switch, holding the devices under it; devices without a switch sit
    // on the CPU directly.
    std::map<std::string, pugi::xml_node> switches;
    auto parent_for = [&](const std::string& pci_switch) {
      if (pci_switch.empty()) return cpu;
      auto [it, inserted] = switches.try_emplace(pci_switch);
      if (inserted) {
        it->second = cpu.append_child("pci");
        it->second.append_attribute("busid") = pci_switch.c_str();
        it->second.append_attribute("class") = "0x060400";
        it->second.append_attribute("link_speed") = "32.0 GT/s PCIe";
        it->second.append_attribute("link_width") = "16";
      }
      return it->second;
    };
    for (const Gpu& gpu : hw.gpus) {
      if (gpu.numa != numa.id) continue;
      pugi::xml_node pci = parent_for(gpu.pci_switch).append_child("pci");
      pci.append_attribute("busid") = gpu.pci_bus_id.c_str();
      pci.append_attribute("class") = "0x030200";
      pci.append_attribute("vendor") = "0x10de";
      pci.append_attribute("link_speed") = "32.0 GT/s PCIe";
      pci.append_attribute("link_width") = "16";
      pugi::xml_node element = pci.append_child("gpu");
      element.append_attribute("dev") = gpu.index;
      element.append_attribute("sm") = sm;
      element.append_attribute("rank") = gpu.index;
      element.append_attribute("gdr") = 1;
      if (hw.nvlink != NvlinkScope::kNone && links > 0) {
        pugi::xml_node link = element.append_child("nvlink");
        link.append_attribute("target") = "ffff:ff:00.0";
        link.append_attribute("count") = links;
        link.append_attribute("tclass") = std::string(kNvswitchClass).c_str();
      }
    }
    for (const Nic& nic : hw.nics) {
      if (nic.numa != numa.id) continue;
      pugi::xml_node pci = parent_for(nic.pci_switch).append_child("pci");
      pci.append_attribute("busid") = nic.pci_bus_id.c_str();
      pci.append_attribute("class") = "0x020700";
      pci.append_attribute("vendor") = "0x15b3";
      pci.append_attribute("link_speed") = "32.0 GT/s PCIe";
      pci.append_attribute("link_width") = "16";
      pugi::xml_node net = pci.append_child("nic").append_child("net");
      net.append_attribute("name") = nic.name.c_str();
      net.append_attribute("dev") = net_dev++;
      net.append_attribute("speed") = static_cast<long long>(std::llround(nic.speed_gbps * 1000));
      net.append_attribute("port") = nic.port;
      net.append_attribute("gdr") = 1;
    }
  }
  std::ostringstream out;
  document.save(out, "  ");
  return out.str();
}

}  // namespace haein::topology
