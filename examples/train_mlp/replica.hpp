#pragma once
// One rank's copy of the model, wherever its layers run: on the host (Mlp) or on a GPU
// (DeviceMlp, with the host Mlp kept as the model of record). The training loop sees only
// this interface, as a DDP script sees a module that was moved to some device.

#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include "mlp.hpp"

namespace haein::examples {

class Replica {
 public:
  virtual ~Replica() = default;

  /// Where the layers run and the gradients go, for the start-up line.
  virtual std::string where() const = 0;
  /// Tensor t's gradient (Mlp::tensors() order), where the layers write it: for the
  /// GradBucketer.
  virtual float* gradient(std::size_t t) = 0;
  /// The cudaStream_t the layers run on (the bucketer must use it), or nullptr.
  virtual void* stream() = 0;

  /// As Mlp::train_batch: forward and backward over host inputs; `layer_done(l)` runs once
  /// layer l's gradients are final (on a GPU: queued), last layer first.
  virtual BatchResult train_batch(const float* x, const int* labels, std::size_t batch,
                                  double gradient_divisor,
                                  const std::function<void(std::size_t layer)>& layer_done) = 0;
  virtual BatchResult evaluate(const float* x, const int* labels, std::size_t batch) = 0;
  /// SGD with momentum on every tensor (after the bucketer's finish()).
  virtual void sgd_step(float learning_rate, float momentum) = 0;

  /// The host model, up to date (a GPU replica copies its parameters down first): what
  /// checkpoints write and the replica checksum covers.
  virtual const Mlp& model() = 0;
  /// Changes the host model and brings the change to where the layers run.
  virtual void change(const std::function<void(Mlp&)>& edit) = 0;
};

/// `model` as a replica on `device`: "cpu", "gpu", or "auto" (the GPU when one is
/// visible). `local_rank()`, asked only for a GPU, picks it. Throws InvalidArgument for
/// "gpu" without one, naming `rank`.
std::unique_ptr<Replica> make_replica(Mlp model, const std::string& device, int rank,
                                      const std::function<int()>& local_rank);

}  // namespace haein::examples
