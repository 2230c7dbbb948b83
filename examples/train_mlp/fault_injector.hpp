#pragma once
// The faults the tests inject (train_options.hpp's FaultPlan), on a job's first attempt
// only, so that a restarted job runs through: a rank that kills or stops itself after a
// step, and a rank whose weights drift from the others' (the replica check must see it).

#include <cstdint>

#include "replica.hpp"
#include "train_options.hpp"

namespace haein::examples {

class FaultInjector {
 public:
  /// Armed when this is the first attempt (HAEIN_RESTART_COUNT 0).
  FaultInjector(FaultPlan plan, int rank);

  /// After optimizer step `step`: changes a weight on the planned rank and step.
  void perturb(std::uint64_t step, Replica& replica) const;
  /// At the end of step `step`: the planned rank kills or stops itself.
  void kill(std::uint64_t step) const;

 private:
  FaultPlan plan_;
  int rank_;
  bool armed_;
};

}  // namespace haein::examples
