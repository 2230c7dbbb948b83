#include "haein/common/check.hpp"

#include <sstream>

#include "haein/common/process.hpp"

namespace haein::detail {

namespace {
std::string context(const char* file, int line) {
  std::ostringstream out;
  out << " [at " << file << ":" << line << " on " << process_label() << "]";
  return out.str();
}
}  // namespace

void raise_cuda_error(const char* call, int code, const char* name, const char* text,
                      const char* file, int line) {
  std::ostringstream out;
  out << "CUDA call " << call << " failed: " << name << " (" << code << "): " << text;
  if (std::string_view(name) == "cudaErrorNoDevice" ||
      std::string_view(name) == "cudaErrorInsufficientDriver") {
    out << "; check that a GPU and its driver are present (nvidia-smi) and CUDA_VISIBLE_DEVICES";
  }
  out << context(file, line);
  throw CudaError(out.str(), code);
}

void raise_nccl_error(const char* call, int code, const char* text, const char* last_error,
                      const char* file, int line) {
  std::ostringstream out;
  out << "NCCL call " << call << " failed: " << text << " (" << code << ")";
  if (last_error != nullptr && *last_error != '\0') out << ": " << last_error;
  out << "; rerun with NCCL_DEBUG=INFO for NCCL's own trace" << context(file, line);
  throw NcclError(out.str(), code);
}

void raise_mpi_error(const char* call, int code, const std::string& text, const char* file,
                     int line) {
  std::ostringstream out;
  out << "MPI call " << call << " failed: " << text << " (" << code << ")" << context(file, line);
  throw MpiError(out.str(), code);
}

}  // namespace haein::detail
