// Replacing a file safely in a directory others can write to.
#include "haein/common/files.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
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

}  // namespace haein
