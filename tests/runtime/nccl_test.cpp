// The NCCL (device) backend: one thread per visible GPU joined by a ThreadBootstrap,
// device buffers, every operation checked against the same references as the host
// backend. One rank on one GPU is a valid test of the plumbing. Skips without a GPU.
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <functional>
#include <thread>

#include "haein/kernels/device.hpp"
#include "haein/runtime/communicator.hpp"
#include "reference.hpp"

namespace {

using namespace haein::runtime;
using haein::test::Buffer;
using haein::test::input;
using haein::test::load;
using haein::test::reduced;
using haein::test::store;

/// Runs `body(comm)` on one thread per GPU, each with its own device and communicator.
void on_every_gpu(const std::function<void(Communicator&)>& body) {
  std::string reason;
  const auto devices = haein::kernels::visible_devices(&reason);
  if (devices.empty()) GTEST_SKIP() << "no GPU: " << reason;
  auto bootstraps =
      ThreadBootstrap::create_group(static_cast<int>(devices.size()), std::chrono::seconds(120));
  std::vector<std::thread> threads;
  for (std::size_t r = 0; r < devices.size(); ++r) {
    threads.emplace_back([&, r] {
      cudaSetDevice(devices[r].index);
      CommunicatorOptions options = CommunicatorOptions::from_environment();
      options.timeout = std::chrono::seconds(120);
      Communicator comm(std::move(bootstraps[r]), options);
      body(comm);
    });
  }
  for (auto& thread : threads) thread.join();
}

/// A device copy of `host`, and back.
struct DeviceBuffer {
  void* data = nullptr;
  std::size_t bytes = 0;
  explicit DeviceBuffer(std::size_t n) : bytes(n) {
    if (cudaMalloc(&data, std::max<std::size_t>(n, 1)) != cudaSuccess) data = nullptr;
    if (data != nullptr) cudaMemset(data, 0x7b, std::max<std::size_t>(n, 1));  // poison
  }
  ~DeviceBuffer() { cudaFree(data); }
  void upload(const Buffer& host) {
    cudaMemcpy(data, host.bytes.data(), bytes, cudaMemcpyHostToDevice);
  }
  void download(Buffer& host) const {
    cudaMemcpy(host.bytes.data(), data, bytes, cudaMemcpyDeviceToHost);
  }
};

std::size_t wrong(const Buffer& got, std::size_t count,
                  const std::function<double(std::size_t)>& want) {
  std::size_t bad = 0;
  for (std::size_t i = 0; i < count; ++i)
    if (!haein::test::close(load(got.type, got.bytes.data(), i), want(i), got.type)) ++bad;
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

}  // namespace
