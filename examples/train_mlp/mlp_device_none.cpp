// DeviceMlp in a build without CUDA: no GPU is ever available, and asking for one is an
// error that says why.
#include "haein/common/error.hpp"
#include "mlp_device.hpp"

namespace haein::examples {

namespace {

[[noreturn]] void no_cuda() {
  throw InvalidArgument(why_no_gpu() + ": --device gpu is not available");
}

}  // namespace

bool gpu_available() { return false; }
std::string why_no_gpu() {
  return "train_mlp was built without CUDA (no nvcc, CUDA toolkit or NCCL at configure time)";
}
int gpu_for_local_rank(int) { no_cuda(); }

struct DeviceMlp::Impl {};

DeviceMlp::DeviceMlp(const Mlp&, int) { no_cuda(); }
DeviceMlp::DeviceMlp(DeviceMlp&&) noexcept = default;
DeviceMlp& DeviceMlp::operator=(DeviceMlp&&) noexcept = default;
DeviceMlp::~DeviceMlp() = default;
float* DeviceMlp::gradient(std::size_t) { no_cuda(); }
void* DeviceMlp::stream() { no_cuda(); }
BatchResult DeviceMlp::train_batch(const float*, const int*, std::size_t, double,
                                   const std::function<void(std::size_t)>&) {
  no_cuda();
}
BatchResult DeviceMlp::evaluate(const float*, const int*, std::size_t) { no_cuda(); }
void DeviceMlp::sgd_step(float, float) { no_cuda(); }
void DeviceMlp::download(Mlp&) { no_cuda(); }
void DeviceMlp::upload(const Mlp&) { no_cuda(); }

}  // namespace haein::examples
