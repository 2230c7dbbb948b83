#pragma once
// A multi-layer perceptron classifier on the host: linear layers with ReLU between them,
// softmax cross-entropy, SGD with momentum. Backward goes layer by layer from the output
// and reports each layer's gradients as soon as they are final, the moment a framework's
// autograd hook would fire, so that the bucketer can start reducing them.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace haein::examples {

/// One parameter tensor with its gradient and momentum, in registration (model) order.
struct ParameterTensor {
  std::string name;  ///< "fc1.weight", "fc1.bias", ...
  std::vector<float> value;
  std::vector<float> gradient;
  std::vector<float> momentum;
};

struct BatchResult {
  double loss_sum = 0;  ///< summed over the batch's samples
  std::size_t correct = 0;
};

class Mlp {
 public:
  /// `sizes`: features, hidden widths..., classes. Weights from Kaiming-uniform draws of a
  /// generator seeded with `seed`, biases zero.
  Mlp(std::vector<std::size_t> sizes, std::uint64_t seed);

  const std::vector<std::size_t>& sizes() const { return sizes_; }
  std::size_t layer_count() const { return sizes_.size() - 1; }
  /// fc{l+1}.weight is tensor 2l (stored [in][out]), fc{l+1}.bias tensor 2l+1.
  std::vector<ParameterTensor>& tensors() { return tensors_; }
  const std::vector<ParameterTensor>& tensors() const { return tensors_; }
  std::size_t parameter_count() const;

  /// Forward and backward over `batch` samples (x: batch rows of features). Gradients are
  /// those of the mean loss over `gradient_divisor` samples (the local batch for
  /// data-parallel averaging). `layer_done(l)` runs when layer l's gradients are final,
  /// last layer first.
  BatchResult train_batch(const float* x, const int* labels, std::size_t batch,
                          double gradient_divisor,
                          const std::function<void(std::size_t layer)>& layer_done);
  /// Forward only.
  BatchResult evaluate(const float* x, const int* labels, std::size_t batch);
  /// v = momentum * v + g; w -= lr * v (PyTorch's SGD), on every tensor.
  void sgd_step(float learning_rate, float momentum);

 private:
  void forward(const float* x, std::size_t batch);
  BatchResult loss(const int* labels, std::size_t batch, bool with_gradient, double divisor);

  std::vector<std::size_t> sizes_;
  std::vector<ParameterTensor> tensors_;
  // Per layer: pre-activation Z and activation A (A of layer 0 is the input).
  std::vector<std::vector<float>> pre_;
  std::vector<std::vector<float>> act_;
  std::vector<float> delta_;
  std::vector<float> delta_prev_;
};

}  // namespace haein::examples
