#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "haein/common/env.hpp"
#include "haein/common/error.hpp"
#include "haein/common/files.hpp"
#include "haein/common/log.hpp"
#include "haein/common/process.hpp"
#include "haein/common/settings.hpp"
#include "haein/common/slurm.hpp"

namespace haein {
namespace {

namespace fs = std::filesystem;

std::string slurp(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// What a second user may plant in a shared directory does not redirect or receive what the
// job writes there.
TEST(ReplaceFile, ReplacesAPlantedSymlinkOrFileAndLeavesNothingOnFailure) {
  const fs::path dir = fs::temp_directory_path() / ("haein-replace-" + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  fs::permissions(dir, fs::perms::all | fs::perms::sticky_bit);  // as /tmp
  const fs::path victim = dir / "victim";
  { std::ofstream(victim) << "precious\n"; }
  fs::create_symlink(victim, dir / "dump.txt");
  replace_file((dir / "dump.txt").string(), "the job's text\n");
  EXPECT_EQ(slurp(victim), "precious\n") << "the symlink was followed";
  EXPECT_FALSE(fs::is_symlink(dir / "dump.txt"));
  EXPECT_EQ(slurp(dir / "dump.txt"), "the job's text\n");
  struct stat info {};
  ASSERT_EQ(::stat((dir / "dump.txt").c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 07777, 0644u);
  replace_file((dir / "dump.txt").string(), "again\n", 0600);  // over its own file
  EXPECT_EQ(slurp(dir / "dump.txt"), "again\n");

  try {
    replace_file((dir / "no-such-dir" / "x").string(), "x");
    ADD_FAILURE() << "no error for a missing directory";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("no such directory"), std::string::npos)
        << error.what();
  }
  try {
    replace_file(dir.string(), "x");  // a directory is in the way
    ADD_FAILURE() << "no error for a directory at the path";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find(dir.string()), std::string::npos) << error.what();
  }
  // As a second user (root can become one): another user's file in a sticky directory is
  // refused with a reason, not written into.
  if (::geteuid() == 0) {
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      if (::setgid(65534) != 0 || ::setuid(65534) != 0) ::_exit(3);
      try {
        replace_file((dir / "victim").string(), "overwritten\n");
      } catch (const Error& error) {
        ::_exit(std::string(error.what()).find("another user's file") != std::string::npos ? 0 : 2);
      }
      ::_exit(1);
    }
    int status = 0;
    ::waitpid(child, &status, 0);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status;
    EXPECT_EQ(slurp(victim), "precious\n");
  }
  std::size_t entries = 0;
  for ([[maybe_unused]] const auto& entry : fs::directory_iterator(dir)) ++entries;
  EXPECT_EQ(entries, 2u) << "a temporary file was left behind";
  fs::remove_all(dir);
}

TEST(Error, ExitCodesAtTheEdge) {
  EXPECT_EQ(exit_code_for(ParseError("a.yaml", 3, "bad")), ExitCode::kBadInput);
  EXPECT_EQ(exit_code_for(InvalidArgument("bad flag")), ExitCode::kBadInput);
  EXPECT_EQ(exit_code_for(CudaError("boom", 2)), ExitCode::kFailure);
  EXPECT_EQ(exit_code_for(std::runtime_error("other")), ExitCode::kFailure);
}

TEST(Error, ParseErrorCarriesItsLocation) {
  const ParseError error("cluster.yaml", 12, "expected a list");
  EXPECT_STREQ(error.what(), "cluster.yaml:12: expected a list");
  EXPECT_EQ(error.detail(), "expected a list");
  EXPECT_STREQ(ParseError("f", 0, "x").what(), "f: x");
}

TEST(Settings, TypedValuesAndClearErrors) {
  const env::IntSetting count{"HAEIN_TEST_COUNT", "4", "a test count"};
  const env::SecondsSetting wait{"HAEIN_TEST_WAIT", "1.5", "a test wait"};
  const env::BoolSetting flag{"HAEIN_TEST_FLAG", "off", "a test flag"};
  EXPECT_EQ(count.get(), 4);
  EXPECT_EQ(wait.get(), 1.5);
  EXPECT_FALSE(flag.get());
  setenv("HAEIN_TEST_COUNT", "12", 1);
  setenv("HAEIN_TEST_FLAG", "Yes", 1);
  EXPECT_EQ(count.get(), 12);
  EXPECT_TRUE(flag.get());
  setenv("HAEIN_TEST_COUNT", "12x", 1);
  setenv("HAEIN_TEST_WAIT", "-1", 1);
  try {
    count.get();
    FAIL();
  } catch (const InvalidArgument& error) {
    EXPECT_NE(std::string(error.what()).find("HAEIN_TEST_COUNT='12x' is not an integer"),
              std::string::npos);
  }
  EXPECT_THROW(wait.get(), InvalidArgument);
  // Past a year a wait overflows the clocks it is added to.
  for (const char* huge : {"1e16", "inf", "nan", "31536001"}) {
    setenv("HAEIN_TEST_WAIT", huge, 1);
    EXPECT_THROW(wait.get(), InvalidArgument) << huge;
  }
  setenv("HAEIN_TEST_WAIT", "31536000", 1);
  EXPECT_EQ(wait.get(), 31536000.0);
  unsetenv("HAEIN_TEST_COUNT");
  unsetenv("HAEIN_TEST_WAIT");
  unsetenv("HAEIN_TEST_FLAG");
}

TEST(Settings, EverySettingIsListed) {
  setenv("HAEIN_LOG_LEVEL", "debug", 1);
  std::ostringstream out;
  env::print_settings(out);
  unsetenv("HAEIN_LOG_LEVEL");
  EXPECT_NE(out.str().find("HAEIN_LOG_LEVEL"), std::string::npos);
  EXPECT_NE(out.str().find("(environment)"), std::string::npos) << out.str();
  for (const env::Setting* setting : env::all_settings()) {
    EXPECT_TRUE(setting->name().starts_with("HAEIN_"));
    EXPECT_NE(out.str().find(setting->name()), std::string::npos);
  }
}

TEST(Log, LevelsParseAndFilter) {
  EXPECT_EQ(log::parse_level("warn"), log::Level::kWarn);
  EXPECT_EQ(log::parse_level("trace"), log::Level::kTrace);
  EXPECT_THROW(log::parse_level("loud"), InvalidArgument);
  log::set_level(log::Level::kWarn);
  EXPECT_FALSE(log::enabled(log::Level::kInfo));
  EXPECT_TRUE(log::enabled(log::Level::kError));
  testing::internal::CaptureStderr();
  HAEIN_LOG(kInfo, "hidden " << 1);
  HAEIN_LOG(kWarn, "shown " << 2);
  const std::string err = testing::internal::GetCapturedStderr();
  EXPECT_EQ(err.find("hidden"), std::string::npos);
  EXPECT_NE(err.find("[haein " + process_label() + " WARN] shown 2"), std::string::npos) << err;
}

TEST(Process, ExplicitRankWins) {
  set_process_rank(7);
  EXPECT_EQ(process_rank(), 7);
  EXPECT_EQ(process_label(), host_name() + ":7");
}

}  // namespace
}  // namespace haein

TEST(SlurmCounts, CompressedListsExpand) {
  EXPECT_EQ(haein::parse_slurm_counts("8(x2),4", "V"), (std::vector<int>{8, 8, 4}));
  EXPECT_EQ(haein::parse_slurm_counts("1", "V"), (std::vector<int>{1}));
  EXPECT_EQ(haein::parse_slurm_counts("2,3(x1)", "V"), (std::vector<int>{2, 3}));
  for (const char* bad : {"", "8(x2", "8(x)", "x", "-1", "4,,2", "8(x0)", "1(x9999999)"}) {
    try {
      haein::parse_slurm_counts(bad, "SLURM_JOB_CPUS_PER_NODE");
      ADD_FAILURE() << "accepted '" << bad << "'";
    } catch (const haein::InvalidArgument& error) {
      EXPECT_NE(std::string(error.what()).find("SLURM_JOB_CPUS_PER_NODE"), std::string::npos);
    }
  }
}
