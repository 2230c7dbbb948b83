#include "bucket_layout.hpp"

#include <algorithm>
#include <map>
#include <utility>

namespace haein::runtime::detail {

namespace {
std::size_t round_up(std::size_t value, std::size_t multiple) {
  return (value + multiple - 1) / multiple * multiple;
}
}  // namespace

std::vector<LayoutBucket> assign_buckets(const std::vector<LayoutParameter>& parameters,
                                         const std::vector<std::size_t>& order,
                                         std::size_t first_cap_bytes, std::size_t cap_bytes,
                                         std::size_t alignment, std::size_t granule) {
  std::vector<LayoutBucket> buckets;
  // Per kind: the open bucket, its gradient bytes, and whether it is the kind's first.
  struct Open {
    std::size_t index;
    std::size_t bytes;
    bool first;
  };
  std::map<std::pair<DataType, bool>, Open> open;
  for (const std::size_t id : order) {
    const LayoutParameter& parameter = parameters[id];
    const std::size_t bytes = parameter.count * size_of(parameter.type);
    const auto kind = std::make_pair(parameter.type, parameter.device);
    auto it = open.find(kind);
    if (it != open.end()) {
      const std::size_t cap = it->second.first ? first_cap_bytes : cap_bytes;
      if (it->second.bytes > 0 && it->second.bytes + bytes > cap) {
        open.erase(it);
        it = open.end();
      }
    }
    if (it == open.end()) {
      const bool first = std::none_of(buckets.begin(), buckets.end(), [&](const LayoutBucket& b) {
        return b.type == parameter.type && b.device == parameter.device;
      });
      buckets.push_back({parameter.type, parameter.device, {}, {}, 0});
      it = open.emplace(kind, Open{buckets.size() - 1, 0, first}).first;
    }
    LayoutBucket& bucket = buckets[it->second.index];
    bucket.elements = round_up(bucket.elements, alignment);
    bucket.parameters.push_back(id);
    bucket.offsets.push_back(bucket.elements);
    bucket.elements += parameter.count;
    it->second.bytes += bytes;
  }
  for (LayoutBucket& bucket : buckets)
    bucket.elements = round_up(std::max<std::size_t>(bucket.elements, 1), granule);
  return buckets;
}

std::vector<Piece> pieces_of(std::size_t elements, std::size_t chunk) {
  std::vector<Piece> pieces;
  for (std::size_t begin = 0; begin < elements; begin += chunk)
    pieces.push_back({begin, std::min(elements, begin + chunk)});
  return pieces;
}

std::vector<Overlap> overlaps(const LayoutBucket& bucket,
                              const std::vector<LayoutParameter>& parameters, std::size_t begin,
                              std::size_t end) {
  std::vector<Overlap> out;
  for (std::size_t i = 0; i < bucket.parameters.size(); ++i) {
    const std::size_t id = bucket.parameters[i];
    const std::size_t first = bucket.offsets[i];
    const std::size_t last = first + parameters[id].count;
    const std::size_t from = std::max(first, begin);
    const std::size_t to = std::min(last, end);
    if (from < to) out.push_back({id, from - first, to - from, from});
  }
  return out;
}

}  // namespace haein::runtime::detail
