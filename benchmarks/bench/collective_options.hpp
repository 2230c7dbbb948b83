#pragma once
// The options of `haein-bench collective`: nccl-tests' flags, haein's backends and baselines.
#include <cstddef>
#include <string>

#include "collective_sweep.hpp"
#include "haein/runtime/types.hpp"
#include "options.hpp"

namespace haein::bench {

struct CollectiveOptions : OutputOptions {
  Collective op = Collective::kAllReduce;
  std::size_t min_bytes = 32 << 20;
  std::size_t max_bytes = 32 << 20;
  std::size_t factor = 2;
  std::size_t step = 0;
  int iterations = 20;
  int warmup = 5;
  int repeats = 5;
  bool check = true;
  runtime::DataType type = runtime::DataType::kF32;
  runtime::ReduceOp reduce = runtime::ReduceOp::kSum;
  int root = 0;
  bool device = false;
  bool own_stream = false;  ///< pass a stream of our own (OpOptions::stream) to every call
  std::string baseline;     ///< "", "mpi", "nccl" or "nccl-event": direct calls, same sweep

  bool direct_nccl() const { return baseline == "nccl" || baseline == "nccl-event"; }
};

/// Parses argv for a job of `ranks` ranks; InvalidArgument names what is wrong.
CollectiveOptions parse_collective_options(int argc, char** argv, int ranks);

}  // namespace haein::bench
