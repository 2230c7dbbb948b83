#include "mlp.hpp"

#include <algorithm>
#include <cmath>

#include "dataset.hpp"
#include "haein/common/error.hpp"

namespace haein::examples {

Mlp::Mlp(std::vector<std::size_t> sizes, std::uint64_t seed) : sizes_(std::move(sizes)) {
  if (sizes_.size() < 2) throw InvalidArgument("an MLP needs an input and an output size");
  for (std::size_t s : sizes_) {
    if (s == 0) throw InvalidArgument("an MLP layer of width 0");
  }
  Rng rng(seed ^ 0x1417ULL);
  for (std::size_t l = 0; l + 1 < sizes_.size(); ++l) {
    const std::size_t in = sizes_[l];
    const std::size_t out = sizes_[l + 1];
    const std::string prefix = "fc" + std::to_string(l + 1);
    ParameterTensor weight{prefix + ".weight", std::vector<float>(in * out), {}, {}};
    const double bound = std::sqrt(6.0 / static_cast<double>(in));
    for (float& w : weight.value) w = static_cast<float>((2 * rng.uniform() - 1) * bound);
    ParameterTensor bias{prefix + ".bias", std::vector<float>(out, 0.0F), {}, {}};
    tensors_.push_back(std::move(weight));
    tensors_.push_back(std::move(bias));
  }
  for (ParameterTensor& t : tensors_) {
    t.gradient.assign(t.value.size(), 0.0F);
    t.momentum.assign(t.value.size(), 0.0F);
  }
}

std::size_t Mlp::parameter_count() const {
  std::size_t count = 0;
  for (const ParameterTensor& t : tensors_) count += t.value.size();
  return count;
}

void Mlp::forward(const float* x, std::size_t batch) {
  const std::size_t layers = layer_count();
  pre_.resize(layers + 1);
  act_.resize(layers + 1);
  act_[0].assign(x, x + batch * sizes_[0]);
  for (std::size_t l = 0; l < layers; ++l) {
    const std::size_t in = sizes_[l];
    const std::size_t out = sizes_[l + 1];
    const float* w = tensors_[2 * l].value.data();
    const float* b = tensors_[2 * l + 1].value.data();
    std::vector<float>& z = pre_[l + 1];
    z.resize(batch * out);
    // z_i = b + sum_k a_ik w_k: rows of w are contiguous, so the inner loop vectorises.
    for (std::size_t i = 0; i < batch; ++i) {
      float* zi = z.data() + i * out;
      std::copy(b, b + out, zi);
      const float* ai = act_[l].data() + i * in;
      for (std::size_t k = 0; k < in; ++k) {
        const float a = ai[k];
        const float* wk = w + k * out;
        for (std::size_t j = 0; j < out; ++j) zi[j] += a * wk[j];
      }
    }
    std::vector<float>& a = act_[l + 1];
    a.resize(batch * out);
    const bool last = l + 1 == layers;
    for (std::size_t e = 0; e < batch * out; ++e) a[e] = last ? z[e] : std::max(z[e], 0.0F);
  }
}

BatchResult Mlp::loss(const int* labels, std::size_t batch, bool with_gradient, double divisor) {
  const std::size_t classes = sizes_.back();
  const std::vector<float>& logits = act_.back();
  BatchResult result;
  if (with_gradient) delta_.resize(batch * classes);
  const float inverse = static_cast<float>(1.0 / divisor);
  for (std::size_t i = 0; i < batch; ++i) {
    const float* row = logits.data() + i * classes;
    const int label = labels[i];
    const float top = *std::max_element(row, row + classes);
    double total = 0;
    for (std::size_t c = 0; c < classes; ++c) total += std::exp(double{row[c]} - top);
    result.loss_sum += std::log(total) - (double{row[label]} - top);
    if (static_cast<int>(std::max_element(row, row + classes) - row) == label) ++result.correct;
    if (with_gradient) {
      float* d = delta_.data() + i * classes;
      for (std::size_t c = 0; c < classes; ++c) {
        const double p = std::exp(double{row[c]} - top) / total;
        d[c] = static_cast<float>(p - (static_cast<int>(c) == label ? 1.0 : 0.0)) * inverse;
      }
    }
  }
  return result;
}

BatchResult Mlp::train_batch(const float* x, const int* labels, std::size_t batch,
                             double gradient_divisor,
                             const std::function<void(std::size_t layer)>& layer_done) {
  forward(x, batch);
  const BatchResult result = loss(labels, batch, true, gradient_divisor);
  for (std::size_t l = layer_count(); l-- > 0;) {
    const std::size_t in = sizes_[l];
    const std::size_t out = sizes_[l + 1];
    float* dw = tensors_[2 * l].gradient.data();
    float* db = tensors_[2 * l + 1].gradient.data();
    std::fill(dw, dw + in * out, 0.0F);
    std::fill(db, db + out, 0.0F);
    for (std::size_t i = 0; i < batch; ++i) {
      const float* d = delta_.data() + i * out;
      const float* a = act_[l].data() + i * in;
      for (std::size_t j = 0; j < out; ++j) db[j] += d[j];
      for (std::size_t k = 0; k < in; ++k) {
        const float ak = a[k];
        float* dwk = dw + k * out;
        for (std::size_t j = 0; j < out; ++j) dwk[j] += ak * d[j];
      }
    }
    if (l > 0) {
      // delta of the layer below: (delta w^T) masked by ReLU'.
      const float* w = tensors_[2 * l].value.data();
      delta_prev_.resize(batch * in);
      for (std::size_t i = 0; i < batch; ++i) {
        const float* d = delta_.data() + i * out;
        const float* z = pre_[l].data() + i * in;
        float* dp = delta_prev_.data() + i * in;
        for (std::size_t k = 0; k < in; ++k) {
          const float* wk = w + k * out;
          float sum = 0;
          for (std::size_t j = 0; j < out; ++j) sum += d[j] * wk[j];
          dp[k] = z[k] > 0 ? sum : 0.0F;
        }
      }
    }
    // The gradients are final; the hook may start reducing them while we continue below.
    layer_done(l);
    if (l > 0) delta_.swap(delta_prev_);
  }
  return result;
}

BatchResult Mlp::evaluate(const float* x, const int* labels, std::size_t batch) {
  forward(x, batch);
  return loss(labels, batch, false, 1.0);
}

void Mlp::sgd_step(float learning_rate, float momentum) {
  for (ParameterTensor& t : tensors_) {
    for (std::size_t e = 0; e < t.value.size(); ++e) {
      t.momentum[e] = momentum * t.momentum[e] + t.gradient[e];
      t.value[e] -= learning_rate * t.momentum[e];
    }
  }
}

}  // namespace haein::examples
