#include "rank_status.hpp"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "haein/common/error.hpp"
#include "haein/common/files.hpp"

namespace haein::launcher::detail {

namespace fs = std::filesystem;

namespace {
constexpr const char* kTailMarker = "--- last lines ---";
}

void write_rank_status(const std::string& dir, const RankStatus& status) {
  const fs::path path = fs::path(dir) / ("rank-" + std::to_string(status.rank));
  std::ostringstream out;
  out << "rank " << status.rank << "\nhost " << status.host << "\nexit_code " << status.exit_code
      << "\nsignal " << status.signal << "\nstopped " << (status.stopped ? 1 : 0) << "\norphaned "
      << (status.orphaned ? 1 : 0) << "\nreceived " << status.received << "\nended_ns "
      << status.ended_ns << "\nseconds " << status.seconds << "\n"
      << kTailMarker << "\n";
  for (const std::string& line : status.tail) out << line << "\n";
  replace_file(path.string(), out.str());
}

namespace {

bool parse_status(std::istream& in, RankStatus& status) {
  std::string line;
  bool has_rank = false;
  while (std::getline(in, line)) {
    if (line == kTailMarker) {
      while (std::getline(in, line)) status.tail.push_back(line);
      return has_rank;
    }
    std::istringstream fields(line);
    std::string key;
    fields >> key;
    if (key == "rank") {
      has_rank = static_cast<bool>(fields >> status.rank);
    } else if (key == "host") {
      fields >> status.host;
    } else if (key == "exit_code") {
      fields >> status.exit_code;
    } else if (key == "signal") {
      fields >> status.signal;
    } else if (key == "stopped") {
      int stopped = 0;
      fields >> stopped;
      status.stopped = stopped != 0;
    } else if (key == "orphaned") {
      int orphaned = 0;
      fields >> orphaned;
      status.orphaned = orphaned != 0;
    } else if (key == "received") {
      fields >> status.received;
    } else if (key == "ended_ns") {
      fields >> status.ended_ns;
    } else if (key == "seconds") {
      fields >> status.seconds;
    }
  }
  return false;  // no tail marker: the file is incomplete
}

}  // namespace

std::vector<RankStatus> read_rank_statuses(const std::string& dir) {
  std::vector<RankStatus> statuses;
  std::error_code error;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir, error)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("rank-", 0) != 0) continue;
    std::ifstream in(entry.path());
    RankStatus status;
    if (in && parse_status(in, status)) statuses.push_back(std::move(status));
  }
  std::sort(statuses.begin(), statuses.end(),
            [](const RankStatus& a, const RankStatus& b) { return a.rank < b.rank; });
  return statuses;
}

const RankStatus* first_failure(const std::vector<RankStatus>& statuses) {
  const RankStatus* first = nullptr;
  for (const RankStatus& status : statuses) {
    if (!status.failed() || status.stopped) continue;
    if (first == nullptr || status.ended_ns < first->ended_ns) first = &status;
  }
  return first;
}

}  // namespace haein::launcher::detail
