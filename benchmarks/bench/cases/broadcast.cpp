// broadcast: every rank ends with the root's buffer.
#include "case_support.hpp"

namespace haein::bench {

namespace {

class Broadcast final : public CollectiveCase {
 public:
  std::size_t wrong(const CaseSetup& setup, const CaseCall& call, const void* host) const override {
    return count_wrong(setup, host, 0, call.count,
                       [&](std::size_t i) { return input_value(setup.root, i); });
  }
  runtime::Work run(runtime::Communicator& comm, const CaseSetup& setup, const CaseCall& call,
                    const runtime::OpOptions& options) const override {
    return comm.broadcast(call.send, call.recv, call.count, setup.type, setup.root, options);
  }
  void run_mpi(const CaseSetup& setup, const CaseCall& call) const override {
    MPI_Bcast(setup.rank == setup.root ? call.send : call.recv, static_cast<int>(call.count),
              mpi_type(setup.type), setup.root, MPI_COMM_WORLD);
  }
#if HAEIN_BENCH_CUDA
  void run_nccl(const DirectNccl& nccl, const CaseSetup& setup,
                const CaseCall& call) const override {
    nccl.settle(
        ncclBroadcast(call.send, call.recv, call.count, runtime::detail::nccl_type(setup.type),
                      setup.root, nccl.comm(), nccl.stream()),
        "ncclBroadcast");
  }
#endif
};

}  // namespace

const CollectiveCase& broadcast_case() {
  static const Broadcast instance;
  return instance;
}

}  // namespace haein::bench
