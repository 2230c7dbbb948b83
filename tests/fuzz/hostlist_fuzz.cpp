// Host lists as Slurm writes them ("n[01-16],gpu[1-3]"): expansion, and compression back,
// which must give the same names again.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "haein/common/error.hpp"
#include "haein/topology/hostlist.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    const std::vector<std::string> names = haein::topology::expand_hostlist(text);
    if (names.size() > 4096) return 0;  // the round trip of huge lists is slow, not wrong
    const std::string compressed = haein::topology::compress_hostlist(names);
    if (haein::topology::expand_hostlist(compressed) != names) std::abort();
  } catch (const haein::Error&) {
  }
  return 0;
}
