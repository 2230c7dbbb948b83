#include "timeline.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "haein/common/error.hpp"
#include "haein/common/files.hpp"
#include "haein/common/log.hpp"

namespace haein::runtime::detail {

namespace {

constexpr std::size_t kFlushBytes = 64 * 1024;

std::string json_escape(const std::string& text) {
  std::string out;
  for (const char c : text) {
    if (c == '"' || c == '\\') out.push_back('\\');
    if (static_cast<unsigned char>(c) < 0x20) continue;
    out.push_back(c);
  }
  return out;
}

}  // namespace

void Timeline::create(const std::string& file) {
  try {
    replace_file(file, "[\n");  // a planted symlink is replaced, not followed
  } catch (const Error& error) {
    throw InvalidArgument(std::string("HAEIN_TIMELINE: ") + error.what());
  }
}

Timeline::Timeline(std::string file, int rank, const std::string& host) : rank_(rank) {
  if (file.empty()) return;
  fd_ = ::open(file.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC | O_NOFOLLOW);
  if (fd_ < 0)
    throw InvalidArgument("HAEIN_TIMELINE: cannot open " + file + ": " + std::strerror(errno));
  buffer_ =
      "{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":" + std::to_string(rank) +
      ",\"args\":{\"name\":\"rank " + std::to_string(rank) + " (" + json_escape(host) +
      ")\"}},\n{\"name\":\"process_sort_index\",\"ph\":\"M\",\"pid\":" + std::to_string(rank) +
      ",\"args\":{\"sort_index\":" + std::to_string(rank) + "}},\n";
}

Timeline::~Timeline() {
  if (fd_ < 0) return;
  flush();
  ::close(fd_);
}

std::int64_t Timeline::wall_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void Timeline::event(const std::string& name, std::int64_t start_wall_us, std::int64_t end_wall_us,
                     const std::string& args_json) {
  if (fd_ < 0) return;
  std::lock_guard lock(mutex_);
  buffer_ += "{\"name\":\"" + name + "\",\"ph\":\"X\",\"pid\":" + std::to_string(rank_) +
             ",\"tid\":0,\"ts\":" + std::to_string(start_wall_us - epoch_us_) +
             ",\"dur\":" + std::to_string(end_wall_us - start_wall_us) + ",\"args\":{" + args_json +
             "}},\n";
  if (buffer_.size() >= kFlushBytes) {
    if (::write(fd_, buffer_.data(), buffer_.size()) < 0)
      HAEIN_LOG(kWarn, "HAEIN_TIMELINE: write failed: " << std::strerror(errno));
    buffer_.clear();
  }
}

void Timeline::flush() {
  if (fd_ < 0) return;
  std::lock_guard lock(mutex_);
  if (buffer_.empty()) return;
  if (::write(fd_, buffer_.data(), buffer_.size()) < 0)
    HAEIN_LOG(kWarn, "HAEIN_TIMELINE: write failed: " << std::strerror(errno));
  buffer_.clear();
}

}  // namespace haein::runtime::detail
