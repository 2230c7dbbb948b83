#include "flight_recorder.hpp"

#include <time.h>

#include <cstdio>
#include <sstream>

namespace haein::runtime {

std::string_view name_of(OpState state) {
  switch (state) {
    case OpState::kIssued:
      return "issued";
    case OpState::kStarted:
      return "started";
    case OpState::kCompleted:
      return "completed";
    case OpState::kFailed:
      return "failed";
    case OpState::kTimedOut:
      return "timed-out";
  }
  return "?";
}

std::string OpRecord::describe() const {
  if (!section.empty()) return std::string(section);  // Communicator::watch_section
  std::ostringstream text;
  text << name_of(op) << '(' << name_of(type) << ", count=" << count;
  if (reduces(op)) text << ", " << name_of(reduce);
  if (rooted(op)) text << ", root=" << peer;
  if (is_p2p(op)) text << ", peer=" << peer;
  text << ')';
  return text.str();
}

namespace detail {

double FlightRecorder::coarse_now_s() {
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC_COARSE, &now);
  return static_cast<double>(now.tv_sec) + 1e-9 * static_cast<double>(now.tv_nsec);
}

FlightRecorder::FlightRecorder()
    : epoch_s_(coarse_now_s()), ring_(std::make_unique<Slot[]>(kCapacity)) {}

double FlightRecorder::now_s() const { return coarse_now_s() - epoch_s_; }

std::uint64_t FlightRecorder::begin(const OpRecord& record) {
  const double start = now_s();
  std::lock_guard lock(mutex_);
  const std::uint64_t id = next_id_.load(std::memory_order_relaxed);
  Slot& slot = ring_[id % kCapacity];
  slot.record = record;
  slot.record.start_s = start;
  slot.state.store(record.state, std::memory_order_relaxed);
  slot.end_s.store(0.0, std::memory_order_relaxed);
  next_id_.store(id + 1, std::memory_order_release);
  return id;
}

void FlightRecorder::finish(std::uint64_t id, OpState state) {
  const std::uint64_t next = next_id_.load(std::memory_order_acquire);
  if (id >= next || next - id > kCapacity) return;
  Slot& slot = ring_[id % kCapacity];
  if (state != OpState::kStarted && state != OpState::kIssued)
    slot.end_s.store(now_s(), std::memory_order_relaxed);
  slot.state.store(state, std::memory_order_release);
}

void FlightRecorder::set_state(std::uint64_t id, OpState state) {
  std::lock_guard lock(mutex_);
  finish(id, state);
}

OpRecord FlightRecorder::snapshot(std::uint64_t id) const {
  const Slot& slot = ring_[id % kCapacity];
  OpRecord record = slot.record;
  record.state = slot.state.load(std::memory_order_acquire);
  record.end_s = slot.end_s.load(std::memory_order_relaxed);
  return record;
}

std::optional<std::pair<std::uint64_t, OpRecord>> FlightRecorder::oldest_unfinished() const {
  std::lock_guard lock(mutex_);
  const std::uint64_t next = next_id_.load(std::memory_order_relaxed);
  const std::uint64_t first = next > kCapacity ? next - kCapacity : 0;
  for (std::uint64_t id = first; id < next; ++id) {
    const OpState state = ring_[id % kCapacity].state.load(std::memory_order_acquire);
    if (state == OpState::kIssued || state == OpState::kStarted)
      return std::make_pair(id, snapshot(id));
  }
  return std::nullopt;
}

std::optional<OpRecord> FlightRecorder::find(std::uint64_t id) const {
  std::lock_guard lock(mutex_);
  const std::uint64_t next = next_id_.load(std::memory_order_relaxed);
  if (id >= next || next - id > kCapacity) return std::nullopt;
  return snapshot(id);
}

std::vector<OpRecord> FlightRecorder::records() const {
  std::lock_guard lock(mutex_);
  std::vector<OpRecord> out;
  const std::uint64_t next = next_id_.load(std::memory_order_relaxed);
  const std::uint64_t first = next > kCapacity ? next - kCapacity : 0;
  for (std::uint64_t id = first; id < next; ++id) out.push_back(snapshot(id));
  return out;
}

std::string FlightRecorder::text(int rank, const std::string& host) const {
  const std::vector<OpRecord> all = records();
  std::ostringstream out;
  out << "flight recorder of rank " << rank << " (" << host << "): last " << all.size()
      << " operations, oldest first; times in seconds since the communicator was created\n";
  for (const OpRecord& record : all) {
    char times[96];
    if (record.end_s > 0)
      std::snprintf(times, sizeof times, "start %.6f end %.6f (%.6f s)", record.start_s,
                    record.end_s, record.end_s - record.start_s);
    else
      std::snprintf(times, sizeof times, "start %.6f, running %.3f s", record.start_s,
                    now_s() - record.start_s);
    out << "  #" << record.sequence << ' ' << record.describe() << " via " << record.backend << ' '
        << name_of(record.state) << ", " << times << '\n';
  }
  return out.str();
}

}  // namespace detail
}  // namespace haein::runtime
