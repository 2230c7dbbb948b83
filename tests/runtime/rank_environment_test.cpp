// Where a rank learns who it is (docs/environment.md): the launcher that started this very
// process wins over variables left over from the shell or the batch script.
#include "haein/runtime/rank_environment.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <string>
#include <vector>

namespace {

// Clears every variable the reader looks at, sets the given ones, and restores them all.
class Environment {
 public:
  explicit Environment(const std::vector<std::pair<std::string, std::string>>& set) {
    for (const char* name : {"RANK",
                             "WORLD_SIZE",
                             "LOCAL_RANK",
                             "LOCAL_WORLD_SIZE",
                             "HAEIN_PLACEMENT",
                             "TORCHELASTIC_RUN_ID",
                             "OMPI_COMM_WORLD_RANK",
                             "OMPI_COMM_WORLD_SIZE",
                             "OMPI_COMM_WORLD_LOCAL_RANK",
                             "OMPI_COMM_WORLD_LOCAL_SIZE",
                             "SLURM_STEP_ID",
                             "SLURM_PROCID",
                             "SLURM_NTASKS",
                             "SLURM_LOCALID",
                             "SLURM_STEP_TASKS_PER_NODE",
                             "SLURM_TASKS_PER_NODE",
                             "SLURM_NODEID",
                             "SLURM_STEP_NUM_NODES",
                             "SLURM_JOB_NUM_NODES",
                             "PMI_RANK",
                             "PMI_SIZE",
                             "MASTER_ADDR",
                             "MASTER_PORT"}) {
      const char* value = std::getenv(name);
      saved_.push_back({name, value ? value : "", value != nullptr});
      unsetenv(name);
    }
    for (const auto& [name, value] : set) setenv(name.c_str(), value.c_str(), 1);
  }
  ~Environment() {
    for (const Saved& s : saved_) {
      if (s.was_set) {
        setenv(s.name.c_str(), s.value.c_str(), 1);
      } else {
        unsetenv(s.name.c_str());
      }
    }
  }

 private:
  struct Saved {
    std::string name, value;
    bool was_set;
  };
  std::vector<Saved> saved_;
};

using haein::runtime::read_rank_environment;

TEST(RankEnvironment, AnSrunTaskIgnoresARankLeftInTheSubmittingShell) {
  const Environment env({{"RANK", "3"},
                         {"WORLD_SIZE", "4"},
                         {"SLURM_STEP_ID", "0"},
                         {"SLURM_PROCID", "1"},
                         {"SLURM_NTASKS", "4"},
                         {"SLURM_LOCALID", "1"},
                         {"SLURM_STEP_TASKS_PER_NODE", "2(x2)"},
                         {"SLURM_NODEID", "0"}});
  const auto rank = read_rank_environment();
  EXPECT_EQ(rank.source, "slurm");
  EXPECT_EQ(rank.rank, 1);
  EXPECT_EQ(rank.world_size, 4);
  EXPECT_EQ(rank.local_rank, 1);
  EXPECT_EQ(rank.local_world_size, 2);
}

TEST(RankEnvironment, ARankForAWorldOfAnotherSizeWasSetOnPurpose) {
  // One srun task per node that starts its node's 8 ranks itself, with RANK and WORLD_SIZE.
  const Environment env({{"RANK", "13"},
                         {"WORLD_SIZE", "16"},
                         {"LOCAL_RANK", "5"},
                         {"LOCAL_WORLD_SIZE", "8"},
                         {"SLURM_STEP_ID", "0"},
                         {"SLURM_PROCID", "1"},
                         {"SLURM_NTASKS", "2"}});
  const auto rank = read_rank_environment();
  EXPECT_EQ(rank.source, "torchrun");
  EXPECT_EQ(rank.rank, 13);
  EXPECT_EQ(rank.local_world_size, 8);
}

TEST(RankEnvironment, PlainSrunWithUnevenNodesTakesThisNodesTaskCount) {
  // srun -n 5 on two nodes of 4 CPUs: 4 tasks on the first node, 1 on the second, and no
  // SLURM_NTASKS_PER_NODE at all.
  const Environment env({{"SLURM_STEP_ID", "2"},
                         {"SLURM_PROCID", "4"},
                         {"SLURM_NTASKS", "5"},
                         {"SLURM_LOCALID", "0"},
                         {"SLURM_STEP_TASKS_PER_NODE", "4,1"},
                         {"SLURM_NODEID", "1"},
                         {"SLURM_STEP_NUM_NODES", "2"},
                         {"SLURM_JOB_NUM_NODES", "2"}});
  const auto rank = read_rank_environment();
  EXPECT_EQ(rank.rank, 4);
  EXPECT_EQ(rank.local_rank, 0);
  EXPECT_EQ(rank.local_world_size, 1);
}

TEST(RankEnvironment, HaeinRunsRankWinsOverTheBatchScriptsSlurmVariables) {
  // The local backend inside an sbatch script: the script's SLURM_PROCID is 0 for every rank.
  const Environment env({{"HAEIN_PLACEMENT", "/job/placement.json"},
                         {"RANK", "2"},
                         {"WORLD_SIZE", "4"},
                         {"LOCAL_RANK", "2"},
                         {"LOCAL_WORLD_SIZE", "4"},
                         {"SLURM_PROCID", "0"},
                         {"SLURM_NTASKS", "1"},
                         {"SLURM_LOCALID", "0"}});
  const auto rank = read_rank_environment();
  EXPECT_EQ(rank.source, "torchrun");
  EXPECT_EQ(rank.rank, 2);
  EXPECT_EQ(rank.local_world_size, 4);
}

TEST(RankEnvironment, OpenMpisRankWinsOverALeftoverRank) {
  const Environment env({{"RANK", "3"},
                         {"WORLD_SIZE", "4"},
                         {"OMPI_COMM_WORLD_RANK", "0"},
                         {"OMPI_COMM_WORLD_SIZE", "2"}});
  const auto rank = read_rank_environment();
  EXPECT_EQ(rank.source, "openmpi");
  EXPECT_EQ(rank.rank, 0);
  EXPECT_EQ(rank.world_size, 2);
}

TEST(RankEnvironment, ABatchScriptIsNotATask) {
  // sbatch's script sees SLURM_PROCID=0 without a step: one process, not rank 0 of many.
  const Environment env({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "8"}});
  const auto rank = read_rank_environment();
  EXPECT_EQ(rank.source, "default");
  EXPECT_EQ(rank.world_size, 1);
}

TEST(RankEnvironment, AMalformedStepTaskListIsNamed) {
  const Environment env({{"SLURM_STEP_ID", "0"},
                         {"SLURM_PROCID", "0"},
                         {"SLURM_NTASKS", "2"},
                         {"SLURM_STEP_TASKS_PER_NODE", "2(x"}});
  try {
    read_rank_environment();
    FAIL() << "no error";
  } catch (const std::exception& error) {
    EXPECT_NE(std::string(error.what()).find("SLURM_STEP_TASKS_PER_NODE"), std::string::npos)
        << error.what();
  }
}

}  // namespace

// haein exec-rank asks for the process manager's variables first: under mpirun it inherits
// haein run's environment, where TORCHELASTIC_RUN_ID (forwarded to every host) and a RANK
// of the user's shell would otherwise make every task that rank.
TEST(RankEnvironment, ATaskOfTheManagerTakesTheManagersRankFirst) {
  const Environment env({{"RANK", "3"},
                         {"WORLD_SIZE", "4"},
                         {"TORCHELASTIC_RUN_ID", "job"},
                         {"OMPI_COMM_WORLD_RANK", "1"},
                         {"OMPI_COMM_WORLD_SIZE", "4"}});
  EXPECT_EQ(read_rank_environment().rank, 3);  // a rank: what its launcher set
  const auto task = read_rank_environment(haein::RankVariables::kManagerFirst);
  EXPECT_EQ(task.source, "openmpi");
  EXPECT_EQ(task.rank, 1);
}

TEST(RankEnvironment, AnSrunTaskOfTheManagerIgnoresEveryInheritedRank) {
  const Environment env({{"RANK", "5"},
                         {"WORLD_SIZE", "8"},  // another size: a rank would keep it
                         {"SLURM_STEP_ID", "0"},
                         {"SLURM_PROCID", "2"},
                         {"SLURM_NTASKS", "4"},
                         {"SLURM_LOCALID", "0"},
                         {"SLURM_STEP_TASKS_PER_NODE", "1(x4)"},
                         {"SLURM_NODEID", "2"}});
  EXPECT_EQ(read_rank_environment().rank, 5);
  const auto task = read_rank_environment(haein::RankVariables::kManagerFirst);
  EXPECT_EQ(task.source, "slurm");
  EXPECT_EQ(task.rank, 2);
  EXPECT_EQ(task.world_size, 4);
}

TEST(RankEnvironment, WithoutAManagerATaskFallsBackToRank) {
  const Environment env({{"RANK", "1"}, {"WORLD_SIZE", "2"}});
  const auto task = read_rank_environment(haein::RankVariables::kManagerFirst);
  EXPECT_EQ(task.source, "torchrun");
  EXPECT_EQ(task.rank, 1);
}

TEST(RankEnvironment, ATaskOfAPmiManagerTakesItsRank) {
  const Environment env({{"PMI_RANK", "2"}, {"PMI_SIZE", "3"}, {"RANK", "0"}, {"WORLD_SIZE", "3"}});
  const auto task = read_rank_environment(haein::RankVariables::kManagerFirst);
  EXPECT_EQ(task.source, "pmi");
  EXPECT_EQ(task.rank, 2);
}
