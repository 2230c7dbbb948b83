// Reading the watchdogs' verdicts back (launcher/src/run/verdicts.hpp): a stopped rank is
// told from a host cut off, and a rank that had already ended is no one's silence.
#include "run/verdicts.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace {

using haein::launcher::Placement;
using haein::launcher::RankPlacement;
using haein::launcher::detail::describe_stopped;
using haein::launcher::detail::RankStatus;
using haein::launcher::detail::Silence;
using haein::launcher::detail::silence_in_verdicts;

/// `per_host` ranks on each of hosts h1..hN, in rank order.
Placement placement(int hosts, int per_host) {
  Placement p;
  for (int h = 0; h < hosts; ++h) {
    for (int l = 0; l < per_host; ++l) {
      RankPlacement r;
      r.rank = h * per_host + l;
      r.host = "h" + std::to_string(h + 1);
      r.local_rank = l;
      p.ranks.push_back(r);
    }
  }
  return p;
}

/// Every rank ended at `ended_ns` (100 by default) with code 124, none with a verdict.
std::vector<RankStatus> ends(const Placement& p, std::int64_t ended_ns = 100) {
  std::vector<RankStatus> statuses;
  for (const RankPlacement& r : p.ranks) {
    RankStatus status;
    status.rank = r.rank;
    status.host = r.host;
    status.exit_code = 124;
    status.ended_ns = ended_ns;
    statuses.push_back(status);
  }
  return statuses;
}

void verdict(RankStatus& status, const std::string& silent) {
  status.tail.push_back("haein: rank " + std::to_string(status.rank) + " (" + status.host +
                        "): all_reduce(f32, count=1024, sum) #96 via mpi timed out after 5 s "
                        "(HAEIN_TIMEOUT); ranks that never joined: 0, 2; ranks that did not "
                        "answer (exited, stopped or unreachable): " +
                        silent + "; rank 0 (h1) last entered #95");
}

TEST(Verdicts, ARankSilentWhileItsHostsOtherRanksAnsweredWasStopped) {
  const Placement p = placement(3, 2);
  auto statuses = ends(p);
  statuses[3].ended_ns = 200;  // the stopped rank, killed last
  statuses[3].exit_code = 0;
  statuses[3].signal = 15;
  verdict(statuses[4], "3");
  verdict(statuses[1], "3");
  const Silence silence = silence_in_verdicts(p, statuses);
  EXPECT_EQ(silence.host, "h2");
  EXPECT_FALSE(silence.whole_host);
  EXPECT_EQ(silence.ranks, std::vector<int>{3});
  EXPECT_EQ(silence.reporting_ranks, (std::vector<int>{1, 4}));
  EXPECT_EQ(describe_stopped(silence),
            "did not answer the watchdogs of ranks 1, 4 while it ran, though its host's other "
            "ranks did: stopped (SIGSTOP, a debugger) or frozen");
}

TEST(Verdicts, OnOneHostTheRankTheOthersFoundSilentIsNamed) {
  const Placement p = placement(1, 4);
  auto statuses = ends(p);
  statuses[2].ended_ns = 200;
  for (int r : {0, 1, 3}) verdict(statuses[r], "2");
  const Silence silence = silence_in_verdicts(p, statuses);
  EXPECT_EQ(silence.host, "h1");
  EXPECT_FALSE(silence.whole_host);
  EXPECT_EQ(silence.ranks, std::vector<int>{2});
  EXPECT_EQ(silence.reporting_ranks, (std::vector<int>{0, 1, 3}));
}

TEST(Verdicts, AHostWhoseRanksAllWentSilentWasCutOff) {
  const Placement p = placement(3, 2);
  auto statuses = ends(p);
  statuses[2].ended_ns = statuses[3].ended_ns = 200;
  verdict(statuses[0], "2, 3");
  verdict(statuses[5], "2, 3");
  verdict(statuses[2], "0, 1, 4, 5");  // from inside: everyone else is gone
  const Silence silence = silence_in_verdicts(p, statuses);
  EXPECT_EQ(silence.host, "h2");
  EXPECT_TRUE(silence.whole_host);
  EXPECT_EQ(silence.ranks, (std::vector<int>{2, 3}));
  EXPECT_EQ(silence.reporters, "h1, h3");
}

TEST(Verdicts, ARankThatHadEndedBeforeTheVerdictIsNoOnesSilence) {
  const Placement p = placement(3, 2);
  auto statuses = ends(p);
  statuses[3].ended_ns = 50;  // it exited (and was not asked while alive)
  statuses[3].exit_code = 1;
  verdict(statuses[4], "3");
  EXPECT_TRUE(silence_in_verdicts(p, statuses).host.empty());
}

TEST(Verdicts, TwoHostsThatLostEachOtherNameNoHost) {
  const Placement p = placement(2, 2);
  auto statuses = ends(p);
  verdict(statuses[0], "2, 3");
  verdict(statuses[2], "0, 1");
  EXPECT_TRUE(silence_in_verdicts(p, statuses).host.empty());
}

TEST(Verdicts, SilentRanksOnTwoHostsNameNoRank) {
  const Placement p = placement(3, 2);
  auto statuses = ends(p);
  statuses[1].ended_ns = statuses[3].ended_ns = 200;
  verdict(statuses[4], "1, 3");
  EXPECT_TRUE(silence_in_verdicts(p, statuses).host.empty());
}

TEST(Verdicts, AnOlderRuntimesVerdictIsReadToo) {
  const Placement p = placement(3, 2);
  auto statuses = ends(p);
  statuses[2].ended_ns = statuses[3].ended_ns = 200;
  for (int r : {0, 5})
    statuses[r].tail.push_back(
        "haein: rank " + std::to_string(r) +
        ": ...; ranks that did not answer (exited or unreachable): 2, 3; rank 2 (h2) ...");
  statuses[2].tail.push_back(
      "haein: rank 2: ...; ranks that did not answer (exited or unreachable): 0, 1, 4, 5");
  const Silence silence = silence_in_verdicts(p, statuses);
  EXPECT_EQ(silence.host, "h2");
  EXPECT_TRUE(silence.whole_host);
}

TEST(Verdicts, NumbersOutsideTheJobAndARanksOwnNumberAreIgnored) {
  const Placement p = placement(1, 3);
  auto statuses = ends(p);
  verdict(statuses[0], "0, 7, -1");
  EXPECT_TRUE(silence_in_verdicts(p, statuses).host.empty());
}

}  // namespace
