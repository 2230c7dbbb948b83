#pragma once
// The results of a `haein-bench` run and where they go besides the table on stdout: a CSV
// (rank 0) and a parallel HDF5 file (every rank writes its own timings).

#include <cstddef>
#include <map>
#include <string>
#include <vector>

namespace haein::bench {

/// One measured configuration: a size of one operation in one mode.
struct Measurement {
  std::string group;  ///< HDF5 group, e.g. "allreduce/host/out_of_place"
  std::string name;   ///< dataset name within it, e.g. "1048576"
  /// This rank's time per operation in µs, one per repeat.
  std::vector<double> times_us;
  /// Numbers stored as the dataset's attributes (bytes, median_us, busbw_gbs, ...).
  std::map<std::string, double> numbers;
};

/// Run-wide attributes: command line, versions, hosts, topology.
using RunAttributes = std::map<std::string, std::string>;

/// The attributes every run records: haein, MPI, NCCL and CUDA versions, the host of each
/// rank, the placement JSON of `haein run` when there is one. Collective (MPI_COMM_WORLD).
RunAttributes standard_attributes(int argc, char** argv);

/// Writes `measurements` to `path` through parallel HDF5: one dataset of shape
/// [ranks, repeats] per measurement, rank r writing row r. Collective: every rank passes
/// the same list in the same order. Throws Error naming the file on failure.
void write_hdf5(const std::string& path, const RunAttributes& attributes,
                const std::vector<Measurement>& measurements);

/// `value` printed with a printf `pattern` holding one double conversion ("%.3f").
std::string format(const char* pattern, double value);

/// A CSV writer that quotes nothing (the fields are numbers and plain words).
class CsvFile {
 public:
  CsvFile() = default;
  /// Opens `path` for writing (rank 0 only; an empty path disables it) and writes `header`.
  CsvFile(const std::string& path, const std::vector<std::string>& header);
  void row(const std::vector<std::string>& fields);
  bool enabled() const { return !path_.empty(); }

 private:
  std::string path_;
};

}  // namespace haein::bench
