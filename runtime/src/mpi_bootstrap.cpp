#include <mpi.h>

#include <climits>
#include <cstdio>
#include <string>

#include "haein/common/check.hpp"
#include "haein/common/error.hpp"
#include "haein/common/process.hpp"
#include "haein/runtime/bootstrap.hpp"
#include "haein/runtime/rank_environment.hpp"

namespace haein::runtime {

namespace {

/// Finalises MPI at exit when haein initialised it (and the program did not finalise).
struct MpiFinalizer {
  ~MpiFinalizer() {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized) MPI_Finalize();
  }
};

void ensure_mpi_initialized() {
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (initialized) return;
  int provided = 0;
  HAEIN_MPI_CHECK(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_MULTIPLE, &provided));
  static MpiFinalizer finalizer;
}

int checked_int(std::size_t bytes, const char* what) {
  if (bytes > static_cast<std::size_t>(INT_MAX))
    throw InvalidArgument(std::string("MpiBootstrap ") + what + " of " + std::to_string(bytes) +
                          " bytes exceeds MPI's int count");
  return static_cast<int>(bytes);
}

}  // namespace

struct MpiBootstrap::Impl {
  MPI_Comm comm = MPI_COMM_NULL;
  int rank = 0;
  int size = 1;

  explicit Impl(MPI_Comm owned) : comm(owned) {
    MPI_Comm_set_errhandler(comm, MPI_ERRORS_RETURN);
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &size);
  }
  ~Impl() {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized && comm != MPI_COMM_NULL) MPI_Comm_free(&comm);
  }
};

std::unique_ptr<MpiBootstrap> MpiBootstrap::world() {
  ensure_mpi_initialized();
  MPI_Comm comm = MPI_COMM_NULL;
  HAEIN_MPI_CHECK(MPI_Comm_dup(MPI_COMM_WORLD, &comm));
  auto bootstrap = std::make_unique<MpiBootstrap>(std::make_unique<Impl>(comm));
  const RankEnvironment env = read_rank_environment();
  if (bootstrap->size() == 1 && env.world_size > 1) {
    throw InvalidArgument(
        "MPI sees a single process but the environment says this is rank " +
        std::to_string(env.rank) + " of " + std::to_string(env.world_size) + " (" + env.source +
        "): the ranks were started by a launcher MPI does not know. Start them with mpirun, "
        "srun, or `haein run --backend mpirun`");
  }
  set_process_rank(bootstrap->rank());
  return bootstrap;
}

MpiBootstrap::MpiBootstrap(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
MpiBootstrap::~MpiBootstrap() = default;

int MpiBootstrap::rank() const { return impl_->rank; }
int MpiBootstrap::size() const { return impl_->size; }
void* MpiBootstrap::mpi_comm_handle() const { return impl_->comm; }

void MpiBootstrap::all_gather(const void* mine, void* all, std::size_t bytes) {
  const int count = checked_int(bytes, "all_gather");
  HAEIN_MPI_CHECK(MPI_Allgather(mine, count, MPI_BYTE, all, count, MPI_BYTE, impl_->comm));
}

void MpiBootstrap::broadcast(void* data, std::size_t bytes, int root) {
  HAEIN_MPI_CHECK(MPI_Bcast(data, checked_int(bytes, "broadcast"), MPI_BYTE, root, impl_->comm));
}

void MpiBootstrap::barrier() { HAEIN_MPI_CHECK(MPI_Barrier(impl_->comm)); }

std::unique_ptr<Bootstrap> MpiBootstrap::split(int color, int key) {
  MPI_Comm comm = MPI_COMM_NULL;
  HAEIN_MPI_CHECK(MPI_Comm_split(impl_->comm, color < 0 ? MPI_UNDEFINED : color, key, &comm));
  if (comm == MPI_COMM_NULL) return nullptr;
  return std::make_unique<MpiBootstrap>(std::make_unique<Impl>(comm));
}

void abort_job_on_error(int exit_code) noexcept {
  int initialized = 0;
  int finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (!initialized || finalized) return;
  int size = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  if (size < 2) return;
  std::fflush(stdout);
  std::fflush(stderr);
  MPI_Abort(MPI_COMM_WORLD, exit_code);
}

}  // namespace haein::runtime
