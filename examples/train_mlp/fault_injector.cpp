#include "fault_injector.hpp"

#include <signal.h>

#include <iostream>

#include "haein/common/settings.hpp"

namespace haein::examples {

FaultInjector::FaultInjector(FaultPlan plan, int rank)
    : plan_(std::move(plan)), rank_(rank), armed_(settings::kRestartCount.get() == 0) {}

void FaultInjector::perturb(std::uint64_t step, Replica& replica) const {
  if (!armed_ || plan_.perturb_rank != rank_ || plan_.perturb_at_step != step) return;
  replica.change([](Mlp& model) { model.tensors()[0].value[0] += 1e-3F; });
}

void FaultInjector::kill(std::uint64_t step) const {
  if (!armed_ || plan_.kill_rank != rank_ || plan_.kill_at_step != step) return;
  const bool stop = plan_.kill_signal == "STOP";
  std::cerr << "train_mlp: fault injection: rank " << rank_
            << (stop ? " stops itself (SIGSTOP)" : " kills itself") << " after step " << step
            << std::endl;
  ::raise(stop ? SIGSTOP : SIGKILL);
}

}  // namespace haein::examples
