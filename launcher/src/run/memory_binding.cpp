#include "memory_binding.hpp"

#include <hwloc.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace haein::launcher::detail {

MemoryBinder::MemoryBinder() {
  // Probe by setting the policy this process already has (some sandboxes read it but
  // cannot set it).
  int mode = 0;
  unsigned long mask[16] = {};
  constexpr unsigned long kMaxNodes = sizeof mask * 8;
  if (syscall(SYS_get_mempolicy, &mode, mask, kMaxNodes, nullptr, 0) == 0) {
    supported_ = !(syscall(SYS_set_mempolicy, mode, mode == 0 ? nullptr : mask, kMaxNodes) != 0 &&
                   errno == ENOSYS);
  } else {
    supported_ = errno != ENOSYS;
  }
  hwloc_topology_t topology = nullptr;
  if (hwloc_topology_init(&topology) != 0) return;
  if (hwloc_topology_load(topology) != 0) {
    hwloc_topology_destroy(topology);
    return;
  }
  topology_ = topology;
}

MemoryBinder::~MemoryBinder() {
  if (topology_ != nullptr) hwloc_topology_destroy(static_cast<hwloc_topology_t>(topology_));
}

std::string MemoryBinder::bind(int numa) const {
  if (numa < 0) return "no NUMA domain in the placement";
  if (!supported_) return "this kernel has no NUMA memory policies";
  if (topology_ == nullptr) return "hwloc could not load this machine's topology";
  const auto topology = static_cast<hwloc_topology_t>(topology_);
  bool present = false;
  for (hwloc_obj_t node = hwloc_get_next_obj_by_type(topology, HWLOC_OBJ_NUMANODE, nullptr);
       node != nullptr; node = hwloc_get_next_obj_by_type(topology, HWLOC_OBJ_NUMANODE, node)) {
    present = present || static_cast<int>(node->os_index) == numa;
  }
  if (!present) return "NUMA node " + std::to_string(numa) + " does not exist here";
  hwloc_nodeset_t nodes = hwloc_bitmap_alloc();
  hwloc_bitmap_only(nodes, static_cast<unsigned>(numa));
  // Linux memory policies are per thread; the caller is the rank's only thread (just
  // forked, or about to exec), and exec keeps the policy.
  const int result = hwloc_set_membind(topology, nodes, HWLOC_MEMBIND_BIND,
                                       HWLOC_MEMBIND_THREAD | HWLOC_MEMBIND_BYNODESET);
  const int error = errno;
  hwloc_bitmap_free(nodes);
  if (result != 0) return std::string("hwloc_set_membind failed: ") + std::strerror(error);
  return {};
}

}  // namespace haein::launcher::detail
