#include "peer_memory.hpp"

#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <random>
#include <string>

#include "haein/common/error.hpp"
#include "haein/common/log.hpp"

#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25  // Linux 6.1; older headers lack the name
#endif

namespace haein::runtime::detail {

namespace {

constexpr std::size_t kHugePage = 2 * 1024 * 1024;
/// The iovec entries one call takes (IOV_MAX is 1024 on Linux).
constexpr std::size_t kRunsPerCall = 1024;

}  // namespace

std::unique_ptr<PeerMemory> PeerMemory::create(Communicator& comm,
                                               std::shared_ptr<HostGroup> group) {
  const int ranks = comm.size();
  const int rank = comm.rank();
  std::uint64_t token = 0;
  if (rank == 0) {
    std::random_device random;
    token = (static_cast<std::uint64_t>(random()) << 32) ^ random();
  }
  comm.broadcast(&token, &token, 1, DataType::kI64, 0);
  // Each rank reads every other rank's probe word and writes it back. A read that
  // works but finds another value means the pid names another process (pid namespaces).
  volatile std::uint64_t probe = token ^ static_cast<std::uint64_t>(rank);
  const auto mine = reinterpret_cast<std::uint64_t>(&probe);
  std::vector<std::uint64_t> probes(static_cast<std::size_t>(ranks));
  comm.all_gather(&mine, probes.data(), 1, DataType::kI64);

  auto peers = std::unique_ptr<PeerMemory>(new PeerMemory);
  peers->group_ = std::move(group);
  peers->ranks_ = ranks;
  std::string why;
  for (int r = 0; r < ranks && why.empty(); ++r) {
    if (r == rank) continue;
    std::uint64_t seen = 0;
    const std::vector<Run> word{{probes[static_cast<std::size_t>(r)], sizeof seen}};
    try {
      peers->read(r, word, &seen);
      if (seen != (token ^ static_cast<std::uint64_t>(r)))
        why = "rank " + std::to_string(r) + "'s pid names another process here";
      else
        peers->write(r, word, &seen);
    } catch (const Error& error) {
      why = error.what();
    }
  }
  std::int32_t ok = why.empty() ? 1 : 0;
  comm.all_reduce(&ok, &ok, 1, DataType::kI32, ReduceOp::kMin);  // also: every probe is done
  if (!why.empty())
    HAEIN_LOG(kInfo,
              "PeerMemory: rank " << rank << " cannot reach its peers' memory (" << why << ")");
  if (ok == 0) return nullptr;
  return peers;
}

void PeerMemory::publish(Communicator& comm, const std::vector<const void*>& addresses) {
  objects_ = addresses.size();
  std::vector<std::uint64_t> mine(addresses.size());
  for (std::size_t i = 0; i < addresses.size(); ++i)
    mine[i] = reinterpret_cast<std::uint64_t>(addresses[i]);
  addresses_.assign(objects_ * static_cast<std::size_t>(ranks_), 0);
  if (objects_ > 0) comm.all_gather(mine.data(), addresses_.data(), objects_, DataType::kI64);
}

std::uint64_t PeerMemory::address(int rank, std::size_t object) const {
  return addresses_[static_cast<std::size_t>(rank) * objects_ + object];
}

void PeerMemory::read(int rank, const std::vector<Run>& runs, void* local) const {
  transfer(false, rank, runs, local);
}

void PeerMemory::write(int rank, const std::vector<Run>& runs, const void* local) const {
  transfer(true, rank, runs, const_cast<void*>(local));
}

void PeerMemory::transfer(bool into_peer, int rank, const std::vector<Run>& runs,
                          void* local) const {
  const pid_t pid = group_->pid(rank);
  auto* at = static_cast<std::byte*>(local);
  std::vector<iovec> remote;
  remote.reserve(std::min(runs.size(), kRunsPerCall));
  for (std::size_t first = 0; first < runs.size(); first += kRunsPerCall) {
    const std::size_t last = std::min(runs.size(), first + kRunsPerCall);
    remote.clear();
    std::size_t bytes = 0;
    for (std::size_t i = first; i < last; ++i) {
      remote.push_back({reinterpret_cast<void*>(runs[i].address), runs[i].bytes});
      bytes += runs[i].bytes;
    }
    // One call moves at most what the kernel's limit per call allows; a short count
    // (a fault, or a very large request) is continued from where it stopped.
    std::size_t done = 0;
    std::size_t run = 0;
    std::size_t run_offset = 0;
    while (done < bytes) {
      std::vector<iovec> rest(remote.begin() + static_cast<std::ptrdiff_t>(run), remote.end());
      rest.front().iov_base = static_cast<std::byte*>(rest.front().iov_base) + run_offset;
      rest.front().iov_len -= run_offset;
      const iovec mine{at + done, bytes - done};
      const ssize_t moved = into_peer
                                ? process_vm_writev(pid, &mine, 1, rest.data(), rest.size(), 0)
                                : process_vm_readv(pid, &mine, 1, rest.data(), rest.size(), 0);
      if (moved <= 0) {
        const int error = moved < 0 ? errno : EFAULT;
        std::string text =
            std::string(into_peer ? "process_vm_writev to" : "process_vm_readv from") + " rank " +
            std::to_string(rank) + " (pid " + std::to_string(pid) + "): " + std::strerror(error);
        if (error == ESRCH) text += " (the process has exited)";
        throw Error("PeerMemory: " + text);
      }
      done += static_cast<std::size_t>(moved);
      std::size_t left = static_cast<std::size_t>(moved);
      while (left > 0) {
        const std::size_t in_run = remote[run].iov_len - run_offset;
        if (left < in_run) {
          run_offset += left;
          left = 0;
        } else {
          left -= in_run;
          ++run;
          run_offset = 0;
        }
      }
    }
    at += bytes;
  }
}

std::size_t PeerMemory::back_with_huge_pages(const void* begin, const void* end) {
  const auto first = (reinterpret_cast<std::uintptr_t>(begin) + kHugePage - 1) / kHugePage;
  const auto last = reinterpret_cast<std::uintptr_t>(end) / kHugePage;
  if (last <= first) return 0;
  auto* at = reinterpret_cast<void*>(first * kHugePage);
  const std::size_t bytes = (last - first) * kHugePage;
  return madvise(at, bytes, MADV_COLLAPSE) == 0 ? bytes : 0;
}

}  // namespace haein::runtime::detail
