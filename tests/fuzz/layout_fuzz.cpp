// --layout tp=T,pp=P,dp=D[,ep=E], for a world size taken from the first two bytes.
#include <cstddef>
#include <cstdint>
#include <string>

#include "haein/common/error.hpp"
#include "haein/launcher/placement.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  const int world = data[0] | (data[1] << 8);
  try {
    haein::launcher::parse_layout(std::string(reinterpret_cast<const char*>(data) + 2, size - 2),
                                  world);
  } catch (const haein::Error&) {
  }
  return 0;
}
