// The NCCL (device) backend: one thread per visible GPU joined by a ThreadBootstrap,
// device buffers, every operation checked against the same references as the host
// backend. One rank on one GPU is a valid test of the plumbing. Skips without a GPU.
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <functional>
#include <stdexcept>
#include <thread>

#include "gpu.hpp"
#include "haein/kernels/device.hpp"
#include "haein/kernels/multi_tensor.hpp"
#include "haein/runtime/communicator.hpp"
#include "nccl_types.hpp"
#include "reference.hpp"

namespace {

using namespace haein::runtime;
using haein::test::Buffer;
using haein::test::input;
using haein::test::load;
using haein::test::reduced;
using haein::test::store;

/// Runs `body(comm)` on one thread per GPU, each with its own device and communicator. An
/// exception in a thread fails the test that ran it, by name, instead of ending the binary.
void on_every_gpu(const std::function<void(Communicator&)>& body) {
  HAEIN_SKIP_WITHOUT_GPU();
  const auto devices = haein::kernels::visible_devices();
  auto bootstraps =
      ThreadBootstrap::create_group(static_cast<int>(devices.size()), std::chrono::seconds(120));
  const std::string test = ::testing::UnitTest::GetInstance()->current_test_info()->name();
  std::vector<std::thread> threads;
  for (std::size_t r = 0; r < devices.size(); ++r) {
    threads.emplace_back([&, r] {
      try {
        if (const cudaError_t status = cudaSetDevice(devices[r].index); status != cudaSuccess)
          throw std::runtime_error(std::string("cudaSetDevice: ") + cudaGetErrorString(status));
        CommunicatorOptions options = CommunicatorOptions::from_environment();
        options.timeout = std::chrono::seconds(120);
        Communicator comm(std::move(bootstraps[r]), options);
        body(comm);
      } catch (const std::exception& error) {
        ADD_FAILURE() << test << ", rank " << r << " threw: " << error.what();
      }
    });
  }
  for (auto& thread : threads) thread.join();
}

void check_cuda(cudaError_t status, const char* what) {
  if (status != cudaSuccess)
    throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(status));
}

/// A device copy of `host`, and back; `guard` poisoned bytes follow the data.
struct DeviceBuffer {
  static constexpr std::size_t kGuard = 64;
  static constexpr unsigned char kPoison = 0x7b;
  void* data = nullptr;
  std::size_t bytes = 0;
  explicit DeviceBuffer(std::size_t n) : bytes(n) {
    check_cuda(cudaMalloc(&data, n + kGuard), "cudaMalloc");
    check_cuda(cudaMemset(data, kPoison, n + kGuard), "cudaMemset");
  }
  ~DeviceBuffer() { cudaFree(data); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  void upload(const Buffer& host) {
    check_cuda(cudaMemcpy(data, host.bytes.data(), bytes, cudaMemcpyHostToDevice), "upload");
  }
  void download(Buffer& host) const {
    check_cuda(cudaMemcpy(host.bytes.data(), data, bytes, cudaMemcpyDeviceToHost), "download");
  }
  /// True while nothing was written past `bytes`.
  bool guard_intact() const {
    std::vector<unsigned char> guard(kGuard);
    check_cuda(
        cudaMemcpy(guard.data(), static_cast<char*>(data) + bytes, kGuard, cudaMemcpyDeviceToHost),
        "guard download");
    for (unsigned char byte : guard)
      if (byte != kPoison) return false;
    return true;
  }
};

/// Elements that differ from `want`; the first few are named in the test's output.
std::size_t wrong(const Buffer& got, std::size_t count,
                  const std::function<double(std::size_t)>& want) {
  std::size_t bad = 0;
  for (std::size_t i = 0; i < count; ++i) {
    const double value = load(got.type, got.bytes.data(), i);
    if (haein::test::close(value, want(i), got.type)) continue;
    if (++bad <= 3)
      ADD_FAILURE() << "element " << i << " of " << count << ": " << value << ", want " << want(i);
  }
  return bad;
}

TEST(NcclGpu, AllReduceEveryTypeAndReductionInAndOutOfPlace) {
  on_every_gpu([](Communicator& comm) {
    const int n = comm.size(), me = comm.rank();
    for (const DataType type : kAllDataTypes)
      for (const ReduceOp op : kAllReduceOps)
        for (const std::size_t count :
             {std::size_t{0}, std::size_t{1}, std::size_t{7}, std::size_t{1'000'003}})
          for (const bool in_place : {false, true}) {
            Buffer host(type, count);
            for (std::size_t i = 0; i < count; ++i)
              store(type, host.data(), i, input(me, i, type, op));
            DeviceBuffer send(host.bytes.size()), recv(host.bytes.size());
            ASSERT_NE(send.data, nullptr);
            send.upload(host);
            DeviceBuffer& target = in_place ? send : recv;
            comm.all_reduce(send.data, target.data, count, type, op);
            target.download(host);
            EXPECT_EQ(wrong(host, count, [&](std::size_t i) { return reduced(n, i, type, op); }),
                      0u)
                << name_of(type) << ' ' << name_of(op) << " count " << count
                << (in_place ? " in place" : " out of place");
            // A type mapped to an NCCL type of another size writes too much or too little.
            EXPECT_TRUE(target.guard_intact())
                << name_of(type) << ' ' << name_of(op) << " count " << count
                << ": NCCL wrote past the result (wrong element size for the type?)";
          }
    const auto records = comm.flight_recorder();
    ASSERT_FALSE(records.empty());
    EXPECT_EQ(records.back().backend, "nccl");
  });
}

TEST(NcclGpu, GatherScatterBroadcastAllToAllSendRecvAsyncAndSplit) {
  on_every_gpu([](Communicator& comm) {
    const int n = comm.size(), me = comm.rank();
    const std::size_t count = 1'000'003;
    const DataType type = DataType::kF32;
    const std::size_t bytes = count * sizeof(float);
    Buffer mine(type, count), all(type, count * n);
    for (std::size_t i = 0; i < count; ++i)
      store(type, mine.data(), i, input(me, i, type, ReduceOp::kSum) + me);
    for (std::size_t i = 0; i < count * n; ++i)
      store(type, all.data(), i, input(me, i, type, ReduceOp::kSum));
    DeviceBuffer d_mine(bytes), d_all(bytes * n), d_out(bytes * n);
    d_mine.upload(mine);

    comm.all_gather(d_mine.data, d_out.data, count, type);
    Buffer got(type, count * n);
    d_out.download(got);
    EXPECT_EQ(wrong(got, count * n,
                    [&](std::size_t i) {
                      return input(static_cast<int>(i / count), i % count, type, ReduceOp::kSum) +
                             static_cast<double>(i / count);
                    }),
              0u);

    d_all.upload(all);
    comm.reduce_scatter(d_all.data, d_out.data, count, type, ReduceOp::kSum);
    Buffer block(type, count);
    cudaMemcpy(block.data(), d_out.data, bytes, cudaMemcpyDeviceToHost);
    EXPECT_EQ(
        wrong(block, count,
              [&](std::size_t j) { return reduced(n, me * count + j, type, ReduceOp::kSum); }),
        0u);

    comm.broadcast(d_mine.data, d_out.data, count, type, n - 1);
    cudaMemcpy(block.data(), d_out.data, bytes, cudaMemcpyDeviceToHost);
    EXPECT_EQ(wrong(block, count,
                    [&](std::size_t i) { return input(n - 1, i, type, ReduceOp::kSum) + (n - 1); }),
              0u);

    d_all.upload(all);
    comm.all_to_all(d_all.data, d_all.data, count, type);  // in place
    d_all.download(got);
    EXPECT_EQ(wrong(got, count * n,
                    [&](std::size_t i) {
                      return input(static_cast<int>(i / count), me * count + i % count, type,
                                   ReduceOp::kSum);
                    }),
              0u);

    OpOptions async;
    async.async = true;
    comm.group_start();
    comm.send(d_mine.data, count, type, (me + 1) % n);
    comm.recv(d_out.data, count, type, (me + n - 1) % n);
    comm.group_end();
    cudaMemcpy(block.data(), d_out.data, bytes, cudaMemcpyDeviceToHost);
    const int from = (me + n - 1) % n;
    EXPECT_EQ(wrong(block, count,
                    [&](std::size_t i) { return input(from, i, type, ReduceOp::kSum) + from; }),
              0u);

    Work work = comm.all_reduce(d_mine.data, d_out.data, count, type, ReduceOp::kMax, async);
    EXPECT_TRUE(work.wait(std::chrono::seconds(60)));
    cudaMemcpy(block.data(), d_out.data, bytes, cudaMemcpyDeviceToHost);
    EXPECT_EQ(wrong(block, count,
                    [&](std::size_t i) {
                      double best = input(0, i, type, ReduceOp::kSum);
                      for (int r = 1; r < n; ++r)
                        best = std::max(best, input(r, i, type, ReduceOp::kSum) + r);
                      return best;
                    }),
              0u);

    // ncclCommSplit: every rank alone.
    Communicator alone = comm.split(me, 0);
    ASSERT_TRUE(alone.valid());
    EXPECT_EQ(alone.size(), 1);
    alone.all_reduce(d_mine.data, d_out.data, count, type, ReduceOp::kSum);
    cudaMemcpy(block.data(), d_out.data, bytes, cudaMemcpyDeviceToHost);
    EXPECT_EQ(
        wrong(block, count, [&](std::size_t i) { return input(me, i, type, ReduceOp::kSum) + me; }),
        0u);
  });
}

// With one GPU every reduction is the identity, so a wrong entry in the type or operation
// table would pass every device test: the table is checked against NCCL's names here,
// written out independently of nccl_types.hpp. Runs without a GPU.
TEST(NcclTable, EveryTypeAndReductionMapsToTheNcclOneOfTheSameMeaning) {
  using haein::runtime::detail::nccl_op;
  using haein::runtime::detail::nccl_type;
  const std::pair<DataType, ncclDataType_t> types[] = {
      {DataType::kF32, ncclFloat},     {DataType::kF64, ncclDouble}, {DataType::kF16, ncclHalf},
      {DataType::kBF16, ncclBfloat16}, {DataType::kI32, ncclInt},    {DataType::kI64, ncclInt64},
      {DataType::kU8, ncclUint8}};
  for (const auto& [ours, theirs] : types) EXPECT_EQ(nccl_type(ours), theirs) << name_of(ours);
  const std::pair<ReduceOp, ncclRedOp_t> ops[] = {{ReduceOp::kSum, ncclSum},
                                                  {ReduceOp::kAvg, ncclAvg},
                                                  {ReduceOp::kMin, ncclMin},
                                                  {ReduceOp::kMax, ncclMax},
                                                  {ReduceOp::kProd, ncclProd}};
  for (const auto& [ours, theirs] : ops) EXPECT_EQ(nccl_op(ours), theirs) << name_of(ours);
  EXPECT_EQ(std::size(types), std::size(kAllDataTypes));
  EXPECT_EQ(std::size(ops), std::size(kAllReduceOps));
}

TEST(NcclGpu, PollingAnAsyncOperationLeavesNoErrorForTheNextKernelLaunch) {
  on_every_gpu([](Communicator& comm) {
    const std::size_t count = std::size_t{64} << 20;  // 256 MiB of floats
    DeviceBuffer x(count * sizeof(float)), copy(count * sizeof(float));
    check_cuda(cudaMemset(x.data, 0, count * sizeof(float)), "cudaMemset");
    comm.all_reduce(x.data, x.data, count, DataType::kF32, ReduceOp::kSum);  // NCCL set-up
    // Queue copies on the legacy stream, which the operation waits for: Work::test() then
    // answers "not ready" many times.
    for (int i = 0; i < 8; ++i)
      check_cuda(cudaMemcpyAsync(copy.data, x.data, count * sizeof(float), cudaMemcpyDeviceToDevice,
                                 nullptr),
                 "cudaMemcpyAsync");
    OpOptions async;
    async.async = true;
    Work work = comm.all_reduce(x.data, x.data, count, DataType::kF32, ReduceOp::kSum, async);
    int polls = 0;
    while (!work.test()) ++polls;
    EXPECT_GT(polls, 0) << "the operation was complete at once: nothing was exercised";
    const haein::kernels::TensorSlice slice{x.data, 1000, 0};
    EXPECT_NO_THROW(
        haein::kernels::pack_device({&slice, 1, haein::kernels::ElementType::kF32, copy.data,
                                     haein::kernels::ElementType::kF32, 1.0f, nullptr},
                                    nullptr));
    EXPECT_EQ(cudaGetLastError(), cudaSuccess);
    check_cuda(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
  });
}

TEST(NcclGpu, OperationsLeaveTheCallersCurrentDeviceAsItWas) {
  on_every_gpu([](Communicator& comm) {
    int before = -1, after = -1;
    check_cuda(cudaGetDevice(&before), "cudaGetDevice");
    DeviceBuffer x(4096);
    comm.all_reduce(x.data, x.data, 1024, DataType::kF32, ReduceOp::kSum);
    Communicator alone = comm.split(comm.rank(), 0);
    alone.all_reduce(x.data, x.data, 1024, DataType::kF32, ReduceOp::kMax);
    check_cuda(cudaGetDevice(&after), "cudaGetDevice");
    EXPECT_EQ(after, before);
  });
}

}  // namespace
