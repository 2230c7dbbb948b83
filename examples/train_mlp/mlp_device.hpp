#pragma once
// The MLP of mlp.hpp on a GPU: cuBLAS for the linear layers, small CUDA kernels for the
// bias, ReLU, softmax cross-entropy and SGD. The host Mlp stays the model of record: it
// is what checkpoints read and write and what the replica checksum covers, so the trainer
// copies parameters down (download) before those and up (upload) after changing them.
//
// Everything runs on one stream, stream(): the GradBucketer is given it, so that its
// bucket work waits for the gradients that backward queued there.

#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include "mlp.hpp"

namespace haein::examples {

/// True when this build has CUDA and this process sees at least one GPU.
bool gpu_available();
/// Why gpu_available() is false, in words for an error message.
std::string why_no_gpu();
/// The visible GPU for a rank with this local rank: 0 when haein run pinned the rank to
/// its GPU (one visible), local_rank modulo the count under a plain mpirun or srun.
int gpu_for_local_rank(int local_rank);

class DeviceMlp {
 public:
  /// Copies `model`'s sizes, values and momentum to GPU `device` (an index among the
  /// visible ones). Throws haein::Error when the build has no CUDA.
  DeviceMlp(const Mlp& model, int device);
  DeviceMlp(DeviceMlp&&) noexcept;
  DeviceMlp& operator=(DeviceMlp&&) noexcept;
  ~DeviceMlp();

  /// The device gradient of tensor `t` (Mlp::tensors() order), for the GradBucketer.
  float* gradient(std::size_t t);
  /// The cudaStream_t everything is queued on.
  void* stream();

  /// As Mlp::train_batch, with host inputs. `layer_done(l)` runs once layer l's gradient
  /// kernels are queued (not finished): the bucketer orders its work after them.
  BatchResult train_batch(const float* x, const int* labels, std::size_t batch,
                          double gradient_divisor,
                          const std::function<void(std::size_t layer)>& layer_done);
  BatchResult evaluate(const float* x, const int* labels, std::size_t batch);
  /// Queued after the bucketer's finish(), which makes the stream wait for the reductions.
  void sgd_step(float learning_rate, float momentum);

  /// Values and momentum to the host model (waits for the stream).
  void download(Mlp& model);
  /// Values and momentum from the host model.
  void upload(const Mlp& model);

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace haein::examples
