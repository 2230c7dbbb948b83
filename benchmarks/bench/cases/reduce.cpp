// reduce: the root ends with the reduction of every rank's buffer; the others' outputs are
// not checked.
#include "case_support.hpp"

namespace haein::bench {

namespace {

class Reduce final : public CollectiveCase {
 public:
  std::size_t wrong(const CaseSetup& setup, const CaseCall& call, const void* host) const override {
    if (setup.rank != setup.root) return 0;
    return count_wrong(setup, host, 0, call.count,
                       [&](std::size_t i) { return reduced_input(setup, i); });
  }
  runtime::Work run(runtime::Communicator& comm, const CaseSetup& setup, const CaseCall& call,
                    const runtime::OpOptions& options) const override {
    return comm.reduce(call.send, call.recv, call.count, setup.type, setup.reduce, setup.root,
                       options);
  }
  void run_mpi(const CaseSetup& setup, const CaseCall& call) const override {
    MPI_Reduce(call.send, call.recv, static_cast<int>(call.count), mpi_type(setup.type),
               mpi_op(setup.reduce), setup.root, MPI_COMM_WORLD);
  }
#if HAEIN_BENCH_CUDA
  void run_nccl(const DirectNccl& nccl, const CaseSetup& setup,
                const CaseCall& call) const override {
    nccl.settle(
        ncclReduce(call.send, call.recv, call.count, runtime::detail::nccl_type(setup.type),
                   runtime::detail::nccl_op(setup.reduce), setup.root, nccl.comm(), nccl.stream()),
        "ncclReduce");
  }
#endif
};

}  // namespace

const CollectiveCase& reduce_case() {
  static const Reduce instance;
  return instance;
}

}  // namespace haein::bench
