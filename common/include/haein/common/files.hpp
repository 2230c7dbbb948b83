#pragma once
/// @file
/// Files a job writes where other users may write too (/tmp, a shared log directory).

#include <sys/types.h>

#include <cstddef>
#include <string>

namespace haein {

/// Makes `path` hold `text`, all at once and without trusting what is already there: the
/// text goes to a fresh file beside it (a unique name, created with O_EXCL and
/// O_NOFOLLOW) that is then renamed over `path`. A symlink or file planted at `path` is
/// replaced, never followed or written into, and a reader never sees half a file. Throws
/// Error naming `path` and the reason (no such directory, disk full, a file of another
/// user in a sticky directory); nothing is left behind then.
void replace_file(const std::string& path, const std::string& text, mode_t mode = 0644);

/// The contents of a file a user named (`what`: "cluster file", "busy file", ...), at most
/// `max_bytes`. Throws InvalidArgument saying which: no such file, a directory, no
/// permission (the system's reason), larger than the bound.
std::string read_text_file(const std::string& path, const std::string& what,
                           std::size_t max_bytes = std::size_t{64} << 20);

}  // namespace haein
