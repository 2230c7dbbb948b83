#include "host_group.hpp"

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

struct alignas(64) HostGroup::RankLine {
  std::atomic<std::uint64_t> arrived{0};  ///< barriers this rank has entered
  std::uint64_t token = 0;                ///< rank 0's token, written by rank 0
};

namespace {

constexpr std::size_t kNameBytes = 64;
constexpr std::size_t kLinesAt = sizeof(std::uint64_t) * 8;

/// What rank 0 tells the others: the segment's name (empty: no segment) and its token.
struct Announcement {
  char name[kNameBytes] = {};
  std::uint64_t token = 0;
};

std::size_t header_bytes(int ranks) { return kLinesAt + static_cast<std::size_t>(ranks) * 64; }

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

/// Rank 0: creates, sizes and maps a new segment named in `announcement`; nullptr with
/// `why` set (and the name cleared) on failure.
void* make_segment(Announcement& announcement, std::size_t bytes, std::string& why) {
  std::random_device random;
  announcement.token = (static_cast<std::uint64_t>(random()) << 32) ^ random() ^ 1;
  std::snprintf(announcement.name, kNameBytes, "/haein-buckets-%d-%016llx",
                static_cast<int>(getpid()), static_cast<unsigned long long>(announcement.token));
  void* mapping = nullptr;
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
  if (mapping == nullptr) announcement.name[0] = '\0';
  return mapping;
}

/// The other ranks: maps the segment rank 0 announced; nullptr with `why` set on failure.
void* open_segment(const Announcement& announcement, std::size_t bytes, std::string& why) {
  void* mapping = nullptr;
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
  return mapping;
}

}  // namespace

std::shared_ptr<HostGroup> HostGroup::create(Communicator& comm, std::size_t payload_bytes,
                                             std::chrono::milliseconds timeout,
                                             std::string activity) {
  const int ranks = comm.size();
  const int rank = comm.rank();
  const auto& hosts = comm.hosts();
  if (std::any_of(hosts.begin(), hosts.end(), [&](const std::string& h) { return h != hosts[0]; }))
    return nullptr;  // the same answer on every rank: hosts() was gathered at creation

  auto group = std::shared_ptr<HostGroup>(new HostGroup);
  group->mapping_bytes_ = header_bytes(ranks) + (payload_bytes + 63) / 64 * 64;
  Announcement announcement;
  std::string why;
  if (rank == 0) {
    group->mapping_ = make_segment(announcement, group->mapping_bytes_, why);
    if (group->mapping_ != nullptr) {
      auto* lines =
          reinterpret_cast<RankLine*>(static_cast<std::byte*>(group->mapping_) + kLinesAt);
      for (int r = 0; r < ranks; ++r) new (&lines[r]) RankLine{};
      lines[0].token = announcement.token;
    } else {
      HAEIN_LOG(kInfo, "HostGroup: no shared-memory segment (" << why << ")");
    }
  }
  comm.broadcast(&announcement, &announcement, sizeof announcement, DataType::kU8, 0);
  if (announcement.name[0] == '\0') return nullptr;
  if (rank != 0) group->mapping_ = open_segment(announcement, group->mapping_bytes_, why);
  if (group->mapping_ != nullptr) {
    auto* base = static_cast<std::byte*>(group->mapping_);
    group->lines_ = reinterpret_cast<RankLine*>(base + kLinesAt);
    group->payload_ = base + header_bytes(ranks);
    if (group->lines_[0].token != announcement.token) why = "another segment of that name";
  }
  std::int32_t ok = why.empty() ? 1 : 0;
  comm.all_reduce(&ok, &ok, 1, DataType::kI32, ReduceOp::kMin);
  if (rank == 0) shm_unlink(announcement.name);  // gone from /dev/shm once all have it
  if (!why.empty())
    HAEIN_LOG(kWarn, "HostGroup: rank " << comm.world_rank(rank)
                                        << " cannot map the shared-memory segment (" << why << ")");
  if (ok == 0) return nullptr;

  group->rank_ = rank;
  group->size_ = ranks;
  group->host_ = hosts[0];
  group->activity_ = std::move(activity);
  group->timeout_ = timeout;
  for (int r = 0; r < ranks; ++r) group->world_ranks_.push_back(comm.world_rank(r));
  std::int32_t pid = static_cast<std::int32_t>(getpid());
  std::vector<std::int32_t> pids(static_cast<std::size_t>(ranks));
  comm.all_gather(&pid, pids.data(), 1, DataType::kI32);
  group->pids_.assign(pids.begin(), pids.end());
  // In separate pid namespaces the peers' pids mean nothing here: then only the timeout.
  group->pids_visible_ = std::all_of(pids.begin(), pids.end(), running);
  return group;
}

HostGroup::~HostGroup() {
  if (mapping_ != nullptr) munmap(mapping_, mapping_bytes_);
}

void HostGroup::barrier() {
  const std::uint64_t target = ++barriers_;
  lines_[rank_].arrived.store(target, std::memory_order_release);
  const auto start = std::chrono::steady_clock::now();
  auto next_check = start + std::chrono::milliseconds(50);
  std::uint64_t spins = 0;
  for (int r = 0; r < size_; ++r) {
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
      for (int m = 0; m < size_; ++m)
        if (lines_[m].arrived.load(std::memory_order_acquire) < target) missing.push_back(m);
      if (!missing.empty()) check_missing(missing, target, start);
    }
  }
}

void HostGroup::check_missing(const std::vector<int>& missing, std::uint64_t target,
                              std::chrono::steady_clock::time_point start) const {
  if (pids_visible_) {
    for (const int m : missing)
      if (!running(pid(m)))
        throw Error("HostGroup: rank " + std::to_string(world_rank(m)) + " (" + host_ + ", pid " +
                    std::to_string(pid(m)) + ") exited during a " + activity_);
  }
  if (std::chrono::steady_clock::now() - start <= timeout_) return;
  std::ostringstream text;
  text << "HostGroup: rank" << (missing.size() > 1 ? "s " : " ");
  for (std::size_t i = 0; i < missing.size(); ++i)
    text << (i ? ", " : "") << world_rank(missing[i]);
  text << " (" << host_ << ") did not reach " << activity_ << " #" << target << " within "
       << std::chrono::duration<double>(timeout_).count() << " s (HAEIN_TIMEOUT)";
  throw Error(text.str());
}

}  // namespace haein::runtime::detail
