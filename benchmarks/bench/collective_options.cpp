#include "collective_options.hpp"

#include <boost/program_options.hpp>
#include <string>

#include "haein/common/error.hpp"

namespace haein::bench {

namespace {

namespace po = boost::program_options;
using runtime::DataType;

/// The flags as typed, before they are interpreted.
struct Flags {
  std::string op = "allreduce", min_bytes = "32M", max_bytes = "32M", type = "float",
              reduce = "sum", backend = "host", baseline, stream = "default";
  int check = 1;
};

void describe(po::options_description& d, CollectiveOptions& o, Flags& f) {
  d.add_options()("help,h", "this help")("op", po::value(&f.op)->default_value(f.op),
                                         "allreduce, reducescatter, allgather, broadcast, "
                                         "reduce, alltoall")(
      "minbytes,b", po::value(&f.min_bytes)->default_value(f.min_bytes),
      "smallest size (8, 1K, 1M)")(
      "maxbytes,e", po::value(&f.max_bytes)->default_value(f.max_bytes), "largest size")(
      "stepfactor,f", po::value(&o.factor)->default_value(o.factor), "size multiplier")(
      "stepbytes,i", po::value(&o.step)->default_value(o.step), "size increment (instead of -f)")(
      "iters,n", po::value(&o.iterations)->default_value(o.iterations),
      "operations per timed sample")(
      "warmup_iters,w", po::value(&o.warmup)->default_value(o.warmup), "untimed operations first")(
      "repeats,R", po::value(&o.repeats)->default_value(o.repeats),
      "timed samples per size (median reported, spread = (max - min) / median)")(
      "check,c", po::value(&f.check)->default_value(f.check), "check results (0 or 1)")(
      "datatype,d", po::value(&f.type)->default_value(f.type),
      "float, half, bfloat16, double, "
      "int32, int64, uint8")("redop,o", po::value(&f.reduce)->default_value(f.reduce),
                             "sum, prod, min, max, avg")(
      "root,r", po::value(&o.root)->default_value(o.root), "root of broadcast and reduce")(
      "backend", po::value(&f.backend)->default_value(f.backend),
      "host (MPI) or nccl (GPU buffers)")(
      "stream", po::value(&f.stream)->default_value(f.stream),
      "--backend nccl: 'default' (no stream given: each call is ordered after the legacy "
      "default stream) or 'own' (one stream of the bench's own, as OpOptions::stream)")(
      "baseline", po::value(&f.baseline),
      "mpi (--backend host) or nccl (--backend nccl): the same sweep through direct calls of "
      "that library, timed in the same run; nccl-event also records one CUDA event after "
      "each direct call, as haein's Work does");
  o.add_files(d, "write the results as CSV (rank 0)",
              "write every rank's timings to this HDF5 file");
}

void interpret(CollectiveOptions& o, const Flags& f) {
  o.op = parse_collective(f.op);
  o.type = parse_bench_type(f.type);
  o.reduce = runtime::parse_reduce_op(f.reduce);
  o.min_bytes = parse_bytes(f.min_bytes);
  o.max_bytes = parse_bytes(f.max_bytes);
  o.check = f.check != 0;
  if (f.backend != "host" && f.backend != "nccl") {
    throw InvalidArgument("--backend '" + f.backend + "': expected host or nccl");
  }
  o.device = f.backend == "nccl";
  if (f.stream != "default" && f.stream != "own")
    throw InvalidArgument("--stream '" + f.stream + "': expected default or own");
  if (f.stream == "own" && !o.device) throw InvalidArgument("--stream own needs --backend nccl");
  o.own_stream = f.stream == "own";
  if (!f.baseline.empty() && f.baseline != "mpi" && f.baseline != "nccl" &&
      f.baseline != "nccl-event") {
    throw InvalidArgument("--baseline '" + f.baseline + "': expected mpi, nccl or nccl-event");
  }
  o.baseline = f.baseline;
}

void validate(const CollectiveOptions& o, int ranks) {
  if (o.direct_nccl() && !o.device) {
    throw InvalidArgument("--baseline " + o.baseline +
                          " compares with direct NCCL calls on GPU buffers: "
                          "use it with --backend nccl");
  }
#if !HAEIN_BENCH_CUDA
  if (o.direct_nccl()) {
    throw NotInThisBuild("--baseline " + o.baseline);
  }
#endif
  if (o.baseline == "mpi" && o.device) {
    // Open MPI from Debian is not CUDA-aware: device buffers handed to it would crash.
    throw InvalidArgument(
        "--baseline mpi times direct MPI calls on the same buffers, which --backend nccl "
        "keeps in GPU memory; MPI here is not CUDA-aware. Use --baseline mpi with "
        "--backend host");
  }
  if (o.baseline == "mpi" && (o.type == DataType::kF16 || o.type == DataType::kBF16)) {
    throw InvalidArgument("--baseline mpi: MPI has no " + std::string(nccl_tests_name(o.type)) +
                          " type; use float, double or an integer type");
  }
  if (o.iterations < 1 || o.warmup < 0 || o.repeats < 1) {
    throw InvalidArgument("-n and -R must be at least 1, -w at least 0");
  }
  // One rank on one GPU is how NCCL's per-call cost is measured (nccl-tests runs it too;
  // busbw is 0 there); through MPI it measures nothing.
  if (ranks < minimum_ranks(o.op) && !o.device) {
    throw InvalidArgument(std::string(traits(o.op).compact) + " needs at least " +
                          std::to_string(minimum_ranks(o.op)) + " ranks; this job has " +
                          std::to_string(ranks) +
                          " (start it with mpirun -np N or haein run -n N)");
  }
  if (o.root < 0 || o.root >= ranks) {
    throw InvalidArgument("-r " + std::to_string(o.root) + ": the root must be a rank below " +
                          std::to_string(ranks));
  }
#if !HAEIN_BENCH_CUDA
  if (o.device) throw InvalidArgument("--backend nccl: this build has no CUDA (host-only)");
#endif
}

}  // namespace

CollectiveOptions parse_collective_options(int argc, char** argv, int ranks) {
  CollectiveOptions o;
  Flags flags;
  po::options_description d(
      "haein-bench collective: nccl-tests' sweep through haein's communicator\n"
      "(run under mpirun, srun or haein run; one rank per GPU with --backend nccl)");
  describe(d, o, flags);
  parse_options(d, argc, argv, "collective");
  interpret(o, flags);
  validate(o, ranks);
  return o;
}

}  // namespace haein::bench
