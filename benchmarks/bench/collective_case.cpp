#include "collective_case.hpp"

#include <cmath>
#include <string>

#include "cases/cases.hpp"
#include "haein/common/error.hpp"

namespace haein::bench {

namespace {

struct CaseEntry {
  Collective op;
  const CollectiveCase& (*get)();
};

constexpr CaseEntry kCases[] = {
    {Collective::kAllReduce, all_reduce_case}, {Collective::kReduceScatter, reduce_scatter_case},
    {Collective::kAllGather, all_gather_case}, {Collective::kBroadcast, broadcast_case},
    {Collective::kReduce, reduce_case},        {Collective::kAllToAll, all_to_all_case},
};

}  // namespace

const CollectiveCase& case_of(Collective op) {
  for (const CaseEntry& entry : kCases)
    if (entry.op == op) return entry.get();
  throw InvalidArgument("haein-bench collective has no case for " + std::string(name_of(op)));
}

void CollectiveCase::fill(const CaseSetup& setup, const CaseCall& call, void* host) const {
  for (std::size_t i = 0; i < call.count; ++i)
    oracle::store(setup.type, host, i, input_value(setup.rank, i));
}

void CollectiveCase::run_nccl(const DirectNccl&, const CaseSetup&, const CaseCall&) const {
  throw NotInThisBuild("--baseline nccl");
}

double input_value(int rank, std::size_t index) {
  return 1.0 + static_cast<double>((static_cast<std::size_t>(rank) + index) % 3);
}

double reduced_input(const CaseSetup& setup, std::size_t index) {
  return oracle::reduced(setup.reduce, setup.type, setup.ranks,
                         [&](int r) { return input_value(r, index); });
}

bool matches(runtime::DataType type, double got, double want) {
  const bool half = type == runtime::DataType::kF16 || type == runtime::DataType::kBF16;
  return oracle::close(got, want, half ? 1e-2 : 1e-6);
}

}  // namespace haein::bench
