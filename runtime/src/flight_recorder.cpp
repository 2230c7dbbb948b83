#include "flight_recorder.hpp"

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
  std::ostringstream text;
  text << op << '(' << name_of(type) << ", count=" << count;
  if (op == "all_reduce" || op == "reduce_scatter" || op == "reduce")
    text << ", " << name_of(reduce);
  if (op == "broadcast" || op == "reduce") text << ", root=" << peer;
  if (op == "send" || op == "recv") text << ", peer=" << peer;
  text << ')';
  return text.str();
}

namespace detail {

FlightRecorder::FlightRecorder() : epoch_(std::chrono::steady_clock::now()), ring_(kCapacity) {}

double FlightRecorder::now_s() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - epoch_).count();
}

std::uint64_t FlightRecorder::begin(OpRecord record) {
  record.start_s = now_s();
  record.state = OpState::kIssued;
  std::lock_guard lock(mutex_);
  const std::uint64_t id = next_id_++;
  ring_[id % kCapacity] = std::move(record);
  return id;
}

OpRecord* FlightRecorder::slot(std::uint64_t id) {
  if (id >= next_id_ || next_id_ - id > kCapacity) return nullptr;
  return &ring_[id % kCapacity];
}

void FlightRecorder::set_state(std::uint64_t id, OpState state) {
  const double now = now_s();
  std::lock_guard lock(mutex_);
  OpRecord* record = slot(id);
  if (record == nullptr) return;
  record->state = state;
  if (state != OpState::kStarted && state != OpState::kIssued) record->end_s = now;
}

std::optional<std::pair<std::uint64_t, OpRecord>> FlightRecorder::oldest_unfinished() const {
  std::lock_guard lock(mutex_);
  const std::uint64_t first = next_id_ > kCapacity ? next_id_ - kCapacity : 0;
  for (std::uint64_t id = first; id < next_id_; ++id) {
    const OpRecord& record = ring_[id % kCapacity];
    if (record.state == OpState::kIssued || record.state == OpState::kStarted)
      return std::make_pair(id, record);
  }
  return std::nullopt;
}

std::optional<OpRecord> FlightRecorder::find(std::uint64_t id) const {
  std::lock_guard lock(mutex_);
  if (id >= next_id_ || next_id_ - id > kCapacity) return std::nullopt;
  return ring_[id % kCapacity];
}

std::vector<OpRecord> FlightRecorder::records() const {
  std::lock_guard lock(mutex_);
  std::vector<OpRecord> out;
  const std::uint64_t first = next_id_ > kCapacity ? next_id_ - kCapacity : 0;
  for (std::uint64_t id = first; id < next_id_; ++id) out.push_back(ring_[id % kCapacity]);
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
