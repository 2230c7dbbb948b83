#pragma once
/// @file
/// Whether a folder that every rank writes in is one folder on every host.

#include <string>
#include <string_view>

namespace haein::runtime {

class Communicator;

/// Collective over `comm` (host memory, so an MPI bootstrap): checks that `folder`, which
/// each rank has created already, is one and the same folder for every rank, as a shared
/// file system gives. Rank 0 creates a marker file with a random name in it, every rank
/// looks for it (for up to a second, for file systems that cache lookups), and rank 0
/// removes it. Throws InvalidArgument on every rank when a rank does not see it, naming
/// `what` ("checkpoint folder"), the folder and the hosts and ranks that do not see it;
/// the same when rank 0 cannot create the marker. Writing a folder that is private to
/// each host would split the files (or hang collective I/O) instead.
void require_shared_folder(Communicator& comm, const std::string& folder, std::string_view what);

}  // namespace haein::runtime
