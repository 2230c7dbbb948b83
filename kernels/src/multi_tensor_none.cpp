// Host-only builds: the device launches exist so that callers link, and say why they
// cannot run.
#include "haein/common/error.hpp"
#include "haein/kernels/multi_tensor.hpp"

namespace haein::kernels {

namespace {
[[noreturn]] void no_cuda(const char* what) { throw NotInThisBuild(what); }
}  // namespace

void pack_device(const PackArgs&, void*) { no_cuda("pack_device"); }
void unpack_device(const UnpackArgs&, void*) { no_cuda("unpack_device"); }
void scale_device(void*, std::size_t, ElementType, float, void*) { no_cuda("scale_device"); }
void sum_shards_device(const ShardSumArgs&, void*) { no_cuda("sum_shards_device"); }

}  // namespace haein::kernels
