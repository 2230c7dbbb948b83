// nccl-tests output as `haein topo calibrate` reads it: rows, rank lines, tags, NCCL_ALGO;
// and the placement of its ranks on a small cluster.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "haein/common/error.hpp"
#include "haein/topology/calibration.hpp"
#include "haein/topology/presets.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const haein::topology::Cluster cluster = haein::topology::load_preset("dgx-h100");
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    const haein::topology::NcclTestsRun run =
        haein::topology::parse_nccl_tests(text, "all_reduce_perf.log");
    const auto points = haein::topology::measurements_of(run, cluster);
    const haein::topology::CostModel model(cluster);
    for (const auto& point : points) haein::topology::log_error(model, point);
  } catch (const haein::Error&) {
  }
  return 0;
}
