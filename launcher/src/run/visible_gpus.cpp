// CUDA_VISIBLE_DEVICES read as the set of this node's GPUs haein run may place ranks on.
#include "visible_gpus.hpp"

#include <algorithm>
#include <cctype>
#include <set>
#include <sstream>

#include "haein/common/error.hpp"

namespace haein::launcher::detail {

void keep_visible_gpus(topology::Node& node, const char* listed, std::ostream& err) {
  if (listed == nullptr || node.hardware.gpus.empty()) return;
  const std::string text = listed;
  const auto fail = [&](const std::string& problem) {
    return InvalidArgument("CUDA_VISIBLE_DEVICES='" + printable(text, 80) + "': " + problem +
                           "; haein run places ranks on the GPUs listed there by index (" +
                           std::to_string(node.hardware.gpus.size()) + " on " + node.hostname +
                           "), or on CPUs when it is empty");
  };
  const auto digits = [](const std::string& entry) {
    return !entry.empty() && entry.size() <= 9 &&
           std::all_of(entry.begin(), entry.end(), [](unsigned char c) { return std::isdigit(c); });
  };
  std::set<int> listed_indices;
  std::istringstream entries(text);
  const bool empty = text.find_first_not_of(" \t") == std::string::npos;
  for (std::string entry; !empty && std::getline(entries, entry, ',');) {
    entry.erase(0, entry.find_first_not_of(" \t"));
    entry.erase(entry.find_last_not_of(" \t") + 1);
    if (entry.size() > 1 && entry.front() == '-' && digits(entry.substr(1))) break;
    if (!digits(entry))
      throw fail("'" + printable(entry, 40) + "' is not a GPU index" +
                 (entry.rfind("GPU-", 0) == 0 || entry.rfind("MIG-", 0) == 0
                      ? " (UUIDs are not supported)"
                      : ""));
    const int index = std::stoi(entry);
    if (std::none_of(node.hardware.gpus.begin(), node.hardware.gpus.end(),
                     [&](const topology::Gpu& gpu) { return gpu.index == index; }))
      throw fail("no GPU " + entry + " here");
    if (!listed_indices.insert(index).second) throw fail("GPU " + entry + " is listed twice");
  }
  std::vector<topology::Gpu> kept;
  for (const topology::Gpu& gpu : node.hardware.gpus)
    if (listed_indices.count(gpu.index) != 0) kept.push_back(gpu);
  if (kept.size() == node.hardware.gpus.size()) return;
  err << "haein run: CUDA_VISIBLE_DEVICES='" << printable(text, 80) << "': ranks use "
      << kept.size() << " of the " << node.hardware.gpus.size() << " GPUs of " << node.hostname
      << "\n";
  node.hardware.gpus = std::move(kept);
}

}  // namespace haein::launcher::detail
