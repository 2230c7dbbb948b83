// Replacing a file safely in a directory others can write to.
#include "haein/common/files.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include "haein/common/error.hpp"

namespace haein {

void replace_file(const std::string& path, const std::string& text, mode_t mode) {
  std::string fresh = path + ".XXXXXX";
  // mkostemp: O_CREAT | O_EXCL with a random suffix, mode 0600 until fchmod below.
  const int fd = ::mkostemp(fresh.data(), O_CLOEXEC);
  if (fd < 0)
    throw Error("cannot write '" + path + "': " + std::strerror(errno) +
                (errno == ENOENT ? " (no such directory)" : ""));
  const auto fail = [&](const std::string& what, int error) {
    ::close(fd);
    ::unlink(fresh.c_str());
    return Error("cannot write '" + path + "': " + what + ": " + std::strerror(error));
  };
  std::size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw fail("write", n < 0 ? errno : ENOSPC);
    done += static_cast<std::size_t>(n);
  }
  if (::fchmod(fd, mode) != 0) throw fail("fchmod", errno);
  if (::close(fd) != 0) {
    const int error = errno;
    ::unlink(fresh.c_str());
    throw Error("cannot write '" + path + "': close: " + std::strerror(error));
  }
  // rename replaces a symlink at `path` itself; in a sticky directory it refuses to
  // replace another user's file (unless this process may: root).
  if (::rename(fresh.c_str(), path.c_str()) != 0) {
    const int error = errno;
    ::unlink(fresh.c_str());
    throw Error("cannot write '" + path + "': " + std::strerror(error) +
                (error == EPERM || error == EACCES
                     ? " (another user's file of that name in a shared directory?)"
                     : ""));
  }
}

std::string read_text_file(const std::string& path, const std::string& what,
                           std::size_t max_bytes) {
  const std::string named = what + " '" + printable(path, 200) + "'";
  std::error_code error;
  const auto status = std::filesystem::status(path, error);
  if (!std::filesystem::exists(status))
    throw InvalidArgument("cannot read " + named + ": no such file");
  if (std::filesystem::is_directory(status))
    throw InvalidArgument("cannot read " + named + ": it is a directory");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InvalidArgument("cannot read " + named + ": " + std::strerror(errno));
  std::string body(max_bytes + 1, '\0');
  in.read(body.data(), static_cast<std::streamsize>(body.size()));
  if (in.bad()) throw InvalidArgument("cannot read " + named + ": read error");
  body.resize(static_cast<std::size_t>(in.gcount()));
  if (body.size() > max_bytes)
    throw InvalidArgument(named + " is larger than " + std::to_string(max_bytes >> 20) +
                          " MiB; is it the right file?");
  return body;
}

}  // namespace haein
