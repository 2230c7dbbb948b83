// reduce_scatter: rank r ends with block r of the reduction; in place, its output is block r
// of its own send buffer.
#include "case_support.hpp"

namespace haein::bench {

namespace {

class ReduceScatter final : public CollectiveCase {
 public:
  bool splits() const override { return true; }
  std::size_t wrong(const CaseSetup& setup, const CaseCall& call, const void* host) const override {
    const std::size_t n = block(setup, call);
    const std::size_t mine = static_cast<std::size_t>(setup.rank) * n;
    return count_wrong(setup, host, call.in_place ? mine : 0, n,
                       [&](std::size_t i) { return reduced_input(setup, mine + i); });
  }
  runtime::Work run(runtime::Communicator& comm, const CaseSetup& setup, const CaseCall& call,
                    const runtime::OpOptions& options) const override {
    const std::size_t n = block(setup, call);
    unsigned char* out = call.in_place
                             ? call.send + bytes(setup, static_cast<std::size_t>(setup.rank) * n)
                             : call.recv;
    return comm.reduce_scatter(call.send, out, n, setup.type, setup.reduce, options);
  }
  void run_mpi(const CaseSetup& setup, const CaseCall& call) const override {
    MPI_Reduce_scatter_block(call.send, call.recv, static_cast<int>(block(setup, call)),
                             mpi_type(setup.type), mpi_op(setup.reduce), MPI_COMM_WORLD);
  }
#if HAEIN_BENCH_CUDA
  void run_nccl(const DirectNccl& nccl, const CaseSetup& setup,
                const CaseCall& call) const override {
    nccl.settle(
        ncclReduceScatter(call.send, call.recv, block(setup, call),
                          runtime::detail::nccl_type(setup.type),
                          runtime::detail::nccl_op(setup.reduce), nccl.comm(), nccl.stream()),
        "ncclReduceScatter");
  }
#endif
};

}  // namespace

const CollectiveCase& reduce_scatter_case() {
  static const ReduceScatter instance;
  return instance;
}

}  // namespace haein::bench
