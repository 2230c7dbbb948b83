#pragma once
// The YAML files of topology/presets, embedded at build time (cmake/embed_presets.cmake).

#include <string_view>
#include <vector>

namespace haein::topology {

struct EmbeddedFile {
  std::string_view name;  ///< file name without extension
  std::string_view text;
};

const std::vector<EmbeddedFile>& embedded_presets();

}  // namespace haein::topology
