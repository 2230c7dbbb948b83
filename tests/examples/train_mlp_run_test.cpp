// Whole training runs of train_mlp under the real mpirun and haein run: it learns the task,
// a killed rank's job resumes bitwise-identically from its checkpoint, damaged checkpoints
// are skipped with a warning, 1, 2 and 4 ranks agree, divergent replicas are caught, and
// bad input exits 2.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <regex>
#include <sstream>

#include "checkpoint.hpp"
#include "gpu.hpp"
#include "haein/common/process.hpp"
#include "mlp.hpp"
#include "mlp_device.hpp"
#include "run_command.hpp"

namespace {

namespace fs = std::filesystem;
using namespace haein::examples;

using haein::test::Result;
using haein::test::run;

/// The build's program, or where the GPU check kit carried it (TEST_<NAME> set by the
/// kit's run script, which runs these tests from a relocated copy).
std::string program(const char* variable, const char* built) {
  const char* relocated = std::getenv(variable);
  return relocated != nullptr && *relocated != '\0' ? relocated : built;
}
const std::string kHaein = program("TEST_HAEIN_BINARY", HAEIN_BINARY);
const std::string kTrainMlp = program("TEST_TRAIN_MLP", TRAIN_MLP);
const std::string kMpiexec = program("TEST_MPIEXEC", MPIEXEC);

// Small enough for a few seconds per run on 2 cores.
const std::string kSmallData =
    " --train-samples 8192 --test-samples 2048 --log-every 1000 --eval-every 0 --no-plot";
const std::string kSmall = " --hidden 64,64 --global-batch 64" + kSmallData;

std::string mpirun(int ranks) {
  return kMpiexec + " --allow-run-as-root --oversubscribe --bind-to none -np " +
         std::to_string(ranks) + " " + kTrainMlp;
}

/// Host ranks hide the machine's GPUs (CUDA_VISIBLE_DEVICES empty), so that more ranks than
/// GPUs run where there are GPUs; `on_gpus` leaves them for haein run to place.
std::string haein_run(int ranks, const std::string& flags = "", bool on_gpus = false) {
  return std::string(on_gpus ? "" : "CUDA_VISIBLE_DEVICES= ") + kHaein + " run -n " +
         std::to_string(ranks) + " --oversubscribe --backend mpirun " + flags + " -- " + kTrainMlp;
}

std::string final_checksum(const std::string& output) {
  std::smatch match;
  if (!std::regex_search(output, match, std::regex("parameter checksum ([0-9a-f]{16})"))) return "";
  return match[1];
}

double final_accuracy(const std::string& output) {
  std::smatch match;
  if (!std::regex_search(output, match, std::regex("final: step \\d+, test accuracy ([0-9.]+)%"))) {
    return -1;
  }
  return std::stod(match[1]) / 100;
}

class TrainMlpRun : public testing::Test {
 protected:
  void SetUp() override {
    dir_ =
        fs::temp_directory_path() / ("haein-train-mlp-" + std::to_string(::getpid()) + "-" +
                                     testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override {
    if (!HasFailure()) fs::remove_all(dir_);
  }
  std::string out(const std::string& name) const { return " --out " + (dir_ / name).string(); }
  fs::path dir_;
};

// Each rank gets a private folder at the same path (its own tmpfs, as a host's /tmp is its
// own): every rank must hear that --out is not shared, naming the ranks that cannot see
// rank 0's files, instead of writing split checkpoints or hanging in collective I/O.
TEST_F(TrainMlpRun, HelpExitsZeroWithoutTraining) {
  const Result r = run(kTrainMlp + " --help");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("--steps"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("parameter checksum"), std::string::npos) << r.output;
}

TEST_F(TrainMlpRun, AnOutputFolderNotSharedByEveryRankIsAnError) {
  if (run("unshare -m true").exit_code != 0) GTEST_SKIP() << "no mount namespaces here (root?)";
  const fs::path mount = dir_ / "private";
  fs::create_directories(mount);
  const std::string rank = "unshare -m sh -c 'mount -t tmpfs none " + mount.string() +
                           " && exec \"$0\" \"$@\"' " + kTrainMlp;
  const Result r = run(
      kMpiexec + " --allow-run-as-root --oversubscribe --bind-to none -np 3 -x HAEIN_TIMELINE=" +
      (dir_ / "timeline.json").string() + " " + rank + kSmall + " --steps 5 --out " +
      (mount / "out").string());
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("the output folder (--out) " + (mount / "out").string() +
                          " is not shared by every host"),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("(ranks 1, 2)"), std::string::npos) << r.output;
  // Without HAEIN_TIMELINE the timeline goes in --out too, and its check names it first.
  const Result timeline =
      run(kMpiexec + " --allow-run-as-root --oversubscribe --bind-to none -np 2 " + rank + kSmall +
          " --steps 5 --out " + (mount / "out").string());
  EXPECT_NE(timeline.exit_code, 0) << timeline.output;
  EXPECT_NE(timeline.output.find("is not seen by rank 1"), std::string::npos) << timeline.output;
  EXPECT_NE(timeline.output.find("its folder is not shared by every host"), std::string::npos)
      << timeline.output;
}

TEST_F(TrainMlpRun, LearnsTheTaskWithTwoRanksUnderHaeinRun) {
  const Result r = run(haein_run(2) + kSmall + " --steps 150" + out("run"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_GE(final_accuracy(r.output), 0.95) << r.output;
  EXPECT_NE(r.output.find("train_mlp: 2 ranks"), std::string::npos) << r.output;
  // The loss curve falls: the mean of the last 20 steps is a fraction of the first 20's.
  std::ifstream csv(dir_ / "run" / "loss.csv");
  std::string line;
  std::getline(csv, line);
  EXPECT_EQ(line, "step,loss,train_accuracy,samples_per_s,test_accuracy");
  std::vector<double> loss;
  while (std::getline(csv, line)) loss.push_back(std::stod(line.substr(line.find(',') + 1)));
  ASSERT_EQ(loss.size(), 150U);
  double first = 0, last = 0;
  for (int i = 0; i < 20; ++i) {
    first += loss[static_cast<std::size_t>(i)];
    last += loss[loss.size() - 1 - static_cast<std::size_t>(i)];
  }
  EXPECT_LT(last, 0.25 * first);
  EXPECT_TRUE(fs::exists(dir_ / "run" / "checkpoints" / "ckpt-step-00000150.h5"));
  EXPECT_TRUE(fs::exists(dir_ / "run" / "timeline.json"));
  EXPECT_TRUE(fs::exists(dir_ / "run" / "summary.json"));
}

TEST_F(TrainMlpRun, KilledRankResumesBitwiseIdenticalUnderMaxRestarts) {
  const std::string config = kSmall + " --steps 100 --checkpoint-every 25";
  const Result straight = run(mpirun(4) + config + out("straight"));
  ASSERT_EQ(straight.exit_code, 0) << straight.output;
  const Result restarted = run(haein_run(4, "--max-restarts 1") + config + out("restarted") +
                               " --kill-rank 2 --kill-at-step 60");
  ASSERT_EQ(restarted.exit_code, 0) << restarted.output;
  EXPECT_NE(restarted.output.find("rank 2 kills itself after step 60"), std::string::npos);
  EXPECT_NE(restarted.output.find("restarting the job in 0.5 s (restart 1 of 1)"),
            std::string::npos);
  EXPECT_NE(restarted.output.find("resumed from " + (dir_ / "restarted").string() +
                                  "/checkpoints/ckpt-step-00000050.h5 (step 50"),
            std::string::npos)
      << restarted.output;
  ASSERT_FALSE(final_checksum(straight.output).empty()) << straight.output;
  EXPECT_EQ(final_checksum(straight.output), final_checksum(restarted.output));
  // The loss curve has each step once, as if nothing happened.
  std::ifstream a(dir_ / "straight" / "loss.csv"), b(dir_ / "restarted" / "loss.csv");
  std::string la, lb;
  int rows = 0;
  while (std::getline(a, la)) {
    ASSERT_TRUE(std::getline(b, lb));
    EXPECT_EQ(la.substr(0, la.find(',', la.find(',') + 1)),
              lb.substr(0, lb.find(',', lb.find(',') + 1)));
    ++rows;
  }
  EXPECT_FALSE(std::getline(b, lb));
  EXPECT_EQ(rows, 101);
}

TEST_F(TrainMlpRun, DamagedCheckpointsAreSkippedWithAWarning) {
  const std::string config = kSmall + " --checkpoint-every 20";
  const Result first = run(mpirun(2) + config + " --steps 60" + out("run"));
  ASSERT_EQ(first.exit_code, 0) << first.output;
  const fs::path checkpoints = dir_ / "run" / "checkpoints";
  const fs::path newest = checkpoints / "ckpt-step-00000060.h5";
  const fs::path middle = checkpoints / "ckpt-step-00000040.h5";
  ASSERT_TRUE(fs::exists(newest) && fs::exists(middle));
  // Step 60 truncated to half; step 40 with 64 bytes flipped in the middle.
  fs::resize_file(newest, fs::file_size(newest) / 2);
  {
    std::fstream file(middle, std::ios::in | std::ios::out | std::ios::binary);
    const auto at = static_cast<std::streamoff>(fs::file_size(middle) / 2);
    std::string bytes(64, '\0');
    file.seekg(at);
    file.read(bytes.data(), 64);
    for (char& c : bytes) c = static_cast<char>(~c);
    file.seekp(at);
    file.write(bytes.data(), 64);
  }
  const Result resumed = run(mpirun(2) + config + " --steps 80" + out("run"));
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("warning: checkpoint " + newest.string() + " is damaged"),
            std::string::npos)
      << resumed.output;
  EXPECT_NE(resumed.output.find("warning: checkpoint " + middle.string() + " is damaged"),
            std::string::npos)
      << resumed.output;
  EXPECT_NE(resumed.output.find("resumed from " + (checkpoints / "ckpt-step-00000020.h5").string()),
            std::string::npos)
      << resumed.output;
  // Resuming from step 20 loses nothing: the same result as 80 steps straight.
  const Result straight = run(mpirun(2) + config + " --steps 80" + out("straight"));
  ASSERT_EQ(straight.exit_code, 0) << straight.output;
  EXPECT_EQ(final_checksum(straight.output), final_checksum(resumed.output));
}

TEST_F(TrainMlpRun, OneTwoAndFourRanksAgree) {
  const std::string config = kSmall + " --steps 60";
  std::vector<Mlp> models;
  std::vector<double> accuracy;
  for (int ranks : {1, 2, 4}) {
    const std::string name = "ranks-" + std::to_string(ranks);
    const Result r = run(mpirun(ranks) + config + out(name));
    ASSERT_EQ(r.exit_code, 0) << r.output;
    accuracy.push_back(final_accuracy(r.output));
    Mlp model({32, 64, 64, 10}, 0);
    read_checkpoint((dir_ / name / "checkpoints" / "ckpt-step-00000060.h5").string(), model);
    models.push_back(model);
  }
  // Same global batch, same data: only the order of the sums over ranks differs.
  for (std::size_t m = 1; m < models.size(); ++m) {
    double worst = 0, largest = 0;
    for (std::size_t t = 0; t < models[0].tensors().size(); ++t) {
      const auto& a = models[0].tensors()[t].value;
      const auto& b = models[m].tensors()[t].value;
      for (std::size_t e = 0; e < a.size(); ++e) {
        worst = std::max(worst, double{std::abs(a[e] - b[e])});
        largest = std::max(largest, double{std::abs(a[e])});
      }
    }
    EXPECT_LT(worst, 1e-4 * largest) << "model " << m << " differs from one rank's by " << worst;
    EXPECT_NEAR(accuracy[m], accuracy[0], 0.002);
  }
}

// A rank that stops (SIGSTOP, as under a debugger or a frozen node) must not hang the job:
// the other rank's watchdog names it within HAEIN_TIMEOUT, the job is aborted, and no
// rank of it is left, stopped or running.
TEST_F(TrainMlpRun, AStoppedRankEndsTheJobWithinTheTimeout) {
  const auto start = std::chrono::steady_clock::now();
  const Result r = run("HAEIN_TIMEOUT=5 " + haein_run(2) + kSmall + " --steps 400" + out("stop") +
                       " --kill-rank 1 --kill-at-step 20 --kill-signal STOP");
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_LT(seconds, 5 + 20) << r.output;
  EXPECT_NE(r.output.find("rank 1 stops itself (SIGSTOP)"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("rank 1 (" + haein::host_name() + ") did not reach"), std::string::npos)
      << r.output;
  // Every process of this job (its --out folder is unique) is gone, not only the running.
  const std::string marker = (dir_ / "stop").string();
  int left = 0;
  for (const auto& entry : fs::directory_iterator("/proc")) {
    std::ifstream cmdline(entry.path() / "cmdline");
    std::string text((std::istreambuf_iterator<char>(cmdline)), std::istreambuf_iterator<char>());
    if (text.find(marker) == std::string::npos) continue;
    std::ifstream stat(entry.path() / "stat");
    std::string line;
    std::getline(stat, line);
    const auto paren = line.rfind(')');
    if (paren != std::string::npos && paren + 2 < line.size() && line[paren + 2] != 'Z') ++left;
  }
  EXPECT_EQ(left, 0) << "processes of the stopped job are left";
}

// The same stop found by the heartbeat (the watchdog far off): both ranks stop making
// progress, but rank 0's watchdog thread keeps its heartbeat file's access time moving, so
// the stopped rank is named, not whichever file happened to be older.
TEST_F(TrainMlpRun, AStoppedRanksHeartbeatNamesItNotItsWaitingPeer) {
  const Result r =
      run("HAEIN_TIMEOUT=120 " + haein_run(2, "--heartbeat-timeout 3") + kSmall + " --steps 400" +
          out("stop") + " --kill-rank 1 --kill-at-step 20 --kill-signal STOP");
  EXPECT_EQ(r.exit_code, 124) << r.output;
  EXPECT_NE(r.output.find("root cause: rank 1 on " + haein::host_name() +
                          ": stopped running (SIGSTOP, a debugger?): no heartbeat for"),
            std::string::npos)
      << r.output;
}

// The same stop with bf16 on the wire (all-to-all through MPI, so the watchdog finds the
// stopped rank): rank 0's flight-recorder dump lands in the job's folder, which every host
// shares, not in a host's own /tmp, and haein run says where.
TEST_F(TrainMlpRun, FlightRecorderDumpsLandInTheJobsFolder) {
  const fs::path job = dir_ / "job";
  const Result r = run("HAEIN_TIMEOUT=3 " + haein_run(2, "--log-dir " + job.string()) + kSmall +
                       " --steps 400 --wire bf16" + out("stop") +
                       " --kill-rank 1 --kill-at-step 20 --kill-signal STOP");
  EXPECT_NE(r.exit_code, 0) << r.output;
  const fs::path dumps = job / "attempt-0" / "dumps";
  EXPECT_TRUE(fs::exists(dumps / "haein-flight-recorder-rank-0.txt")) << r.output;
  EXPECT_NE(r.output.find("flight-recorder dumps of 1 rank in " + dumps.string()),
            std::string::npos)
      << r.output;
  // Rank 0's watchdog gave up first, but the stopped rank is the root cause.
  EXPECT_NE(r.output.find("root cause: rank 1 on " + haein::host_name() +
                          ": did not answer the watchdog of rank 0"),
            std::string::npos)
      << r.output;
}

// A disk that fills up: the checkpoint that does not fit is refused before HDF5 writes
// anything, on every rank alike, with the space named; no partial file is left and the
// older checkpoints stay valid. The disk is a 160 KiB tmpfs in a mount namespace of the
// job's own (root only), room for two of these checkpoints.
TEST_F(TrainMlpRun, AFullDiskStopsCheckpointingWithAClearErrorAndKeepsTheOlderOnes) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root for a small tmpfs in a mount namespace";
  const fs::path disk = dir_ / "disk", kept = dir_ / "kept";
  fs::create_directories(disk);
  fs::create_directories(kept);
  const std::string inner = "mount -t tmpfs -o size=160k tmpfs " + disk.string() +
                            " || exit 77; HAEIN_TIMEOUT=30 " + haein_run(4) + kSmall +
                            " --steps 300 --checkpoint-every 20 --checkpoint-dir " + disk.string() +
                            out("full") + "; code=$?; echo listing: $(ls -a " + disk.string() +
                            "); cp " + disk.string() + "/* " + kept.string() + "/; exit $code";
  const auto start = std::chrono::steady_clock::now();
  const Result r = run("unshare -m sh -c '" + inner + "'");
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (r.exit_code == 77 || r.exit_code == 127) GTEST_SKIP() << "no tmpfs here: " << r.output;
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_LT(seconds, 20) << "the watchdog (30 s) should not be what ends it\n" << r.output;
  EXPECT_NE(r.output.find("ckpt-step-00000060.h5 not written: not enough space in " +
                          disk.string() + ": the checkpoint needs about"),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("listing: . .. ckpt-step-00000020.h5 ckpt-step-00000040.h5\n"),
            std::string::npos)
      << "a partial file was left, or an older checkpoint is gone\n"
      << r.output;
  // The newest kept checkpoint resumes.
  const Result resumed =
      run(haein_run(4) + kSmall + " --steps 60 --checkpoint-dir " + kept.string() + out("resumed"));
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("resumed from"), std::string::npos) << resumed.output;
  EXPECT_NE(resumed.output.find("ckpt-step-00000040.h5"), std::string::npos) << resumed.output;
}

TEST_F(TrainMlpRun, DivergedReplicasAreAnError) {
  const Result r = run(mpirun(2) + kSmall +
                       " --steps 30 --check-every 5 --perturb-rank 1"
                       " --perturb-at-step 7" +
                       out("run"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("parameters diverged at step 10: rank 0 has checksum"), std::string::npos)
      << r.output;
}

TEST_F(TrainMlpRun, BadInputExitsTwo) {
  Result r = run(mpirun(2) + kSmall + " --global-batch 63" + out("run"));
  EXPECT_NE(r.output.find("--global-batch 63 is not a multiple of the 2 ranks"), std::string::npos)
      << r.output;
  EXPECT_NE(r.exit_code, 0);  // mpirun's code: it reports the ranks' 2 in its own way
  r = run(kTrainMlp + " --no-such-flag");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("no-such-flag"), std::string::npos);
  r = run(kTrainMlp + kSmall + " --device tpu" + out("run"));
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("--device 'tpu': expected cpu, gpu or auto"), std::string::npos);
  if (!gpu_available()) {
    r = run(kTrainMlp + kSmall + " --device gpu" + out("run"));
    EXPECT_EQ(r.exit_code, 2) << r.output;
    EXPECT_NE(r.output.find("--device gpu on rank 0: " + why_no_gpu()), std::string::npos)
        << r.output;
  }
  r = run(kTrainMlp + kSmall + " --hidden 64,x" + out("run"));
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("--hidden '64,x'"), std::string::npos);
  // Checkpoints of another model in the directory: an error, not a silent restart.
  r = run(kTrainMlp + kSmall + " --steps 2" + out("run"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  // (a later flag overrides an earlier one)
  r = run(kTrainMlp + kSmall + " --steps 4 --hidden 32" + out("run"));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("layer sizes 32,64,64,10 differ"), std::string::npos) << r.output;
}

TEST_F(TrainMlpRun, DamagedLaterCheckpointsDoNotPushOutTheNewOnes) {
  // Two damaged files named after later steps (a crashed longer run): they are skipped at
  // resume, and pruning once kept them as "newest" and deleted every checkpoint written.
  const fs::path checkpoints = dir_ / "run" / "checkpoints";
  fs::create_directories(checkpoints);
  for (const char* name : {"ckpt-step-00009000.h5", "ckpt-step-00009001.h5"})
    std::ofstream(checkpoints / name) << "not HDF5";
  const Result r = run(mpirun(2) + kSmall +
                       " --steps 30 --checkpoint-every 10 --keep-checkpoints 2" + out("run"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("ckpt-step-00009001.h5 is damaged, skipping it"), std::string::npos)
      << r.output;
  EXPECT_TRUE(fs::exists(checkpoints / "ckpt-step-00000030.h5")) << r.output;
  EXPECT_TRUE(fs::exists(checkpoints / "ckpt-step-00000020.h5")) << r.output;
  EXPECT_FALSE(fs::exists(checkpoints / "ckpt-step-00000010.h5")) << "keeps 2";
  // Keeping none would delete the very checkpoint a restart needs.
  const Result none = run(kTrainMlp + kSmall + " --steps 2 --keep-checkpoints 0" + out("none"));
  EXPECT_EQ(none.exit_code, 2) << none.output;
  EXPECT_NE(none.output.find("--keep-checkpoints 0 would delete every checkpoint"),
            std::string::npos)
      << none.output;
}

TEST_F(TrainMlpRun, AnOutFolderWithShellCharactersReachesNoShell) {
  // The loss plot once ran through std::system with --out inside quotes.
  const Result r = run("cd '" + dir_.string() + "' && " + kTrainMlp +
                       " --hidden 16 --global-batch 64 --train-samples 1024 --test-samples 256"
                       " --log-every 1000 --eval-every 0 --steps 2 --out \"o'; touch PWN; '\"");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_FALSE(fs::exists(dir_ / "PWN")) << "--out reached a shell\n" << r.output;
  const fs::path out = dir_ / "o'; touch PWN; '";
  EXPECT_TRUE(fs::exists(out / "loss.csv")) << r.output;
  // The plot ran on the very folder (or, without matplotlib, failed with a warning).
  if (r.output.find("loss plot:") != std::string::npos) {
    EXPECT_TRUE(fs::exists(out / "loss.png")) << r.output;
  } else {
    EXPECT_NE(r.output.find("failed; the loss curve is in"), std::string::npos) << r.output;
  }
}

// On a GPU (label gpu; skipped without one): the cuBLAS layers and the NCCL reductions
// learn the task as the host does, and a killed run resumes bitwise identically. One rank,
// since NCCL takes one rank per GPU and the test machine may have one.
class TrainMlpGpu : public TrainMlpRun {
 protected:
  void SetUp() override {
    if (!gpu_available()) {
      const std::string expected = haein::test::gpu_expected();
      if (!expected.empty()) FAIL() << why_no_gpu() << ", but " << expected;
      GTEST_SKIP() << why_no_gpu();
    }
    TrainMlpRun::SetUp();
  }
};

TEST_F(TrainMlpGpu, LearnsLikeTheHostAndResumesBitwise) {
  const std::string config = kSmall + " --steps 150 --checkpoint-every 50";
  const Result host = run(mpirun(1) + config + " --device cpu" + out("host"));
  ASSERT_EQ(host.exit_code, 0) << host.output;
  const Result device = run(mpirun(1) + config + " --device gpu" + out("gpu"));
  ASSERT_EQ(device.exit_code, 0) << device.output;
  EXPECT_NE(device.output.find("layers on the GPU (cuBLAS), gradients through NCCL"),
            std::string::npos)
      << device.output;
  EXPECT_GE(final_accuracy(device.output), 0.95) << device.output;
  EXPECT_NEAR(final_accuracy(device.output), final_accuracy(host.output), 0.01)
      << host.output << device.output;
  const Result restarted = run(haein_run(1, "--max-restarts 1", true) + config +
                               " --device gpu --kill-rank 0 --kill-at-step 60" + out("restarted"));
  ASSERT_EQ(restarted.exit_code, 0) << restarted.output;
  EXPECT_NE(restarted.output.find("resumed from"), std::string::npos) << restarted.output;
  EXPECT_EQ(final_checksum(restarted.output), final_checksum(device.output)) << restarted.output;
}

}  // namespace
