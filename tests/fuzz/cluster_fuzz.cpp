// A cluster description in one format (HAEIN_FUZZ_FORMAT), parsed and validated as
// `haein topo validate` does.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "haein/common/error.hpp"
#include "haein/topology/formats.hpp"
#include "haein/topology/validate.hpp"

#define HAEIN_FUZZ_STRINGIFY2(x) #x
#define HAEIN_FUZZ_STRINGIFY(x) HAEIN_FUZZ_STRINGIFY2(x)

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const haein::topology::Format format = [] {
    std::string name = HAEIN_FUZZ_STRINGIFY(HAEIN_FUZZ_FORMAT);
    if (name == "nccl_xml") name = "nccl-xml";
    return haein::topology::parse_format(name);
  }();
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    const haein::topology::Cluster cluster = haein::topology::parse_cluster(text, format, "fuzz");
    haein::topology::validate(cluster);
  } catch (const haein::Error&) {
  }
  return 0;
}
