// Fingerprint checking and the timeline, under mpirun with 2 and 4 ranks.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "haein/runtime/communicator.hpp"
#include "mpi_test_main.hpp"

namespace {

using haein::runtime::CollectiveMismatch;
using haein::runtime::Communicator;
using haein::runtime::CommunicatorOptions;
using haein::runtime::DataType;
using haein::runtime::MpiBootstrap;
using haein::runtime::ReduceOp;

Communicator& comm() { return haein::test::world(); }

TEST(Safety, ADifferentCountIsAnErrorOnEveryRankWithinTwoSeconds) {
  CommunicatorOptions options = comm().options();
  options.check_collectives = true;
  Communicator checked(MpiBootstrap::world(), options);
  const int me = checked.rank();
  std::vector<float> data(1000, 1.0f);
  const std::size_t count = me == 1 ? 999 : 1000;
  const auto start = std::chrono::steady_clock::now();
  std::string message;
  try {
    checked.all_reduce(data.data(), data.data(), count, DataType::kF32, ReduceOp::kSum);
  } catch (const CollectiveMismatch& error) {
    message = error.what();
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_FALSE(message.empty()) << "rank " << me << " got no CollectiveMismatch";
  EXPECT_LT(seconds, 2.0);
  EXPECT_NE(message.find("rank 1 called all_reduce(f32, count=999, sum) #1"), std::string::npos)
      << message;
  EXPECT_NE(message.find("called all_reduce(f32, count=1000, sum) #1"), std::string::npos)
      << message;
  EXPECT_NE(message.find(checked.size() == 2 ? "rank 0 called" : "ranks 0, 2"), std::string::npos)
      << message;
  // The flight recorder keeps the operation as failed, and the next one starts clean.
  const auto failed = checked.flight_recorder();
  ASSERT_FALSE(failed.empty());
  EXPECT_EQ(failed.back().op, haein::Collective::kAllReduce);
  EXPECT_EQ(failed.back().sequence, 1u);
  EXPECT_EQ(failed.back().state, haein::runtime::OpState::kFailed);
  // Nothing was sent: the same communicator goes on when the ranks agree again.
  checked.all_reduce(data.data(), data.data(), 1000, DataType::kF32, ReduceOp::kSum);
  EXPECT_EQ(data[999], static_cast<float>(checked.size()));
  EXPECT_EQ(checked.flight_recorder().back().state, haein::runtime::OpState::kCompleted);
  // A different root is caught too.
  const int root = me == 0 ? 1 : 0;
  std::string rooted;
  try {
    checked.broadcast(data.data(), data.data(), 10, DataType::kF32, root);
  } catch (const CollectiveMismatch& error) {
    rooted = error.what();
  }
  EXPECT_NE(rooted.find("rank 0 called broadcast(f32, count=10, root=1) #3"), std::string::npos)
      << rooted;
}

TEST(Telemetry, TimelineHasOneTrackPerRankWithEveryOperation) {
  // Rank 0 names the file: every rank must use the same path.
  std::int64_t id = getpid();
  comm().broadcast(&id, &id, 1, DataType::kI64, 0);
  const std::filesystem::path file =
      std::filesystem::temp_directory_path() / ("haein-timeline-" + std::to_string(id) + ".json");
  {
    CommunicatorOptions options = comm().options();
    options.timeline_file = file.string();
    Communicator traced(MpiBootstrap::world(), options);
    double x = 1, y = 0;
    for (int i = 0; i < 3; ++i) traced.all_reduce(&x, &y, 1, DataType::kF64, ReduceOp::kSum);
    traced.barrier();
  }  // destroyed: flushed
  comm().barrier();
  if (comm().rank() == 0) {
    std::ifstream in(file);
    std::stringstream text;
    text << in.rdbuf();
    std::string json = text.str();
    // The array's closing bracket is left out, as the trace format allows; add it to parse.
    ASSERT_GE(json.size(), 3u);
    ASSERT_EQ(json.substr(json.size() - 2), ",\n") << json;
    json.resize(json.size() - 2);
    json += "]";
    const nlohmann::json events = nlohmann::json::parse(json);
    std::map<int, int> all_reduces, barriers, names;
    for (const auto& event : events) {
      const int pid = event.at("pid").get<int>();
      if (event.at("ph") == "M" && event.at("name") == "process_name") ++names[pid];
      if (event.at("ph") != "X") continue;
      EXPECT_GE(event.at("dur").get<std::int64_t>(), 0);
      if (event.at("name") == "all_reduce") {
        ++all_reduces[pid];
        EXPECT_EQ(event.at("args").at("bytes"), 8);
        EXPECT_EQ(event.at("args").at("reduce"), "sum");
      }
      if (event.at("name") == "barrier") ++barriers[pid];
    }
    for (int r = 0; r < comm().size(); ++r) {
      EXPECT_EQ(all_reduces[r], 3) << "rank " << r;
      EXPECT_EQ(barriers[r], 1) << "rank " << r;
      EXPECT_EQ(names[r], 1) << "rank " << r;
    }
    std::filesystem::remove(file);
  }
}

TEST(Telemetry, AnUnwritableTimelineIsAnErrorOnEveryRank) {
  CommunicatorOptions options = comm().options();
  options.timeline_file = "/nonexistent-dir/timeline.json";
  EXPECT_THROW(Communicator(MpiBootstrap::world(), options), haein::InvalidArgument);
}

}  // namespace
