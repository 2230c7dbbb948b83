// DeviceMlp: the MLP's forward, backward and SGD on a GPU (see mlp_device.hpp).
//
// Matrices are the host Mlp's, row-major: weights [in][out], activations [batch][width].
// cuBLAS is column-major, where a row-major [r][c] matrix reads as its transpose, so
//   Z = A W         is  Z^T = W^T A^T:      gemm(N, N, out, batch, in;  W, A)
//   dW = A^T D      is  dW^T = D^T A:       gemm(N, T, out, in, batch;  D, A)
//   D' = D W^T      is  D'^T = W D^T:       gemm(T, N, in, batch, out;  W, D)
// with D the loss gradient of a layer's output ([batch][out]).
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cmath>
#include <string>
#include <vector>

#include "haein/common/check.hpp"
#include "haein/common/error.hpp"
#include "haein/kernels/launch.cuh"
#include "mlp_device.hpp"

namespace haein::examples {

namespace {

void check_cublas(cublasStatus_t status, const char* call) {
  if (status != CUBLAS_STATUS_SUCCESS) {
    throw Error(std::string("cuBLAS: ") + call + " failed: " + cublasGetStatusString(status));
  }
}

#define HAEIN_CUBLAS_CHECK(call) check_cublas((call), #call)

constexpr int kThreads = 256;

unsigned blocks_for(std::size_t n) { return static_cast<unsigned>((n + kThreads - 1) / kThreads); }

// z[i][j] += b[j]; a = relu(z) (or z for the output layer).
__global__ void bias_activation(float* z, float* a, const float* b, std::size_t batch,
                                std::size_t out, bool relu) {
  const std::size_t e = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x;
  if (e >= batch * out) return;
  const float v = z[e] + b[e % out];
  z[e] = v;
  a[e] = relu ? fmaxf(v, 0.0f) : v;
}

// One sample per thread: the softmax cross-entropy of its logits (in double, as the host
// does), whether the arg-max is its label, and the loss gradient scaled by `inverse`.
__global__ void softmax_cross_entropy(const float* logits, const int* labels, std::size_t batch,
                                      std::size_t classes, float inverse, float* delta,
                                      double* loss, int* correct) {
  const std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x;
  if (i >= batch) return;
  const float* row = logits + i * classes;
  const int label = labels[i];
  float top = row[0];
  std::size_t best = 0;
  for (std::size_t c = 1; c < classes; ++c) {
    if (row[c] > top) {
      top = row[c];
      best = c;
    }
  }
  double total = 0;
  for (std::size_t c = 0; c < classes; ++c) total += exp(static_cast<double>(row[c]) - top);
  loss[i] = log(total) - (static_cast<double>(row[label]) - top);
  correct[i] = static_cast<int>(best) == label ? 1 : 0;
  if (delta == nullptr) return;
  float* d = delta + i * classes;
  for (std::size_t c = 0; c < classes; ++c) {
    const double p = exp(static_cast<double>(row[c]) - top) / total;
    d[c] = static_cast<float>(p - (static_cast<int>(c) == label ? 1.0 : 0.0)) * inverse;
  }
}

// db[j] = sum over the batch of d[i][j], in sample order.
__global__ void column_sum(const float* d, std::size_t batch, std::size_t out, float* db) {
  const std::size_t j = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x;
  if (j >= out) return;
  float sum = 0;
  for (std::size_t i = 0; i < batch; ++i) sum += d[i * out + j];
  db[j] = sum;
}

// The ReLU derivative: gradient through where the pre-activation was positive.
__global__ void relu_backward(float* d, const float* z, std::size_t n) {
  const std::size_t e = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x;
  if (e < n && !(z[e] > 0.0f)) d[e] = 0.0f;
}

// PyTorch's SGD with momentum: v = mu v + g; w -= lr v.
__global__ void sgd(float* w, float* v, const float* g, std::size_t n, float lr, float mu) {
  const std::size_t e = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x;
  if (e >= n) return;
  const float velocity = __fadd_rn(__fmul_rn(mu, v[e]), g[e]);
  v[e] = velocity;
  w[e] = __fsub_rn(w[e], __fmul_rn(lr, velocity));
}

/// A device buffer that grows to the largest size asked for.
template <class T>
struct Buffer {
  T* data = nullptr;
  std::size_t capacity = 0;
  T* reserve(std::size_t n) {
    if (n > capacity) {
      if (data != nullptr) HAEIN_CUDA_CHECK(cudaFree(data));
      data = nullptr;
      HAEIN_CUDA_CHECK(cudaMalloc(&data, n * sizeof(T)));
      capacity = n;
    }
    return data;
  }
  void release() {
    if (data != nullptr) cudaFree(data);
    data = nullptr;
    capacity = 0;
  }
};

}  // namespace

bool gpu_available() {
  int count = 0;
  return cudaGetDeviceCount(&count) == cudaSuccess && count > 0;
}

std::string why_no_gpu() {
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess) {
    return std::string("no GPU is visible to this process (cudaGetDeviceCount: ") +
           cudaGetErrorString(status) + ")";
  }
  return count == 0 ? "no GPU is visible to this process (CUDA_VISIBLE_DEVICES?)" : "";
}

int gpu_for_local_rank(int local_rank) {
  int count = 0;
  HAEIN_CUDA_CHECK(cudaGetDeviceCount(&count));
  return local_rank % count;
}

struct DeviceMlp::Impl {
  std::vector<std::size_t> sizes;
  int device = 0;
  cudaStream_t stream = nullptr;
  cublasHandle_t blas = nullptr;
  struct Tensor {
    std::size_t count = 0;
    Buffer<float> value, gradient, momentum;
  };
  std::vector<Tensor> tensors;
  std::vector<Buffer<float>> pre, act;  // per layer boundary, [batch][width]
  Buffer<float> delta, delta_prev;
  Buffer<int> labels, correct;
  Buffer<double> loss;
  std::vector<double> host_loss;
  std::vector<int> host_correct;

  std::size_t layers() const { return sizes.size() - 1; }

  ~Impl() {
    if (device >= 0) cudaSetDevice(device);
    for (Tensor& t : tensors) {
      t.value.release();
      t.gradient.release();
      t.momentum.release();
    }
    for (auto& b : pre) b.release();
    for (auto& b : act) b.release();
    delta.release();
    delta_prev.release();
    labels.release();
    correct.release();
    loss.release();
    if (blas != nullptr) cublasDestroy(blas);
    if (stream != nullptr) cudaStreamDestroy(stream);
  }

  void forward(const float* x, std::size_t batch) {
    const float one = 1.0f, zero = 0.0f;
    pre.resize(layers() + 1);
    act.resize(layers() + 1);
    HAEIN_CUDA_CHECK(cudaMemcpyAsync(act[0].reserve(batch * sizes[0]), x,
                                     batch * sizes[0] * sizeof(float), cudaMemcpyHostToDevice,
                                     stream));
    for (std::size_t l = 0; l < layers(); ++l) {
      const int in = static_cast<int>(sizes[l]);
      const int out = static_cast<int>(sizes[l + 1]);
      float* z = pre[l + 1].reserve(batch * sizes[l + 1]);
      float* a = act[l + 1].reserve(batch * sizes[l + 1]);
      HAEIN_CUBLAS_CHECK(cublasSgemm(blas, CUBLAS_OP_N, CUBLAS_OP_N, out, static_cast<int>(batch),
                                     in, &one, tensors[2 * l].value.data, out, act[l].data, in,
                                     &zero, z, out));
      haein::kernels::launch_kernel(
          "bias_activation", bias_activation, blocks_for(batch * sizes[l + 1]), kThreads, stream, z,
          a, tensors[2 * l + 1].value.data, batch, sizes[l + 1], l + 1 < layers());
    }
  }

  /// Queues the loss kernel (and its gradient when `delta_out`) and copies the per-sample
  /// results back once the stream reaches them.
  void loss_kernel(const int* host_labels, std::size_t batch, float* delta_out, double divisor) {
    HAEIN_CUDA_CHECK(cudaMemcpyAsync(labels.reserve(batch), host_labels, batch * sizeof(int),
                                     cudaMemcpyHostToDevice, stream));
    haein::kernels::launch_kernel("softmax_cross_entropy", softmax_cross_entropy, blocks_for(batch),
                                  kThreads, stream, act[layers()].data, labels.data, batch,
                                  sizes.back(), static_cast<float>(1.0 / divisor), delta_out,
                                  loss.reserve(batch), correct.reserve(batch));
  }

  BatchResult collect(std::size_t batch) {
    host_loss.resize(batch);
    host_correct.resize(batch);
    HAEIN_CUDA_CHECK(cudaMemcpyAsync(host_loss.data(), loss.data, batch * sizeof(double),
                                     cudaMemcpyDeviceToHost, stream));
    HAEIN_CUDA_CHECK(cudaMemcpyAsync(host_correct.data(), correct.data, batch * sizeof(int),
                                     cudaMemcpyDeviceToHost, stream));
    HAEIN_CUDA_CHECK(cudaStreamSynchronize(stream));
    BatchResult result;
    for (std::size_t i = 0; i < batch; ++i) {
      result.loss_sum += host_loss[i];
      result.correct += static_cast<std::size_t>(host_correct[i]);
    }
    return result;
  }
};

DeviceMlp::DeviceMlp(const Mlp& model, int device) : impl_(std::make_unique<Impl>()) {
  impl_->device = device;
  HAEIN_CUDA_CHECK(cudaSetDevice(device));
  HAEIN_CUDA_CHECK(cudaStreamCreateWithFlags(&impl_->stream, cudaStreamNonBlocking));
  HAEIN_CUBLAS_CHECK(cublasCreate(&impl_->blas));
  HAEIN_CUBLAS_CHECK(cublasSetStream(impl_->blas, impl_->stream));
  impl_->sizes = model.sizes();
  impl_->tensors.resize(model.tensors().size());
  for (std::size_t t = 0; t < model.tensors().size(); ++t) {
    Impl::Tensor& d = impl_->tensors[t];
    d.count = model.tensors()[t].value.size();
    d.value.reserve(d.count);
    d.gradient.reserve(d.count);
    d.momentum.reserve(d.count);
    HAEIN_CUDA_CHECK(cudaMemsetAsync(d.gradient.data, 0, d.count * sizeof(float), impl_->stream));
  }
  upload(model);
}

DeviceMlp::DeviceMlp(DeviceMlp&&) noexcept = default;
DeviceMlp& DeviceMlp::operator=(DeviceMlp&&) noexcept = default;
DeviceMlp::~DeviceMlp() = default;

float* DeviceMlp::gradient(std::size_t t) { return impl_->tensors.at(t).gradient.data; }

void* DeviceMlp::stream() { return impl_->stream; }

BatchResult DeviceMlp::train_batch(const float* x, const int* labels, std::size_t batch,
                                   double gradient_divisor,
                                   const std::function<void(std::size_t layer)>& layer_done) {
  Impl& m = *impl_;
  const float one = 1.0f, zero = 0.0f;
  m.forward(x, batch);
  std::size_t widest = 0;
  for (std::size_t s : m.sizes) widest = std::max(widest, s);
  float* delta = m.delta.reserve(batch * widest);
  float* delta_prev = m.delta_prev.reserve(batch * widest);
  m.loss_kernel(labels, batch, delta, gradient_divisor);
  for (std::size_t l = m.layers(); l-- > 0;) {
    const int in = static_cast<int>(m.sizes[l]);
    const int out = static_cast<int>(m.sizes[l + 1]);
    HAEIN_CUBLAS_CHECK(cublasSgemm(m.blas, CUBLAS_OP_N, CUBLAS_OP_T, out, in,
                                   static_cast<int>(batch), &one, delta, out, m.act[l].data, in,
                                   &zero, m.tensors[2 * l].gradient.data, out));
    haein::kernels::launch_kernel("column_sum", column_sum, blocks_for(m.sizes[l + 1]), kThreads,
                                  m.stream, delta, batch, m.sizes[l + 1],
                                  m.tensors[2 * l + 1].gradient.data);
    if (l > 0) {
      HAEIN_CUBLAS_CHECK(cublasSgemm(m.blas, CUBLAS_OP_T, CUBLAS_OP_N, in, static_cast<int>(batch),
                                     out, &one, m.tensors[2 * l].value.data, out, delta, out, &zero,
                                     delta_prev, in));
      haein::kernels::launch_kernel("relu_backward", relu_backward, blocks_for(batch * m.sizes[l]),
                                    kThreads, m.stream, delta_prev, m.pre[l].data,
                                    batch * m.sizes[l]);
    }
    layer_done(l);
    if (l > 0) std::swap(delta, delta_prev);
  }
  return m.collect(batch);
}

BatchResult DeviceMlp::evaluate(const float* x, const int* labels, std::size_t batch) {
  impl_->forward(x, batch);
  impl_->loss_kernel(labels, batch, nullptr, 1.0);
  return impl_->collect(batch);
}

void DeviceMlp::sgd_step(float learning_rate, float momentum) {
  for (Impl::Tensor& t : impl_->tensors) {
    haein::kernels::launch_kernel("sgd", sgd, blocks_for(t.count), kThreads, impl_->stream,
                                  t.value.data, t.momentum.data, t.gradient.data, t.count,
                                  learning_rate, momentum);
  }
}

void DeviceMlp::download(Mlp& model) {
  for (std::size_t t = 0; t < impl_->tensors.size(); ++t) {
    Impl::Tensor& d = impl_->tensors[t];
    ParameterTensor& h = model.tensors()[t];
    HAEIN_CUDA_CHECK(cudaMemcpyAsync(h.value.data(), d.value.data, d.count * sizeof(float),
                                     cudaMemcpyDeviceToHost, impl_->stream));
    HAEIN_CUDA_CHECK(cudaMemcpyAsync(h.momentum.data(), d.momentum.data, d.count * sizeof(float),
                                     cudaMemcpyDeviceToHost, impl_->stream));
  }
  HAEIN_CUDA_CHECK(cudaStreamSynchronize(impl_->stream));
}

void DeviceMlp::upload(const Mlp& model) {
  if (model.sizes() != impl_->sizes) throw InvalidArgument("DeviceMlp: a model of other sizes");
  for (std::size_t t = 0; t < impl_->tensors.size(); ++t) {
    Impl::Tensor& d = impl_->tensors[t];
    const ParameterTensor& h = model.tensors()[t];
    HAEIN_CUDA_CHECK(cudaMemcpyAsync(d.value.data, h.value.data(), d.count * sizeof(float),
                                     cudaMemcpyHostToDevice, impl_->stream));
    HAEIN_CUDA_CHECK(cudaMemcpyAsync(d.momentum.data, h.momentum.data(), d.count * sizeof(float),
                                     cudaMemcpyHostToDevice, impl_->stream));
  }
  HAEIN_CUDA_CHECK(cudaStreamSynchronize(impl_->stream));
}

}  // namespace haein::examples
