// Slurm's compressed counts ("8(x2),4"), as in SLURM_TASKS_PER_NODE.
#include <cstddef>
#include <cstdint>
#include <string>

#include "haein/common/error.hpp"
#include "haein/common/slurm.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    haein::parse_slurm_counts(std::string(reinterpret_cast<const char*>(data), size),
                              "SLURM_TASKS_PER_NODE");
  } catch (const haein::Error&) {
  }
  return 0;
}
