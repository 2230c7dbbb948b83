// Every operation of the communicator's host (MPI) backend, for every type and reduction,
// in place and out of place, at counts 0, 1, 7 and 1,000,003, against references computed
// from all ranks' inputs. Runs under mpirun with 2 and 4 ranks (see CMakeLists.txt).
#include <dlfcn.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <sstream>
#include <thread>

#include "haein/runtime/communicator.hpp"
#include "mpi_test_main.hpp"
#include "reference.hpp"

namespace {

using haein::runtime::Communicator;
using haein::runtime::DataType;
using haein::runtime::kAllDataTypes;
using haein::runtime::kAllReduceOps;
using haein::runtime::name_of;
using haein::runtime::OpOptions;
using haein::runtime::ReduceOp;
using haein::test::Buffer;
using haein::test::close;
using haein::test::input;
using haein::test::load;
using haein::test::reduced;
using haein::test::store;

constexpr std::size_t kCounts[] = {0, 1, 7, 1'000'003};

std::string label(const char* op, DataType type, std::size_t count, bool in_place,
                  const char* extra = "") {
  std::ostringstream out;
  out << op << ' ' << name_of(type) << " count=" << count
      << (in_place ? " in-place " : " out-of-place ") << extra;
  return out.str();
}

/// Poison: a value no result has, so that an element never written is caught.
void poison(Buffer& buffer) { std::fill(buffer.bytes.begin(), buffer.bytes.end(), 0x7b); }

/// Counts mismatches of `got[i]` against want(i); reports the first one.
template <typename Want>
void expect_elements(const Buffer& got, std::size_t offset, std::size_t count, Want want,
                     const std::string& what) {
  std::size_t wrong = 0;
  std::string first;
  for (std::size_t i = 0; i < count; ++i) {
    const double value = load(got.type, got.bytes.data(), offset + i);
    const double expected = want(i);
    if (!close(value, expected, got.type)) {
      if (wrong++ == 0)
        first = "element " + std::to_string(i) + ": got " + std::to_string(value) + ", want " +
                std::to_string(expected);
    }
  }
  EXPECT_EQ(wrong, 0u) << what << ": " << wrong << " wrong, first " << first;
}

Communicator& comm() { return haein::test::world(); }

TEST(Collectives, AllReduce) {
  const int n = comm().size(), me = comm().rank();
  for (const DataType type : kAllDataTypes)
    for (const ReduceOp op : kAllReduceOps)
      for (const std::size_t count : kCounts)
        for (const bool in_place : {false, true}) {
          Buffer send(type, count), recv(type, count);
          for (std::size_t i = 0; i < count; ++i)
            store(type, send.data(), i, input(me, i, type, op));
          Buffer& target = in_place ? send : recv;
          if (!in_place) poison(recv);
          comm().all_reduce(send.data(), target.data(), count, type, op);
          expect_elements(
              target, 0, count, [&](std::size_t i) { return reduced(n, i, type, op); },
              label("all_reduce", type, count, in_place, name_of(op).data()));
        }
}

TEST(Collectives, ReduceScatter) {
  const int n = comm().size(), me = comm().rank();
  for (const DataType type : kAllDataTypes)
    for (const ReduceOp op : kAllReduceOps)
      for (const std::size_t count : kCounts)
        for (const bool in_place : {false, true}) {
          // Element j of block b of every rank's input is input(rank, b * count + j).
          Buffer send(type, count * n), recv(type, count);
          for (std::size_t i = 0; i < count * n; ++i)
            store(type, send.data(), i, input(me, i, type, op));
          poison(recv);
          const std::size_t offset = in_place ? count * me : 0;
          Buffer& target = in_place ? send : recv;
          void* out = target.bytes.data() + offset * haein::runtime::size_of(type);
          comm().reduce_scatter(send.data(), out, count, type, op);
          expect_elements(
              target, offset, count,
              [&](std::size_t j) { return reduced(n, count * me + j, type, op); },
              label("reduce_scatter", type, count, in_place, name_of(op).data()));
        }
}

TEST(Collectives, Reduce) {
  const int n = comm().size(), me = comm().rank();
  for (const int root : {n - 1, 0})
    for (const DataType type : kAllDataTypes)
      for (const ReduceOp op : kAllReduceOps)
        for (const std::size_t count : kCounts)
          for (const bool in_place : {false, true}) {
            Buffer send(type, count), recv(type, count);
            for (std::size_t i = 0; i < count; ++i)
              store(type, send.data(), i, input(me, i, type, op));
            poison(recv);
            Buffer& target = in_place ? send : recv;
            comm().reduce(send.data(), target.data(), count, type, op, root);
            if (me != root) continue;
            expect_elements(
                target, 0, count, [&](std::size_t i) { return reduced(n, i, type, op); },
                label("reduce", type, count, in_place, name_of(op).data()) + " root " +
                    std::to_string(root));
          }
}

/// The value rank r contributes at element i of a data-movement test (exact in every type).
double moved(int r, std::size_t i, DataType type) {
  return input(r, i, type, ReduceOp::kSum) + (type == DataType::kU8 ? r : r * 16);
}

TEST(Collectives, AllGather) {
  const int n = comm().size(), me = comm().rank();
  for (const DataType type : kAllDataTypes)
    for (const std::size_t count : kCounts)
      for (const bool in_place : {false, true}) {
        Buffer send(type, count), recv(type, count * n);
        poison(recv);
        const std::size_t element = haein::runtime::size_of(type);
        unsigned char* mine =
            in_place ? recv.bytes.data() + me * count * element : send.bytes.data();
        for (std::size_t i = 0; i < count; ++i) store(type, mine, i, moved(me, i, type));
        comm().all_gather(mine, recv.data(), count, type);
        expect_elements(
            recv, 0, count * n,
            [&](std::size_t i) { return moved(static_cast<int>(i / count), i % count, type); },
            label("all_gather", type, count, in_place));
      }
}

TEST(Collectives, Broadcast) {
  const int n = comm().size(), me = comm().rank();
  for (const int root : {0, n - 1})
    for (const DataType type : kAllDataTypes)
      for (const std::size_t count : kCounts)
        for (const bool in_place : {false, true}) {
          Buffer send(type, count), recv(type, count);
          for (std::size_t i = 0; i < count; ++i) store(type, send.data(), i, moved(me, i, type));
          poison(recv);
          if (in_place && me == root) recv = send;
          const void* source = in_place ? recv.data() : send.data();
          comm().broadcast(source, recv.data(), count, type, root);
          expect_elements(
              recv, 0, count, [&](std::size_t i) { return moved(root, i, type); },
              label("broadcast", type, count, in_place) + " root " + std::to_string(root));
        }
}

TEST(Collectives, AllToAll) {
  const int n = comm().size(), me = comm().rank();
  for (const DataType type : kAllDataTypes)
    for (const std::size_t count : kCounts)
      for (const bool in_place : {false, true}) {
        // Block p of rank r's input carries moved(r, p * count + j): what p must receive.
        Buffer send(type, count * n), recv(type, count * n);
        for (std::size_t i = 0; i < count * n; ++i) store(type, send.data(), i, moved(me, i, type));
        poison(recv);
        Buffer& target = in_place ? send : recv;
        comm().all_to_all(send.data(), target.data(), count, type);
        expect_elements(
            target, 0, count * n,
            [&](std::size_t i) {
              const int from = static_cast<int>(i / count);
              return moved(from, me * count + i % count, type);
            },
            label("all_to_all", type, count, in_place));
      }
}

TEST(Collectives, SendRecvRingInAGroup) {
  const int n = comm().size(), me = comm().rank();
  const int next = (me + 1) % n, previous = (me + n - 1) % n;
  for (const DataType type : kAllDataTypes)
    for (const std::size_t count : kCounts) {
      Buffer out(type, count), in(type, count);
      for (std::size_t i = 0; i < count; ++i) store(type, out.data(), i, moved(me, i, type));
      poison(in);
      // Both directions at once: only a group keeps large messages from deadlocking.
      comm().group_start();
      comm().send(out.data(), count, type, next);
      comm().recv(in.data(), count, type, previous);
      comm().group_end();
      expect_elements(
          in, 0, count, [&](std::size_t i) { return moved(previous, i, type); },
          label("send/recv", type, count, false));
    }
}

TEST(Collectives, AsyncWorkCompletesAndWaitTimesOutWhilePending) {
  const int n = comm().size(), me = comm().rank();
  const std::size_t count = 100'003;
  Buffer data(DataType::kF64, count);
  for (std::size_t i = 0; i < count; ++i)
    store(DataType::kF64, data.data(), i, input(me, i, DataType::kF64, ReduceOp::kSum));
  OpOptions async;
  async.async = true;
  auto work =
      comm().all_reduce(data.data(), data.data(), count, DataType::kF64, ReduceOp::kSum, async);
  EXPECT_GT(work.sequence(), 0u);
  work.wait();
  EXPECT_TRUE(work.test());
  expect_elements(
      data, 0, count, [&](std::size_t i) { return reduced(n, i, DataType::kF64, ReduceOp::kSum); },
      "async all_reduce");

  // A barrier the last rank joins late: the others' wait(10 ms) reports it still pending.
  if (me == n - 1) std::this_thread::sleep_for(std::chrono::milliseconds(300));
  auto barrier = comm().barrier(async);
  if (me != n - 1) {
    EXPECT_FALSE(barrier.wait(std::chrono::milliseconds(10)));
  }
  barrier.wait();
  EXPECT_TRUE(barrier.test());
}

TEST(Collectives, HalfPrecisionSumsAccumulateInF32) {
  // bf16 holds 8 significant bits: 256 + 1 rounds back to 256, so summing one rank at a
  // time in bf16 gives 256 however many ranks add 1; accumulating in f32 gives 256 + (n-1)
  // rounded once.
  const int n = comm().size(), me = comm().rank();
  for (const DataType type : {DataType::kBF16, DataType::kF16}) {
    const double big = type == DataType::kBF16 ? 256.0 : 2048.0;  // f16: 11 bits
    Buffer data(type, 3);
    for (std::size_t i = 0; i < 3; ++i) store(type, data.data(), i, me == 0 ? big : 1.0);
    comm().all_reduce(data.data(), data.data(), 3, type, ReduceOp::kSum);
    Buffer want(type, 1);
    store(type, want.data(), 0, big + (n - 1));
    for (std::size_t i = 0; i < 3; ++i)
      EXPECT_EQ(load(type, data.data(), i), load(type, want.data(), 0))
          << name_of(type) << " element " << i;
    if (n >= 3) {
      EXPECT_GT(load(type, data.data(), 0), big);
    }
  }
}

TEST(Collectives, SplitByParityAndByHost) {
  const int n = comm().size(), me = comm().rank();
  Communicator half = comm().split(me % 2, -me);  // reversed order inside each half
  ASSERT_TRUE(half.valid());
  const int members = (n - me % 2 + 1) / 2;
  EXPECT_EQ(half.size(), members);
  std::int64_t value = me, sum = 0;
  half.all_reduce(&value, &sum, 1, DataType::kI64, ReduceOp::kSum);
  std::int64_t want = 0;
  for (int r = me % 2; r < n; r += 2) want += r;
  EXPECT_EQ(sum, want);
  // Ordered by key = -rank: the highest rank of the half is rank 0.
  std::int64_t top = 0;
  half.broadcast(&value, &top, 1, DataType::kI64, 0);
  EXPECT_EQ(top, me % 2 + 2 * (members - 1));
  // Messages name the job's ranks: rank r of the half is the world's me % 2 + 2 * (members - 1 -
  // r).
  for (int r = 0; r < members; ++r)
    EXPECT_EQ(half.world_rank(r), comm().world_rank(me % 2 + 2 * (members - 1 - r))) << r;
  EXPECT_THROW((void)half.world_rank(members), haein::InvalidArgument);

  Communicator none = comm().split(me == 0 ? -1 : 1, 0);
  EXPECT_EQ(none.valid(), me != 0);

  // Every rank of this test runs on one host.
  Communicator host = comm().split_by_host();
  EXPECT_EQ(host.size(), n);
  Communicator across = comm().split_across_hosts();
  EXPECT_EQ(across.size(), 1);
}

TEST(Collectives, BadArgumentsAreClearErrorsBeforeAnythingIsSent) {
  double x = 0;
  EXPECT_THROW(comm().broadcast(&x, &x, 1, DataType::kF64, comm().size()), haein::InvalidArgument);
  EXPECT_THROW(comm().send(&x, 1, DataType::kF64, -1), haein::InvalidArgument);
  EXPECT_THROW(comm().all_reduce(nullptr, &x, 1, DataType::kF64, ReduceOp::kSum),
               haein::InvalidArgument);
  EXPECT_THROW(comm().group_end(), haein::InvalidArgument);
  // The communicator still works afterwards.
  double one = 1, total = 0;
  comm().all_reduce(&one, &total, 1, DataType::kF64, ReduceOp::kSum);
  EXPECT_EQ(total, comm().size());
}

TEST(Collectives, FlightRecorderKeepsTheLast64Operations) {
  for (int i = 0; i < 70; ++i) comm().barrier();
  const auto records = comm().flight_recorder();
  ASSERT_EQ(records.size(), 64u);
  for (std::size_t i = 1; i < records.size(); ++i) {
    if (records[i].op == haein::Collective::kBarrier &&
        records[i - 1].op == haein::Collective::kBarrier) {
      EXPECT_EQ(records[i].sequence, records[i - 1].sequence + 1);
    }
  }
  EXPECT_EQ(records.back().op, haein::Collective::kBarrier);
  EXPECT_EQ(records.back().state, haein::runtime::OpState::kCompleted);
  EXPECT_NE(comm().flight_recorder_text().find("barrier(u8, count=0) via mpi completed"),
            std::string::npos)
      << comm().flight_recorder_text();
}

/// Primary contexts active in this process, asked of the driver (which creates none), or
/// -1 when there is no driver or no GPU.
int active_cuda_contexts() {
  void* driver = ::dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (driver == nullptr) return -1;
  using Init = int (*)(unsigned);
  using Count = int (*)(int*);
  using Get = int (*)(int*, int);
  using State = int (*)(int, unsigned*, int*);
  auto init = reinterpret_cast<Init>(::dlsym(driver, "cuInit"));
  auto count = reinterpret_cast<Count>(::dlsym(driver, "cuDeviceGetCount"));
  auto get = reinterpret_cast<Get>(::dlsym(driver, "cuDeviceGet"));
  auto state = reinterpret_cast<State>(::dlsym(driver, "cuDevicePrimaryCtxGetState"));
  int devices = 0;
  if (!init || !count || !get || !state || init(0) != 0 || count(&devices) != 0 || devices == 0)
    return -1;
  int active = 0;
  for (int i = 0; i < devices; ++i) {
    int device = 0;
    unsigned flags = 0;
    int on = 0;
    if (get(&device, i) == 0 && state(device, &flags, &on) == 0) active += on;
  }
  return active;
}

// Under plain mpirun every rank of an 8-GPU node used to put a CUDA context (~0.5 GB) on
// GPU 0 by asking the runtime whether a host buffer was device memory.
TEST(HostMemory, CollectivesOnHostBuffersCreateNoCudaContext) {
  if (active_cuda_contexts() < 0) GTEST_SKIP() << "no CUDA driver or no GPU";
  ASSERT_EQ(active_cuda_contexts(), 0) << "an earlier test of this host-only binary made one";
  Communicator& comm = haein::test::world();
  std::vector<double> data(1024, 1.0);
  comm.all_reduce(data.data(), data.data(), data.size(), DataType::kF64, ReduceOp::kSum);
  comm.broadcast(data.data(), data.data(), data.size(), DataType::kF64, 0);
  EXPECT_EQ(active_cuda_contexts(), 0);
}

}  // namespace
