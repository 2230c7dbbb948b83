#pragma once
// Per-operation timings as Chrome trace events (the JSON array format that chrome://tracing
// and Perfetto read). All ranks append to one file: rank 0 creates it with the opening
// bracket, each rank writes whole lines with O_APPEND, so lines never interleave. The
// closing bracket is left out, which the format allows. Times are microseconds since
// rank 0's clock at communicator creation, shifted by each rank's offset to it.

#include <cstdint>
#include <mutex>
#include <string>

namespace haein::runtime::detail {

class Timeline {
 public:
  /// Disabled when `file` is empty. Call create() on rank 0 before the others open.
  Timeline(std::string file, int rank, const std::string& host);
  ~Timeline();
  Timeline(const Timeline&) = delete;
  Timeline& operator=(const Timeline&) = delete;

  /// Truncates the file and writes the opening bracket.
  static void create(const std::string& file);
  bool enabled() const { return fd_ >= 0; }

  /// The wall clock in microseconds (what ranks exchange to align their tracks).
  static std::int64_t wall_us();
  void set_epoch_us(std::int64_t epoch) { epoch_us_ = epoch; }

  /// One complete event ("ph":"X"); `args_json` is the inside of the args object.
  void event(const std::string& name, std::int64_t start_wall_us, std::int64_t end_wall_us,
             const std::string& args_json);
  void flush();

 private:
  int fd_ = -1;
  int rank_ = 0;
  std::int64_t epoch_us_ = 0;
  std::mutex mutex_;
  std::string buffer_;
};

}  // namespace haein::runtime::detail
