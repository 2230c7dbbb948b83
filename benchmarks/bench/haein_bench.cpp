// haein-bench: the benchmark suite. `haein-bench collective|bucket|kernel|place [options]`.
#include <cstring>
#include <iostream>
#include <string>

#include "commands.hpp"
#include "haein/common/cli.hpp"
#include "haein/common/error.hpp"
#include "haein/runtime/bootstrap.hpp"

namespace {

constexpr const char* kUsage =
    R"(usage: haein-bench <command> [options]   (--help after a command for its options)

commands:
  collective   nccl-tests' sweep (-b -e -f -n -w -c -d -o -r) of one collective (--op) through
               haein's communicator, --backend host|nccl, --baseline mpi; --csv, --hdf5
               (under mpirun, srun or haein run)
  bucket       one step's gradient exchange of a real model (--model gpt2-124m|llama-3.2-1b|FILE):
               per-tensor, flat, bucketed, bf16 (under mpirun)
  kernel       pack/unpack/cast bandwidth against memcpy (--model, --bucket-mb)
  place        placement quality: haein's order against mpirun's, on presets
)";

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0 ||
      std::strcmp(argv[1], "help") == 0) {
    std::cout << kUsage;
    return argc < 2 ? 2 : 0;
  }
  const std::string command = argv[1];
  try {
    if (command == "collective") return haein::bench::collective_command(argc - 1, argv + 1);
    if (command == "bucket") return haein::bench::bucket_command(argc - 1, argv + 1);
    if (command == "kernel") return haein::bench::kernel_command(argc - 1, argv + 1);
    if (command == "place") return haein::bench::place_command(argc - 1, argv + 1);
    std::cerr << "haein-bench: unknown command '" << command << "'\n" << kUsage;
    return 2;
  } catch (const haein::HelpShown&) {
    return 0;
  } catch (const std::exception& error) {
    std::cerr << "haein-bench " << command << ": error: " << error.what() << std::endl;
    const int code = static_cast<int>(haein::exit_code_for(error));
    haein::runtime::abort_job_on_error(code);  // the other ranks may wait for this one
    return code;
  }
}
