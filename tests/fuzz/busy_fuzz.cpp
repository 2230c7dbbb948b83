// A busy-nodes file (--busy) against the 1,024-GPU preset.
#include <cstddef>
#include <cstdint>
#include <string>

#include "haein/common/error.hpp"
#include "haein/launcher/placement.hpp"
#include "haein/topology/presets.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const haein::topology::Cluster cluster = haein::topology::load_preset("haein");
  try {
    haein::launcher::parse_busy(cluster, std::string(reinterpret_cast<const char*>(data), size),
                                "fuzz");
  } catch (const haein::Error&) {
  }
  return 0;
}
