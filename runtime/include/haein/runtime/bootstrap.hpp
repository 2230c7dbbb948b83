#pragma once
/// @file
/// How the ranks of a communicator find each other: rank, size, and the few host-side
/// exchanges (all-gather, broadcast, barrier) needed to set up and check collectives.
/// `MpiBootstrap` works wherever MPI does (mpirun, srun, `haein run`); `ThreadBootstrap`
/// joins threads of one process, for tests and one-process multi-GPU programs.

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

namespace haein::runtime {

class Bootstrap {
 public:
  virtual ~Bootstrap() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  /// Every rank contributes `bytes` bytes; `all` receives size() * bytes, rank-major.
  virtual void all_gather(const void* mine, void* all, std::size_t bytes) = 0;
  /// `data` (bytes long) of `root` is copied to every rank.
  virtual void broadcast(void* data, std::size_t bytes, int root) = 0;
  virtual void barrier() = 0;
  /// A bootstrap over the ranks that pass the same `color`, ordered by (key, rank).
  /// Collective over this bootstrap. A negative color joins no group (returns nullptr).
  virtual std::unique_ptr<Bootstrap> split(int color, int key) = 0;
  /// "mpi" or "thread".
  virtual std::string kind() const = 0;
};

/// Over an MPI communicator: a duplicate of MPI_COMM_WORLD by default. Initialises MPI
/// (MPI_THREAD_MULTIPLE requested) when the program has not, and finalises it at exit
/// in that case. Errors come back as MpiError, not as MPI's default abort.
class MpiBootstrap : public Bootstrap {
 public:
  /// The world: all processes of this MPI job. Throws InvalidArgument when the
  /// environment says there are several ranks (WORLD_SIZE) but MPI sees one process,
  /// i.e. the ranks were started by a launcher MPI does not know.
  static std::unique_ptr<MpiBootstrap> world();
  ~MpiBootstrap() override;

  int rank() const override;
  int size() const override;
  void all_gather(const void* mine, void* all, std::size_t bytes) override;
  void broadcast(void* data, std::size_t bytes, int root) override;
  void barrier() override;
  std::unique_ptr<Bootstrap> split(int color, int key) override;
  std::string kind() const override { return "mpi"; }

  /// The MPI communicator, as an opaque handle (an MPI_Comm; cast it back in code that
  /// includes mpi.h). It belongs to this bootstrap.
  void* mpi_comm_handle() const;

  struct Impl;
  explicit MpiBootstrap(std::unique_ptr<Impl> impl);

 private:
  std::unique_ptr<Impl> impl_;
};

/// Shared state of the threads that make up one ThreadBootstrap group.
class ThreadGroup;

/// Ranks are threads of this process. Every exchange waits at most `timeout` for the
/// other threads and then throws an Error naming the ranks that did not arrive.
class ThreadBootstrap : public Bootstrap {
 public:
  /// `size` bootstraps, one per thread; give bootstraps[r] to the thread of rank r.
  static std::vector<std::unique_ptr<ThreadBootstrap>> create_group(
      int size, std::chrono::milliseconds timeout = std::chrono::seconds(600));

  ThreadBootstrap(std::shared_ptr<ThreadGroup> group, int rank);
  ~ThreadBootstrap() override;

  int rank() const override { return rank_; }
  int size() const override;
  void all_gather(const void* mine, void* all, std::size_t bytes) override;
  void broadcast(void* data, std::size_t bytes, int root) override;
  void barrier() override;
  std::unique_ptr<Bootstrap> split(int color, int key) override;
  std::string kind() const override { return "thread"; }

 private:
  std::shared_ptr<ThreadGroup> group_;
  int rank_;
};

/// For a program's error path (main's catch): when MPI runs with other processes, ends
/// the whole job with MPI_Abort(exit_code), since the others may wait in a collective for
/// this one and MPI_Finalize at exit would wait for them; mpirun and srun then stop every
/// rank at once. Does nothing without MPI or with one process. Flushes stdout and stderr
/// first.
void abort_job_on_error(int exit_code) noexcept;

}  // namespace haein::runtime
