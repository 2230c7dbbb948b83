// The watchdog end to end: under the real mpirun, rank 1 of 4 skips a collective. Every
// rank must stop within HAEIN_TIMEOUT + 5 s, the message must name rank 1 as the one that
// never joined, every rank must dump its flight recorder, and no process may be left.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

namespace {

namespace fs = std::filesystem;

std::string read(const fs::path& file) {
  std::ifstream in(file);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

/// Live (not zombie) processes running `program`.
int running(const fs::path& program) {
  int live = 0;
  for (const auto& entry : fs::directory_iterator("/proc")) {
    std::error_code error;
    if (fs::read_symlink(entry.path() / "exe", error) != program) continue;
    const std::string stat = read(entry.path() / "stat");
    const auto state = stat.find(") ");
    if (state != std::string::npos && stat[state + 2] != 'Z') ++live;
  }
  return live;
}

/// collective_fault under mpirun with HAEIN_TIMEOUT=3, its dumps and output in `dir`.
struct FaultRun {
  int status = 0;
  double seconds = 0;
  std::string err;
};
FaultRun run_collective_fault(const fs::path& dir, int ranks, const std::string& mode,
                              bool fresh = true) {
  if (fresh) {
    fs::remove_all(dir);
    fs::create_directories(dir);
  }
  const std::string command = std::string("HAEIN_TIMEOUT=3 HAEIN_DUMP_DIR=") + dir.string() +
                              " " MPIEXEC " -np " + std::to_string(ranks) +
                              " --oversubscribe --allow-run-as-root "
                              "--bind-to none " COLLECTIVE_FAULT " " +
                              mode + " >" + (dir / "out").string() + " 2>" + (dir / "err").string();
  const auto start = std::chrono::steady_clock::now();
  FaultRun run;
  run.status = std::system(command.c_str());
  run.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  run.err = read(dir / "err");
  return run;
}

/// collective_fault on 3 ranks in `mode`, which must end with a non-zero exit within
/// HAEIN_TIMEOUT (3 s) and some seconds, leaving no process; its stderr.
std::string expect_stopped(const std::string& name, const std::string& mode) {
  const fs::path dir =
      fs::temp_directory_path() / ("haein-watchdog-" + name + "-" + std::to_string(getpid()));
  const auto [status, seconds, err] = run_collective_fault(dir, 3, mode);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) != 0) << "status " << status << "\n" << err;
  EXPECT_LT(seconds, 3 + 6) << err;
  EXPECT_EQ(read(dir / "out").find("not reached"), std::string::npos);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(running(COLLECTIVE_FAULT), 0) << "collective_fault processes are still running";
  fs::remove_all(dir);
  return err;
}

TEST(Watchdog, ASkippedCollectiveStopsEveryRankNamingTheMissingOne) {
  const fs::path dir = fs::temp_directory_path() / ("haein-watchdog-" + std::to_string(getpid()));
  const double timeout_s = 3;
  const auto [status, seconds, err] = run_collective_fault(dir, 4, "");

  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_NE(WEXITSTATUS(status), 0) << err;
  EXPECT_LT(seconds, timeout_s + 5) << err;
  EXPECT_NE(err.find("all_reduce(f32, count=1024, sum) #6 via mpi timed out after 3 s"),
            std::string::npos)
      << err;
  EXPECT_NE(err.find("ranks that never joined: 1;"), std::string::npos) << err;
  EXPECT_NE(err.find("rank 1 ("), std::string::npos) << err;
  EXPECT_EQ(read(dir / "out").find("not reached"), std::string::npos);
  for (int rank = 0; rank < 4; ++rank) {
    const std::string dump =
        read(dir / ("haein-flight-recorder-rank-" + std::to_string(rank) + ".txt"));
    EXPECT_NE(dump.find("flight recorder of rank " + std::to_string(rank)), std::string::npos)
        << "rank " << rank << " wrote no flight recorder\n"
        << err;
    // Every rank completed the first five all-reduces.
    EXPECT_NE(dump.find("#5 all_reduce(f32, count=1024, avg) via mpi completed"), std::string::npos)
        << dump;
    if (rank == 1) {
      EXPECT_NE(dump.find("stopping because rank"), std::string::npos) << dump;
      EXPECT_EQ(dump.find("  #6 "), std::string::npos) << "rank 1 never entered #6\n" << dump;
    } else {
      EXPECT_NE(dump.find("#6 all_reduce(f32, count=1024, sum) via mpi"), std::string::npos)
          << dump;
    }
  }
  // No rank is left behind.
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(running(COLLECTIVE_FAULT), 0) << "collective_fault processes are still running";
  fs::remove_all(dir);
}

// A second user who can write the dump directory (a shared /tmp) plants a symlink to a
// file of the job's user and a file of their own where the dumps go: neither redirects a
// dump or receives one.
TEST(Watchdog, DumpsInASharedDirectoryIgnoreWhatASecondUserPlanted) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to act as a second user (nobody)";
  const fs::path base =
      fs::temp_directory_path() / ("haein-watchdog-shared-" + std::to_string(getpid()));
  const fs::path dir = base / "shared", own = base / "own";
  fs::remove_all(base);
  fs::create_directories(dir);
  fs::create_directories(own);
  fs::permissions(dir, fs::perms::all | fs::perms::sticky_bit);
  const fs::path victim = own / "precious";
  { std::ofstream(victim) << "precious\n"; }
  const fs::path rank0 = dir / "haein-flight-recorder-rank-0.txt";
  const fs::path rank1 = dir / "haein-flight-recorder-rank-1.txt";
  const pid_t planter = ::fork();
  ASSERT_GE(planter, 0);
  if (planter == 0) {
    if (::setgid(65534) != 0 || ::setuid(65534) != 0) ::_exit(3);
    std::error_code error;
    fs::create_symlink(victim, rank0, error);
    if (error) ::_exit(4);
    std::ofstream(rank1) << "planted\n";
    ::_exit(fs::exists(rank1) ? 0 : 5);
  }
  int status = 0;
  ::waitpid(planter, &status, 0);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "planting failed: " << status;

  const FaultRun run = run_collective_fault(dir, 2, "", /*fresh=*/false);
  EXPECT_NE(run.err.find("ranks that never joined: 1;"), std::string::npos) << run.err;
  EXPECT_EQ(read(victim), "precious\n") << "a dump followed the planted symlink";
  for (const fs::path& dump : {rank0, rank1}) {
    EXPECT_FALSE(fs::is_symlink(dump)) << dump;
    EXPECT_NE(read(dump).find("flight recorder of rank"), std::string::npos)
        << dump << ": the dump went elsewhere\n"
        << run.err;
    struct stat info {};
    ASSERT_EQ(::lstat(dump.c_str(), &info), 0);
    EXPECT_EQ(info.st_uid, ::geteuid()) << dump << " still belongs to the second user";
  }
  fs::remove_all(base);
}

// Rank 1 broadcasts where the others all-reduce (without HAEIN_CHECK_COLLECTIVES): every
// rank entered #6, so sequence numbers alone said "never joined: none"; the report must
// name both operations and which ranks entered each.
TEST(Watchdog, AnotherOperationAtTheSameStepIsNamed) {
  const std::string err = expect_stopped("mismatch", "mismatch");
  // Whichever rank reports, both operations are named with their ranks.
  EXPECT_NE(err.find("ranks disagree on #6: "), std::string::npos) << err;
  EXPECT_NE(err.find("broadcast(f32, count=1024, root=0) on 1"), std::string::npos) << err;
  EXPECT_NE(err.find("all_reduce(f32, count=1024, sum) on 0, 2"), std::string::npos) << err;
}

TEST(Watchdog, AWatchedSectionThatNeverEndsStopsTheJobNamingIt) {
  const std::string err = expect_stopped("section", "section");
  EXPECT_NE(err.find("rank 1 ("), std::string::npos) << err;
  EXPECT_NE(err.find("checkpoint write #5 via section timed out after 3 s"), std::string::npos)
      << err;
}

// The bucketer's model check goes through the bootstrap, outside the collectives, and is
// watched all the same: a rank that never reaches it is named.
TEST(Watchdog, ARankMissingFromTheBucketersModelCheckIsNamed) {
  const std::string err = expect_stopped("bucketer", "bucketer");
  EXPECT_NE(err.find("rank 1 ("), std::string::npos) << err;
  EXPECT_NE(err.find("setup all-gather"), std::string::npos) << err;
}

// A rank that never starts: the others wait in MPI_Init (or, past it, in the exchange at
// creation), where no watchdog ran yet. They stop within HAEIN_TIMEOUT, naming the step.
TEST(Watchdog, ARankThatNeverCreatesItsCommunicatorStopsTheOthers) {
  const std::string err = expect_stopped("late", "late");
  EXPECT_NE(err.find("communicator creation timed out after 3 s (HAEIN_TIMEOUT) in "),
            std::string::npos)
      << err;
}

}  // namespace
