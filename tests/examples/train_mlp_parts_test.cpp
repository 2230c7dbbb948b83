// train_mlp's parts: the synthetic data is a pure function of (seed, index), the sampler
// resumes exactly, backward's gradients match finite differences, and the checksum sees
// one flipped bit.
#include <gtest/gtest.h>

#include <cmath>
#include <numeric>

#include "checkpoint.hpp"
#include "dataset.hpp"
#include "mlp.hpp"

namespace {

using namespace haein::examples;

TEST(TrainMlpParts, SamplesArePureFunctionsOfSeedAndIndex) {
  const SyntheticDataset a(DatasetShape{}, 7);
  const SyntheticDataset b(DatasetShape{}, 7);
  const SyntheticDataset other(DatasetShape{}, 8);
  std::vector<float> xa(32), xb(32), xo(32);
  std::vector<int> counts(10, 0);
  for (std::uint64_t i = 0; i < 2000; ++i) {
    const int label = a.sample(i, xa.data());
    ASSERT_EQ(label, b.sample(i, xb.data()));
    ASSERT_EQ(xa, xb);
    ASSERT_GE(label, 0);
    ASSERT_LT(label, 10);
    ++counts[static_cast<std::size_t>(label)];
  }
  other.sample(0, xo.data());
  a.sample(0, xa.data());
  EXPECT_NE(xa, xo);
  // Every class shows up in roughly its share (200 each).
  for (int count : counts) EXPECT_GT(count, 120);
}

TEST(TrainMlpParts, SamplerVisitsEachSampleOncePerEpochAndResumes) {
  Sampler sampler(1000, 3);
  std::vector<int> seen(1000, 0);
  for (int b = 0; b < 9; ++b) {
    for (std::uint64_t i : sampler.next_batch(100)) ++seen[i];
  }
  const DataCursor cursor = sampler.cursor();
  EXPECT_EQ(cursor.position, 900U);
  for (int s : seen) EXPECT_LE(s, 1);
  EXPECT_EQ(std::accumulate(seen.begin(), seen.end(), 0), 900);

  // Three more batches (crossing into epoch 1), then the same from the saved cursor.
  std::vector<std::uint64_t> straight;
  for (int b = 0; b < 3; ++b) {
    const auto batch = sampler.next_batch(100);
    straight.insert(straight.end(), batch.begin(), batch.end());
  }
  EXPECT_EQ(sampler.cursor().epoch, 1U);
  Sampler resumed(1000, 3);
  resumed.restore(cursor);
  std::vector<std::uint64_t> again;
  for (int b = 0; b < 3; ++b) {
    const auto batch = resumed.next_batch(100);
    again.insert(again.end(), batch.begin(), batch.end());
  }
  EXPECT_EQ(straight, again);
}

TEST(TrainMlpParts, GradientsMatchFiniteDifferences) {
  const std::vector<std::size_t> sizes{5, 7, 6, 3};
  Mlp model(sizes, 11);
  const SyntheticDataset data(DatasetShape{5, 3, 2, 0.7F}, 5);
  constexpr std::size_t kBatch = 8;
  std::vector<float> x(kBatch * 5);
  std::vector<int> labels(kBatch);
  for (std::size_t i = 0; i < kBatch; ++i) labels[i] = data.sample(i, &x[i * 5]);
  // Biases away from zero so that no ReLU sits at its kink.
  for (std::size_t t = 1; t < model.tensors().size(); t += 2) {
    for (float& b : model.tensors()[t].value) b = 0.05F;
  }
  std::vector<std::size_t> order;
  model.train_batch(x.data(), labels.data(), kBatch, kBatch,
                    [&](std::size_t layer) { order.push_back(layer); });
  EXPECT_EQ(order, (std::vector<std::size_t>{2, 1, 0}));
  const std::vector<ParameterTensor> analytic = model.tensors();
  double worst = 0;
  for (std::size_t t = 0; t < analytic.size(); ++t) {
    for (std::size_t e = 0; e < analytic[t].value.size(); ++e) {
      float& w = model.tensors()[t].value[e];
      const float saved = w;
      constexpr float kStep = 1e-3F;
      w = saved + kStep;
      const double plus = model.evaluate(x.data(), labels.data(), kBatch).loss_sum / kBatch;
      w = saved - kStep;
      const double minus = model.evaluate(x.data(), labels.data(), kBatch).loss_sum / kBatch;
      w = saved;
      const double numeric = (plus - minus) / (2.0 * kStep);
      worst = std::max(worst, std::abs(numeric - analytic[t].gradient[e]));
    }
  }
  EXPECT_LT(worst, 2e-3) << "largest |finite difference - backward|";
}

TEST(TrainMlpParts, SgdWithMomentumFollowsPyTorch) {
  Mlp model({2, 2}, 1);
  ParameterTensor& w = model.tensors()[0];
  const float w0 = w.value[0];
  w.gradient[0] = 1.0F;
  model.sgd_step(0.1F, 0.9F);  // v = 1, w -= 0.1
  model.sgd_step(0.1F, 0.9F);  // v = 1.9, w -= 0.19
  EXPECT_FLOAT_EQ(w.momentum[0], 1.9F);
  EXPECT_NEAR(w.value[0], w0 - 0.29F, 1e-6);
}

TEST(TrainMlpParts, ChecksumSeesOneFlippedBit) {
  std::vector<float> values(1000, 0.5F);
  const std::uint64_t before = checksum(values.data(), values.size() * sizeof(float));
  EXPECT_EQ(before, checksum(values.data(), values.size() * sizeof(float)));
  reinterpret_cast<unsigned char*>(values.data())[1234] ^= 0x10;
  EXPECT_NE(before, checksum(values.data(), values.size() * sizeof(float)));
}

TEST(TrainMlpParts, ReadingAMissingOrForeignFileIsAnError) {
  Mlp model({4, 3}, 1);
  EXPECT_THROW(read_checkpoint("/nonexistent/ckpt-step-00000001.h5", model), haein::Error);
  const std::string text_file = testing::TempDir() + "not-hdf5.h5";
  FILE* f = std::fopen(text_file.c_str(), "w");
  std::fputs("hello\n", f);
  std::fclose(f);
  EXPECT_THROW(read_checkpoint(text_file, model), haein::Error);
  std::remove(text_file.c_str());
}

}  // namespace
