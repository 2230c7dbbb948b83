#pragma once
// The last operations of one communicator, for the watchdog's dump and for tests.
// Written by the thread that issues operations, read by the watchdog: every access
// takes the mutex, for a few tens of nanoseconds.

#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "haein/runtime/communicator.hpp"

namespace haein::runtime::detail {

class FlightRecorder {
 public:
  static constexpr std::size_t kCapacity = 64;

  FlightRecorder();

  /// Records a new operation (state issued) and returns its id.
  std::uint64_t begin(OpRecord record);
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
  OpRecord* slot(std::uint64_t id);
  mutable std::mutex mutex_;
  std::chrono::steady_clock::time_point epoch_;
  std::vector<OpRecord> ring_;
  std::uint64_t next_id_ = 0;
};

}  // namespace haein::runtime::detail
