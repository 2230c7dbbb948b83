#include "haein/runtime/shared_folder.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <map>
#include <random>
#include <thread>
#include <vector>

#include "haein/common/error.hpp"
#include "haein/runtime/communicator.hpp"

namespace haein::runtime {

namespace {

namespace fs = std::filesystem;

/// What rank 0 tells every rank: the marker's name, or why it could not make one.
struct Marker {
  std::array<char, 64> name{};
  std::array<char, 192> error{};
};

std::string random_name() {
  std::random_device random;
  std::uint64_t bits = (static_cast<std::uint64_t>(random()) << 32) | random();
  static constexpr char kHex[] = "0123456789abcdef";
  std::string name = ".haein-shared-check-";
  for (int i = 0; i < 16; ++i, bits >>= 4) name += kHex[bits & 15U];
  return name;
}

void copy_into(std::array<char, 64>& to, const std::string& text) {
  std::strncpy(to.data(), text.c_str(), to.size() - 1);
}
void copy_into(std::array<char, 192>& to, const std::string& text) {
  std::strncpy(to.data(), text.c_str(), to.size() - 1);
}

bool sees(const fs::path& marker) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(1);
  for (;;) {
    std::error_code ec;
    if (fs::exists(marker, ec)) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

}  // namespace

void require_shared_folder(Communicator& comm, const std::string& folder, std::string_view what) {
  Marker marker;
  if (comm.rank() == 0) {
    const std::string name = random_name();
    const fs::path path = fs::path(folder) / name;
    const int fd = ::open(path.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
      copy_into(marker.error, std::strerror(errno));
    else
      ::close(fd);
    copy_into(marker.name, name);
  }
  comm.broadcast(&marker, &marker, sizeof marker, DataType::kU8, 0);
  const std::string error(marker.error.data());
  if (!error.empty())
    throw InvalidArgument(std::string(what) + " " + folder + ": rank 0 on " + comm.hosts()[0] +
                          " cannot create a file there: " + error);
  const fs::path path = fs::path(folder) / std::string(marker.name.data());
  const std::uint8_t seen = sees(path) ? 1 : 0;
  std::vector<std::uint8_t> all(static_cast<std::size_t>(comm.size()));
  comm.all_gather(&seen, all.data(), 1, DataType::kU8);
  if (comm.rank() == 0) ::unlink(path.c_str());
  std::map<std::string, std::vector<int>> blind;  // host -> its ranks that do not see it
  for (int rank = 0; rank < comm.size(); ++rank)
    if (all[static_cast<std::size_t>(rank)] == 0) blind[comm.hosts()[rank]].push_back(rank);
  if (blind.empty()) return;
  std::string where;
  for (const auto& [host, ranks] : blind) {
    where += (where.empty() ? "" : "; ") + host + " (rank";
    where += ranks.size() > 1 ? "s " : " ";
    for (std::size_t i = 0; i < ranks.size(); ++i)
      where += (i > 0 ? ", " : "") + std::to_string(ranks[i]);
    where += ")";
  }
  throw InvalidArgument(std::string(what) + " " + folder + " is not shared by every host: a file " +
                        "rank 0 created there on " + comm.hosts()[0] + " is not seen on " + where +
                        ". Give a folder on a file system every host mounts at the " + "same path");
}

}  // namespace haein::runtime
