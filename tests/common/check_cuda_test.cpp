// The CUDA and NCCL check macros on real failing calls: these fail with or without a GPU.
#include <cuda_runtime.h>
#include <gtest/gtest.h>
#include <nccl.h>

#include "haein/common/check.hpp"

namespace haein {
namespace {

TEST(CheckMacros, CudaFailureNamesTheCallAndPlace) {
  try {
    HAEIN_CUDA_CHECK(cudaSetDevice(-1));
    FAIL() << "cudaSetDevice(-1) succeeded";
  } catch (const CudaError& error) {
    const std::string what = error.what();
    EXPECT_NE(what.find("cudaSetDevice(-1)"), std::string::npos) << what;
    EXPECT_NE(what.find("check_cuda_test.cpp:"), std::string::npos) << what;
    EXPECT_NE(error.code(), 0);
  }
  int version = 0;
  EXPECT_NO_THROW(HAEIN_CUDA_CHECK(cudaRuntimeGetVersion(&version)));  // needs no driver
  EXPECT_GE(version, 12000);
}

TEST(CheckMacros, NcclFailureNamesTheCall) {
  ncclUniqueId id{};
  ncclComm_t comm = nullptr;
  try {
    HAEIN_NCCL_CHECK(ncclCommInitRank(&comm, 0, id, 0));  // zero ranks is never valid
    FAIL() << "ncclCommInitRank with 0 ranks succeeded";
  } catch (const NcclError& error) {
    const std::string what = error.what();
    EXPECT_NE(what.find("ncclCommInitRank(&comm, 0, id, 0)"), std::string::npos) << what;
    EXPECT_NE(what.find("NCCL_DEBUG=INFO"), std::string::npos) << what;
  }
}

}  // namespace
}  // namespace haein
