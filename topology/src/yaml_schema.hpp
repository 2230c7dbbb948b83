#pragma once
// Shared between the YAML reader and writer, and the presets.

#include <array>
#include <map>
#include <string>
#include <string_view>

#include "haein/topology/model.hpp"

namespace haein::topology {

inline constexpr int kClusterFormatVersion = 1;

inline constexpr std::array<std::string_view, 8> kHardwareKeys = {
    "gpu_model", "compute_capability", "nvlink", "nvlink_gbps", "numa", "gpus",
    "nics",      "placeholder_pci"};

/// Reads a file holding only 'node_types:' (the embedded built-in types).
std::map<std::string, NodeHardware> read_node_types(std::string_view text,
                                                    const std::string& source);

}  // namespace haein::topology
