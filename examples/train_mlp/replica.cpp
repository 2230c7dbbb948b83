#include "replica.hpp"

#include "haein/common/error.hpp"
#include "mlp_device.hpp"

namespace haein::examples {

namespace {

class HostReplica final : public Replica {
 public:
  explicit HostReplica(Mlp model) : model_(std::move(model)) {}

  std::string where() const override {
    return "layers on the host, gradients through the host path";
  }
  float* gradient(std::size_t t) override { return model_.tensors()[t].gradient.data(); }
  void* stream() override { return nullptr; }
  BatchResult train_batch(const float* x, const int* labels, std::size_t batch, double divisor,
                          const std::function<void(std::size_t)>& layer_done) override {
    return model_.train_batch(x, labels, batch, divisor, layer_done);
  }
  BatchResult evaluate(const float* x, const int* labels, std::size_t batch) override {
    return model_.evaluate(x, labels, batch);
  }
  void sgd_step(float learning_rate, float momentum) override {
    model_.sgd_step(learning_rate, momentum);
  }
  const Mlp& model() override { return model_; }
  void change(const std::function<void(Mlp&)>& edit) override { edit(model_); }

 private:
  Mlp model_;
};

/// The layers on a GPU; the host model is refreshed (download) before it is read.
class DeviceReplica final : public Replica {
 public:
  DeviceReplica(Mlp model, int gpu) : model_(std::move(model)), device_(model_, gpu) {}

  std::string where() const override {
    return "layers on the GPU (cuBLAS), gradients through NCCL";
  }
  float* gradient(std::size_t t) override { return device_.gradient(t); }
  void* stream() override { return device_.stream(); }
  BatchResult train_batch(const float* x, const int* labels, std::size_t batch, double divisor,
                          const std::function<void(std::size_t)>& layer_done) override {
    return device_.train_batch(x, labels, batch, divisor, layer_done);
  }
  BatchResult evaluate(const float* x, const int* labels, std::size_t batch) override {
    return device_.evaluate(x, labels, batch);
  }
  void sgd_step(float learning_rate, float momentum) override {
    device_.sgd_step(learning_rate, momentum);
  }
  const Mlp& model() override {
    device_.download(model_);
    return model_;
  }
  void change(const std::function<void(Mlp&)>& edit) override {
    device_.download(model_);
    edit(model_);
    device_.upload(model_);
  }

 private:
  Mlp model_;
  DeviceMlp device_;
};

}  // namespace

std::unique_ptr<Replica> make_replica(Mlp model, const std::string& device, int rank,
                                      const std::function<int()>& local_rank) {
  if (device == "gpu" && !gpu_available())
    throw InvalidArgument("--device gpu on rank " + std::to_string(rank) + ": " + why_no_gpu());
  if (device == "gpu" || (device == "auto" && gpu_available()))
    return std::make_unique<DeviceReplica>(std::move(model), gpu_for_local_rank(local_rank()));
  return std::make_unique<HostReplica>(std::move(model));
}

}  // namespace haein::examples
