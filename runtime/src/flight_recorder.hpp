#pragma once
// The last operations of one communicator, for the watchdog's dump and for tests.
// Written by the thread that issues operations, read by the watchdog. It sits on the
// latency path of every operation, so it takes a spin lock (held for a copy of one
// record) rather than a mutex, and reads CLOCK_MONOTONIC_COARSE, a memory load, rather
// than the precise clock: its times have the coarse clock's resolution (1 to 4 ms),
// plenty to tell a hung operation from a slow one.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "haein/runtime/communicator.hpp"

namespace haein::runtime::detail {

class FlightRecorder {
 public:
  static constexpr std::size_t kCapacity = 64;

  FlightRecorder();

  /// Records a new operation (in the state it carries) and returns its id. Called by the
  /// thread that issues operations.
  std::uint64_t begin(const OpRecord& record);
  /// Moves `id` to `state` without the lock: only for the issuing thread, which is the
  /// only one that overwrites slots.
  void finish(std::uint64_t id, OpState state);
  /// The same from any thread (the watchdog).
  void set_state(std::uint64_t id, OpState state);
  /// Seconds since the recorder was created.
  double now_s() const;

  /// The oldest operation still issued or started, if any.
  std::optional<std::pair<std::uint64_t, OpRecord>> oldest_unfinished() const;
  /// The record `id`, if still held.
  std::optional<OpRecord> find(std::uint64_t id) const;
  /// Oldest first.
  std::vector<OpRecord> records() const;
  /// One line per record: "#seq op(type, count=n, ...) peer backend state start end".
  std::string text(int rank, const std::string& host) const;

 private:
  static double coarse_now_s();
  /// Record `id` with its current state and end time; the lock is held.
  OpRecord snapshot(std::uint64_t id) const;

  /// A record plus the two fields that change after it is written, as atomics so that
  /// finishing an operation takes no lock.
  struct Slot {
    OpRecord record;
    std::atomic<OpState> state{OpState::kIssued};
    std::atomic<double> end_s{0.0};
  };

  /// Test-and-set lock: uncontended it costs one atomic exchange.
  class SpinLock {
   public:
    void lock() {
      while (locked_.exchange(true, std::memory_order_acquire))
        while (locked_.load(std::memory_order_relaxed)) std::this_thread::yield();
    }
    void unlock() { locked_.store(false, std::memory_order_release); }

   private:
    std::atomic<bool> locked_{false};
  };

  mutable SpinLock mutex_;
  double epoch_s_ = 0;
  std::unique_ptr<Slot[]> ring_;
  std::atomic<std::uint64_t> next_id_{0};
};

}  // namespace haein::runtime::detail
