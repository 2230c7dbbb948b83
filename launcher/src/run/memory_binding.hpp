#pragma once
// A rank's memory bound to the NUMA domain of its GPU, through hwloc: the policy is set in
// the rank's process before exec and stays with the program.

#include <string>

namespace haein::launcher::detail {

class MemoryBinder {
 public:
  /// Loads this machine's topology once; binding later costs one system call.
  MemoryBinder();
  ~MemoryBinder();
  MemoryBinder(const MemoryBinder&) = delete;
  MemoryBinder& operator=(const MemoryBinder&) = delete;

  /// False where the kernel has no NUMA memory policies (some sandboxes): bind() then
  /// does nothing and says so.
  bool supported() const { return supported_; }

  /// Binds this process's memory to NUMA node `numa` (OS index). Returns an empty string,
  /// or why it did not bind (no such node here, no support): never fatal.
  std::string bind(int numa) const;

 private:
  void* topology_ = nullptr;  // hwloc_topology_t, kept out of this header
  bool supported_ = true;
};

}  // namespace haein::launcher::detail
