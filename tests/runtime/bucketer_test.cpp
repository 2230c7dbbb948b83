// GradBucketer under mpirun with 2 and 4 ranks, against an independent per-tensor
// MPI_Allreduce of the same gradients. Gradients are small integers (exact in f32 and
// in any summation order) unless a test needs rounding, so results compare bitwise.
#include <gtest/gtest.h>
#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <numeric>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "haein/kernels/numeric.hpp"
#include "haein/runtime/grad_bucketer.hpp"
#include "mpi_test_main.hpp"

namespace {

using haein::InvalidArgument;
using haein::runtime::Averaging;
using haein::runtime::BucketerOptions;
using haein::runtime::Communicator;
using haein::runtime::DataType;
using haein::runtime::GradBucketer;

Communicator& comm() { return haein::test::world(); }

/// Ranks on several hosts (the test bed): shared memory is used per host (hierarchical)
/// and nothing reads a peer's memory.
bool several_hosts() {
  const auto& hosts = comm().hosts();
  return std::any_of(hosts.begin(), hosts.end(), [&](const auto& h) { return h != hosts[0]; });
}

/// A model with sizes from 0 to 300k elements, as a transformer's mix of big matrices
/// and small vectors.
std::vector<std::size_t> model_sizes() {
  return {768, 0, 300000, 768, 3, 65536, 1, 4097, 768, 150000, 31, 2304, 16, 12345, 768, 2};
}

/// Gradient element i of `parameter` on `rank` at `step`: a small integer.
float gradient_value(int rank, int step, std::size_t parameter, std::size_t i) {
  const auto h =
      (static_cast<std::uint64_t>(rank + 1) * 7919u + static_cast<std::uint64_t>(step) * 104729u +
       parameter * 1299709u + i * 15485863u) %
      61u;
  return static_cast<float>(h) - 30.0f;
}

struct Model {
  std::vector<std::vector<float>> gradients;
  std::vector<std::size_t> ids;
};

Model register_model(GradBucketer& bucketer, const std::vector<std::size_t>& sizes) {
  Model model;
  model.gradients.resize(sizes.size());
  for (std::size_t p = 0; p < sizes.size(); ++p) {
    model.gradients[p].assign(sizes[p], 0.0f);
    model.ids.push_back(bucketer.register_parameter("layer" + std::to_string(p) + ".weight",
                                                    model.gradients[p].data(), sizes[p],
                                                    DataType::kF32));
  }
  return model;
}

/// Writes this step's gradients (into the bucket views when the bucketer has them) and
/// marks them ready in a rank-specific shuffled order; `skip` is left unmarked.
void backward(GradBucketer& bucketer, Model& model, int step, std::uint64_t order_seed,
              std::size_t skip = SIZE_MAX) {
  std::vector<std::size_t> order(model.ids.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::mt19937_64 random(order_seed + static_cast<std::uint64_t>(comm().rank()) * 1000003u);
  std::shuffle(order.begin(), order.end(), random);
  for (const std::size_t p : order) {
    if (p == skip) continue;
    auto* gradient = static_cast<float*>(bucketer.gradient(model.ids[p]));
    for (std::size_t i = 0; i < model.gradients[p].size(); ++i)
      gradient[i] = gradient_value(comm().rank(), step, p, i);
    bucketer.mark_ready(model.ids[p]);
  }
}

/// The independent reference: each tensor's gradients summed by one MPI_Allreduce.
std::vector<float> reference(int step, std::size_t parameter, std::size_t count, float divide,
                             int skip_rank = -1) {
  std::vector<float> mine(count);
  for (std::size_t i = 0; i < count; ++i)
    mine[i] = comm().rank() == skip_rank ? 0.0f : gradient_value(comm().rank(), step, parameter, i);
  std::vector<float> sum(count);
  MPI_Allreduce(mine.data(), sum.data(), static_cast<int>(count), MPI_FLOAT, MPI_SUM,
                MPI_COMM_WORLD);
  for (float& v : sum) v /= divide;
  return sum;
}

void expect_reduced(GradBucketer& bucketer, const Model& model, int step, float divide,
                    const std::string& what, std::size_t skip = SIZE_MAX, int skip_rank = -1) {
  for (std::size_t p = 0; p < model.ids.size(); ++p) {
    const std::size_t count = model.gradients[p].size();
    const std::vector<float> expected =
        reference(step, p, count, divide, p == skip ? skip_rank : -1);
    const auto* got = static_cast<const float*>(bucketer.gradient(model.ids[p]));
    // Integer sums are exact; a division by a power of two too. Dividing by 3 before or
    // after the sum rounds differently, by at most a few units in the last place.
    const bool exact = std::exp2(std::round(std::log2(divide))) == divide;
    for (std::size_t i = 0; i < count; ++i) {
      if (exact) {
        ASSERT_EQ(got[i], expected[i])
            << what << ": parameter " << p << " element " << i << " on rank " << comm().rank();
      } else {
        ASSERT_NEAR(got[i], expected[i],
                    4e-7f * std::max(1.0f, std::fabs(expected[i])) * comm().size())
            << what << ": parameter " << p << " element " << i << " on rank " << comm().rank();
      }
    }
  }
}

/// `got` against the reference `expected`: equal where the divisor is a power of two
/// (integer sums are exact), within a few units in the last place otherwise.
void expect_element(float got, float expected, float divide, const std::string& where) {
  if (std::exp2(std::round(std::log2(divide))) == divide) {
    ASSERT_EQ(got, expected) << where;
  } else {
    ASSERT_NEAR(got, expected, 4e-7f * std::max(1.0f, std::fabs(expected)) * comm().size())
        << where;
  }
}

/// Every test runs three times, once per way host pieces are reduced.
enum class HostPath { kPeerCopy, kSegment, kMpi };
HostPath host_path = HostPath::kPeerCopy;
bool use_shared_memory = true;

class Bucketer : public ::testing::TestWithParam<HostPath> {
 protected:
  void SetUp() override {
    host_path = GetParam();
    use_shared_memory = host_path != HostPath::kMpi;
  }
};

BucketerOptions defaults() {
  BucketerOptions options;
  options.host_shared_memory = use_shared_memory;
  options.host_peer_copy = host_path == HostPath::kPeerCopy;
  return options;
}

BucketerOptions small_buckets() {
  BucketerOptions options = defaults();
  options.bucket_cap_mb = 0.4;  // several buckets for this 2 MB model
  options.first_bucket_cap_mb = 0.05;
  options.host_chunk_mb = 0.125;  // and several pieces per bucket
  return options;
}

TEST_P(Bucketer, ShuffledReadyOrdersGiveThePerTensorAllReduce) {
  GradBucketer bucketer(comm(), small_buckets());
  Model model = register_model(bucketer, model_sizes());
  const float n = static_cast<float>(comm().size());
  for (int step = 0; step < 3; ++step) {
    bucketer.begin_step();
    backward(bucketer, model, step, 100 + step);
    bucketer.finish();
    expect_reduced(bucketer, model, step, n, "step " + std::to_string(step));
  }
  EXPECT_GE(bucketer.buckets().size(), 3u);
  EXPECT_TRUE(bucketer.rebuilt());
}

TEST_P(Bucketer, RebuildFollowsRankZerosReadyOrder) {
  GradBucketer bucketer(comm(), small_buckets());
  Model model = register_model(bucketer, model_sizes());
  // Before the first step: reverse registration order.
  bucketer.begin_step();
  const auto initial = bucketer.buckets();
  EXPECT_EQ(initial.front().parameters.front(), model.ids.size() - 1);
  // Rank 0 marks in registration order; the others in a shuffled one.
  for (std::size_t p = 0; p < model.ids.size(); ++p) {
    const std::size_t id = comm().rank() == 0 ? p : (p * 7) % model.ids.size();
    auto* gradient = static_cast<float*>(bucketer.gradient(id));
    for (std::size_t i = 0; i < model.gradients[id].size(); ++i)
      gradient[i] = gradient_value(comm().rank(), 0, id, i);
    bucketer.mark_ready(id);
  }
  bucketer.finish();
  expect_reduced(bucketer, model, 0, static_cast<float>(comm().size()), "first step");
  EXPECT_FALSE(bucketer.rebuilt()) << "the layout changes when the next step begins";
  bucketer.begin_step();
  ASSERT_TRUE(bucketer.rebuilt());
  std::vector<std::size_t> order;
  for (const auto& bucket : bucketer.buckets())
    order.insert(order.end(), bucket.parameters.begin(), bucket.parameters.end());
  std::vector<std::size_t> registration(model.ids.size());
  std::iota(registration.begin(), registration.end(), std::size_t{0});
  EXPECT_EQ(order, registration) << "rank 0 marked in registration order";
  backward(bucketer, model, 1, 7);
  bucketer.finish();
  expect_reduced(bucketer, model, 1, static_cast<float>(comm().size()), "after the rebuild");
}

TEST_P(Bucketer, GradientViewsNeedNoCopyAndMoveWithTheRebuild) {
  BucketerOptions options = small_buckets();
  options.gradient_as_bucket_view = true;
  GradBucketer bucketer(comm(), options);
  Model model = register_model(bucketer, model_sizes());
  model.gradients[2][5] = 42.0f;  // registered content carries into the view
  bucketer.begin_step(false);
  EXPECT_NE(bucketer.gradient(2), model.gradients[2].data()) << "the gradient lives in a bucket";
  EXPECT_EQ(static_cast<float*>(bucketer.gradient(2))[5], 42.0f);
  bucketer.finish();
  for (int step = 0; step < 3; ++step) {
    bucketer.begin_step();
    backward(bucketer, model, step, 300 + step);
    bucketer.finish();
    expect_reduced(bucketer, model, step, static_cast<float>(comm().size()),
                   "views, step " + std::to_string(step));
  }
  // Views are summed in place through shared memory too, when it is on.
  for (const auto& b : bucketer.buckets()) EXPECT_EQ(b.shared_memory, use_shared_memory);
}

TEST_P(Bucketer, EveryAveragingModeDividesOnce) {
  const float n = static_cast<float>(comm().size());
  for (const auto& [averaging, divide] :
       {std::pair{Averaging::kNone, 1.0f}, std::pair{Averaging::kAvgOp, n},
        std::pair{Averaging::kPreDivide, n}, std::pair{Averaging::kPostDivide, n}}) {
    for (const bool views : {false, true}) {
      BucketerOptions options = small_buckets();
      options.averaging = averaging;
      options.gradient_as_bucket_view = views;
      GradBucketer bucketer(comm(), options);
      Model model = register_model(bucketer, model_sizes());
      bucketer.begin_step();
      backward(bucketer, model, 5, 11);
      bucketer.finish();
      expect_reduced(bucketer, model, 5, divide,
                     "averaging " + std::to_string(static_cast<int>(averaging)) +
                         (views ? " with views" : ""));
    }
  }
}

TEST_P(Bucketer, AParameterWithoutGradientCountsAsZeroWithoutAHang) {
  GradBucketer bucketer(comm(), small_buckets());
  Model model = register_model(bucketer, model_sizes());
  // Rank 1 never marks parameter 3 (its gradient memory holds garbage).
  std::fill(model.gradients[3].begin(), model.gradients[3].end(), 1e30f);
  bucketer.begin_step();
  backward(bucketer, model, 2, 21, comm().rank() == 1 ? 3 : SIZE_MAX);
  bucketer.finish();
  expect_reduced(bucketer, model, 2, static_cast<float>(comm().size()), "unused on rank 1", 3, 1);
}

TEST_P(Bucketer, NoSyncStepsOnlyAccumulate) {
  BucketerOptions options = small_buckets();
  options.averaging = Averaging::kNone;
  GradBucketer bucketer(comm(), options);
  const std::vector<std::size_t> sizes = model_sizes();
  Model model = register_model(bucketer, sizes);
  // Three micro-steps: the trainer adds each micro-step's gradient; only the last syncs.
  for (auto& g : model.gradients) std::fill(g.begin(), g.end(), 0.0f);
  for (int micro = 0; micro < 3; ++micro) {
    bucketer.begin_step(micro == 2);
    for (std::size_t p = model.ids.size(); p-- > 0;) {
      for (std::size_t i = 0; i < sizes[p]; ++i)
        model.gradients[p][i] += gradient_value(comm().rank(), micro, p, i);
      bucketer.mark_ready(model.ids[p]);
    }
    if (micro < 2) {
      // Nothing was exchanged: the gradient is still this rank's own sum.
      if (sizes[2] > 0) {
        EXPECT_EQ(model.gradients[2][0],
                  gradient_value(comm().rank(), 0, 2, 0) +
                      (micro == 1 ? gradient_value(comm().rank(), 1, 2, 0) : 0.0f));
      }
    }
    bucketer.finish();
  }
  for (std::size_t p = 0; p < sizes.size(); ++p) {
    std::vector<float> expected(sizes[p], 0.0f);
    for (int micro = 0; micro < 3; ++micro) {
      const std::vector<float> part = reference(micro, p, sizes[p], 1.0f);
      for (std::size_t i = 0; i < sizes[p]; ++i) expected[i] += part[i];
    }
    ASSERT_EQ(model.gradients[p], expected) << "parameter " << p;
  }
}

TEST_P(Bucketer, ReduceScatterGivesEachRankItsShardAndTogetherEverything) {
  for (const bool views : {false, true}) {
    BucketerOptions options = small_buckets();
    options.reduce_scatter = true;
    options.gradient_as_bucket_view = views;
    GradBucketer bucketer(comm(), options);
    const std::vector<std::size_t> sizes = model_sizes();
    Model model = register_model(bucketer, sizes);
    bucketer.begin_step();
    backward(bucketer, model, 4, 41);
    bucketer.finish();
    const float n = static_cast<float>(comm().size());
    std::vector<std::vector<int>> owners(sizes.size());
    for (std::size_t p = 0; p < sizes.size(); ++p) owners[p].assign(sizes[p], 0);
    // References first: they are collective, the owned ranges differ per rank.
    std::vector<std::vector<float>> expected(sizes.size());
    for (std::size_t p = 0; p < sizes.size(); ++p) expected[p] = reference(4, p, sizes[p], n);
    std::size_t owned = 0;
    for (const auto& range : bucketer.owned_ranges()) {
      for (std::size_t i = range.offset; i < range.offset + range.count; ++i) {
        expect_element(static_cast<const float*>(bucketer.gradient(range.parameter))[i],
                       expected[range.parameter][i], n,
                       std::string(views ? "views, " : "") + "parameter " +
                           std::to_string(range.parameter) + " element " + std::to_string(i));
        if (HasFatalFailure()) return;
        owners[range.parameter][i] = 1;
      }
      owned += range.count;
    }
    // Across ranks every element is owned exactly once.
    for (std::size_t p = 0; p < sizes.size(); ++p) {
      std::vector<int> total(sizes[p]);
      MPI_Allreduce(owners[p].data(), total.data(), static_cast<int>(sizes[p]), MPI_INT, MPI_SUM,
                    MPI_COMM_WORLD);
      for (std::size_t i = 0; i < sizes[p]; ++i)
        ASSERT_EQ(total[i], 1) << "parameter " << p << " element " << i;
    }
    const std::size_t all = std::accumulate(sizes.begin(), sizes.end(), std::size_t{0});
    EXPECT_LE(owned, all / comm().size() + 64 * 1024) << "each rank owns about 1/n";
  }
}

TEST_P(Bucketer, Bf16OnTheWireStaysWithinOneRoundingOfTheF32Sum) {
  for (const DataType wire : {DataType::kBF16, DataType::kF16}) {
    for (const bool reduce_scatter : {false, true}) {
      BucketerOptions options = small_buckets();
      options.wire_type = wire;
      options.reduce_scatter = reduce_scatter;
      GradBucketer bucketer(comm(), options);
      const std::vector<std::size_t> sizes = model_sizes();
      Model model = register_model(bucketer, sizes);
      ASSERT_EQ(bucketer.buckets().size(), 0u) << "buckets are built by the first step";
      // Non-integer gradients: rounding matters here.
      std::mt19937_64 random(77 + comm().rank());
      std::normal_distribution<float> normal(0.0f, 1.0f);
      std::vector<std::vector<float>> mine(sizes.size());
      bucketer.begin_step();
      for (std::size_t p = sizes.size(); p-- > 0;) {
        mine[p].resize(sizes[p]);
        for (float& v : mine[p]) v = normal(random);
        model.gradients[p] = mine[p];
        bucketer.mark_ready(model.ids[p]);
      }
      bucketer.finish();
      EXPECT_EQ(bucketer.buckets().front().wire, wire);
      std::vector<std::vector<bool>> check(sizes.size());
      for (std::size_t p = 0; p < sizes.size(); ++p) check[p].assign(sizes[p], !reduce_scatter);
      for (const auto& range : bucketer.owned_ranges())
        for (std::size_t i = range.offset; i < range.offset + range.count; ++i)
          check[range.parameter][i] = true;
      // Bound: each input rounded once (unit roundoff u = 2^-8 for bf16, 2^-11 for f16),
      // the sum exact enough in f32, the mean rounded once more: 2u of the mean magnitude.
      const double unit = wire == DataType::kBF16 ? std::ldexp(1.0, -7) : std::ldexp(1.0, -10);
      for (std::size_t p = 0; p < sizes.size(); ++p) {
        std::vector<float> sum(sizes[p]), magnitude(sizes[p]), absolute(sizes[p]);
        for (std::size_t i = 0; i < sizes[p]; ++i) absolute[i] = std::fabs(mine[p][i]);
        MPI_Allreduce(mine[p].data(), sum.data(), static_cast<int>(sizes[p]), MPI_FLOAT, MPI_SUM,
                      MPI_COMM_WORLD);
        MPI_Allreduce(absolute.data(), magnitude.data(), static_cast<int>(sizes[p]), MPI_FLOAT,
                      MPI_SUM, MPI_COMM_WORLD);
        for (std::size_t i = 0; i < sizes[p]; ++i) {
          if (!check[p][i]) continue;
          const double mean = sum[i] / comm().size();
          const double bound = unit * magnitude[i] / comm().size() + 1e-6;
          ASSERT_NEAR(model.gradients[p][i], mean, bound)
              << haein::runtime::name_of(wire) << (reduce_scatter ? " reduce-scatter" : "")
              << " parameter " << p << " element " << i;
        }
      }
    }
  }
}

TEST_P(Bucketer, AutotunedPiecesAreAPowerOfTwoInTheTunedRange) {
  GradBucketer bucketer(comm(), defaults());
  Model model = register_model(bucketer, model_sizes());
  bucketer.begin_step();
  backward(bucketer, model, 0, 5);
  bucketer.finish();
  const double mb = bucketer.host_chunk_mb();
  // Segment pieces are tuned from 1/16 to 4 MiB, MPI ones from 1/4 to 64 MiB; the direct
  // path reduces whole buckets, up to 64 MiB a piece.
  if (host_path == HostPath::kPeerCopy && !several_hosts()) {
    EXPECT_EQ(mb, 64.0);
  }
  EXPECT_GE(mb, use_shared_memory ? 1.0 / 16 : 0.25);
  if (host_path == HostPath::kSegment || (use_shared_memory && several_hosts())) {
    EXPECT_LE(mb, 4.0);
  }
  EXPECT_LE(mb, 64.0);
  EXPECT_EQ(std::exp2(std::round(std::log2(mb))), mb);
  expect_reduced(bucketer, model, 0, static_cast<float>(comm().size()), "default options");
}

TEST_P(Bucketer, ARankWithADifferentModelFailsOnEveryRank) {
  GradBucketer bucketer(comm(), small_buckets());
  std::vector<std::size_t> sizes = model_sizes();
  if (comm().rank() == 1) sizes.push_back(10);  // one parameter more
  Model model = register_model(bucketer, sizes);
  try {
    bucketer.begin_step();
    FAIL() << "the models differ: begin_step should throw";
  } catch (const InvalidArgument& error) {
    const std::string message = error.what();
    EXPECT_NE(message.find("different models"), std::string::npos) << message;
    EXPECT_NE(message.find("rank 1 has 17 parameters"), std::string::npos) << message;
  }
}

TEST_P(Bucketer, MisuseIsNamed) {
  GradBucketer bucketer(comm(), small_buckets());
  Model model = register_model(bucketer, model_sizes());
  EXPECT_THROW(bucketer.mark_ready(0), InvalidArgument) << "outside a step";
  bucketer.begin_step(false);
  bucketer.mark_ready(0);
  try {
    bucketer.mark_ready(0);
    FAIL() << "marked twice";
  } catch (const InvalidArgument& error) {
    EXPECT_NE(std::string(error.what()).find("layer0.weight"), std::string::npos) << error.what();
  }
  EXPECT_THROW(bucketer.mark_ready(1000), InvalidArgument);
  EXPECT_THROW(bucketer.register_parameter("late", model.gradients[0].data(), 1, DataType::kF32),
               InvalidArgument);
  bucketer.finish();
  std::vector<std::int32_t> integers(4);
  GradBucketer other(comm(), defaults());
  EXPECT_THROW(other.register_parameter("ints", integers.data(), 4, DataType::kI32),
               InvalidArgument);
  BucketerOptions views_and_bf16 = defaults();
  views_and_bf16.gradient_as_bucket_view = true;
  views_and_bf16.wire_type = DataType::kBF16;
  GradBucketer refused(comm(), views_and_bf16);
  refused.register_parameter("w", model.gradients[0].data(), 4, DataType::kF32);
  EXPECT_THROW(refused.begin_step(), InvalidArgument);
}

TEST_P(Bucketer, HostF32PiecesUseSharedMemoryExactlyWhenAsked) {
  GradBucketer bucketer(comm(), small_buckets());
  Model model = register_model(bucketer, model_sizes());
  bucketer.begin_step();
  backward(bucketer, model, 0, 9);
  bucketer.finish();
  for (const auto& b : bucketer.buckets()) {
    EXPECT_EQ(b.shared_memory, use_shared_memory);
    // Strict: where a policy refuses process_vm_readv between the ranks, the log says so.
    EXPECT_EQ(b.peer_copy, host_path == HostPath::kPeerCopy && !several_hosts());
    EXPECT_EQ(b.hierarchical, use_shared_memory && several_hosts());
  }
  // Every rank holds the same bits (each segment is summed once, by its owner).
  for (std::size_t p = 0; p < model.ids.size(); ++p) {
    const auto* mine = static_cast<const float*>(bucketer.gradient(model.ids[p]));
    std::vector<float> first(mine, mine + model.gradients[p].size());
    MPI_Bcast(first.data(), static_cast<int>(first.size()), MPI_FLOAT, 0, MPI_COMM_WORLD);
    ASSERT_EQ(std::memcmp(first.data(), mine, first.size() * sizeof(float)), 0)
        << "parameter " << p;
  }
}

TEST_P(Bucketer, ARankThatNeverArrivesIsNamedOnEveryRank) {
  if (!use_shared_memory || several_hosts())
    GTEST_SKIP() << "MPI collectives (between hosts too) are watched by the watchdog";
  auto options = haein::runtime::CommunicatorOptions::from_environment();
  options.timeout = std::chrono::milliseconds(1500);
  Communicator short_timeout = Communicator::world(options);
  GradBucketer bucketer(short_timeout, small_buckets());
  Model model = register_model(bucketer, model_sizes());
  bucketer.begin_step();
  std::string message;
  const auto start = std::chrono::steady_clock::now();
  try {
    if (comm().rank() == 1) std::this_thread::sleep_for(std::chrono::seconds(4));
    backward(bucketer, model, 0, 3);
    bucketer.finish();
  } catch (const haein::Error& error) {
    message = error.what();
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  MPI_Barrier(MPI_COMM_WORLD);
  if (comm().rank() != 1) {
    EXPECT_NE(message.find("rank " + std::to_string(comm().world_rank(1)) + " (" +
                           comm().hosts()[1] + ") did not reach shared-memory reduction"),
              std::string::npos)
        << message;
    EXPECT_LT(seconds, 3.5) << "the timeout is 1.5 s";
  } else {
    EXPECT_NE(message.find("did not reach shared-memory reduction"), std::string::npos) << message;
    EXPECT_NE(message.find("HAEIN_TIMEOUT"), std::string::npos) << message;
  }
}

INSTANTIATE_TEST_SUITE_P(HostPieces, Bucketer,
                         ::testing::Values(HostPath::kPeerCopy, HostPath::kSegment, HostPath::kMpi),
                         [](const ::testing::TestParamInfo<HostPath>& info) {
                           switch (info.param) {
                             case HostPath::kPeerCopy:
                               return "PeerCopy";
                             case HostPath::kSegment:
                               return "SharedSegment";
                             default:
                               return "Mpi";
                           }
                         });

}  // namespace
