// `haein run` with real processes: the ranks' environment and binding, output tags and
// logs, the root cause of a failure, no process left behind, heartbeats, restarts,
// forwarded signals, the commands of the mpirun and srun backends, and bad input. Tests
// named *Mpirun* run the real Open MPI mpirun (label mpi).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "haein/common/error.hpp"
#include "haein/common/process.hpp"
#include "haein/launcher/plan.hpp"
#include "haein/topology/hostlist.hpp"
#include "run/memory_binding.hpp"
#include "run/visible_gpus.hpp"

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

struct Result {
  int exit_code = -1;
  std::string out;
  std::string err;
  double seconds = 0;
};

std::string slurp(const fs::path& path) {
  std::ifstream in(path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// Running, not a zombie (an orphan's zombie stays when this container's init does not reap).
bool alive(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return false;
  const auto paren = line.rfind(')');
  return paren != std::string::npos && paren + 2 < line.size() && line[paren + 2] != 'Z';
}

class Run : public testing::Test {
 protected:
  void SetUp() override {
    dir_ =
        fs::temp_directory_path() / ("haein-run-test-" + std::to_string(getpid()) + "-" +
                                     testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // A shell script the ranks run; $D is this test's directory.
  std::string script(const std::string& name, const std::string& body) {
    const fs::path path = dir_ / name;
    std::ofstream(path) << "#!/bin/sh\nD=" << dir_.string() << "\n" << body;
    fs::permissions(path, fs::perms::owner_all);
    return path.string();
  }

  // `line` with its output into this test's stdout and stderr files.
  std::string redirected(const std::string& line) const {
    return line + " >" + (dir_ / "stdout").string() + " 2>" + (dir_ / "stderr").string() +
           " </dev/null";
  }

  std::string command(const std::string& args) const {
    return redirected(std::string(HAEIN_BINARY) + " " + args);
  }

  // A shell line, its output and how long it took.
  Result run_line(const std::string& line) {
    const auto start = Clock::now();
    const int status = std::system(redirected(line).c_str());
    Result result{WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status),
                  slurp(dir_ / "stdout"), slurp(dir_ / "stderr")};
    result.seconds = std::chrono::duration<double>(Clock::now() - start).count();
    return result;
  }

  Result haein(const std::string& args) { return run_line(std::string(HAEIN_BINARY) + " " + args); }

  // haein with `args` after `setup` in a mount namespace of its own (exit 77: setup failed).
  Result haein_in_namespace(const std::string& setup, const std::string& args) {
    return run_line("unshare -m sh -c '" + setup + " || exit 77; exec " + HAEIN_BINARY + " " +
                    args + "'");
  }

  // Waits up to `seconds` for files named prefix* to number `count`.
  bool wait_for_files(const std::string& prefix, int count, double seconds) {
    const auto deadline = Clock::now() + std::chrono::duration<double>(seconds);
    while (Clock::now() < deadline) {
      int found = 0;
      for (const auto& entry : fs::directory_iterator(dir_)) {
        if (entry.path().filename().string().rfind(prefix, 0) == 0) ++found;
      }
      if (found >= count) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  }

  // Starts a job of two ranks that each start a child, SIGKILLs haein run, and expects
  // neither ranks nor children left.
  void sigkill_launcher_then_look(const std::string& backend);

  // Every pid recorded in files named prefix* is gone within a second.
  void expect_no_survivors(const std::string& prefix) {
    std::vector<pid_t> pids;
    for (const auto& entry : fs::directory_iterator(dir_)) {
      if (entry.path().filename().string().rfind(prefix, 0) != 0) continue;
      for (const std::string& line : lines_of(slurp(entry.path()))) pids.push_back(std::stoi(line));
    }
    ASSERT_FALSE(pids.empty());
    const auto deadline = Clock::now() + std::chrono::seconds(1);
    for (pid_t pid : pids) {
      while (alive(pid) && Clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      EXPECT_FALSE(alive(pid)) << "process " << pid << " outlived the job: "
                               << slurp("/proc/" + std::to_string(pid) + "/cmdline");
    }
  }

  // Each rank writes what it sees into $D/env-$RANK and prints a line.
  std::string environment_reporter() {
    return script("report.sh", R"SH(f=$D/env-$RANK
echo "RANK=$RANK" >$f
echo "LOCAL_RANK=$LOCAL_RANK" >>$f
echo "WORLD_SIZE=$WORLD_SIZE" >>$f
echo "LOCAL_WORLD_SIZE=$LOCAL_WORLD_SIZE" >>$f
echo "MASTER=$MASTER_ADDR:$MASTER_PORT" >>$f
echo "HAEIN_PLACEMENT=$HAEIN_PLACEMENT" >>$f
echo "HAEIN_RESTART_COUNT=$HAEIN_RESTART_COUNT" >>$f
echo "CPUS=$(grep Cpus_allowed_list /proc/self/status | cut -f2)" >>$f
echo "hello from rank $RANK"
)SH");
  }

  std::map<std::string, std::string> environment_of(int rank) {
    std::map<std::string, std::string> values;
    for (const std::string& line : lines_of(slurp(dir_ / ("env-" + std::to_string(rank))))) {
      const auto eq = line.find('=');
      values[line.substr(0, eq)] = line.substr(eq + 1);
    }
    return values;
  }

  // Four ranks ran: distinct ranks, their local ranks, one master, the placement file the
  // job kept in --log-dir, and the cores that placement gave each rank.
  void expect_four_ranks_placed(const fs::path& log_dir) {
    const std::string placement_path = (log_dir / "placement.json").string();
    const haein::launcher::Placement placement =
        haein::launcher::parse_placement_json(slurp(placement_path), placement_path);
    ASSERT_EQ(placement.world_size(), 4);
    std::set<std::string> masters;
    for (int rank = 0; rank < 4; ++rank) {
      std::map<std::string, std::string> env = environment_of(rank);
      EXPECT_EQ(env["RANK"], std::to_string(rank));
      EXPECT_EQ(env["LOCAL_RANK"], std::to_string(rank));
      EXPECT_EQ(env["WORLD_SIZE"], "4");
      EXPECT_EQ(env["LOCAL_WORLD_SIZE"], "4");
      EXPECT_EQ(env["HAEIN_PLACEMENT"], placement_path);
      EXPECT_EQ(env["HAEIN_RESTART_COUNT"], "0");
      ASSERT_FALSE(placement.ranks[rank].cores.empty());
      EXPECT_EQ(env["CPUS"], haein::topology::format_cpu_list(placement.ranks[rank].cores))
          << "rank " << rank;
      masters.insert(env["MASTER"]);
    }
    ASSERT_EQ(masters.size(), 1u);
    const std::string& master = *masters.begin();
    EXPECT_EQ(master.substr(0, master.find(':')), haein::host_name());
    EXPECT_GT(std::stoi(master.substr(master.find(':') + 1)), 0);
  }

  // Rank 2 fails once every rank has recorded its pid and a helper's; the rest sleep.
  std::string failing_rank(const std::string& failure) {
    return script("fail.sh", R"SH(sleep 60 & echo $! >$D/pid-helper-$RANK
echo $$ >$D/pid-rank-$RANK
echo "rank $RANK started"
if [ "$RANK" = 2 ]; then
  i=0; while [ $(ls $D | grep -c pid-rank-) -lt 4 ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done
  echo "rank 2 gives up" >&2
  )SH" + failure + R"SH(
fi
wait
)SH");
  }

  // Every rank beats every 0.1 s; rank `hung` beats three times, then hangs.
  std::string hanging_rank(int hung) {
    return script("beat.sh", "echo $$ >$D/pid-rank-$RANK\nn=0\nwhile :; do\n  if [ \"$RANK\" != " +
                                 std::to_string(hung) +
                                 " ] || [ $n -lt 3 ]; then touch \"$HAEIN_HEARTBEAT_FILE\"; fi\n"
                                 "  n=$((n+1)); sleep 0.1\ndone\n");
  }

  fs::path dir_;
};

const std::regex kTagged(R"(^\[([^:\]]+):(\d+)\] hello from rank (\d+)$)");

TEST_F(Run, FourLocalRanksSeeTheirEnvironmentBindingAndTags) {
  const std::string program = environment_reporter();
  const fs::path logs = dir_ / "logs";
  const Result r = haein("run -n 4 --oversubscribe --log-dir " + logs.string() + " -- " + program);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  expect_four_ranks_placed(logs);
  // Every line tagged with its own host and rank; every rank's log holds its line untagged.
  std::set<int> tagged;
  for (const std::string& line : lines_of(r.out)) {
    std::smatch match;
    ASSERT_TRUE(std::regex_match(line, match, kTagged)) << line;
    EXPECT_EQ(match[1], haein::host_name());
    EXPECT_EQ(match[2], match[3]);
    tagged.insert(std::stoi(match[2]));
  }
  EXPECT_EQ(tagged.size(), 4u);
  for (int rank = 0; rank < 4; ++rank) {
    EXPECT_EQ(slurp(logs / "attempt-0" / ("rank-" + std::to_string(rank) + ".log")),
              "hello from rank " + std::to_string(rank) + "\n");
  }
}

TEST_F(Run, MpirunFourRanksThroughTheRankfile) {
  const std::string program = environment_reporter();
  const fs::path logs = dir_ / "logs";
  const Result r = haein("run -n 4 --oversubscribe --backend mpirun --log-dir " + logs.string() +
                         " -- " + program);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("mpirun backend"), std::string::npos) << r.err;
  // mpirun took the rankfile (it exits non-zero on a rankfile it rejects) and bound each
  // rank to the cores the placement gave it.
  EXPECT_NE(slurp(logs / "rankfile").find("rank 3="), std::string::npos);
  expect_four_ranks_placed(logs);
  std::set<int> tagged;
  for (const std::string& line : lines_of(r.out)) {
    std::smatch match;
    ASSERT_TRUE(std::regex_match(line, match, kTagged)) << line;
    tagged.insert(std::stoi(match[2]));
  }
  EXPECT_EQ(tagged.size(), 4u);
}

TEST_F(Run, TemplateTagsAndNoTags) {
  const std::string program = script("hi.sh", "echo hi\n");
  Result r = haein("run -n 2 --tag-output '{local_rank}|{rank}@{host}: ' -- " + program);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("1|1@" + haein::host_name() + ": hi\n"), std::string::npos) << r.out;
  r = haein("run -n 2 --tag-output '' -- " + program);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "hi\nhi\n");
}

void expect_root_cause(const Result& r, int rank, const std::string& how) {
  EXPECT_NE(r.err.find("root cause: rank " + std::to_string(rank) + " on " + haein::host_name() +
                       ": " + how),
            std::string::npos)
      << r.err;
}

TEST_F(Run, RankExitingThreeStopsTheJobWithExitThree) {
  const std::string program = failing_rank("exit 3");
  const Result r = haein("run -n 4 --oversubscribe -- " + program);
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_LT(r.seconds, 5.0);
  expect_root_cause(r, 2, "exit code 3");
  EXPECT_NE(r.err.find("| rank 2 gives up"), std::string::npos) << r.err;  // its last lines
  expect_no_survivors("pid-");
}

TEST_F(Run, RankKilledBySigkillIsTheRootCause) {
  const std::string program = failing_rank("kill -9 $$");
  const Result r = haein("run -n 4 --oversubscribe -- " + program);
  EXPECT_EQ(r.exit_code, 128 + SIGKILL) << r.err;
  EXPECT_LT(r.seconds, 5.0);
  expect_root_cause(r, 2, "signal SIGKILL (9)");
  expect_no_survivors("pid-");
}

// kill -9 of haein run (local backend): the ranks die with it (parent-death signal), and
// so does what they started (their process groups, through the watcher process).
TEST_F(Run, SigkillOfTheLauncherLeavesNoRankNorWhatItStarted) {
  for (const std::string backend : {"local", "mpirun"}) {
    SCOPED_TRACE(backend);
    for (const auto& entry : fs::directory_iterator(dir_))
      if (entry.path().filename().string().rfind("pid-", 0) == 0) fs::remove(entry.path());
    sigkill_launcher_then_look(backend);
  }
}

void Run::sigkill_launcher_then_look(const std::string& backend) {
  const std::string rank =
      script("spawner.sh",
             "sleep 300 & echo $! >$D/pid-child-$RANK\necho $$ >$D/pid-rank-$RANK\n"
             "sleep 300\n");
  const pid_t launcher = fork();
  ASSERT_GE(launcher, 0);
  if (launcher == 0) {
    execl("/bin/sh", "sh", "-c",
          ("exec " + command("run -n 2 --backend " + backend + " -- " + rank)).c_str(),
          static_cast<char*>(nullptr));
    _exit(127);
  }
  ASSERT_TRUE(wait_for_files("pid-", 4, 20)) << slurp(dir_ / "stderr");
  ::kill(launcher, SIGKILL);
  int status = 0;
  waitpid(launcher, &status, 0);
  expect_no_survivors("pid-");
}

// mpirun passes the ranks' output on in chunks that cut lines and interleave ranks
// mid-line (hundreds of malformed lines in 18,000); haein run puts them back together.
TEST_F(Run, MpirunOutputLinesOfRanksNeverMix) {
  const std::string chatty =
      script("chatty.sh",
             "i=0\nwhile [ $i -lt 4500 ]; do\n"
             "  echo \"rank $RANK line $i "
             "abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz\"\n"
             "  [ $((i % 500)) = 0 ] && echo \"rank $RANK err $i\" >&2\n"
             "  i=$((i+1))\ndone\n");
  const Result r = haein("run -n 4 --oversubscribe --backend mpirun -- " + chatty);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::regex line(
      "\\[[^:]+:([0-3])\\] rank ([0-3]) line ([0-9]+) "
      "abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz");
  std::map<int, int> next;  // each rank's lines arrive whole and in order
  int bad = 0;
  for (const std::string& text : lines_of(r.out)) {
    std::smatch match;
    if (!std::regex_match(text, match, line) || match[1] != match[2] ||
        std::stoi(match[3]) != next[std::stoi(match[1])]++) {
      if (++bad <= 3) ADD_FAILURE() << "malformed or out of order: " << text;
    }
  }
  EXPECT_EQ(bad, 0);
  EXPECT_EQ(lines_of(r.out).size(), 18000u);
  for (int rank = 0; rank < 4; ++rank)
    EXPECT_NE(r.err.find("] rank " + std::to_string(rank) + " err 4000\n"), std::string::npos)
        << r.err.substr(0, 2000);
}

TEST_F(Run, MpirunRankExitingThreeStopsTheJobWithExitThree) {
  const std::string program = failing_rank("exit 3");
  const Result r = haein("run -n 4 --oversubscribe --backend mpirun -- " + program);
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_LT(r.seconds, 5.0);
  expect_root_cause(r, 2, "exit code 3");
  EXPECT_NE(r.err.find("| rank 2 gives up"), std::string::npos) << r.err;
  expect_no_survivors("pid-");
}

// A --log-dir whose file system fills up: ranks that succeeded still succeed (the status
// they could not record was reported as "not started"), and haein run says why the
// records are missing. The folder is a 64 KiB tmpfs in a mount namespace (root only).
TEST_F(Run, MpirunFullLogDirectoryIsNotAFailure) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root for a small tmpfs in a mount namespace";
  const fs::path logs = dir_ / "tiny";
  fs::create_directories(logs);
  const std::string chatty = script(
      "chatty.sh", "yes xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx | head -c 200000\n");
  const Result r =
      haein_in_namespace("mount -t tmpfs -o size=64k tmpfs " + logs.string(),
                         "run -n 2 --backend mpirun --log-dir " + logs.string() + " -- " + chatty);
  if (r.exit_code == 77) GTEST_SKIP() << "no tmpfs here: " << r.err;
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("cannot record how it ended"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("the job folder's file system is full"), std::string::npos) << r.err;
}

TEST_F(Run, MpirunRankKilledBySigkillIsTheRootCause) {
  const std::string program = failing_rank("kill -9 $$");
  const Result r = haein("run -n 4 --oversubscribe --backend mpirun -- " + program);
  EXPECT_EQ(r.exit_code, 128 + SIGKILL) << r.err;
  EXPECT_LT(r.seconds, 5.0);
  expect_root_cause(r, 2, "signal SIGKILL (9)");
  expect_no_survivors("pid-");
}

TEST_F(Run, HungRankIsFoundByItsHeartbeat) {
  const std::string program = hanging_rank(3);
  const Result r = haein("run -n 4 --oversubscribe --heartbeat-timeout 1 -- " + program);
  EXPECT_EQ(r.exit_code, 124) << r.err;
  EXPECT_LT(r.seconds, 1 + 5.0);
  expect_root_cause(r, 3, "hung: no heartbeat for 1.");
  expect_no_survivors("pid-");
}

TEST_F(Run, MpirunHungRankIsFoundByItsHeartbeat) {
  const std::string program = hanging_rank(1);
  const Result r = haein("run -n 2 --backend mpirun --heartbeat-timeout 1 -- " + program);
  EXPECT_EQ(r.exit_code, 124) << r.err;
  EXPECT_LT(r.seconds, 1 + 5.0 + 1.0);  // + mpirun's start
  expect_root_cause(r, 1, "hung: no heartbeat for 1.");
  expect_no_survivors("pid-");
}

TEST_F(Run, ASharedHangNamesTheStalestHeartbeatAndListsEveryRank) {
  // As in a collective hang: every rank stops beating; rank 2 stopped 0.2 s before the rest.
  const std::string program = script(
      "all_hang.sh",
      "echo $$ >$D/pid-rank-$RANK\nbeats=3; [ \"$RANK\" = 2 ] && beats=1\n"
      "for i in $(seq $beats); do touch \"$HAEIN_HEARTBEAT_FILE\"; sleep 0.1; done\nsleep 30\n");
  const Result r = haein("run -n 4 --oversubscribe --heartbeat-timeout 1 -- " + program);
  EXPECT_EQ(r.exit_code, 124) << r.err;
  expect_root_cause(r, 2, "hung: no heartbeat for 1.");
  EXPECT_NE(r.err.find("4 ranks were silent for over half the heartbeat timeout: 0-3 (a hang they "
                       "share; the stalest, rank 2, is named above)"),
            std::string::npos)
      << r.err;
  expect_no_survivors("pid-");
}

TEST_F(Run, HeartbeatStartupAllowsASlowFirstBeat) {
  // 1.5 s of imports before the first beat, then a beat every 0.1 s until done.
  const std::string program = script(
      "slow_start.sh",
      "sleep 1.5\nfor i in $(seq 10); do touch \"$HAEIN_HEARTBEAT_FILE\"; sleep 0.1; done\n");
  Result r =
      haein("run -n 2 --oversubscribe --heartbeat-timeout 1 --heartbeat-startup 4 -- " + program);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  r = haein("run -n 2 --oversubscribe --heartbeat-timeout 1 -- " + program);
  EXPECT_EQ(r.exit_code, 124) << "without the allowance the slow start is a hang\n" << r.err;
}

// Rank 0 fails once every rank is up; the others save for 1.5 s on SIGTERM.
std::string saving_ranks_body() {
  return R"SH(echo $$ >$D/pid-rank-$RANK
trap 'sleep 1.5; echo saved >$D/saved-$RANK; exit 143' TERM
touch $D/up-$RANK
if [ "$RANK" = 0 ]; then
  i=0; while [ $(ls $D/up-* | wc -l) -lt $WORLD_SIZE ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done
  exit 3
fi
sleep 30 & wait
)SH";
}

TEST_F(Run, StopGraceLetsRanksSaveAndNamesThoseKilledAfterIt) {
  const std::string program = script("saving.sh", saving_ranks_body());
  Result r = haein("run -n 3 --oversubscribe --stop-grace 0.5 -- " + program);
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_NE(r.err.find("ranks 1,2 did not end within 0.5 s of SIGTERM and were killed (SIGKILL)"),
            std::string::npos)
      << r.err;
  EXPECT_FALSE(fs::exists(dir_ / "saved-1"));
  for (const auto& entry : fs::directory_iterator(dir_))
    if (entry.path().filename().string().rfind("up-", 0) == 0) fs::remove(entry.path());
  r = haein("run -n 3 --oversubscribe --stop-grace 5 -- " + program);
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_EQ(r.err.find("were killed"), std::string::npos) << r.err;
  EXPECT_TRUE(fs::exists(dir_ / "saved-1")) << r.err;
  EXPECT_TRUE(fs::exists(dir_ / "saved-2")) << r.err;
}

TEST_F(Run, StopGraceHoldsUnderMpirun) {
  // mpirun's daemons once SIGKILLed a rank a second after SIGTERM, whatever the grace.
  const std::string program = script("saving.sh", saving_ranks_body());
  const Result r = haein("run -n 2 --oversubscribe --backend mpirun --stop-grace 5 -- " + program);
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_TRUE(fs::exists(dir_ / "saved-1")) << r.err;
  EXPECT_EQ(r.err.find("were killed"), std::string::npos) << r.err;
}

// Rank 1 fails on the first run, after every rank has recorded what it saw.
std::string restart_program_body() {
  return R"SH(echo "$HAEIN_RESTART_COUNT" >>$D/seen-$RANK
if [ "$RANK" = 1 ] && [ "$HAEIN_RESTART_COUNT" = 0 ]; then
  i=0; while [ $(cat $D/seen-* | wc -l) -lt 4 ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done
  exit 7
fi
)SH";
}

TEST_F(Run, MaxRestartsRestartsTheWholeJob) {
  const std::string program = script("flaky.sh", restart_program_body());
  const Result r = haein("run -n 4 --oversubscribe --max-restarts 2 -- " + program);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  for (int rank = 0; rank < 4; ++rank) {
    EXPECT_EQ(slurp(dir_ / ("seen-" + std::to_string(rank))), "0\n1\n") << "rank " << rank;
  }
  EXPECT_NE(r.err.find("restarting the job in 0.5 s (restart 1 of 2)"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("after 1 restart"), std::string::npos) << r.err;
}

TEST_F(Run, MpirunMaxRestartsRestartsTheWholeJob) {
  const std::string program = script("flaky.sh", restart_program_body());
  const Result r =
      haein("run -n 4 --oversubscribe --backend mpirun --max-restarts 2 -- " + program);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  for (int rank = 0; rank < 4; ++rank) {
    EXPECT_EQ(slurp(dir_ / ("seen-" + std::to_string(rank))), "0\n1\n") << "rank " << rank;
  }
}

TEST_F(Run, RestartsUsedUpGiveTheLastRootCause) {
  const std::string program = script("bad.sh", "[ \"$RANK\" = 0 ] && exit 9\nsleep 30\n");
  const Result r = haein("run -n 2 --max-restarts 1 -- " + program);
  EXPECT_EQ(r.exit_code, 9) << r.err;
  EXPECT_NE(r.err.find("after 1 of 1 restarts"), std::string::npos) << r.err;
}

TEST_F(Run, SignalsAreForwardedToEveryRank) {
  const std::string program = script("trap.sh", R"SH(trap 'echo usr1 >>$D/usr1-$RANK' USR1
echo $$ >$D/pid-rank-$RANK
while :; do sleep 0.05; done
)SH");
  const pid_t launcher = fork();
  ASSERT_GE(launcher, 0);
  if (launcher == 0) {
    execl("/bin/sh", "sh", "-c",
          ("exec " + command("run -n 3 --oversubscribe -- " + program)).c_str(),
          static_cast<char*>(nullptr));
    _exit(127);
  }
  ASSERT_TRUE(wait_for_files("pid-rank-", 3, 10));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // the traps are set
  ::kill(launcher, SIGUSR1);
  EXPECT_TRUE(wait_for_files("usr1-", 3, 5)) << slurp(dir_ / "stderr");
  const auto start = Clock::now();
  ::kill(launcher, SIGINT);
  int status = 0;
  ASSERT_EQ(waitpid(launcher, &status, 0), launcher);
  EXPECT_LT(std::chrono::duration<double>(Clock::now() - start).count(), 5.0);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 128 + SIGINT);
  EXPECT_NE(slurp(dir_ / "stderr").find("stopped by SIGINT"), std::string::npos);
  expect_no_survivors("pid-");
}

// The NVIDIA driver starts helper threads when NVML initialises (discovery, before the
// supervisor starts), and they live as long as haein run. Born with the signals unblocked,
// one took the SIGCHLD meant for the supervisor's signalfd, and haein run waited for an
// mpirun that had exited (on an H100, 2026-11-27). Every thread must block them.
TEST_F(Run, ThreadsAGpuLibraryStartsNeverTakeTheSupervisorsSignals) {
  const std::string program = script("rank.sh", "touch $D/started; sleep 2\n");
  const pid_t launcher = fork();
  ASSERT_GE(launcher, 0);
  if (launcher == 0) {
    setenv("HAEIN_NVML_LIBRARY", FAKE_NVML, 1);
    execl("/bin/sh", "sh", "-c", ("exec " + command("run -n 1 -- " + program)).c_str(),
          static_cast<char*>(nullptr));
    _exit(127);
  }
  if (!wait_for_files("started", 1, 10)) {
    ::kill(launcher, SIGKILL);
    waitpid(launcher, nullptr, 0);
    FAIL() << "the rank did not start: " << slurp(dir_ / "stderr");
  }
  int threads = 0;
  const fs::path tasks = "/proc/" + std::to_string(launcher) + "/task";
  for (const auto& task : fs::directory_iterator(tasks)) {
    std::istringstream status(slurp(task.path() / "status"));
    for (std::string line; std::getline(status, line);) {
      if (line.rfind("SigBlk:", 0) != 0) continue;
      ++threads;
      const unsigned long long blocked = std::stoull(line.substr(7), nullptr, 16);
      for (int signal : {SIGCHLD, SIGINT, SIGTERM, SIGHUP, SIGUSR1})
        EXPECT_NE(blocked & (1ULL << (signal - 1)), 0u)
            << "thread " << task.path().filename() << " of haein run takes signal " << signal
            << " (SigBlk " << line.substr(7) << ")";
    }
  }
  EXPECT_GE(threads, 2) << "the stand-in NVML's thread is missing: was it loaded?";
  int status = 0;
  ASSERT_EQ(waitpid(launcher, &status, 0), launcher);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << slurp(dir_ / "stderr");
}

TEST_F(Run, RestartsBackOffAndAStopBetweenAttemptsIsAStop) {
  // A job that fails at once: restarts 0.5, 1 and 2 s apart (once 65 a second).
  const std::string failing = script("fail.sh", "exit 5\n");
  const Result r = haein("run -n 1 --max-restarts 3 -- " + failing);
  EXPECT_EQ(r.exit_code, 5) << r.err;
  EXPECT_GE(r.seconds, 3.5) << r.err;
  for (const char* line : {"restarting the job in 0.5 s (restart 1 of 3)",
                           "restarting the job in 1.0 s (restart 2 of 3)",
                           "restarting the job in 2.0 s (restart 3 of 3)"})
    EXPECT_NE(r.err.find(line), std::string::npos) << line << "\n" << r.err;
  // SIGTERM while haein run waits for the next attempt: a stop, 143, said so.
  const pid_t launcher = fork();
  ASSERT_GE(launcher, 0);
  if (launcher == 0) {
    execl("/bin/sh", "sh", "-c",
          ("exec " + command("run -n 1 --max-restarts 5 -- " + failing)).c_str(),
          static_cast<char*>(nullptr));
    _exit(127);
  }
  for (int i = 0; i < 100 && slurp(dir_ / "stderr").find("restart 2 of 5") == std::string::npos;
       ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ::kill(launcher, SIGTERM);
  int status = 0;
  ASSERT_EQ(waitpid(launcher, &status, 0), launcher);
  ASSERT_TRUE(WIFEXITED(status)) << slurp(dir_ / "stderr");
  EXPECT_EQ(WEXITSTATUS(status), 128 + SIGTERM);
  EXPECT_NE(slurp(dir_ / "stderr").find("job stopped (SIGTERM between attempts); exit code 143"),
            std::string::npos)
      << slurp(dir_ / "stderr");
}

// Whoever reads haein run's output stops reading (a full pipe): SIGTERM still stops the
// job at once, and the launcher's memory stays bounded meanwhile (it once blocked in
// write(2) and ignored signals for 22 s).
TEST_F(Run, AFullStdoutPipeDoesNotBlockSignals) {
  int out[2];
  ASSERT_EQ(::pipe(out), 0);
  const std::string err_file = (dir_ / "stderr").string();
  const pid_t launcher = fork();
  ASSERT_GE(launcher, 0);
  if (launcher == 0) {
    ::dup2(out[1], STDOUT_FILENO);
    ::close(out[0]);
    ::close(out[1]);
    const int err = ::open(err_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(err, STDERR_FILENO);
    execl(HAEIN_BINARY, HAEIN_BINARY, "run", "-n", "1", "--", "sh", "-c", "yes",
          static_cast<char*>(nullptr));
    _exit(127);
  }
  ::close(out[1]);  // out[0] stays open and unread: the pipe fills
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  std::ifstream status_file("/proc/" + std::to_string(launcher) + "/status");
  long rss_kb = 0;
  for (std::string line; std::getline(status_file, line);)
    if (line.rfind("VmRSS:", 0) == 0) rss_kb = std::stol(line.substr(6));
  EXPECT_LT(rss_kb, 64 * 1024) << "the launcher buffered the unread output";
  const auto start = Clock::now();
  ::kill(launcher, SIGTERM);
  int status = 0;
  for (int i = 0; i < 200 && waitpid(launcher, &status, WNOHANG) == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  if (seconds >= 10) {
    ::kill(launcher, SIGKILL);
    waitpid(launcher, &status, 0);
  }
  ::close(out[0]);
  EXPECT_LT(seconds, 10) << slurp(dir_ / "stderr");
  ASSERT_TRUE(WIFEXITED(status)) << slurp(dir_ / "stderr");
  EXPECT_EQ(WEXITSTATUS(status), 128 + SIGTERM) << slurp(dir_ / "stderr");
}

TEST_F(Run, SrunDryRunPrintsTheCommandAndHostfile) {
  const fs::path logs = dir_ / "job";
  const Result r = haein("run --cluster preset:haein -n 16 --backend srun --dry-run --log-dir " +
                         logs.string() + " --srun-arg=--partition=gpu -- ./train --steps 10");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string placement_path = (logs / "placement.json").string();
  const haein::launcher::Placement placement =
      haein::launcher::parse_placement_json(slurp(placement_path), placement_path);
  ASSERT_EQ(placement.world_size(), 16);
  std::vector<std::string> hosts;
  for (const auto& rank : placement.ranks) {
    if (hosts.empty() || hosts.back() != rank.host) hosts.push_back(rank.host);
  }
  ASSERT_EQ(hosts.size(), 2u);
  const std::vector<std::string> lines = lines_of(r.out);
  ASSERT_GE(lines.size(), 2u + 2u + 16u);
  const std::string& srun = lines[1];
  EXPECT_EQ(lines[2].rfind("# srun does not inherit SLURM_NTASKS_PER_NODE, ", 0), 0u) << lines[2];
  EXPECT_NE(srun.find("SLURM_HOSTFILE=" + (logs / "hostfile").string() + " srun "),
            std::string::npos)
      << srun;
  for (const std::string& expected :
       {std::string(" --ntasks=16 "), std::string(" --nodes=2 "),
        std::string(" --distribution=arbitrary "), std::string(" --kill-on-bad-exit=1 "),
        std::string(" --cpu-bind=none "), std::string(" --partition=gpu --export=ALL,MASTER_PORT="),
        " exec-rank --placement " + placement_path + " --status-dir ",
        std::string(" -- ./train --steps 10")}) {
    EXPECT_NE(srun.find(expected), std::string::npos) << expected << " not in\n" << srun;
  }
  // With --distribution=arbitrary a --nodelist would replace the hostfile, one node per task.
  EXPECT_EQ(srun.find("--nodelist"), std::string::npos) << srun;
  // The hostfile: one line per rank, in rank order, printed and written.
  std::string hostfile;
  for (const auto& rank : placement.ranks) hostfile += rank.host + "\n";
  EXPECT_EQ(slurp(logs / "hostfile"), hostfile);
  std::string printed;
  for (std::size_t i = 4; i < lines.size(); ++i) printed += lines[i] + "\n";
  EXPECT_EQ(printed, hostfile);
}

// Slurm's variables of an allocation (salloc -N 2 --ntasks-per-node=4 on nodes n1, n2),
// set for one test.
class SlurmAllocationVariables {
 public:
  explicit SlurmAllocationVariables(bool in_step = false) {
    setenv("SLURM_JOB_ID", "77", 1);
    setenv("SLURM_JOB_NODELIST", "n[1-2]", 1);
    setenv("SLURM_JOB_CPUS_PER_NODE", "4(x2)", 1);
    setenv("SLURM_TASKS_PER_NODE", "4(x2)", 1);
    if (in_step) setenv("SLURM_STEP_ID", "0", 1);
  }
  ~SlurmAllocationVariables() {
    for (const char* name : {"SLURM_JOB_ID", "SLURM_JOB_NODELIST", "SLURM_JOB_CPUS_PER_NODE",
                             "SLURM_TASKS_PER_NODE", "SLURM_STEP_ID"})
      unsetenv(name);
  }
};

TEST_F(Run, InsideASlurmAllocationTheJobRunsOnItsNodesOnly) {
  const SlurmAllocationVariables allocation;
  const fs::path logs = dir_ / "job";
  const Result r =
      haein("run -n 8 --backend srun --dry-run --log-dir " + logs.string() + " -- prog");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("8 ranks on n[1-2] (srun backend, in Slurm job 77"), std::string::npos)
      << r.err;
  EXPECT_EQ(slurp(logs / "hostfile"), "n1\nn1\nn1\nn1\nn2\nn2\nn2\nn2\n");
  // More than the allocation holds: an error before anything starts.
  const Result more = haein("run -n 9 --backend srun --dry-run -- prog");
  EXPECT_EQ(more.exit_code, 2);
  EXPECT_NE(more.err.find("9 ranks but the free nodes have 8 slots (n1: 4, n2: 4)"),
            std::string::npos)
      << more.err;
  // A cluster file that does not describe the allocation's nodes.
  const Result elsewhere = haein("run --cluster preset:haein -n 8 --dry-run -- prog");
  EXPECT_EQ(elsewhere.exit_code, 2);
  EXPECT_NE(elsewhere.err.find("Slurm job 77 has n[1-2], which the cluster file does not describe"),
            std::string::npos)
      << elsewhere.err;
}

TEST_F(Run, InsideASlurmStepHaeinRunIsRefused) {
  const SlurmAllocationVariables allocation(/*in_step=*/true);
  const Result r = haein("run -n 2 --backend srun --dry-run -- prog");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("haein run is running inside Slurm step 77.0 (started by srun)"),
            std::string::npos)
      << r.err;
  // The local backend runs this node's ranks only, as inside `srun --pty bash`.
  const Result local = haein("run -n 1 --backend local --dry-run -- prog");
  EXPECT_EQ(local.exit_code, 0) << local.err;
}

TEST_F(Run, MpirunDryRunPrintsTheCommandAndRankfile) {
  const Result r = haein("run --cluster preset:haein -n 8 --backend mpirun --dry-run -- prog");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find(" -np 8 --rankfile "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("--mca rmaps_rank_file_physical 1 -x MASTER_PORT="), std::string::npos);
  EXPECT_NE(r.out.find("\nrank 7="), std::string::npos) << r.out;
}

TEST_F(Run, LocalDryRunAndPrintEnv) {
  const Result r = haein("run -n 2 --dry-run --print-env --master-port 23456 -- prog a 'b c'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("rank 1 on " + haein::host_name()), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("  MASTER_PORT=23456\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("HAEIN_STOP_GRACE "), std::string::npos) << r.out;  // the settings
  EXPECT_NE(r.out.find("RANK=1 WORLD_SIZE=2 LOCAL_RANK=1"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(" prog a 'b c'\n"), std::string::npos) << r.out;
  // torchrun's variables, and its OpenMP default for ranks sharing a node.
  EXPECT_NE(r.out.find("  GROUP_RANK=0\n  GROUP_WORLD_SIZE=1\n  ROLE_RANK=1\n"), std::string::npos)
      << r.out;
  if (std::getenv("OMP_NUM_THREADS") == nullptr) {
    EXPECT_NE(r.out.find("  OMP_NUM_THREADS=1\n"), std::string::npos) << r.out;
    EXPECT_NE(r.err.find("OMP_NUM_THREADS=1 for every rank"), std::string::npos) << r.err;
  }
}

TEST_F(Run, EnvAndHaeinSettingsReachEveryRankAndPerRankVariablesWin) {
  // mpirun's remote ranks start from orted's fresh environment: every HAEIN_* setting in
  // effect and every --env is named with -x (the bed's cluster tests run them across hosts).
  Result r = haein(
      "run --cluster preset:haein -n 8 --backend mpirun --dry-run --env FOO=a=b "
      "--env HOME --env FOO=c -- prog");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find(" -x FOO -x HOME "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("FOO=c "), std::string::npos) << "the last --env FOO wins\n" << r.out;
  r = haein(
      "run -n 2 --oversubscribe --env FOO=bar --env RANK=9 -- sh "
      "-c 'echo \"$FOO $RANK\"'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("bar 0"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("bar 1"), std::string::npos) << r.out;
  const std::string settings = "HAEIN_TIMEOUT=7 HAEIN_CHECK_COLLECTIVES=1 ";
  r = haein("run -n 2 --oversubscribe --backend mpirun --dry-run --print-env -- prog");
  EXPECT_EQ(r.out.find(" -x HAEIN_TIMEOUT"), std::string::npos) << "not set, not forwarded";
  const int status = std::system(
      (settings +
       command("run -n 2 --oversubscribe --backend mpirun --dry-run --print-env -- prog"))
          .c_str());
  ASSERT_EQ(WEXITSTATUS(status), 0);
  const std::string out = slurp(dir_ / "stdout");
  EXPECT_NE(out.find(" -x HAEIN_TIMEOUT"), std::string::npos) << out;
  EXPECT_NE(out.find(" -x HAEIN_CHECK_COLLECTIVES"), std::string::npos) << out;
  EXPECT_NE(out.find("also gets (HAEIN_* in effect, --env):\n  HAEIN_CHECK_COLLECTIVES=1\n"),
            std::string::npos)
      << out;
}

TEST_F(Run, BadEnvIsAnErrorNamingIt) {
  const std::pair<std::string, std::string> cases[] = {
      {"--env 1X=2", "--env '1X=2': expected NAME or NAME=VALUE"},
      {"--env =2", "--env '=2': expected NAME"},
      {"--env RANK_OK-=1", "--env 'RANK_OK-=1'"},
      {"--env HAEIN_PLACEMENT=/x", "haein run sets HAEIN_PLACEMENT itself"},
      {"--env HAEIN_NO_SUCH_VARIABLE_SET_HERE", "is not set here; give --env"},
  };
  for (const auto& [args, message] : cases) {
    const Result r = haein("run -n 1 " + args + " -- /bin/true");
    EXPECT_EQ(r.exit_code, 2) << args << "\n" << r.err;
    EXPECT_NE(r.err.find(message), std::string::npos) << args << "\n" << r.err;
  }
}

TEST(MemoryBinder, BindsToANodeThatExistsAndNamesOneThatDoesNot) {
  haein::launcher::detail::MemoryBinder binder;
  if (!binder.supported()) {
    EXPECT_EQ(binder.bind(0), "this kernel has no NUMA memory policies");
    GTEST_SKIP() << "this kernel has no NUMA memory policies (set_mempolicy: ENOSYS)";
  }
  const pid_t child = fork();  // bind in a child: the policy would stay with this test
  ASSERT_GE(child, 0);
  if (child == 0) {
    if (!binder.bind(0).empty()) _exit(1);
    int mode = 0;
    unsigned long nodes[16] = {};
    if (syscall(SYS_get_mempolicy, &mode, nodes, sizeof nodes * 8, nullptr, 0) != 0) _exit(2);
    _exit(mode != 0 && (nodes[0] & 1) != 0 ? 0 : 3);  // a policy naming node 0
  }
  int status = 0;
  waitpid(child, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  EXPECT_EQ(binder.bind(4095), "NUMA node 4095 does not exist here");
  EXPECT_EQ(binder.bind(-1), "no NUMA domain in the placement");
}

// CUDA_VISIBLE_DEVICES restricts the node haein run discovers, as it would a program run
// there: a CPU-only job on a GPU machine (empty), a shared workstation's GPUs 2 and 5.
TEST(VisibleGpus, KeepsTheListedGpusAndNamesAnEntryThatIsNone) {
  using haein::launcher::detail::keep_visible_gpus;
  haein::topology::Node node;
  node.hostname = "n1";
  for (int i = 0; i < 8; ++i) {
    haein::topology::Gpu gpu;
    gpu.index = i;
    gpu.numa = i / 4;
    node.hardware.gpus.push_back(gpu);
  }
  const auto indices = [](const haein::topology::Node& n) {
    std::vector<int> out;
    for (const auto& gpu : n.hardware.gpus) out.push_back(gpu.index);
    return out;
  };
  const auto kept = [&](const char* listed, std::string* said = nullptr) {
    haein::topology::Node copy = node;
    std::ostringstream err;
    keep_visible_gpus(copy, listed, err);
    if (said != nullptr) *said = err.str();
    return indices(copy);
  };
  std::string said;
  EXPECT_EQ(kept(nullptr, &said), indices(node));
  EXPECT_EQ(said, "");
  EXPECT_EQ(kept("0,1,2,3,4,5,6,7", &said), indices(node));
  EXPECT_EQ(said, "");
  EXPECT_EQ(kept("5, 2", &said), (std::vector<int>{2, 5}));
  EXPECT_NE(said.find("ranks use 2 of the 8 GPUs of n1"), std::string::npos) << said;
  EXPECT_EQ(kept(""), std::vector<int>{});
  EXPECT_EQ(kept("-1"), std::vector<int>{});
  EXPECT_EQ(kept("3,-1,4"), std::vector<int>{3});
  const auto error_of = [&](const char* listed) {
    try {
      kept(listed);
    } catch (const haein::InvalidArgument& error) {
      return std::string(error.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(error_of("8").find("no GPU 8 here"), std::string::npos) << error_of("8");
  EXPECT_NE(error_of("1,1").find("GPU 1 is listed twice"), std::string::npos);
  EXPECT_NE(error_of("GPU-8a3c").find("UUIDs are not supported"), std::string::npos);
  EXPECT_NE(error_of("0,,1").find("'' is not a GPU index"), std::string::npos);
  EXPECT_NE(error_of("99999999999").find("not a GPU index"), std::string::npos);
  // A node without GPUs runs on CPUs whatever is listed.
  haein::topology::Node cpus;
  std::ostringstream err;
  keep_visible_gpus(cpus, "0,1", err);
  EXPECT_TRUE(cpus.hardware.gpus.empty());
}

// What torchrun users type: the script without "--" (run under python3, as torchrun
// runs it), -m MODULE, --standalone, --nproc_per_node, --no-python, --local-ranks-filter.
TEST_F(Run, TorchrunStyleCommandLines) {
  {
    std::ofstream(dir_ / "train.py") << "import os, sys\n"
                                        "print('rank', os.environ['RANK'], sys.argv[1:])\n";
    std::ofstream(dir_ / "haeinmod.py") << "import os\nprint('module rank', os.environ['RANK'])\n";
  }
  const std::string py = (dir_ / "train.py").string();
  Result r = haein("run --standalone --nnodes 1 --nproc_per_node 2 " + py + " --lr 0.1");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("rank 0 ['--lr', '0.1']"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("rank 1 ['--lr', '0.1']"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("under python3, as torchrun does"), std::string::npos) << r.err;

  r = haein("run -n 2 --env PYTHONPATH=" + dir_.string() + " -m haeinmod");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("module rank 1"), std::string::npos) << r.out;

  // --no-python runs the file itself: this one has no execute permission.
  r = haein("run -n 1 --no-python " + py);
  EXPECT_EQ(r.exit_code, 126) << r.err;

  // Only local rank 1 on the console; rank 0's output is in its log all the same.
  r = haein("run -n 2 --local-ranks-filter 1 --log-dir " + (dir_ / "logs").string() + " -- " +
            script("say.sh", "echo said by $RANK\n"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.find("said by 0"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("said by 1"), std::string::npos) << r.out;
  EXPECT_NE(slurp(dir_ / "logs" / "attempt-0" / "rank-0.log").find("said by 0"), std::string::npos);

  r = haein("run -n 2 --standalone -c preset:haein true");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--standalone runs on this node only"), std::string::npos) << r.err;
  r = haein("run -n 1 --local-ranks-filter 0,x true");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("expected local ranks like 0,3"), std::string::npos) << r.err;
}

TEST_F(Run, BadInputIsNamed) {
  Result r = haein("run -n 2 -- haein-no-such-program-xyz");
  EXPECT_EQ(r.exit_code, 127);
  EXPECT_NE(r.err.find("cannot run 'haein-no-such-program-xyz': not found in PATH"),
            std::string::npos)
      << r.err;
  // What is there but cannot run says so, with a shell's 126.
  r = haein("run -n 1 -- /etc/passwd");
  EXPECT_EQ(r.exit_code, 126) << r.err;
  EXPECT_NE(r.err.find("cannot run '/etc/passwd': not executable"), std::string::npos) << r.err;
  r = haein("run -n 1 -- /");
  EXPECT_EQ(r.exit_code, 126) << r.err;
  EXPECT_NE(r.err.find("cannot run '/': it is a directory"), std::string::npos) << r.err;
  r = haein("run -n 1 -- /haein/no/such/file");
  EXPECT_EQ(r.exit_code, 127) << r.err;
  EXPECT_NE(r.err.find("cannot run '/haein/no/such/file': no such file"), std::string::npos)
      << r.err;

  r = haein("run -n 64 -- true");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("64 ranks but the free nodes have"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("--oversubscribe"), std::string::npos) << r.err;

  std::ofstream(dir_ / "hosts") << "haein-unknown-host.invalid slots=2\n";
  r = haein("run --cluster " + (dir_ / "hosts").string() + " -n 2 --backend mpirun -- true");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("host 'haein-unknown-host.invalid' (rank 0-1) is unknown"),
            std::string::npos)
      << r.err;
  r = haein("run --cluster " + (dir_ / "hosts").string() + " -n 2 --backend local -- true");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("the local backend starts ranks on this host"), std::string::npos) << r.err;

  r = haein("run -n 2");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("needs a program to run after '--'"), std::string::npos) << r.err;
  r = haein("run -n 2 --");
  EXPECT_EQ(r.exit_code, 2);
  r = haein("run -- true");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("how many ranks?"), std::string::npos) << r.err;
  r = haein("run -n 2 --backend pbs -- true");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--backend 'pbs'"), std::string::npos) << r.err;
  r = haein("run -n 2 --tag-output '{node}' -- true");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("unknown field '{node}'"), std::string::npos) << r.err;
  r = haein("run -n 2 --max-restarts -1 -- true");
  EXPECT_EQ(r.exit_code, 2);
}

}  // namespace
