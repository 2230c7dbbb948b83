#pragma once
// The synthetic classification task: every class is a mixture of a few Gaussian blobs in
// feature space, so that a linear model cannot fit it but a small MLP can. Sample i is a
// pure function of (seed, i): any rank generates any sample with no shared state, and the
// data a run sees depends only on the shuffle generator's state and the position in the
// epoch, which a checkpoint stores.

#include <cstddef>
#include <cstdint>
#include <vector>

namespace haein::examples {

/// xoshiro256**: small, fast and with a state that fits in a checkpoint as four integers.
class Rng {
 public:
  explicit Rng(std::uint64_t seed);
  std::uint64_t next();
  /// Uniform in [0, 1).
  double uniform();
  /// Standard normal (Box-Muller; one value per call so that the state stays simple).
  double normal();
  /// Uniform integer in [0, bound).
  std::uint64_t below(std::uint64_t bound);
  std::uint64_t state[4];
};

struct DatasetShape {
  std::size_t features = 32;
  std::size_t classes = 10;
  std::size_t blobs_per_class = 3;
  float noise = 0.7F;
};

class SyntheticDataset {
 public:
  SyntheticDataset(DatasetShape shape, std::uint64_t seed);
  const DatasetShape& shape() const { return shape_; }
  /// Writes sample `index`'s features to `x` (shape().features floats); returns its label.
  /// Training samples are indices [0, train); the test set starts at 2^40.
  int sample(std::uint64_t index, float* x) const;
  static constexpr std::uint64_t kTestBase = std::uint64_t{1} << 40;

 private:
  DatasetShape shape_;
  std::uint64_t seed_;
  std::vector<float> centers_;  // classes * blobs_per_class rows of `features`
};

/// The order in which training samples are visited: a fresh permutation per epoch, drawn
/// from `rng`. A run resumes exactly from (rng state at the epoch's start, epoch, position).
struct DataCursor {
  std::uint64_t rng_state[4] = {};  ///< the shuffle generator at the start of `epoch`
  std::uint64_t epoch = 0;
  std::uint64_t position = 0;  ///< samples of this epoch already consumed
};

class Sampler {
 public:
  Sampler(std::uint64_t train_samples, std::uint64_t seed);
  /// Continues from a checkpointed cursor.
  void restore(const DataCursor& cursor);
  const DataCursor& cursor() const { return cursor_; }
  /// The next global batch of sample indices; an epoch's remainder smaller than a batch
  /// is skipped, as a DataLoader with drop_last does.
  std::vector<std::uint64_t> next_batch(std::size_t batch);

 private:
  void shuffle();
  std::uint64_t train_samples_;
  DataCursor cursor_;
  std::vector<std::uint64_t> order_;
  std::vector<std::uint64_t> next_epoch_state_;  // the generator after this epoch's shuffle
};

}  // namespace haein::examples
