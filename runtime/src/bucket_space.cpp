#include <string>

#include "bucket_exchange.hpp"

namespace haein::runtime::detail {

using kernels::ElementType;

ElementType element_type(DataType type) {
  switch (type) {
    case DataType::kF32:
      return ElementType::kF32;
    case DataType::kF16:
      return ElementType::kF16;
    case DataType::kBF16:
      return ElementType::kBF16;
    default:
      break;
  }
  throw InvalidArgument("GradBucketer: gradients must be f32, f16 or bf16, not " +
                        std::string(name_of(type)));
}

void* BucketSpace::gradient_of(std::size_t id) const {
  const Parameter& p = parameters[id];
  if (!options.gradient_as_bucket_view || !laid_out) return p.gradient;
  const Bucket& b = buckets[p.bucket];
  return b.buffer + p.offset * b.wire_size();
}

std::vector<Overlap> BucketSpace::overlaps(const Bucket& b, std::size_t begin,
                                           std::size_t end) const {
  return detail::overlaps(b.layout(), layout_parameters, begin, end);
}

std::vector<kernels::TensorSlice> BucketSpace::slices(const Bucket& b, std::size_t begin,
                                                      std::size_t end, bool ready_only) const {
  std::vector<kernels::TensorSlice> out;
  for (const Overlap& o : overlaps(b, begin, end)) {
    const Parameter& p = parameters[o.parameter];
    auto* data =
        static_cast<std::byte*>(gradient_of(o.parameter)) + o.parameter_offset * size_of(p.type);
    out.push_back({(ready_only && !p.ready) ? nullptr : data, o.count, o.bucket_offset - begin});
  }
  return out;
}

std::byte* BucketSpace::piece_base(Bucket& b, const Piece& piece) {
  if (!b.plan.staged) return b.buffer + piece.begin * b.wire_size();
  const std::size_t bytes = (piece.end - piece.begin) * b.wire_size();
  if (staging_.size() < bytes) staging_.resize(bytes);
  return staging_.data();
}

std::byte* BucketSpace::piece_scratch(Bucket& b, const Piece& piece) {
  if (!b.plan.staged) return b.scratch + piece.begin * b.wire_size();
  const std::size_t bytes = (piece.end - piece.begin) * b.wire_size();
  if (staging_scratch_.size() < bytes) staging_scratch_.resize(bytes);
  return staging_scratch_.data();
}

Piece BucketSpace::reduced_range(const Piece& piece) const {
  if (!options.reduce_scatter) return piece;
  const std::size_t shard = (piece.end - piece.begin) / static_cast<std::size_t>(world());
  const std::size_t begin = piece.begin + static_cast<std::size_t>(rank()) * shard;
  return {begin, begin + shard};
}

void BucketSpace::pack_piece(Bucket& b, const Piece& piece) {
  std::byte* base = piece_base(b, piece);
  const float pre = b.plan.scaling.pre;
  const ElementType wire = element_type(b.plan.wire);
  if (!options.gradient_as_bucket_view) {
    const auto list = slices(b, piece.begin, piece.end, true);
    b.executor->pack(
        {list.data(), list.size(), element_type(b.layout().type), base, wire, pre, nullptr});
    return;
  }
  for (const Overlap& o : overlaps(b, piece.begin, piece.end))
    if (!parameters[o.parameter].ready)
      b.executor->zero(b.buffer + o.bucket_offset * b.wire_size(), o.count * b.wire_size());
  if (pre != 1.0f) b.executor->scale(base, piece.end - piece.begin, wire, pre);
}

void BucketSpace::unpack_piece(Bucket& b, const Piece& piece) {
  const Piece range = reduced_range(piece);
  const float post = b.plan.scaling.post;
  const ElementType wire = element_type(b.plan.wire);
  std::byte* base = piece_base(b, piece) + (range.begin - piece.begin) * b.wire_size();
  if (options.gradient_as_bucket_view) {
    if (post != 1.0f) b.executor->scale(base, range.end - range.begin, wire, post);
    return;
  }
  const auto list = slices(b, range.begin, range.end, false);
  b.executor->unpack(
      {list.data(), list.size(), element_type(b.layout().type), base, wire, post, false});
}

}  // namespace haein::runtime::detail
