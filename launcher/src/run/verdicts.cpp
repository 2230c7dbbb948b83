#include "verdicts.hpp"

#include <algorithm>
#include <map>
#include <set>
#include <sstream>

namespace haein::launcher::detail {

namespace {

// "(exited, stopped or unreachable): " now, "(exited or unreachable): " from runtimes built
// before stopped ranks were told apart: the list follows the first "): " after the prefix.
const std::string kVerdict = "ranks that did not answer (";

std::string join_hosts(const std::set<std::string>& hosts) {
  std::string text;
  for (const std::string& host : hosts) text += (text.empty() ? "" : ", ") + host;
  return text;
}

}  // namespace

Silence silence_in_verdicts(const Placement& placement, const std::vector<RankStatus>& statuses) {
  std::map<int, const RankStatus*> by_rank;
  for (const RankStatus& status : statuses) by_rank[status.rank] = &status;
  // Between hosts (what a cut link shows):
  std::map<std::string, std::set<std::string>> named_by;   // host -> hosts that found it silent
  std::map<std::string, std::set<std::string>> found_off;  // host -> hosts it found silent
  std::set<std::string> reporting;
  // Rank by rank, the same host included (what a stopped process shows):
  std::map<std::string, std::set<int>> silent;       // host -> its ranks found silent
  std::map<std::string, std::set<int>> silent_from;  // host -> the ranks that found them so
  for (const RankStatus& status : statuses) {
    if (!status.failed()) continue;
    for (const std::string& line : status.tail) {
      const std::size_t at = line.find(kVerdict);
      if (at == std::string::npos) continue;
      reporting.insert(status.host);
      const std::size_t close = line.find("): ", at);
      if (close == std::string::npos) continue;
      std::string list = line.substr(close + 3);
      list = list.substr(0, list.find(';'));
      std::replace(list.begin(), list.end(), ',', ' ');
      std::istringstream ranks(list);
      for (int rank; ranks >> rank;) {
        if (rank < 0 || rank >= placement.world_size() || rank == status.rank) continue;
        const auto found = by_rank.find(rank);
        if (found != by_rank.end() && found->second->ended_ns <= status.ended_ns) continue;
        const std::string& host = placement.ranks[rank].host;
        silent[host].insert(rank);
        silent_from[host].insert(status.rank);
        if (host == status.host) continue;
        named_by[host].insert(status.host);
        found_off[status.host].insert(host);
      }
    }
  }
  std::map<std::string, std::vector<int>> ranks_on;
  for (const RankPlacement& r : placement.ranks) ranks_on[r.host].push_back(r.rank);

  // Some ranks of one host, its other ranks answering, and no host silent as a whole.
  std::vector<std::string> partly, wholly;
  for (const auto& [host, ranks] : silent)
    (ranks.size() < ranks_on[host].size() ? partly : wholly).push_back(host);
  if (partly.size() == 1 && wholly.empty()) {
    Silence found;
    found.host = partly.front();
    found.ranks.assign(silent[found.host].begin(), silent[found.host].end());
    found.reporting_ranks.assign(silent_from[found.host].begin(), silent_from[found.host].end());
    return found;
  }

  // A whole host: found silent by every other host's ranks, or the one host whose ranks
  // found two or more other hosts silent as a whole.
  const std::set<std::string> whole(wholly.begin(), wholly.end());
  std::set<std::string> candidates;
  for (const auto& entry : named_by) {
    // (not a structured binding: clang before 16 cannot capture one in the lambda)
    const std::string& host = entry.first;
    const auto& by = entry.second;
    const bool everyone =
        std::all_of(reporting.begin(), reporting.end(),
                    [&](const std::string& h) { return h == host || by.count(h) != 0; });
    if (whole.count(host) != 0 && everyone && by.size() >= 2) candidates.insert(host);
  }
  std::vector<std::string> isolated;
  for (const auto& entry : found_off) {
    const auto& off = entry.second;
    const auto silent_hosts =
        std::count_if(off.begin(), off.end(), [&](const std::string& h) { return whole.count(h); });
    if (silent_hosts >= 2) isolated.push_back(entry.first);
  }
  if (isolated.size() == 1) candidates.insert(isolated.front());
  if (candidates.size() != 1) return {};
  Silence found;
  found.host = *candidates.begin();
  found.ranks = ranks_on[found.host];
  found.whole_host = true;
  found.reporters =
      join_hosts(named_by[found.host].empty() ? found_off[found.host] : named_by[found.host]);
  return found;
}

std::string describe_stopped(const Silence& silence) {
  std::string text;
  if (silence.ranks.size() > 1) {
    text = "with ranks";
    for (std::size_t i = 1; i < silence.ranks.size(); ++i)
      text += (i > 1 ? ", " : " ") + std::to_string(silence.ranks[i]);
    text += ", ";
  }
  std::string reporters;
  for (const int rank : silence.reporting_ranks)
    reporters += (reporters.empty() ? "" : ", ") + std::to_string(rank);
  return text + "did not answer the watchdog" +
         (silence.reporting_ranks.size() > 1 ? "s of ranks " : " of rank ") + reporters +
         " while it ran, though its host's other ranks did: stopped (SIGSTOP, a debugger) or "
         "frozen";
}

}  // namespace haein::launcher::detail
