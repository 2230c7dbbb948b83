#pragma once
// nccl-tests output written from the cost model: what `haein topo calibrate` reads, made
// with known parameters so that a fit can be checked against them.
#include <cstdio>
#include <span>
#include <string>
#include <vector>

#include "haein/topology/cost_model.hpp"

namespace haein::topology::testing {

// The output of all_reduce_perf (or another collective) for `ranks` on `model`'s cluster,
// with its rank lines and, when `algorithm` is set, NCCL's line saying NCCL_ALGO was set.
inline std::string nccl_tests_log(const CostModel& model, std::span<const RankSite> ranks,
                                  Collective collective, const std::vector<double>& sizes,
                                  const char* algorithm = nullptr) {
  const Cluster& cluster = model.fabric().cluster();
  std::string text = "# nccl-tests version 2.17.1 nccl-headers=22703 nccl-library=22703\n";
  text += "# Collective test starting: " + std::string(haein::name_of(collective)) + "_perf\n";
  text +=
      "# nThread 1 nGpus 1 minBytes 8 maxBytes 8589934592 step: 2(factor) warmup iters: 5 "
      "iters: 20 agg iters: 1 validation: 1 graph: 0\n#\n# Using devices\n";
  char line[256];
  for (std::size_t r = 0; r < ranks.size(); ++r) {
    std::snprintf(line, sizeof line,
                  "#  Rank %2zu Group  0 Pid %6zu on %10s device %2d [0x1b] NVIDIA GPU\n", r,
                  1000 + r, cluster.nodes[ranks[r].node].hostname.c_str(), ranks[r].gpu);
    text += line;
  }
  if (algorithm)
    text += std::string("node01:1000:1000 [0] NCCL INFO NCCL_ALGO set by environment to ") +
            algorithm + "\n";
  text +=
      "#\n#                                                              out-of-place              "
      "         in-place\n";
  text +=
      "#       size         count      type   redop    root     time   algbw   busbw #wrong     "
      "time   algbw   busbw #wrong\n";
  text +=
      "#        (B)    (elements)                               (us)  (GB/s)  (GB/s)            "
      "(us)  (GB/s)  (GB/s)\n";
  const auto chosen = algorithm ? algorithm_from_string(algorithm) : std::nullopt;
  for (double bytes : sizes) {
    const Prediction p = chosen ? model.predict(collective, *chosen, ranks, bytes)
                                : model.best(collective, ranks, bytes);
    const double us = p.seconds * 1e6;
    std::snprintf(line, sizeof line,
                  "%12.0f  %12.0f     float     sum      -1  %7.6g  %6.2f  %6.2f      0  %7.6g  "
                  "%6.2f  %6.2f      0\n",
                  bytes, bytes / 4, us, p.algbw_gbs, p.busbw_gbs, us, p.algbw_gbs, p.busbw_gbs);
    text += line;
  }
  text += "# Out of bounds values : 0 OK\n# Avg bus bandwidth    : 0\n#\n";
  return text;
}

}  // namespace haein::topology::testing
