#include "shared_memory_exchange.hpp"

#include <algorithm>
#include <string>

#include "haein/common/error.hpp"

namespace haein::runtime::detail {

std::unique_ptr<SharedMemoryExchange> SharedMemoryExchange::create(
    Communicator& comm, std::size_t slot_elements, std::chrono::milliseconds timeout) {
  const int ranks = comm.size();
  if (ranks < 2) return nullptr;
  slot_elements = (std::max<std::size_t>(slot_elements, 16) + 15) / 16 * 16;
  auto group = HostGroup::create(
      comm, 2 * static_cast<std::size_t>(ranks) * slot_elements * sizeof(float),
      timeout.count() > 0 ? timeout : comm.options().timeout, "shared-memory reduction");
  if (!group) return nullptr;
  auto exchange = std::unique_ptr<SharedMemoryExchange>(new SharedMemoryExchange);
  exchange->rank_ = group->rank();
  exchange->ranks_ = ranks;
  exchange->slot_elements_ = slot_elements;
  exchange->slots_ = static_cast<float*>(group->payload());
  exchange->terms_.resize(static_cast<std::size_t>(ranks));
  exchange->group_ = std::move(group);
  return exchange;
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

void SharedMemoryExchange::wait_written(std::size_t count) {
  if (count > slot_elements_)
    throw InvalidArgument("SharedMemoryExchange: a piece of " + std::to_string(count) +
                          " elements does not fit a slot of " + std::to_string(slot_elements_));
  written_count_ = count;
  group_->barrier();
}

void SharedMemoryExchange::finish_reduction() {
  group_->barrier();  // every segment is reduced; the other buffer is free (see the header)
  last_count_ = written_count_;
  last_buffer_ = buffer_;
  buffer_ ^= 1;
}

void SharedMemoryExchange::sum_own(std::size_t at, std::size_t n, const float* own, float own_scale,
                                   float out_scale, float* out) {
  // Rank order for every element, so each segment has the same bits on every rank (and
  // the same as reduce() over packed slots: own_scale * x is what pack would have stored).
  for (int s = 0; s < ranks_; ++s)
    terms_[static_cast<std::size_t>(s)] =
        s == rank_ ? kernels::SumTerm{own, own_scale} : kernels::SumTerm{slot_of(s, buffer_) + at};
  kernels::sum_in_rank_order(
      {terms_.data(), ranks_, n, out_scale, slot_of(rank_, buffer_) + at, out});
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
