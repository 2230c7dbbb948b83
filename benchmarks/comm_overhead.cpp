// What the communicator costs on top of MPI: host all-reduce through
// haein::runtime::Communicator against a direct MPI_Allreduce on the same ranks, in the
// same run, interleaved sample by sample; and the same with fingerprint checking on.
//
//   mpirun -np 2 haein_comm_bench [-b 8] [-e 64M] [-f 2] [-n samples]
//
// Each sample times a batch of back-to-back all-reduces (batch sized to ~2 ms); the table
// shows the median per operation over the samples of rank 0, algbw = bytes / time and
// busbw = algbw * 2 (n - 1) / n as nccl-tests define them.
#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "haein/runtime/communicator.hpp"
#include "statistics.hpp"

namespace {

using haein::bench::median;

using haein::runtime::Communicator;
using haein::runtime::CommunicatorOptions;
using haein::runtime::DataType;
using haein::runtime::MpiBootstrap;
using haein::runtime::ReduceOp;

std::size_t parse_size(const char* text) {
  char* end = nullptr;
  double value = std::strtod(text, &end);
  switch (*end) {
    case 'K':
      value *= 1024;
      break;
    case 'M':
      value *= 1024 * 1024;
      break;
    case 'G':
      value *= 1024.0 * 1024 * 1024;
      break;
    default:
      break;
  }
  return static_cast<std::size_t>(value);
}

}  // namespace

int main(int argc, char** argv) {
  std::size_t begin = 8, end = 64 << 20;
  int factor = 2, samples = 21;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "-b")
      begin = parse_size(argv[i + 1]);
    else if (flag == "-e")
      end = parse_size(argv[i + 1]);
    else if (flag == "-f")
      factor = std::atoi(argv[i + 1]);
    else if (flag == "-n")
      samples = std::atoi(argv[i + 1]);
    else {
      std::fprintf(stderr, "haein_comm_bench: unknown flag %s (expected -b -e -f -n)\n", argv[i]);
      return 2;
    }
  }
  if (begin < 4 || end < begin || factor < 2 || samples < 1) {
    std::fprintf(stderr, "haein_comm_bench: need 4 <= -b <= -e, -f >= 2, -n >= 1\n");
    return 2;
  }

  Communicator plain = Communicator::world();
  CommunicatorOptions checking = plain.options();
  checking.check_collectives = true;
  Communicator checked(MpiBootstrap::world(), checking);
  MPI_Comm direct;
  MPI_Comm_dup(MPI_COMM_WORLD, &direct);
  const int rank = plain.rank(), ranks = plain.size();
  const double bus_factor = 2.0 * (ranks - 1) / ranks;

  if (rank == 0) {
    std::printf("# host all-reduce (f32 sum, out of place), %d ranks, median of %d samples\n",
                ranks, samples);
    std::printf("# %12s %10s | %10s %9s %9s | %10s %9s %9s | %8s %8s | %10s %8s\n", "size(B)",
                "count", "mpi(us)", "algbw", "busbw", "haein(us)", "algbw", "busbw", "time",
                "busbw", "check(us)", "+us");
    std::printf("# %12s %10s | %10s %9s %9s | %10s %9s %9s | %8s %8s | %10s %8s\n", "", "", "",
                "(GB/s)", "(GB/s)", "", "(GB/s)", "(GB/s)", "ratio", "ratio", "", "");
  }
  for (std::size_t bytes = begin; bytes <= end; bytes *= factor) {
    const std::size_t count = bytes / sizeof(float);
    std::vector<float> send(count, 1.0f), recv(count, 0.0f);
    // Batch size: about 2 ms of work per sample, the same on every rank (from rank 0).
    int batch = 1;
    {
      const auto t0 = std::chrono::steady_clock::now();
      for (int i = 0; i < 3; ++i)
        MPI_Allreduce(send.data(), recv.data(), static_cast<int>(count), MPI_FLOAT, MPI_SUM,
                      direct);
      const double one =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / 3;
      batch = std::clamp(static_cast<int>(2e-3 / std::max(one, 1e-9)), 1, 2000);
      MPI_Bcast(&batch, 1, MPI_INT, 0, direct);
    }
    std::vector<double> mpi_times, haein_times, check_times;
    auto time_batch = [&](auto&& run) {
      MPI_Barrier(direct);
      const auto t0 = std::chrono::steady_clock::now();
      for (int i = 0; i < batch; ++i) run();
      return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / batch;
    };
    auto direct_batch = [&] {
      return time_batch([&] {
        MPI_Allreduce(send.data(), recv.data(), static_cast<int>(count), MPI_FLOAT, MPI_SUM,
                      direct);
      });
    };
    auto haein_batch = [&](Communicator& comm) {
      return time_batch([&] {
        comm.all_reduce(send.data(), recv.data(), count, DataType::kF32, ReduceOp::kSum);
      });
    };
    for (int s = 0; s < samples + 2; ++s) {  // the first two samples warm up
      // The order alternates so that neither side always runs first after the barrier.
      double a = 0, b = 0;
      if (s % 2 == 0) {
        a = direct_batch();
        b = haein_batch(plain);
      } else {
        b = haein_batch(plain);
        a = direct_batch();
      }
      const double c = haein_batch(checked);
      if (s < 2) continue;
      mpi_times.push_back(a);
      haein_times.push_back(b);
      check_times.push_back(c);
    }
    if (rank == 0) {
      const double t_mpi = median(mpi_times), t_haein = median(haein_times),
                   t_check = median(check_times);
      const double bw_mpi = bytes / t_mpi / 1e9, bw_haein = bytes / t_haein / 1e9;
      std::printf(
          "  %12zu %10zu | %10.2f %9.3f %9.3f | %10.2f %9.3f %9.3f | %8.3f %8.3f | %10.2f %8.2f\n",
          bytes, count, t_mpi * 1e6, bw_mpi, bw_mpi * bus_factor, t_haein * 1e6, bw_haein,
          bw_haein * bus_factor, t_haein / t_mpi, bw_haein / bw_mpi, t_check * 1e6,
          (t_check - t_haein) * 1e6);
      std::fflush(stdout);
    }
  }
  MPI_Comm_free(&direct);
  return 0;
}
