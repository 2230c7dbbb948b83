#include "cpu_binding.hpp"

#include <cerrno>
#include <cstring>

#include "haein/topology/hostlist.hpp"

namespace haein::launcher::detail {

CpuBinding::CpuBinding(const std::vector<int>& cores) {
  CPU_ZERO(&set_);
  if (cores.empty()) {
    note_ = "no cores in the placement; not bound";
    return;
  }
  cpu_set_t granted;
  CPU_ZERO(&granted);
  if (sched_getaffinity(0, sizeof granted, &granted) != 0) {
    note_ = std::string("sched_getaffinity failed: ") + std::strerror(errno) + "; not bound";
    return;
  }
  for (const int cpu : cores) {
    if (cpu < 0 || cpu >= CPU_SETSIZE || !CPU_ISSET(cpu, &granted)) continue;
    cores_.push_back(cpu);
    CPU_SET(cpu, &set_);
  }
  if (cores_.empty()) {
    std::vector<int> allowed;
    for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu)
      if (CPU_ISSET(cpu, &granted)) allowed.push_back(cpu);
    note_ = "the placement's cores " + topology::format_cpu_list(cores) +
            " are not among the CPUs granted here (" + topology::format_cpu_list(allowed) +
            "); left bound to those";
  }
}

int CpuBinding::apply() const noexcept {
  if (cores_.empty()) return 0;
  return sched_setaffinity(0, sizeof set_, &set_) == 0 ? 0 : errno;
}

}  // namespace haein::launcher::detail
