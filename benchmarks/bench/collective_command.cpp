// `haein-bench collective`: nccl-tests' sweep through haein's communicator, with nccl-tests'
// flags, columns and bus-bandwidth factors, and optionally the same sweep through direct
// MPI calls (--baseline mpi) or direct NCCL calls (--baseline nccl) in the same run. What
// each operation does is its case (collective_case.hpp, cases/); what a size measured is a
// row, whose columns (collective_row.hpp) make the table, the CSV and the HDF5 attributes.
#include <mpi.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <vector>

#include "bench_buffer.hpp"
#include "bench_results.hpp"
#include "collective_case.hpp"
#include "collective_options.hpp"
#include "collective_row.hpp"
#include "collective_sweep.hpp"
#include "commands.hpp"
#include "haein/common/error.hpp"
#include "haein/runtime/communicator.hpp"
#include "haein/runtime/rank_environment.hpp"
#include "statistics.hpp"
#if HAEIN_BENCH_CUDA
#include <cuda_runtime.h>

#include "direct_nccl.hpp"
#include "haein/common/check.hpp"
#endif

namespace haein::bench {

namespace {

using runtime::Communicator;

enum class Mode { kOutOfPlace, kInPlace, kBaseline };

// One operation of a size in a mode, through the operation's case.
struct Runner {
  const CollectiveOptions& o;
  const CollectiveCase& op_case;
  CaseSetup setup;
  Communicator& comm;
  BenchBuffer& send;
  BenchBuffer& recv;
  std::vector<runtime::Work> pending;
  const DirectNccl* direct = nullptr;  ///< --baseline nccl or nccl-event
  void* stream = nullptr;              ///< OpOptions::stream of every call (--stream own)

  // Buffers as NCCL lays them out: see communicator.hpp.
  CaseCall call(const SweepPoint& point, Mode mode) {
    const bool in_place = mode == Mode::kInPlace;
    return {point.count, send.data(), in_place ? send.data() : recv.data(), in_place};
  }

  void run(const SweepPoint& point, Mode mode) {
    const CaseCall c = call(point, mode);
    if (mode == Mode::kBaseline) {
      if (o.direct_nccl()) {
        op_case.run_nccl(*direct, setup, c);
#if HAEIN_BENCH_CUDA
        if (o.baseline == "nccl-event") direct->record_done();
#endif
      } else {
        op_case.run_mpi(setup, c);
      }
      return;
    }
    runtime::OpOptions options;
    options.async = o.device;  // device work is queued; the sample ends with a synchronize
    options.stream = stream;
    runtime::Work work = op_case.run(comm, setup, c, options);
    if (o.device) pending.push_back(std::move(work));
  }

  void finish() {
    for (runtime::Work& work : pending) work.wait();
    pending.clear();
    send.synchronize();
  }

  // The inputs of a checked run; the output poisoned.
  void fill(const SweepPoint& point, Mode mode) {
    std::vector<unsigned char> host(point.bytes, 0);
    op_case.fill(setup, call(point, mode), host.data());
    send.upload(host.data(), point.bytes);
    std::vector<unsigned char> poison(point.bytes, 0xFF);
    if (mode != Mode::kInPlace) recv.upload(poison.data(), point.bytes);
  }

  // Elements of this rank's output that differ from what the operation should give.
  std::size_t wrong(const SweepPoint& point, Mode mode) {
    std::vector<unsigned char> host(point.bytes);
    (mode == Mode::kInPlace ? send : recv).download(host.data(), point.bytes);
    return op_case.wrong(setup, call(point, mode), host.data());
  }
};

Timing measure(Runner& runner, const SweepPoint& point, Mode mode) {
  const CollectiveOptions& o = runner.o;
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

#if HAEIN_BENCH_CUDA
// What --backend nccl needs besides haein: the GPU, NCCL's own communicator for --baseline
// nccl, and a stream of our own for --stream own.
struct DeviceSide {
  std::unique_ptr<DirectNccl> direct;
  cudaStream_t stream = nullptr;
  ~DeviceSide() {
    if (stream != nullptr) cudaStreamDestroy(stream);
  }
};

void select_device(const CollectiveOptions& o, int rank) {
  if (!o.device) return;
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    throw Error("--backend nccl: no GPU is visible to rank " + std::to_string(rank));
  }
  // The node-local rank of whichever launcher started us (haein run/torchrun, mpirun,
  // srun); the global rank would put ranks of the second node on missing GPUs.
  const int local_rank = runtime::read_rank_environment().local_rank;
  HAEIN_CUDA_CHECK(cudaSetDevice(local_rank % devices));
}

void prepare_device_side(const CollectiveOptions& o, Runner& runner, DeviceSide& side) {
  if (o.direct_nccl()) {
    side.direct = std::make_unique<DirectNccl>(runner.setup.rank, runner.setup.ranks);
    runner.direct = side.direct.get();
  }
  if (o.own_stream) {
    HAEIN_CUDA_CHECK(cudaStreamCreateWithFlags(&side.stream, cudaStreamNonBlocking));
    runner.stream = side.stream;
  }
}
#endif

RunFacts facts_of(const CollectiveOptions& o, int ranks) {
  RunFacts facts;
  facts.op = std::string(traits(o.op).compact);
  facts.backend = o.device ? "nccl" : "host";
  facts.type = std::string(nccl_tests_name(o.type));
  facts.redop = reduces(o.op) ? std::string(runtime::name_of(o.reduce)) : "none";
  facts.baseline = o.baseline;
  facts.ranks = ranks;
  facts.root = rooted(o.op) ? o.root : -1;
  facts.bus_factor = bus_factor(o.op, ranks);
  facts.checked = o.check;
  return facts;
}

void print_preamble(const CollectiveOptions& o, const RunFacts& facts,
                    const RunAttributes& attributes, const std::vector<Column>& columns) {
  std::printf("# haein-bench collective: %s, backend %s, %d ranks on %s\n", facts.op.c_str(),
              facts.backend.c_str(), facts.ranks, attributes.at("hosts").c_str());
  std::printf("# -b %zu -e %zu -f %zu -i %zu -n %d -w %d -R %d -c %d -d %s -o %s -r %d%s\n",
              o.min_bytes, o.max_bytes, o.factor, o.step, o.iterations, o.warmup, o.repeats,
              o.check ? 1 : 0, facts.type.c_str(), facts.redop.c_str(), o.root,
              ((o.baseline.empty() ? "" : " --baseline " + o.baseline) +
               (o.own_stream ? " --stream own" : ""))
                  .c_str());
  std::printf("# busbw = algbw * %.4f (%s); time: median over %d samples of the slowest rank\n",
              facts.bus_factor, facts.op.c_str(), o.repeats);
  std::printf("%s", table_heading(columns).c_str());
  std::fflush(stdout);
}

/// Measures every size; rank 0 prints each row and writes it to the CSV as it goes.
/// Returns the elements wrong over the sweep; adds the average busbw's sum to `busbw_sum`.
std::size_t sweep_rows(Runner& runner, const std::vector<SweepPoint>& points,
                       const std::vector<Column>& columns, const RunFacts& facts, CsvFile& csv,
                       std::vector<Measurement>& measurements, double& busbw_sum) {
  const bool leader = runner.setup.rank == 0;
  const bool progress = leader && ::isatty(STDERR_FILENO);
  std::size_t wrong_total = 0;
  for (std::size_t p = 0; p < points.size(); ++p) {
    CollectiveRow row;
    row.point = points[p];
    if (progress) {
      std::fprintf(stderr, "\r# %zu/%zu: %zu bytes ", p + 1, points.size(), row.point.bytes);
      std::fflush(stderr);
    }
    row.out_of_place = measure(runner, row.point, Mode::kOutOfPlace);
    row.in_place = measure(runner, row.point, Mode::kInPlace);
    if (!facts.baseline.empty()) row.baseline = measure(runner, row.point, Mode::kBaseline);
    const double median_us = row.out_of_place.median_us;
    busbw_sum += (median_us > 0 ? row.point.bytes / median_us / 1e3 : 0.0) * facts.bus_factor;
    wrong_total += row.out_of_place.wrong + row.in_place.wrong;
    if (leader) {
      if (progress) std::fprintf(stderr, "\r%40s\r", "");
      std::printf("%s\n", table_line(columns, row).c_str());
      std::fflush(stdout);
      csv.row(csv_record(columns, row));
    }
    for (Measurement& m : hdf5_measurements(columns, facts, row))
      measurements.push_back(std::move(m));
  }
  return wrong_total;
}

}  // namespace

int collective_command(int argc, char** argv) {
  Communicator comm = Communicator::world();
  const int rank = comm.rank();
  const int ranks = comm.size();
  const CollectiveOptions o = parse_collective_options(argc, argv, ranks);
#if HAEIN_BENCH_CUDA
  select_device(o, rank);
#endif
  const CollectiveCase& op_case = case_of(o.op);
  const std::vector<SweepPoint> points =
      sweep(o.min_bytes, o.max_bytes, o.factor, o.step, runtime::size_of(o.type),
            op_case.splits() ? static_cast<std::size_t>(ranks) : 1);
  if (points.empty()) {
    throw InvalidArgument("no size between -b and -e holds one element per rank");
  }
  const RunAttributes attributes = standard_attributes(argc, argv);
  BenchBuffer send(points.back().bytes, o.device);
  BenchBuffer recv(points.back().bytes, o.device);
  Runner runner{o, op_case, {o.op, o.type, o.reduce, o.root, rank, ranks}, comm, send, recv, {}};
#if HAEIN_BENCH_CUDA
  DeviceSide device_side;
  prepare_device_side(o, runner, device_side);
#endif
  const bool leader = rank == 0;
  const RunFacts facts = facts_of(o, ranks);
  const std::vector<Column> columns = collective_columns(facts);
  CsvFile csv;
  if (leader) {
    csv = CsvFile(o.csv, csv_header(columns));
    print_preamble(o, facts, attributes, columns);
  }
  std::vector<Measurement> measurements;
  double busbw_sum = 0;
  const std::size_t wrong_total =
      sweep_rows(runner, points, columns, facts, csv, measurements, busbw_sum);
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
    all["op"] = facts.op;
    all["backend"] = facts.backend;
    all["type"] = facts.type;
    all["redop"] = facts.redop;
    all["ranks"] = std::to_string(ranks);
    write_hdf5(o.hdf5, all, measurements);
    if (leader) std::printf("# HDF5: %s\n", o.hdf5.c_str());
  }
  if (leader && !o.csv.empty()) std::printf("# CSV: %s\n", o.csv.c_str());
  return wrong_total == 0 ? 0 : 1;
}

}  // namespace haein::bench
