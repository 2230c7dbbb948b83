// The runtime's heartbeat: the file's mtime moves on beat(), at most once per interval;
// and `haein run --heartbeat-timeout` tells a beating rank from a hung one.
#include "haein/runtime/heartbeat.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

namespace {

namespace fs = std::filesystem;

std::int64_t mtime_ns(const fs::path& file) {
  struct stat info {};
  if (::stat(file.c_str(), &info) != 0) return -1;
  return static_cast<std::int64_t>(info.st_mtim.tv_sec) * 1000000000 + info.st_mtim.tv_nsec;
}

fs::path scratch(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() / ("haein-heartbeat-" + std::to_string(getpid()));
  fs::create_directories(dir);
  return dir / name;
}

TEST(Heartbeat, CreatesTheFileAndMovesItsTimeAtMostOncePerInterval) {
  const fs::path file = scratch("beat");
  fs::remove(file);
  haein::runtime::Heartbeat heartbeat(file.string(), std::chrono::milliseconds(200));
  ASSERT_TRUE(heartbeat.enabled());
  heartbeat.beat();
  const std::int64_t first = mtime_ns(file);
  ASSERT_GT(first, 0) << "beat() creates a missing file";
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  heartbeat.beat();  // within the interval: no system call, no change
  EXPECT_EQ(mtime_ns(file), first);
  std::this_thread::sleep_for(std::chrono::milliseconds(220));
  heartbeat.beat();
  EXPECT_GT(mtime_ns(file), first);
  fs::remove_all(file.parent_path());
}

TEST(Heartbeat, DisabledWithoutAFile) {
  unsetenv("HAEIN_HEARTBEAT_FILE");
  haein::runtime::Heartbeat heartbeat = haein::runtime::Heartbeat::from_environment();
  EXPECT_FALSE(heartbeat.enabled());
  heartbeat.beat();  // nothing to do, nothing thrown
  setenv("HAEIN_HEARTBEAT_FILE", scratch("from-env").c_str(), 1);
  EXPECT_EQ(haein::runtime::Heartbeat::from_environment().file(), scratch("from-env").string());
  unsetenv("HAEIN_HEARTBEAT_FILE");
  fs::remove_all(scratch("x").parent_path());
}

struct Job {
  int exit_code = -1;
  std::string err;
};

Job haein_run(const std::string& args) {
  const fs::path err = scratch("stderr");
  const std::string command =
      std::string(HAEIN_BINARY) + " run " + args + " >/dev/null 2>" + err.string() + " </dev/null";
  const int status = std::system(command.c_str());
  std::ifstream in(err);
  std::ostringstream text;
  text << in.rdbuf();
  fs::remove_all(err.parent_path());
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, text.str()};
}

TEST(Heartbeat, HaeinRunKeepsBeatingRanksAndStopsAHungOne) {
  // Every rank beats for 2 s under a 1 s timeout: the job succeeds.
  Job job = haein_run("-n 2 --heartbeat-timeout 1 -- " HEARTBEAT_RANK " 2");
  EXPECT_EQ(job.exit_code, 0) << job.err;
  // Rank 1 stops beating after 0.75 s of 3 s: reported as hung, exit 124.
  job = haein_run("-n 2 --heartbeat-timeout 1 -- " HEARTBEAT_RANK " 3 1");
  EXPECT_EQ(job.exit_code, 124) << job.err;
  EXPECT_NE(job.err.find("root cause: rank 1 on "), std::string::npos) << job.err;
  EXPECT_NE(job.err.find("hung: no heartbeat for 1."), std::string::npos) << job.err;
}

}  // namespace
