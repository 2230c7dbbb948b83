// all_to_all: block p of rank r's output is block r of rank p's input.
#include "case_support.hpp"

namespace haein::bench {

namespace {

class AllToAll final : public CollectiveCase {
 public:
  bool splits() const override { return true; }
  std::size_t wrong(const CaseSetup& setup, const CaseCall& call, const void* host) const override {
    const std::size_t n = block(setup, call);
    const std::size_t mine = static_cast<std::size_t>(setup.rank) * n;
    std::size_t errors = 0;
    for (int p = 0; p < setup.ranks; ++p) {
      errors += count_wrong(setup, host, static_cast<std::size_t>(p) * n, n,
                            [&](std::size_t i) { return input_value(p, mine + i); });
    }
    return errors;
  }
  runtime::Work run(runtime::Communicator& comm, const CaseSetup& setup, const CaseCall& call,
                    const runtime::OpOptions& options) const override {
    return comm.all_to_all(call.send, call.recv, block(setup, call), setup.type, options);
  }
  void run_mpi(const CaseSetup& setup, const CaseCall& call) const override {
    const int n = static_cast<int>(block(setup, call));
    const MPI_Datatype t = mpi_type(setup.type);
    MPI_Alltoall(call.send, n, t, call.recv, n, t, MPI_COMM_WORLD);
  }
#if HAEIN_BENCH_CUDA
  // NCCL has no all-to-all: a group of sends and receives, as nccl-tests does it.
  void run_nccl(const DirectNccl& nccl, const CaseSetup& setup,
                const CaseCall& call) const override {
    const std::size_t n = block(setup, call);
    const std::size_t step = bytes(setup, n);
    const ncclDataType_t t = runtime::detail::nccl_type(setup.type);
    HAEIN_NCCL_CHECK(ncclGroupStart());
    ncclResult_t status = ncclSuccess;
    for (int peer = 0; peer < setup.ranks && (status == ncclSuccess || status == ncclInProgress);
         ++peer) {
      const std::size_t at = static_cast<std::size_t>(peer) * step;
      status = ncclSend(call.send + at, n, t, peer, nccl.comm(), nccl.stream());
      if (status == ncclSuccess || status == ncclInProgress)
        status = ncclRecv(call.recv + at, n, t, peer, nccl.comm(), nccl.stream());
    }
    const ncclResult_t end = ncclGroupEnd();
    nccl.settle(status == ncclInProgress || status == ncclSuccess ? end : status,
                "ncclSend/ncclRecv group");
  }
#endif
};

}  // namespace

const CollectiveCase& all_to_all_case() {
  static const AllToAll instance;
  return instance;
}

}  // namespace haein::bench
