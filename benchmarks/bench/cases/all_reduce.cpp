// all_reduce: every rank ends with the reduction of every rank's buffer.
#include "case_support.hpp"

namespace haein::bench {

namespace {

class AllReduce final : public CollectiveCase {
 public:
  std::size_t wrong(const CaseSetup& setup, const CaseCall& call, const void* host) const override {
    return count_wrong(setup, host, 0, call.count,
                       [&](std::size_t i) { return reduced_input(setup, i); });
  }
  runtime::Work run(runtime::Communicator& comm, const CaseSetup& setup, const CaseCall& call,
                    const runtime::OpOptions& options) const override {
    return comm.all_reduce(call.send, call.recv, call.count, setup.type, setup.reduce, options);
  }
  void run_mpi(const CaseSetup& setup, const CaseCall& call) const override {
    MPI_Allreduce(call.send, call.recv, static_cast<int>(call.count), mpi_type(setup.type),
                  mpi_op(setup.reduce), MPI_COMM_WORLD);
  }
#if HAEIN_BENCH_CUDA
  void run_nccl(const DirectNccl& nccl, const CaseSetup& setup,
                const CaseCall& call) const override {
    nccl.settle(
        ncclAllReduce(call.send, call.recv, call.count, runtime::detail::nccl_type(setup.type),
                      runtime::detail::nccl_op(setup.reduce), nccl.comm(), nccl.stream()),
        "ncclAllReduce");
  }
#endif
};

}  // namespace

const CollectiveCase& all_reduce_case() {
  static const AllReduce instance;
  return instance;
}

}  // namespace haein::bench
