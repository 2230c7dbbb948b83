#include "job_files.hpp"

#include <stdlib.h>

#include "haein/common/error.hpp"
#include "haein/common/files.hpp"
#include "haein/common/process.hpp"
#include "haein/launcher/plan.hpp"
#include "haein/launcher/topo_commands.hpp"

namespace haein::launcher::detail {

namespace fs = std::filesystem;

JobDirectory::JobDirectory(const std::string& log_dir, bool all_local, bool keep) : keep_(keep) {
  if (!log_dir.empty()) {
    path_ = fs::absolute(log_dir);
    keep_ = true;
    std::error_code error;
    fs::create_directories(path_, error);
    if (error) {
      throw InvalidArgument("cannot create --log-dir '" + log_dir + "': " + error.message());
    }
    return;
  }
  const fs::path parent = all_local ? fs::temp_directory_path() : fs::current_path() / ".haein";
  fs::create_directories(parent);
  std::string pattern = (parent / ("haein-run-" + host_name() + "-XXXXXX")).string();
  if (mkdtemp(pattern.data()) == nullptr) {
    throw Error("cannot create a job directory under " + parent.string());
  }
  path_ = pattern;
}

JobDirectory::~JobDirectory() {
  if (keep_) return;
  std::error_code ignored;
  fs::remove_all(path_, ignored);
}

void write_job_files(const Job& job) {
  replace_file(job.placement_path, placement_json(job.placement));
  replace_file((job.dir / "rankfile").string(), placement_rankfile(job.placement));
  replace_file((job.dir / "hostfile").string(), placement_slurm_hostfile(job.placement));
  if (!job.nccl_topo_dir.empty())
    write_nccl_topology_dir(job.cluster, job.placement, job.nccl_topo_dir);
}

int count_files(const fs::path& dir) {
  std::error_code error;
  int files = 0;
  for (fs::directory_iterator it(dir, error), end; !error && it != end; it.increment(error))
    if (it->is_regular_file(error)) ++files;
  return files;
}

}  // namespace haein::launcher::detail
