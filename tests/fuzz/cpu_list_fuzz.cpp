// CPU lists ("0-55,112-167"), and their formatting back, which must parse to the same.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <vector>

#include "haein/common/error.hpp"
#include "haein/topology/hostlist.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    std::vector<int> cpus = haein::topology::parse_cpu_list(text);
    std::sort(cpus.begin(), cpus.end());
    cpus.erase(std::unique(cpus.begin(), cpus.end()), cpus.end());
    std::vector<int> again =
        haein::topology::parse_cpu_list(haein::topology::format_cpu_list(cpus));
    std::sort(again.begin(), again.end());
    if (again != cpus) std::abort();
  } catch (const haein::Error&) {
  }
  return 0;
}
