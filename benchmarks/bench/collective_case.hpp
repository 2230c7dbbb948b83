#pragma once
// One collective as `haein-bench collective` runs it, in the shape of nccl-tests' testColl:
// how a size splits into blocks, what each rank's input holds in a checked run, which
// elements of its output are wrong, and one call through haein, through MPI and (CUDA
// builds) through NCCL directly. One implementation per collective, each in cases/.

#include <cstddef>

#include "collective_oracle.hpp"
#include "haein/common/collective.hpp"
#include "haein/runtime/communicator.hpp"
#include "haein/runtime/types.hpp"

namespace haein::bench {

class DirectNccl;

/// What stays the same over a sweep.
struct CaseSetup {
  Collective op = Collective::kAllReduce;
  runtime::DataType type = runtime::DataType::kF32;
  runtime::ReduceOp reduce = runtime::ReduceOp::kSum;
  int root = 0;
  int rank = 0;
  int ranks = 1;
};

/// One call: `count` elements of the larger buffer (nccl-tests' count), `send` and `recv`
/// laid out as NCCL lays them out (communicator.hpp); in place, `recv` is `send`.
struct CaseCall {
  std::size_t count = 0;
  unsigned char* send = nullptr;
  unsigned char* recv = nullptr;
  bool in_place = false;
};

class CollectiveCase {
 public:
  virtual ~CollectiveCase() = default;

  /// True for the operations whose larger buffer holds one block per rank (reduce-scatter,
  /// all-gather, all-to-all): sweep sizes are whole multiples of ranks elements.
  virtual bool splits() const { return false; }
  /// Writes this rank's input of a checked run into `host` (`call.count` elements of the
  /// send buffer, in host memory).
  virtual void fill(const CaseSetup& setup, const CaseCall& call, void* host) const;
  /// The elements of this rank's output (`host`: the buffer the call wrote, `call.count`
  /// elements, copied to host memory) that differ from what the oracle says.
  virtual std::size_t wrong(const CaseSetup& setup, const CaseCall& call,
                            const void* host) const = 0;
  /// One call through haein's communicator.
  virtual runtime::Work run(runtime::Communicator& comm, const CaseSetup& setup,
                            const CaseCall& call, const runtime::OpOptions& options) const = 0;
  /// One call of the MPI library directly, on MPI_COMM_WORLD (host buffers).
  virtual void run_mpi(const CaseSetup& setup, const CaseCall& call) const = 0;
  /// One call of the NCCL library directly (device buffers). Cases define it in CUDA
  /// builds; elsewhere it throws NotInThisBuild.
  virtual void run_nccl(const DirectNccl& nccl, const CaseSetup& setup, const CaseCall& call) const;

 protected:
  /// Elements per rank's block of a splitting operation.
  static std::size_t block(const CaseSetup& setup, const CaseCall& call) {
    return call.count / static_cast<std::size_t>(setup.ranks);
  }
  /// Bytes of `elements` elements.
  static std::size_t bytes(const CaseSetup& setup, std::size_t elements) {
    return elements * runtime::size_of(setup.type);
  }
};

/// The case of `op` (one of the six the benchmark sweeps; InvalidArgument otherwise).
const CollectiveCase& case_of(Collective op);

/// Element i of `rank`'s input: 1, 2 or 3, which every type holds exactly and whose sums
/// and products over a few ranks stay exact.
double input_value(int rank, std::size_t index);
/// The reduction of input_value(r, index) over every rank, by the oracle.
double reduced_input(const CaseSetup& setup, std::size_t index);
/// Whether `got` passes for `want` in `type` (f16/bf16: NCCL accumulates in the wire type).
bool matches(runtime::DataType type, double got, double want);

/// Counts the elements at offset + i, i < n, of `host` that do not match want(i).
template <typename Want>
std::size_t count_wrong(const CaseSetup& setup, const void* host, std::size_t offset, std::size_t n,
                        Want want) {
  std::size_t errors = 0;
  for (std::size_t i = 0; i < n; ++i)
    if (!matches(setup.type, oracle::load(setup.type, host, offset + i), want(i))) ++errors;
  return errors;
}

}  // namespace haein::bench
