#include "dataset.hpp"

#include <cmath>
#include <cstring>
#include <numeric>

#include "haein/common/error.hpp"

namespace haein::examples {

namespace {

std::uint64_t splitmix64(std::uint64_t& x) {
  std::uint64_t z = (x += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

}  // namespace

Rng::Rng(std::uint64_t seed) {
  for (auto& word : state) word = splitmix64(seed);
}

std::uint64_t Rng::next() {
  const std::uint64_t result = rotl(state[1] * 5, 7) * 9;
  const std::uint64_t t = state[1] << 17;
  state[2] ^= state[0];
  state[3] ^= state[1];
  state[1] ^= state[2];
  state[0] ^= state[3];
  state[2] ^= t;
  state[3] = rotl(state[3], 45);
  return result;
}

double Rng::uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

double Rng::normal() {
  const double u1 = 1.0 - uniform();  // (0, 1]: log stays finite
  const double u2 = uniform();
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2);
}

std::uint64_t Rng::below(std::uint64_t bound) {
  // The modulo bias is below 2^-40 for the bounds used here.
  return next() % bound;
}

SyntheticDataset::SyntheticDataset(DatasetShape shape, std::uint64_t seed)
    : shape_(shape), seed_(seed) {
  if (shape.features == 0 || shape.classes < 2 || shape.blobs_per_class == 0) {
    throw InvalidArgument("the dataset needs at least one feature, two classes and one blob");
  }
  Rng rng(seed ^ 0xC0FFEEULL);
  centers_.resize(shape.classes * shape.blobs_per_class * shape.features);
  // Blob centres on a sphere of radius 4: far enough apart for ~99% accuracy at noise 0.7,
  // while blobs of different classes interleave, which is what makes it non-linear.
  for (std::size_t blob = 0; blob < shape.classes * shape.blobs_per_class; ++blob) {
    float* center = centers_.data() + blob * shape.features;
    double norm = 0;
    for (std::size_t f = 0; f < shape.features; ++f) {
      center[f] = static_cast<float>(rng.normal());
      norm += double{center[f]} * center[f];
    }
    const double scale = 4.0 / std::sqrt(norm);
    for (std::size_t f = 0; f < shape.features; ++f) center[f] *= static_cast<float>(scale);
  }
}

int SyntheticDataset::sample(std::uint64_t index, float* x) const {
  Rng rng(seed_ * 0x100000001B3ULL + index);
  const std::size_t blob = rng.below(shape_.classes * shape_.blobs_per_class);
  const float* center = centers_.data() + blob * shape_.features;
  for (std::size_t f = 0; f < shape_.features; ++f) {
    x[f] = center[f] + shape_.noise * static_cast<float>(rng.normal());
  }
  return static_cast<int>(blob / shape_.blobs_per_class);
}

Sampler::Sampler(std::uint64_t train_samples, std::uint64_t seed) : train_samples_(train_samples) {
  if (train_samples == 0) throw InvalidArgument("the training set is empty");
  Rng rng(seed ^ 0x5EEDULL);
  std::memcpy(cursor_.rng_state, rng.state, sizeof rng.state);
  shuffle();
}

void Sampler::restore(const DataCursor& cursor) {
  cursor_ = cursor;
  shuffle();
}

void Sampler::shuffle() {
  Rng rng(0);
  std::memcpy(rng.state, cursor_.rng_state, sizeof rng.state);
  order_.resize(train_samples_);
  std::iota(order_.begin(), order_.end(), std::uint64_t{0});
  for (std::uint64_t i = train_samples_ - 1; i > 0; --i)
    std::swap(order_[i], order_[rng.below(i + 1)]);
  next_epoch_state_.assign(std::begin(rng.state), std::end(rng.state));
}

std::vector<std::uint64_t> Sampler::next_batch(std::size_t batch) {
  if (batch > train_samples_) {
    throw InvalidArgument("a global batch of " + std::to_string(batch) + " is larger than the " +
                          std::to_string(train_samples_) + " training samples");
  }
  if (cursor_.position + batch > train_samples_) {
    std::memcpy(cursor_.rng_state, next_epoch_state_.data(), sizeof cursor_.rng_state);
    ++cursor_.epoch;
    cursor_.position = 0;
    shuffle();
  }
  std::vector<std::uint64_t> indices(
      order_.begin() + static_cast<std::ptrdiff_t>(cursor_.position),
      order_.begin() + static_cast<std::ptrdiff_t>(cursor_.position + batch));
  cursor_.position += batch;
  return indices;
}

}  // namespace haein::examples
