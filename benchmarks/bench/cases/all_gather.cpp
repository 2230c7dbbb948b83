// all_gather: every rank ends with every rank's block, rank-major; in place, a rank's own
// block already sits at its place in the output.
#include <cstring>

#include "case_support.hpp"

namespace haein::bench {

namespace {

class AllGather final : public CollectiveCase {
 public:
  bool splits() const override { return true; }
  void fill(const CaseSetup& setup, const CaseCall& call, void* host) const override {
    if (!call.in_place) return CollectiveCase::fill(setup, call, host);
    const std::size_t n = block(setup, call);
    std::memset(host, 0, bytes(setup, call.count));
    const std::size_t mine = static_cast<std::size_t>(setup.rank) * n;
    for (std::size_t i = 0; i < n; ++i)
      oracle::store(setup.type, host, mine + i, input_value(setup.rank, i));
  }
  std::size_t wrong(const CaseSetup& setup, const CaseCall& call, const void* host) const override {
    const std::size_t n = block(setup, call);
    std::size_t errors = 0;
    for (int s = 0; s < setup.ranks; ++s) {
      errors += count_wrong(setup, host, static_cast<std::size_t>(s) * n, n,
                            [&](std::size_t i) { return input_value(s, i); });
    }
    return errors;
  }
  runtime::Work run(runtime::Communicator& comm, const CaseSetup& setup, const CaseCall& call,
                    const runtime::OpOptions& options) const override {
    const std::size_t n = block(setup, call);
    const unsigned char* in =
        call.in_place ? call.recv + bytes(setup, static_cast<std::size_t>(setup.rank) * n)
                      : call.send;
    return comm.all_gather(in, call.recv, n, setup.type, options);
  }
  void run_mpi(const CaseSetup& setup, const CaseCall& call) const override {
    const int n = static_cast<int>(block(setup, call));
    const MPI_Datatype t = mpi_type(setup.type);
    MPI_Allgather(call.send, n, t, call.recv, n, t, MPI_COMM_WORLD);
  }
#if HAEIN_BENCH_CUDA
  void run_nccl(const DirectNccl& nccl, const CaseSetup& setup,
                const CaseCall& call) const override {
    nccl.settle(ncclAllGather(call.send, call.recv, block(setup, call),
                              runtime::detail::nccl_type(setup.type), nccl.comm(), nccl.stream()),
                "ncclAllGather");
  }
#endif
};

}  // namespace

const CollectiveCase& all_gather_case() {
  static const AllGather instance;
  return instance;
}

}  // namespace haein::bench
