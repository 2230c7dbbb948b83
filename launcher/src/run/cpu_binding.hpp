#pragma once
// Binding a rank to its placement's cores, for every way a rank starts (haein run's local
// ranks, exec-rank under mpirun and srun): the cores narrowed to the CPUs the process was
// granted (its affinity mask: what Slurm, taskset or a cgroup allows). Binding narrows
// that set, never widens it.

#include <sched.h>

#include <string>
#include <vector>

namespace haein::launcher::detail {

class CpuBinding {
 public:
  /// The cores of `cores` this process may run on now.
  explicit CpuBinding(const std::vector<int>& cores);
  /// What apply() binds to; empty: nothing (none placed, or none of them granted).
  const std::vector<int>& cores() const { return cores_; }
  /// Why some or all of the cores are left out; empty when none is.
  const std::string& note() const { return note_; }
  /// Binds the calling process to cores(), leaving it alone when that is empty. Only a
  /// system call: a child may call it between fork and exec. 0, or the errno.
  int apply() const noexcept;

 private:
  std::vector<int> cores_;
  cpu_set_t set_{};
  std::string note_;
};

}  // namespace haein::launcher::detail
