#pragma once
// Reading and writing the other ranks' gradients in place, on one Linux host, with
// cross-memory attach (process_vm_readv / process_vm_writev): one copy per byte, done by
// the kernel between the two address spaces, instead of a copy into a shared segment and
// another out of it. The kernel allows it between processes of one user unless a
// security policy (Yama ptrace_scope, seccomp in containers) forbids it; create() tries
// it on every pair of ranks and returns null on every rank when any pair is refused.
//
// Each page named in a call is looked up by the kernel, which costs more than copying a
// 4 KiB page does: back_with_huge_pages() asks the kernel to back gradient memory with
// 2 MiB pages (MADV_COLLAPSE) so that a lookup covers 512 times as much.
//
// The ranks are a HostGroup (host_group.hpp), shared with the shared-memory exchange: its
// pids are the processes read and written, its bounded barrier orders the steps.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "haein/runtime/communicator.hpp"
#include "host_group.hpp"

namespace haein::runtime::detail {

class PeerMemory {
 public:
  /// Collective over `comm`, whose ranks are `group`. Null on every rank when some rank may
  /// not read another's memory; each refused rank logs why.
  static std::unique_ptr<PeerMemory> create(Communicator& comm, std::shared_ptr<HostGroup> group);

  /// Collective: every rank's address for each of `addresses.size()` objects (the same
  /// objects, in the same order, on every rank).
  void publish(Communicator& comm, const std::vector<const void*>& addresses);
  /// Rank `rank`'s address of object `object`, as published.
  std::uint64_t address(int rank, std::size_t object) const;

  /// One run of bytes in another rank's memory.
  struct Run {
    std::uint64_t address = 0;
    std::size_t bytes = 0;
  };
  /// Copies `runs` of rank `rank`'s memory, in order, into `local`.
  void read(int rank, const std::vector<Run>& runs, void* local) const;
  /// Copies `local`, in order, into `runs` of rank `rank`'s memory.
  void write(int rank, const std::vector<Run>& runs, const void* local) const;
  /// The group's bounded barrier: every rank has reached the same step.
  void sync() { group_->barrier(); }

  /// Best effort: backs the 2 MiB pages that lie wholly inside [begin, end) of this
  /// process's memory with huge pages. Returns the bytes now on them (0 where the kernel
  /// refuses: before Linux 6.1, transparent huge pages "never", or no free huge pages).
  static std::size_t back_with_huge_pages(const void* begin, const void* end);

 private:
  PeerMemory() = default;
  void transfer(bool into_peer, int rank, const std::vector<Run>& runs, void* local) const;

  std::shared_ptr<HostGroup> group_;
  int ranks_ = 1;
  std::size_t objects_ = 0;
  std::vector<std::uint64_t> addresses_;  ///< rank-major: ranks_ x objects_
};

}  // namespace haein::runtime::detail
