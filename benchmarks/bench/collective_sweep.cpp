#include "collective_sweep.hpp"

#include <cctype>
#include <cmath>

#include "haein/common/error.hpp"

namespace haein::bench {

namespace {

struct TypeName {
  runtime::DataType type;
  std::string_view nccl_tests;
};

constexpr TypeName kTypes[] = {
    {runtime::DataType::kF32, "float"},     {runtime::DataType::kF16, "half"},
    {runtime::DataType::kBF16, "bfloat16"}, {runtime::DataType::kF64, "double"},
    {runtime::DataType::kI32, "int32"},     {runtime::DataType::kI64, "int64"},
    {runtime::DataType::kU8, "uint8"},
};

}  // namespace

Collective parse_collective(std::string_view text) {
  if (text == "bcast") return Collective::kBroadcast;
  if (const auto op = find_collective(text, kBenchCollectives)) return *op;
  throw InvalidArgument("unknown collective '" + std::string(text) +
                        "': expected allreduce, reducescatter, allgather, broadcast, reduce or "
                        "alltoall");
}

int minimum_ranks(Collective op) { return rooted(op) ? 1 : 2; }

runtime::DataType parse_bench_type(std::string_view text) {
  for (const TypeName& entry : kTypes) {
    if (text == entry.nccl_tests || text == runtime::name_of(entry.type)) return entry.type;
  }
  throw InvalidArgument("unknown data type '" + std::string(text) +
                        "': expected float, half, bfloat16, double, int32, int64, uint8 (or f32, "
                        "f16, bf16, f64, i32, i64, u8)");
}

std::string_view nccl_tests_name(runtime::DataType type) {
  for (const TypeName& entry : kTypes) {
    if (entry.type == type) return entry.nccl_tests;
  }
  return "?";
}

std::size_t parse_bytes(std::string_view text) {
  std::size_t digits = 0;
  while (digits < text.size() && std::isdigit(static_cast<unsigned char>(text[digits]))) ++digits;
  const std::string_view suffix = text.substr(digits);
  std::size_t scale = 0;
  if (suffix.empty()) scale = 1;
  if (suffix == "K" || suffix == "k") scale = std::size_t{1} << 10;
  if (suffix == "M" || suffix == "m") scale = std::size_t{1} << 20;
  if (suffix == "G" || suffix == "g") scale = std::size_t{1} << 30;
  if (digits == 0 || scale == 0 || digits > 12) {
    throw InvalidArgument("size '" + std::string(text) + "': expected bytes like 8, 1K, 64M or 1G");
  }
  return std::stoull(std::string(text.substr(0, digits))) * scale;
}

std::vector<SweepPoint> sweep(std::size_t min_bytes, std::size_t max_bytes, std::size_t factor,
                              std::size_t step, std::size_t element_bytes, std::size_t block) {
  if (min_bytes > max_bytes) {
    throw InvalidArgument("-b " + std::to_string(min_bytes) + " is larger than -e " +
                          std::to_string(max_bytes));
  }
  if (step == 0 && factor < 2) throw InvalidArgument("-f must be at least 2 (or give -i STEP)");
  for (std::size_t bound : {min_bytes, max_bytes}) {
    if (bound % element_bytes != 0) {
      throw InvalidArgument("size " + std::to_string(bound) + " is not a multiple of the " +
                            std::to_string(element_bytes) + "-byte data type");
    }
  }
  const std::size_t unit = element_bytes * std::max<std::size_t>(block, 1);
  std::vector<SweepPoint> points;
  for (std::size_t bytes = min_bytes; bytes <= max_bytes;) {
    const std::size_t rounded = bytes / unit * unit;
    if (rounded > 0 && (points.empty() || points.back().bytes != rounded)) {
      points.push_back({rounded, rounded / element_bytes});
    }
    const std::size_t next = step > 0 ? bytes + step : (bytes == 0 ? 1 : bytes * factor);
    if (next <= bytes) break;  // overflow
    bytes = next;
  }
  return points;
}

}  // namespace haein::bench
