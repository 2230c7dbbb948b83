#pragma once
// The job's files: its folder (--log-dir, else one made for the run and removed at its end)
// and what the backends and ranks read from it (placement.json, rankfile, hostfile, NCCL
// topology files), each written through common's atomic writer (replace_file).

#include <filesystem>
#include <string>

#include "job.hpp"

namespace haein::launcher::detail {

/// The job's files live in --log-dir, else in a directory removed at the end: under
/// $TMPDIR when every rank is here, else under the working directory, which the other
/// nodes are expected to share (as they share the program).
class JobDirectory {
 public:
  JobDirectory(const std::string& log_dir, bool all_local, bool keep);
  ~JobDirectory();
  JobDirectory(const JobDirectory&) = delete;
  JobDirectory& operator=(const JobDirectory&) = delete;
  const std::filesystem::path& path() const { return path_; }
  /// Kept after all: it holds what a failure left to look at.
  void keep() { keep_ = true; }

 private:
  std::filesystem::path path_;
  bool keep_;
};

/// Writes (again, after a re-placement) the files of `job`'s placement into job.dir.
void write_job_files(const Job& job);

/// Regular files in `dir` (0 when it does not exist).
int count_files(const std::filesystem::path& dir);

}  // namespace haein::launcher::detail
