// Threads of one process as ranks: every exchange deposits each rank's bytes, and the
// last rank to arrive releases the others. A round is fully read before the next starts.
#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <map>
#include <mutex>
#include <numeric>
#include <sstream>

#include "haein/common/error.hpp"
#include "haein/runtime/bootstrap.hpp"

namespace haein::runtime {

class ThreadGroup {
 public:
  ThreadGroup(int size, std::chrono::milliseconds timeout)
      : size_(size), timeout_(timeout), deposits_(size), arrived_(size, false) {}

  int size() const { return size_; }
  std::chrono::milliseconds timeout() const { return timeout_; }
  std::uint64_t round() {
    std::lock_guard lock(mutex_);
    return round_;
  }

  /// Deposits `bytes` of `data` as rank `rank` and returns every rank's deposit.
  std::vector<std::vector<char>> exchange(int rank, const void* data, std::size_t bytes,
                                          const char* what) {
    std::unique_lock lock(mutex_);
    wait(
        lock, [&] { return readers_left_ == 0; }, what);
    const char* begin = static_cast<const char*>(data);
    deposits_[rank].assign(begin, begin + bytes);
    arrived_[rank] = true;
    const std::uint64_t round = round_;
    if (++arrived_count_ == size_) {
      readers_left_ = size_;
      ++round_;
      changed_.notify_all();
    } else {
      wait(
          lock, [&] { return round_ != round; }, what);
    }
    std::vector<std::vector<char>> all = deposits_;
    if (--readers_left_ == 0) {
      arrived_count_ = 0;
      std::fill(arrived_.begin(), arrived_.end(), false);
      changed_.notify_all();
    }
    return all;
  }

  /// The group for `color` in split round `round`: created by its first member to ask,
  /// forgotten once all `members` have taken it.
  std::shared_ptr<ThreadGroup> split_group(std::uint64_t round, int color, int members) {
    std::lock_guard lock(mutex_);
    SplitEntry& entry = splits_[{round, color}];
    if (!entry.group) entry.group = std::make_shared<ThreadGroup>(members, timeout_);
    std::shared_ptr<ThreadGroup> group = entry.group;
    if (++entry.taken == members) splits_.erase({round, color});
    return group;
  }

 private:
  template <typename Ready>
  void wait(std::unique_lock<std::mutex>& lock, Ready ready, const char* what) {
    if (changed_.wait_for(lock, timeout_, ready)) return;
    std::ostringstream message;
    message << "ThreadBootstrap " << what << " waited "
            << std::chrono::duration<double>(timeout_).count() << " s; ranks that did not arrive:";
    for (int r = 0; r < size_; ++r)
      if (!arrived_[r]) message << ' ' << r;
    throw Error(message.str());
  }

  struct SplitEntry {
    std::shared_ptr<ThreadGroup> group;
    int taken = 0;
  };

  const int size_;
  const std::chrono::milliseconds timeout_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<std::vector<char>> deposits_;
  std::vector<bool> arrived_;
  int arrived_count_ = 0;
  int readers_left_ = 0;
  std::uint64_t round_ = 0;
  std::map<std::pair<std::uint64_t, int>, SplitEntry> splits_;
};

std::vector<std::unique_ptr<ThreadBootstrap>> ThreadBootstrap::create_group(
    int size, std::chrono::milliseconds timeout) {
  if (size < 1) throw InvalidArgument("ThreadBootstrap group needs at least one rank");
  auto group = std::make_shared<ThreadGroup>(size, timeout);
  std::vector<std::unique_ptr<ThreadBootstrap>> bootstraps;
  for (int r = 0; r < size; ++r) bootstraps.push_back(std::make_unique<ThreadBootstrap>(group, r));
  return bootstraps;
}

ThreadBootstrap::ThreadBootstrap(std::shared_ptr<ThreadGroup> group, int rank)
    : group_(std::move(group)), rank_(rank) {}

ThreadBootstrap::~ThreadBootstrap() = default;

int ThreadBootstrap::size() const { return group_->size(); }

void ThreadBootstrap::all_gather(const void* mine, void* all, std::size_t bytes) {
  const auto deposits = group_->exchange(rank_, mine, bytes, "all_gather");
  char* out = static_cast<char*>(all);
  for (const auto& deposit : deposits) {
    if (deposit.size() != bytes)
      throw Error("ThreadBootstrap all_gather: ranks passed different sizes");
    std::memcpy(out, deposit.data(), bytes);
    out += bytes;
  }
}

void ThreadBootstrap::broadcast(void* data, std::size_t bytes, int root) {
  const auto deposits = group_->exchange(rank_, data, rank_ == root ? bytes : 0, "broadcast");
  if (deposits.at(root).size() != bytes)
    throw Error("ThreadBootstrap broadcast: root's size differs from this rank's");
  std::memcpy(data, deposits[root].data(), bytes);
}

void ThreadBootstrap::barrier() { group_->exchange(rank_, nullptr, 0, "barrier"); }

std::unique_ptr<Bootstrap> ThreadBootstrap::split(int color, int key) {
  const std::uint64_t round = group_->round();  // the same on every rank before the exchange
  const int mine[2] = {color, key};
  std::vector<int> all(2 * size());
  all_gather(mine, all.data(), sizeof mine);
  if (color < 0) return nullptr;
  std::vector<int> members;
  for (int r = 0; r < size(); ++r)
    if (all[2 * r] == color) members.push_back(r);
  std::stable_sort(members.begin(), members.end(),
                   [&](int a, int b) { return all[2 * a + 1] < all[2 * b + 1]; });
  const int new_rank =
      static_cast<int>(std::find(members.begin(), members.end(), rank_) - members.begin());
  return std::make_unique<ThreadBootstrap>(
      group_->split_group(round, color, static_cast<int>(members.size())), new_rank);
}

}  // namespace haein::runtime
