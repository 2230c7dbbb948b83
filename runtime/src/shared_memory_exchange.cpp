#include "shared_memory_exchange.hpp"

#include <fcntl.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>

#include "haein/common/error.hpp"
#include "haein/common/log.hpp"

namespace haein::runtime::detail {

struct alignas(64) SharedMemoryExchange::RankLine {
  std::atomic<std::uint64_t> arrived{0};  ///< barriers this rank has entered
  std::uint64_t token = 0;                ///< rank 0's token, written by rank 0
};

namespace {

constexpr std::size_t kNameBytes = 64;

/// What rank 0 tells the others: the segment's name (empty: no segment) and its token.
struct Announcement {
  char name[kNameBytes] = {};
  std::uint64_t token = 0;
};

std::size_t header_bytes(int ranks) {
  return sizeof(std::uint64_t) * 8 + static_cast<std::size_t>(ranks) * 64;
}

std::string errno_text(const char* call) { return std::string(call) + ": " + std::strerror(errno); }

/// True when /proc shows `pid` as a process that has not exited (zombies have).
bool running(int pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return false;
  const std::size_t paren = line.rfind(')');
  if (paren == std::string::npos || paren + 2 >= line.size()) return false;
  const char state = line[paren + 2];
  return state != 'Z' && state != 'X' && state != 'x';
}

void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

/// Maps a segment of `bytes` opened as `fd`; nullptr with `why` set on failure.
void* map_segment(int fd, std::size_t bytes, std::string& why) {
  void* at = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (at == MAP_FAILED) {
    why = errno_text("mmap");
    return nullptr;
  }
  return at;
}

}  // namespace

std::unique_ptr<SharedMemoryExchange> SharedMemoryExchange::create(
    Communicator& comm, std::size_t slot_elements, std::chrono::milliseconds timeout) {
  const int ranks = comm.size();
  const int rank = comm.rank();
  if (ranks < 2) return nullptr;
  const auto& hosts = comm.hosts();
  if (std::any_of(hosts.begin(), hosts.end(), [&](const std::string& h) { return h != hosts[0]; }))
    return nullptr;  // the same answer on every rank: hosts() was gathered at creation

  slot_elements = (std::max<std::size_t>(slot_elements, 16) + 15) / 16 * 16;
  const std::size_t bytes =
      header_bytes(ranks) + 2 * static_cast<std::size_t>(ranks) * slot_elements * sizeof(float);
  Announcement announcement;
  void* mapping = nullptr;
  std::string why;
  if (rank == 0) {
    std::random_device random;
    announcement.token = (static_cast<std::uint64_t>(random()) << 32) ^ random() ^ 1;
    std::snprintf(announcement.name, kNameBytes, "/haein-buckets-%d-%016llx",
                  static_cast<int>(getpid()), static_cast<unsigned long long>(announcement.token));
    const int fd = shm_open(announcement.name, O_CREAT | O_EXCL | O_RDWR, 0600);
    if (fd < 0) {
      why = errno_text("shm_open");
    } else {
      // posix_fallocate reserves the pages now: a full /dev/shm is this error, not a
      // SIGBUS at the first touch.
      if (ftruncate(fd, static_cast<off_t>(bytes)) != 0)
        why = errno_text("ftruncate");
      else if (const int error = posix_fallocate(fd, 0, static_cast<off_t>(bytes)); error != 0)
        why = std::string("posix_fallocate of ") + std::to_string(bytes) +
              " bytes: " + std::strerror(error);
      else
        mapping = map_segment(fd, bytes, why);
      close(fd);
      if (mapping == nullptr) shm_unlink(announcement.name);
    }
    if (mapping != nullptr) {
      auto* lines =
          reinterpret_cast<RankLine*>(static_cast<std::byte*>(mapping) + sizeof(std::uint64_t) * 8);
      for (int r = 0; r < ranks; ++r) new (&lines[r]) RankLine{};
      lines[0].token = announcement.token;
    } else {
      announcement.name[0] = '\0';
      HAEIN_LOG(kInfo, "GradBucketer: no shared-memory reduction (" << why
                                                                    << "); host pieces go "
                                                                       "through MPI");
    }
  }
  comm.broadcast(&announcement, &announcement, sizeof announcement, DataType::kU8, 0);
  if (announcement.name[0] == '\0') return nullptr;

  if (rank != 0) {
    const int fd = shm_open(announcement.name, O_RDWR, 0600);
    struct stat info {};
    if (fd < 0) {
      why = errno_text("shm_open");
    } else {
      if (fstat(fd, &info) != 0 || static_cast<std::size_t>(info.st_size) != bytes)
        why = "the segment has another size";
      else
        mapping = map_segment(fd, bytes, why);
      close(fd);
    }
  }
  auto exchange = std::unique_ptr<SharedMemoryExchange>(new SharedMemoryExchange);
  exchange->rank_ = rank;
  exchange->ranks_ = ranks;
  exchange->slot_elements_ = slot_elements;
  exchange->timeout_ = timeout.count() > 0 ? timeout : comm.options().timeout;
  exchange->mapping_ = mapping;
  exchange->mapping_bytes_ = bytes;
  for (int r = 0; r < ranks; ++r) exchange->world_ranks_.push_back(comm.world_rank(r));
  exchange->host_ = hosts[0];
  if (mapping != nullptr) {
    exchange->lines_ =
        reinterpret_cast<RankLine*>(static_cast<std::byte*>(mapping) + sizeof(std::uint64_t) * 8);
    exchange->slots_ =
        reinterpret_cast<float*>(static_cast<std::byte*>(mapping) + header_bytes(ranks));
    // Same host name but another machine (containers): the token tells.
    if (exchange->lines_[0].token != announcement.token) why = "another segment of that name";
  }
  std::int32_t ok = why.empty() ? 1 : 0;
  comm.all_reduce(&ok, &ok, 1, DataType::kI32, ReduceOp::kMin);
  if (rank == 0) shm_unlink(announcement.name);  // gone from /dev/shm once all have it
  if (!why.empty())
    HAEIN_LOG(kWarn, "GradBucketer: rank " << comm.world_rank(rank)
                                           << " cannot map the shared-memory segment (" << why
                                           << "); host pieces go through MPI");
  if (ok == 0) return nullptr;

  std::int32_t pid = static_cast<std::int32_t>(getpid());
  std::vector<std::int32_t> pids(static_cast<std::size_t>(ranks));
  comm.all_gather(&pid, pids.data(), 1, DataType::kI32);
  exchange->pids_.assign(pids.begin(), pids.end());
  // In separate pid namespaces the peers' pids mean nothing here: then only the timeout.
  exchange->check_peers_ = std::all_of(pids.begin(), pids.end(), running);
  return exchange;
}

SharedMemoryExchange::~SharedMemoryExchange() {
  if (mapping_ != nullptr) munmap(mapping_, mapping_bytes_);
}

float* SharedMemoryExchange::slot_of(int rank, int buffer) const {
  return slots_ + (static_cast<std::size_t>(buffer) * static_cast<std::size_t>(ranks_) +
                   static_cast<std::size_t>(rank)) *
                      slot_elements_;
}

float* SharedMemoryExchange::slot() { return slot_of(rank_, buffer_); }

std::size_t SharedMemoryExchange::bound(int s, std::size_t count) const {
  if (s >= ranks_) return count;
  return count * static_cast<std::size_t>(s) / static_cast<std::size_t>(ranks_) / 16 * 16;
}

void SharedMemoryExchange::barrier() {
  const std::uint64_t target = ++barriers_;
  lines_[rank_].arrived.store(target, std::memory_order_release);
  const auto start = std::chrono::steady_clock::now();
  auto next_check = start + std::chrono::milliseconds(50);
  std::uint64_t spins = 0;
  for (int r = 0; r < ranks_; ++r) {
    while (lines_[r].arrived.load(std::memory_order_acquire) < target) {
      // Spin briefly (the peer is usually a moment away), then give the core away: with
      // more ranks than cores the peer may need this one.
      if (++spins < 128) {
        cpu_relax();
        continue;
      }
      sched_yield();
      if (spins % 64 != 0) continue;
      const auto now = std::chrono::steady_clock::now();
      if (now < next_check) continue;
      next_check = now + std::chrono::milliseconds(50);
      std::vector<int> missing;
      for (int m = 0; m < ranks_; ++m)
        if (lines_[m].arrived.load(std::memory_order_acquire) < target) missing.push_back(m);
      if (missing.empty()) continue;  // they arrived meanwhile: the loop's test sees it
      std::ostringstream ranks;
      for (std::size_t i = 0; i < missing.size(); ++i)
        ranks << (i ? ", " : "") << world_ranks_[static_cast<std::size_t>(missing[i])];
      if (check_peers_) {
        for (const int m : missing)
          if (!running(pids_[static_cast<std::size_t>(m)]))
            throw Error("GradBucketer: rank " +
                        std::to_string(world_ranks_[static_cast<std::size_t>(m)]) + " (" + host_ +
                        ", pid " + std::to_string(pids_[static_cast<std::size_t>(m)]) +
                        ") exited during a shared-memory reduction");
      }
      if (now - start > timeout_) {
        std::ostringstream text;
        text << "GradBucketer: rank" << (missing.size() > 1 ? "s " : " ") << ranks.str() << " ("
             << host_ << ") did not reach shared-memory reduction #" << target << " within "
             << std::chrono::duration<double>(timeout_).count() << " s (HAEIN_TIMEOUT)";
        throw Error(text.str());
      }
    }
  }
}

void SharedMemoryExchange::wait_written(std::size_t count) {
  if (count > slot_elements_)
    throw InvalidArgument("SharedMemoryExchange: a piece of " + std::to_string(count) +
                          " elements does not fit a slot of " + std::to_string(slot_elements_));
  written_count_ = count;
  barrier();
}

void SharedMemoryExchange::finish_reduction() {
  barrier();  // every segment is reduced; the other buffer is free (see the header)
  last_count_ = written_count_;
  last_buffer_ = buffer_;
  buffer_ ^= 1;
}

void SharedMemoryExchange::sum_own(std::size_t at, std::size_t n, const float* own, float own_scale,
                                   float out_scale, float* out) {
  // Rank order for every element, so each segment has the same bits on every rank (and
  // the same as reduce() over packed slots: own_scale * x is what pack would have
  // stored). A block at a time stays in cache.
  constexpr std::size_t kBlock = 2048;
  alignas(64) float sum[kBlock];
  float* result = slot_of(rank_, buffer_) + at;
  for (std::size_t done = 0; done < n; done += kBlock) {
    const std::size_t m = std::min(kBlock, n - done);
    for (int s = 0; s < ranks_; ++s) {
      const float* in = slot_of(s, buffer_) + at + done;
      if (s == rank_) {
        const float* mine = own != nullptr ? own + done : nullptr;
        if (s == 0) {
          for (std::size_t i = 0; i < m; ++i) sum[i] = mine ? own_scale * mine[i] : 0.0f;
        } else if (mine != nullptr) {
          for (std::size_t i = 0; i < m; ++i) sum[i] += own_scale * mine[i];
        } else {
          for (std::size_t i = 0; i < m; ++i) sum[i] += 0.0f;
        }
      } else if (s == 0) {
        std::memcpy(sum, in, m * sizeof(float));
      } else {
        for (std::size_t i = 0; i < m; ++i) sum[i] += in[i];
      }
    }
    if (out_scale != 1.0f)
      for (std::size_t i = 0; i < m; ++i) sum[i] *= out_scale;
    std::memcpy(result + done, sum, m * sizeof(float));
    if (out != nullptr) std::memcpy(out + done, sum, m * sizeof(float));
  }
}

void SharedMemoryExchange::reduce(std::size_t count) {
  wait_written(count);  // every rank's slot holds its piece
  const auto [begin, end] = bounds(rank_, count);
  sum_own(begin, end - begin, slot_of(rank_, buffer_) + begin, 1.0f, 1.0f, nullptr);
  finish_reduction();
}

SharedMemoryExchange::Segment SharedMemoryExchange::segment(int owner) const {
  const std::size_t begin = bound(owner, last_count_);
  return {begin, bound(owner + 1, last_count_), slot_of(owner, last_buffer_) + begin};
}

}  // namespace haein::runtime::detail
