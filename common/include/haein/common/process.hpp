#pragma once
/// @file
/// Who this process is: host name and rank, used in log prefixes and error messages.

#include <optional>
#include <string>

namespace haein {

/// This machine's short host name.
const std::string& host_name();

/// This process's rank: the one set by set_process_rank, else the one the environment
/// contract gives (read_rank_environment); none where it gives none.
std::optional<int> process_rank();
/// Called by the runtime once it knows the rank for certain.
void set_process_rank(int rank);

/// "host:rank" or "host" when the rank is unknown.
std::string process_label();

}  // namespace haein
