// `haein-bench collective`: nccl-tests' sweep through haein's communicator, with nccl-tests'
// flags, columns and bus-bandwidth factors, and optionally the same sweep through direct
// MPI calls (--baseline mpi) or direct NCCL calls (--baseline nccl) in the same run.
#include <mpi.h>
#include <unistd.h>

#include <algorithm>
#include <boost/program_options.hpp>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <vector>

#include "bench_results.hpp"
#include "collective_sweep.hpp"
#include "commands.hpp"
#include "haein/common/error.hpp"
#include "haein/kernels/numeric.hpp"
#include "haein/runtime/communicator.hpp"
#include "haein/runtime/rank_environment.hpp"
#include "options.hpp"
#include "statistics.hpp"
#if HAEIN_BENCH_CUDA
#include <cuda_runtime.h>
#include <nccl.h>

#include <memory>

#include "haein/common/check.hpp"
#include "nccl_types.hpp"
#endif

namespace haein::bench {

namespace {

namespace po = boost::program_options;
using runtime::Communicator;
using runtime::DataType;
using runtime::ReduceOp;

struct Options {
  Collective op = Collective::kAllReduce;
  std::size_t min_bytes = 32 << 20;
  std::size_t max_bytes = 32 << 20;
  std::size_t factor = 2;
  std::size_t step = 0;
  int iterations = 20;
  int warmup = 5;
  int repeats = 5;
  bool check = true;
  DataType type = DataType::kF32;
  ReduceOp reduce = ReduceOp::kSum;
  int root = 0;
  bool device = false;
  bool own_stream = false;  ///< pass a stream of our own (OpOptions::stream) to every call
  std::string baseline;     ///< "", "mpi" or "nccl": direct calls of the library, same sweep
  std::string csv;
  std::string hdf5;
};

Options parse(int argc, char** argv, int ranks) {
  Options o;
  std::string op = "allreduce", min_bytes = "32M", max_bytes = "32M", type = "float",
              reduce = "sum", backend = "host", baseline, stream = "default";
  int check = 1;
  po::options_description d(
      "haein-bench collective: nccl-tests' sweep through haein's communicator\n"
      "(run under mpirun, srun or haein run; one rank per GPU with --backend nccl)");
  d.add_options()("help,h", "this help")("op", po::value(&op)->default_value(op),
                                         "allreduce, reducescatter, allgather, broadcast, "
                                         "reduce, alltoall")(
      "minbytes,b", po::value(&min_bytes)->default_value(min_bytes), "smallest size (8, 1K, 1M)")(
      "maxbytes,e", po::value(&max_bytes)->default_value(max_bytes), "largest size")(
      "stepfactor,f", po::value(&o.factor)->default_value(o.factor), "size multiplier")(
      "stepbytes,i", po::value(&o.step)->default_value(o.step), "size increment (instead of -f)")(
      "iters,n", po::value(&o.iterations)->default_value(o.iterations),
      "operations per timed sample")(
      "warmup_iters,w", po::value(&o.warmup)->default_value(o.warmup), "untimed operations first")(
      "repeats,R", po::value(&o.repeats)->default_value(o.repeats),
      "timed samples per size (median reported, spread = (max - min) / median)")(
      "check,c", po::value(&check)->default_value(check), "check results (0 or 1)")(
      "datatype,d", po::value(&type)->default_value(type),
      "float, half, bfloat16, double, "
      "int32, int64, uint8")("redop,o", po::value(&reduce)->default_value(reduce),
                             "sum, prod, min, max, avg")(
      "root,r", po::value(&o.root)->default_value(o.root), "root of broadcast and reduce")(
      "backend", po::value(&backend)->default_value(backend), "host (MPI) or nccl (GPU buffers)")(
      "stream", po::value(&stream)->default_value(stream),
      "--backend nccl: 'default' (no stream given: each call is ordered after the legacy "
      "default stream) or 'own' (one stream of the bench's own, as OpOptions::stream)")(
      "baseline", po::value(&baseline),
      "mpi (--backend host) or nccl (--backend nccl): the same sweep through direct calls of "
      "that library, timed in the same run")("csv", po::value(&o.csv),
                                             "write the results as CSV (rank 0)")(
      "hdf5", po::value(&o.hdf5), "write every rank's timings to this HDF5 file");
  parse_options(d, argc, argv, "collective");
  o.op = parse_collective(op);
  o.type = parse_bench_type(type);
  o.reduce = runtime::parse_reduce_op(reduce);
  o.min_bytes = parse_bytes(min_bytes);
  o.max_bytes = parse_bytes(max_bytes);
  o.check = check != 0;
  if (backend != "host" && backend != "nccl") {
    throw InvalidArgument("--backend '" + backend + "': expected host or nccl");
  }
  o.device = backend == "nccl";
  if (stream != "default" && stream != "own")
    throw InvalidArgument("--stream '" + stream + "': expected default or own");
  if (stream == "own" && !o.device) throw InvalidArgument("--stream own needs --backend nccl");
  o.own_stream = stream == "own";
  if (!baseline.empty() && baseline != "mpi" && baseline != "nccl") {
    throw InvalidArgument("--baseline '" + baseline + "': expected mpi or nccl");
  }
  o.baseline = baseline;
  if (baseline == "nccl" && !o.device) {
    throw InvalidArgument(
        "--baseline nccl compares with direct NCCL calls on GPU buffers: "
        "use it with --backend nccl");
  }
#if !HAEIN_BENCH_CUDA
  if (baseline == "nccl") {
    throw NotInThisBuild("--baseline nccl");
  }
#endif
  if (baseline == "mpi" && o.device) {
    // Open MPI from Debian is not CUDA-aware: device buffers handed to it would crash.
    throw InvalidArgument(
        "--baseline mpi times direct MPI calls on the same buffers, which --backend nccl "
        "keeps in GPU memory; MPI here is not CUDA-aware. Use --baseline mpi with "
        "--backend host");
  }
  if (baseline == "mpi" && (o.type == DataType::kF16 || o.type == DataType::kBF16)) {
    throw InvalidArgument("--baseline mpi: MPI has no " + std::string(nccl_tests_name(o.type)) +
                          " type; use float, double or an integer type");
  }
  if (o.iterations < 1 || o.warmup < 0 || o.repeats < 1) {
    throw InvalidArgument("-n and -R must be at least 1, -w at least 0");
  }
  // One rank on one GPU is how NCCL's per-call cost is measured (nccl-tests runs it too;
  // busbw is 0 there); through MPI it measures nothing.
  if (ranks < minimum_ranks(o.op) && !o.device) {
    throw InvalidArgument(std::string(name_of(o.op)) + " needs at least " +
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
  return o;
}

// Element values that every type holds exactly, and whose sums and products over a few
// ranks stay exact: 1, 2 or 3.
double input_value(int rank, std::size_t index) {
  return 1.0 + static_cast<double>((static_cast<std::size_t>(rank) + index) % 3);
}

void store(DataType type, void* buffer, std::size_t i, double value) {
  switch (type) {
    case DataType::kF32:
      static_cast<float*>(buffer)[i] = static_cast<float>(value);
      break;
    case DataType::kF64:
      static_cast<double*>(buffer)[i] = value;
      break;
    case DataType::kF16:
      static_cast<std::uint16_t*>(buffer)[i] = kernels::f32_to_f16(static_cast<float>(value));
      break;
    case DataType::kBF16:
      static_cast<std::uint16_t*>(buffer)[i] = kernels::f32_to_bf16(static_cast<float>(value));
      break;
    case DataType::kI32:
      static_cast<std::int32_t*>(buffer)[i] = static_cast<std::int32_t>(value);
      break;
    case DataType::kI64:
      static_cast<std::int64_t*>(buffer)[i] = static_cast<std::int64_t>(value);
      break;
    case DataType::kU8:
      static_cast<std::uint8_t*>(buffer)[i] = static_cast<std::uint8_t>(value);
      break;
  }
}

double load(DataType type, const void* buffer, std::size_t i) {
  switch (type) {
    case DataType::kF32:
      return static_cast<const float*>(buffer)[i];
    case DataType::kF64:
      return static_cast<const double*>(buffer)[i];
    case DataType::kF16:
      return kernels::f16_to_f32(static_cast<const std::uint16_t*>(buffer)[i]);
    case DataType::kBF16:
      return kernels::bf16_to_f32(static_cast<const std::uint16_t*>(buffer)[i]);
    case DataType::kI32:
      return static_cast<const std::int32_t*>(buffer)[i];
    case DataType::kI64:
      return static_cast<double>(static_cast<const std::int64_t*>(buffer)[i]);
    case DataType::kU8:
      return static_cast<const std::uint8_t*>(buffer)[i];
  }
  return 0;
}

// The reduction over ranks of input_value(r, index).
double reduced(ReduceOp op, DataType type, int ranks, std::size_t index) {
  double result = input_value(0, index);
  for (int r = 1; r < ranks; ++r) {
    const double v = input_value(r, index);
    switch (op) {
      case ReduceOp::kSum:
      case ReduceOp::kAvg:
        result += v;
        break;
      case ReduceOp::kProd:
        result *= v;
        break;
      case ReduceOp::kMin:
        result = std::min(result, v);
        break;
      case ReduceOp::kMax:
        result = std::max(result, v);
        break;
    }
  }
  if (op == ReduceOp::kAvg) {
    result = runtime::is_floating(type) ? result / ranks : std::trunc(result / ranks);
  }
  return result;
}

bool matches(DataType type, double got, double expected) {
  const double tolerance = type == DataType::kF16 || type == DataType::kBF16 ? 1e-2 : 1e-6;
  return std::abs(got - expected) <= tolerance * std::max(1.0, std::abs(expected));
}

// Host or device memory of `bytes`, with copies to and from the host.
class Buffer {
 public:
  Buffer(std::size_t bytes, bool device) : bytes_(bytes), device_(device) {
#if HAEIN_BENCH_CUDA
    if (device_) {
      if (cudaMalloc(&data_, std::max<std::size_t>(bytes, 1)) != cudaSuccess) {
        throw Error("cudaMalloc of " + std::to_string(bytes) + " bytes failed");
      }
      return;
    }
#endif
    host_.resize(std::max<std::size_t>(bytes, 1));
    data_ = host_.data();
  }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  ~Buffer() {
#if HAEIN_BENCH_CUDA
    if (device_) cudaFree(data_);
#endif
  }
  unsigned char* data() { return static_cast<unsigned char*>(data_); }
  void upload(const void* from, std::size_t offset, std::size_t bytes) {
#if HAEIN_BENCH_CUDA
    if (device_) {
      HAEIN_CUDA_CHECK(cudaMemcpy(data() + offset, from, bytes, cudaMemcpyHostToDevice));
      return;
    }
#endif
    std::memcpy(data() + offset, from, bytes);
  }
  void download(void* to, std::size_t offset, std::size_t bytes) {
#if HAEIN_BENCH_CUDA
    if (device_) {
      HAEIN_CUDA_CHECK(cudaMemcpy(to, data() + offset, bytes, cudaMemcpyDeviceToHost));
      return;
    }
#endif
    std::memcpy(to, data() + offset, bytes);
  }
  void synchronize() {
#if HAEIN_BENCH_CUDA
    if (device_) cudaDeviceSynchronize();
#endif
  }

 private:
  std::size_t bytes_;
  bool device_;
  void* data_ = nullptr;
  std::vector<unsigned char> host_;
};

MPI_Datatype mpi_type(DataType type) {
  switch (type) {
    case DataType::kF32:
      return MPI_FLOAT;
    case DataType::kF64:
      return MPI_DOUBLE;
    case DataType::kI32:
      return MPI_INT32_T;
    case DataType::kI64:
      return MPI_INT64_T;
    case DataType::kU8:
      return MPI_UINT8_T;
    default:
      return MPI_DATATYPE_NULL;
  }
}

MPI_Op mpi_op(ReduceOp op) {
  switch (op) {
    case ReduceOp::kProd:
      return MPI_PROD;
    case ReduceOp::kMin:
      return MPI_MIN;
    case ReduceOp::kMax:
      return MPI_MAX;
    default:
      return MPI_SUM;  // MPI has no average: the baseline times the sum
  }
}

enum class Mode { kOutOfPlace, kInPlace, kBaseline };

#if HAEIN_BENCH_CUDA
/// NCCL's own communicator, outside haein, for --baseline nccl. Made by ncclCommInitRank
/// without a config, so NCCL_COMM_BLOCKING chooses blocking or nonblocking: the kit
/// measures both against haein's (always nonblocking) communicator.
class DirectNccl {
 public:
  DirectNccl(int rank, int ranks) {
    ncclUniqueId id{};
    if (rank == 0) HAEIN_NCCL_CHECK(ncclGetUniqueId(&id));
    MPI_Bcast(&id, sizeof id, MPI_BYTE, 0, MPI_COMM_WORLD);
    settle(ncclCommInitRank(&comm_, ranks, id, rank), "ncclCommInitRank");
    HAEIN_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
  }
  ~DirectNccl() {
    if (comm_ != nullptr) ncclCommDestroy(comm_);
    if (stream_ != nullptr) cudaStreamDestroy(stream_);
  }
  DirectNccl(const DirectNccl&) = delete;
  DirectNccl& operator=(const DirectNccl&) = delete;

  ncclComm_t comm() const { return comm_; }
  cudaStream_t stream() const { return stream_; }

  /// A nonblocking communicator answers ncclInProgress: wait until the call is enqueued.
  void settle(ncclResult_t status, const char* what) const {
    while (status == ncclInProgress && comm_ != nullptr) {
      ncclResult_t state = ncclSuccess;
      HAEIN_NCCL_CHECK(ncclCommGetAsyncError(comm_, &state));
      status = state;
    }
    if (status != ncclSuccess)
      ::haein::detail::raise_nccl_error(what, static_cast<int>(status), ncclGetErrorString(status),
                                        ncclGetLastError(comm_), __FILE__, __LINE__);
  }

 private:
  ncclComm_t comm_ = nullptr;
  cudaStream_t stream_ = nullptr;
};
#endif

// One operation of `point`'s size. Buffers as NCCL lays them out: see communicator.hpp.
struct Runner {
  const Options& o;
  Communicator& comm;
  Buffer& send;
  Buffer& recv;
  int rank;
  int ranks;

  void run(const SweepPoint& point, Mode mode) {
    const std::size_t element = runtime::size_of(o.type);
    const std::size_t n = static_cast<std::size_t>(ranks);
    const std::size_t block = point.count / n;  // per-rank count of the split operations
    unsigned char* in = send.data();
    unsigned char* out = mode == Mode::kInPlace ? send.data() : recv.data();
#if HAEIN_BENCH_CUDA
    if (mode == Mode::kBaseline && o.baseline == "nccl") {
      run_direct_nccl(point, in, out, block);
      return;
    }
#endif
    if (mode == Mode::kBaseline) {
      const MPI_Datatype t = mpi_type(o.type);
      const int count = static_cast<int>(point.count);
      const int per_rank = static_cast<int>(block);
      switch (o.op) {
        case Collective::kAllReduce:
          MPI_Allreduce(in, out, count, t, mpi_op(o.reduce), MPI_COMM_WORLD);
          break;
        case Collective::kReduceScatter:
          MPI_Reduce_scatter_block(in, out, per_rank, t, mpi_op(o.reduce), MPI_COMM_WORLD);
          break;
        case Collective::kAllGather:
          MPI_Allgather(in, per_rank, t, out, per_rank, t, MPI_COMM_WORLD);
          break;
        case Collective::kBroadcast:
          MPI_Bcast(rank == o.root ? in : out, count, t, o.root, MPI_COMM_WORLD);
          break;
        case Collective::kReduce:
          MPI_Reduce(in, out, count, t, mpi_op(o.reduce), o.root, MPI_COMM_WORLD);
          break;
        case Collective::kAllToAll:
          MPI_Alltoall(in, per_rank, t, out, per_rank, t, MPI_COMM_WORLD);
          break;
      }
      return;
    }
    runtime::OpOptions async;
    async.async = o.device;  // device work is queued; the sample ends with a synchronize
    async.stream = stream;
    runtime::Work work;
    switch (o.op) {
      case Collective::kAllReduce:
        work = comm.all_reduce(in, out, point.count, o.type, o.reduce, async);
        break;
      case Collective::kReduceScatter:
        work = comm.reduce_scatter(
            in,
            mode == Mode::kInPlace ? in + static_cast<std::size_t>(rank) * block * element : out,
            block, o.type, o.reduce, async);
        break;
      case Collective::kAllGather:
        work = comm.all_gather(
            mode == Mode::kInPlace ? out + static_cast<std::size_t>(rank) * block * element : in,
            out, block, o.type, async);
        break;
      case Collective::kBroadcast:
        work = comm.broadcast(in, out, point.count, o.type, o.root, async);
        break;
      case Collective::kReduce:
        work = comm.reduce(in, out, point.count, o.type, o.reduce, o.root, async);
        break;
      case Collective::kAllToAll:
        work = comm.all_to_all(in, out, block, o.type, async);
        break;
    }
    if (o.device) pending.push_back(std::move(work));
  }

#if HAEIN_BENCH_CUDA
  void run_direct_nccl(const SweepPoint& point, unsigned char* in, unsigned char* out,
                       std::size_t block) {
    using runtime::detail::nccl_op;
    using runtime::detail::nccl_type;
    const ncclComm_t c = direct->comm();
    const cudaStream_t s = direct->stream();
    const ncclDataType_t t = nccl_type(o.type);
    const std::size_t bytes = block * runtime::size_of(o.type);
    switch (o.op) {
      case Collective::kAllReduce:
        direct->settle(ncclAllReduce(in, out, point.count, t, nccl_op(o.reduce), c, s),
                       "ncclAllReduce");
        break;
      case Collective::kReduceScatter:
        direct->settle(ncclReduceScatter(in, out, block, t, nccl_op(o.reduce), c, s),
                       "ncclReduceScatter");
        break;
      case Collective::kAllGather:
        direct->settle(ncclAllGather(in, out, block, t, c, s), "ncclAllGather");
        break;
      case Collective::kBroadcast:
        direct->settle(ncclBroadcast(in, out, point.count, t, o.root, c, s), "ncclBroadcast");
        break;
      case Collective::kReduce:
        direct->settle(ncclReduce(in, out, point.count, t, nccl_op(o.reduce), o.root, c, s),
                       "ncclReduce");
        break;
      case Collective::kAllToAll: {
        HAEIN_NCCL_CHECK(ncclGroupStart());
        ncclResult_t status = ncclSuccess;
        for (int peer = 0; peer < ranks && (status == ncclSuccess || status == ncclInProgress);
             ++peer) {
          status = ncclSend(in + peer * bytes, block, t, peer, c, s);
          if (status == ncclSuccess || status == ncclInProgress)
            status = ncclRecv(out + peer * bytes, block, t, peer, c, s);
        }
        const ncclResult_t end = ncclGroupEnd();
        direct->settle(status == ncclInProgress || status == ncclSuccess ? end : status,
                       "ncclSend/ncclRecv group");
        break;
      }
    }
  }
#endif

  void finish() {
    for (runtime::Work& work : pending) work.wait();
    pending.clear();
    send.synchronize();
  }

  // Inputs of a check: rank r's send buffer holds input_value(r, i).
  void fill(const SweepPoint& point, Mode mode) {
    const std::size_t element = runtime::size_of(o.type);
    const std::size_t block = point.count / static_cast<std::size_t>(ranks);
    std::vector<unsigned char> host(point.bytes);
    for (std::size_t i = 0; i < point.count; ++i)
      store(o.type, host.data(), i, input_value(rank, i));
    if (mode == Mode::kInPlace && o.op == Collective::kAllGather) {
      // In place, this rank's contribution sits at its block of the output.
      std::vector<unsigned char> mine(point.bytes, 0);
      std::memcpy(mine.data() + static_cast<std::size_t>(rank) * block * element, host.data(),
                  block * element);
      send.upload(mine.data(), 0, point.bytes);
    } else {
      send.upload(host.data(), 0, point.bytes);
    }
    std::vector<unsigned char> poison(point.bytes, 0xFF);
    if (mode != Mode::kInPlace) recv.upload(poison.data(), 0, point.bytes);
  }

  // Elements of this rank's output that differ from what the operation should give.
  std::size_t wrong(const SweepPoint& point, Mode mode) {
    const std::size_t element = runtime::size_of(o.type);
    const std::size_t block = point.count / static_cast<std::size_t>(ranks);
    std::vector<unsigned char> host(point.bytes);
    (mode == Mode::kInPlace ? send : recv).download(host.data(), 0, point.bytes);
    std::size_t errors = 0;
    auto expect = [&](std::size_t at, double value) {
      if (!matches(o.type, load(o.type, host.data(), at), value)) ++errors;
    };
    switch (o.op) {
      case Collective::kAllReduce:
        for (std::size_t i = 0; i < point.count; ++i)
          expect(i, reduced(o.reduce, o.type, ranks, i));
        break;
      case Collective::kReduceScatter: {
        const std::size_t base =
            mode == Mode::kInPlace ? static_cast<std::size_t>(rank) * block : 0;
        for (std::size_t i = 0; i < block; ++i) {
          expect(base + i,
                 reduced(o.reduce, o.type, ranks, static_cast<std::size_t>(rank) * block + i));
        }
        break;
      }
      case Collective::kAllGather:
        for (int s = 0; s < ranks; ++s) {
          for (std::size_t i = 0; i < block; ++i) {
            expect(static_cast<std::size_t>(s) * block + i, input_value(s, i));
          }
        }
        break;
      case Collective::kBroadcast:
        for (std::size_t i = 0; i < point.count; ++i) expect(i, input_value(o.root, i));
        break;
      case Collective::kReduce:
        if (rank == o.root) {
          for (std::size_t i = 0; i < point.count; ++i) {
            expect(i, reduced(o.reduce, o.type, ranks, i));
          }
        }
        break;
      case Collective::kAllToAll:
        for (int p = 0; p < ranks; ++p) {
          for (std::size_t i = 0; i < block; ++i) {
            expect(static_cast<std::size_t>(p) * block + i,
                   input_value(p, static_cast<std::size_t>(rank) * block + i));
          }
        }
        break;
    }
    (void)element;
    return errors;
  }

  std::vector<runtime::Work> pending;
#if HAEIN_BENCH_CUDA
  const DirectNccl* direct = nullptr;
#endif
  void* stream = nullptr;  ///< OpOptions::stream of every call (--stream own)
};

struct Timing {
  std::vector<double> mine_us;  // this rank, per repeat
  double median_us = 0;         // of the slowest rank per repeat
  double spread = 0;            // (max - min) / median of those
  std::size_t wrong = 0;
};

Timing measure(Runner& runner, const SweepPoint& point, Mode mode) {
  const Options& o = runner.o;
  Timing timing;
  if (o.check && mode != Mode::kBaseline) runner.fill(point, mode);
  for (int i = 0; i < o.warmup; ++i) runner.run(point, mode);
  runner.finish();
  std::vector<double> slowest;
  for (int r = 0; r < o.repeats; ++r) {
    MPI_Barrier(MPI_COMM_WORLD);
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < o.iterations; ++i) runner.run(point, mode);
    runner.finish();
    const double us =
        std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start)
            .count() /
        o.iterations;
    timing.mine_us.push_back(us);
    double max_us = us;
    MPI_Allreduce(MPI_IN_PLACE, &max_us, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    slowest.push_back(max_us);
  }
  timing.median_us = median(slowest);
  const auto [low, high] = std::minmax_element(slowest.begin(), slowest.end());
  timing.spread = timing.median_us > 0 ? (*high - *low) / timing.median_us : 0;
  if (o.check && mode != Mode::kBaseline) {
    runner.fill(point, mode);
    runner.run(point, mode);
    runner.finish();
    unsigned long long errors = runner.wrong(point, mode);
    MPI_Allreduce(MPI_IN_PLACE, &errors, 1, MPI_UNSIGNED_LONG_LONG, MPI_SUM, MPI_COMM_WORLD);
    timing.wrong = errors;
  }
  return timing;
}

}  // namespace

int collective_command(int argc, char** argv) {
  Communicator comm = Communicator::world();
  const int rank = comm.rank();
  const int ranks = comm.size();
  const Options o = parse(argc, argv, ranks);
#if HAEIN_BENCH_CUDA
  if (o.device) {
    int devices = 0;
    if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
      throw Error("--backend nccl: no GPU is visible to rank " + std::to_string(rank));
    }
    // The node-local rank of whichever launcher started us (haein run/torchrun, mpirun,
    // srun); the global rank would put ranks of the second node on missing GPUs.
    const int local_rank = runtime::read_rank_environment().local_rank;
    HAEIN_CUDA_CHECK(cudaSetDevice(local_rank % devices));
  }
#endif
  const bool split = o.op == Collective::kReduceScatter || o.op == Collective::kAllGather ||
                     o.op == Collective::kAllToAll;
  const std::vector<SweepPoint> points =
      sweep(o.min_bytes, o.max_bytes, o.factor, o.step, runtime::size_of(o.type),
            split ? static_cast<std::size_t>(ranks) : 1);
  if (points.empty()) {
    throw InvalidArgument("no size between -b and -e holds one element per rank");
  }
  const RunAttributes attributes = standard_attributes(argc, argv);
  Buffer send(points.back().bytes, o.device);
  Buffer recv(points.back().bytes, o.device);
  Runner runner{o, comm, send, recv, rank, ranks, {}};
  const bool baseline = !o.baseline.empty();
#if HAEIN_BENCH_CUDA
  std::unique_ptr<DirectNccl> direct_nccl;
  if (o.baseline == "nccl") {
    direct_nccl = std::make_unique<DirectNccl>(rank, ranks);
    runner.direct = direct_nccl.get();
  }
  struct OwnStream {
    cudaStream_t stream = nullptr;
    ~OwnStream() {
      if (stream != nullptr) cudaStreamDestroy(stream);
    }
  } own;
  if (o.own_stream) {
    HAEIN_CUDA_CHECK(cudaStreamCreateWithFlags(&own.stream, cudaStreamNonBlocking));
    runner.stream = own.stream;
  }
#endif
  const bool leader = rank == 0;
  const std::string backend = o.device ? "nccl" : "host";
  const std::string redop = reduces(o.op) ? std::string(runtime::name_of(o.reduce)) : "none";
  const std::string type_name(nccl_tests_name(o.type));
  const double factor = bus_factor(o.op, ranks);
  const bool progress = leader && ::isatty(STDERR_FILENO);

  CsvFile csv;
  if (leader) {
    csv = CsvFile(o.csv, {"op",
                          "backend",
                          "ranks",
                          "size",
                          "count",
                          "type",
                          "redop",
                          "root",
                          "time_us",
                          "algbw",
                          "busbw",
                          "wrong",
                          "inplace_time_us",
                          "inplace_algbw",
                          "inplace_busbw",
                          "inplace_wrong",
                          "spread_pct",
                          "baseline",
                          "baseline_time_us",
                          "baseline_busbw",
                          "baseline_ratio"});
    std::printf("# haein-bench collective: %s, backend %s, %d ranks on %s\n",
                std::string(name_of(o.op)).c_str(), backend.c_str(), ranks,
                attributes.at("hosts").c_str());
    std::printf("# -b %zu -e %zu -f %zu -i %zu -n %d -w %d -R %d -c %d -d %s -o %s -r %d%s\n",
                o.min_bytes, o.max_bytes, o.factor, o.step, o.iterations, o.warmup, o.repeats,
                o.check ? 1 : 0, type_name.c_str(), redop.c_str(), o.root,
                ((o.baseline.empty() ? "" : " --baseline " + o.baseline) +
                 (o.own_stream ? " --stream own" : ""))
                    .c_str());
    std::printf("# busbw = algbw * %.4f (%s); time: median over %d samples of the slowest rank\n",
                factor, std::string(name_of(o.op)).c_str(), o.repeats);
    std::printf("#\n# %10s %12s %8s %6s %6s %31s %31s %7s", "", "", "", "", "",
                "out-of-place                 ", "in-place                     ", "");
    if (baseline)
      std::printf(" %27s", o.baseline == "mpi" ? "direct MPI        " : "direct NCCL       ");
    std::printf("\n# %10s %12s %8s %6s %6s %9s %7s %7s %6s %9s %7s %7s %6s %7s", "size", "count",
                "type", "redop", "root", "time", "algbw", "busbw", "#wrong", "time", "algbw",
                "busbw", "#wrong", "spread");
    if (baseline) std::printf(" %9s %7s %9s", "time", "busbw", (o.baseline + "/haein").c_str());
    std::printf("\n# %10s %12s %8s %6s %6s %9s %7s %7s %6s %9s %7s %7s %6s %7s", "(B)",
                "(elements)", "", "", "", "(us)", "(GB/s)", "(GB/s)", "", "(us)", "(GB/s)",
                "(GB/s)", "", "(%)");
    if (baseline) std::printf(" %9s %7s %9s", "(us)", "(GB/s)", "(time)");
    std::printf("\n");
    std::fflush(stdout);
  }

  std::vector<Measurement> measurements;
  double busbw_sum = 0;
  std::size_t wrong_total = 0;
  for (std::size_t p = 0; p < points.size(); ++p) {
    const SweepPoint& point = points[p];
    if (progress) {
      std::fprintf(stderr, "\r# %zu/%zu: %zu bytes ", p + 1, points.size(), point.bytes);
      std::fflush(stderr);
    }
    const Timing out_of_place = measure(runner, point, Mode::kOutOfPlace);
    const Timing in_place = measure(runner, point, Mode::kInPlace);
    Timing direct;
    if (baseline) direct = measure(runner, point, Mode::kBaseline);
    const auto algbw = [&](double us) { return us > 0 ? point.bytes / us / 1e3 : 0.0; };
    busbw_sum += algbw(out_of_place.median_us) * factor;
    wrong_total += out_of_place.wrong + in_place.wrong;
    const std::string wrong_oop = o.check ? std::to_string(out_of_place.wrong) : "N/A";
    const std::string wrong_ip = o.check ? std::to_string(in_place.wrong) : "N/A";
    const int root = rooted(o.op) ? o.root : -1;
    const double spread = 100 * std::max(out_of_place.spread, in_place.spread);
    if (leader) {
      if (progress) std::fprintf(stderr, "\r%40s\r", "");
      std::printf("  %10zu %12zu %8s %6s %6d %9.2f %7.2f %7.2f %6s %9.2f %7.2f %7.2f %6s %7.1f",
                  point.bytes, point.count, type_name.c_str(), redop.c_str(), root,
                  out_of_place.median_us, algbw(out_of_place.median_us),
                  algbw(out_of_place.median_us) * factor, wrong_oop.c_str(), in_place.median_us,
                  algbw(in_place.median_us), algbw(in_place.median_us) * factor, wrong_ip.c_str(),
                  spread);
      if (baseline) {
        std::printf(" %9.2f %7.2f %9.3f", direct.median_us, algbw(direct.median_us) * factor,
                    direct.median_us / out_of_place.median_us);
      }
      std::printf("\n");
      std::fflush(stdout);
      csv.row({std::string(name_of(o.op)),
               backend,
               std::to_string(ranks),
               std::to_string(point.bytes),
               std::to_string(point.count),
               type_name,
               redop,
               std::to_string(root),
               format("%.3f", out_of_place.median_us),
               format("%.4f", algbw(out_of_place.median_us)),
               format("%.4f", algbw(out_of_place.median_us) * factor),
               wrong_oop,
               format("%.3f", in_place.median_us),
               format("%.4f", algbw(in_place.median_us)),
               format("%.4f", algbw(in_place.median_us) * factor),
               wrong_ip,
               format("%.2f", spread),
               o.baseline,
               baseline ? format("%.3f", direct.median_us) : "",
               baseline ? format("%.4f", algbw(direct.median_us) * factor) : "",
               baseline ? format("%.4f", direct.median_us / out_of_place.median_us) : ""});
    }
    const std::string base = std::string(name_of(o.op)) + "/" + backend + "/";
    auto record = [&](const std::string& mode, const Timing& t) {
      measurements.push_back({base + mode,
                              std::to_string(point.bytes),
                              t.mine_us,
                              {{"bytes", static_cast<double>(point.bytes)},
                               {"count", static_cast<double>(point.count)},
                               {"median_us", t.median_us},
                               {"algbw_gbs", algbw(t.median_us)},
                               {"busbw_gbs", algbw(t.median_us) * factor},
                               {"spread", t.spread},
                               {"wrong", static_cast<double>(t.wrong)}}});
    };
    record("out_of_place", out_of_place);
    record("in_place", in_place);
    if (baseline) record(o.baseline + "_baseline", direct);
  }
  if (leader) {
    std::printf("# Out of bounds values : %zu %s\n", wrong_total,
                !o.check ? "(not checked)" : (wrong_total == 0 ? "OK" : "FAILED"));
    std::printf("# Avg bus bandwidth    : %g \n#\n",
                busbw_sum / static_cast<double>(points.size()));
    std::fflush(stdout);
  }
  if (!o.hdf5.empty()) {
    RunAttributes all = attributes;
    all["benchmark"] = "collective";
    all["op"] = std::string(name_of(o.op));
    all["backend"] = backend;
    all["type"] = type_name;
    all["redop"] = redop;
    all["ranks"] = std::to_string(ranks);
    write_hdf5(o.hdf5, all, measurements);
    if (leader) std::printf("# HDF5: %s\n", o.hdf5.c_str());
  }
  if (leader && !o.csv.empty()) std::printf("# CSV: %s\n", o.csv.c_str());
  return wrong_total == 0 ? 0 : 1;
}

}  // namespace haein::bench
