// The placement JSON every rank reads (HAEIN_PLACEMENT), which haein exec-rank also
// accepts from a user.
#include <cstddef>
#include <cstdint>
#include <string>

#include "haein/common/error.hpp"
#include "haein/launcher/plan.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    haein::launcher::parse_placement_json(std::string(reinterpret_cast<const char*>(data), size),
                                          "fuzz");
  } catch (const haein::Error&) {
  }
  return 0;
}
