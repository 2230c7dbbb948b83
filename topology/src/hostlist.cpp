#include "haein/topology/hostlist.hpp"

#include <cctype>
#include <charconv>
#include <cstdio>
#include <optional>

#include "haein/common/error.hpp"

namespace haein::topology {

namespace {

struct Range {
  long long low = 0;
  long long high = 0;
  std::size_t width = 0;  // digits of the lower bound; numbers are zero-padded to it
};

bool all_digits(std::string_view text) {
  if (text.empty()) return false;
  for (char c : text) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

// Host numbers are counters: up to 15 digits, so that range arithmetic cannot overflow.
constexpr long long kMaxHostNumber = 999'999'999'999'999;

long long to_number(std::string_view digits, std::string_view whole) {
  long long value = 0;
  const auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (error != std::errc() || end != digits.data() + digits.size() || value > kMaxHostNumber) {
    throw InvalidArgument("host list '" + printable(std::string(whole), 80) + "': number '" +
                          std::string(digits) + "' is out of range");
  }
  return value;
}

std::vector<Range> parse_bracket(std::string_view body, std::string_view whole) {
  if (body.empty())
    throw InvalidArgument("host list '" + printable(std::string(whole), 80) + "': empty []");
  std::vector<Range> ranges;
  std::size_t start = 0;
  while (start <= body.size()) {
    const std::size_t comma = std::min(body.find(',', start), body.size());
    const std::string_view item = body.substr(start, comma - start);
    const std::size_t dash = item.find('-');
    const std::string_view low = item.substr(0, dash);
    const std::string_view high = dash == std::string_view::npos ? low : item.substr(dash + 1);
    if (!all_digits(low) || !all_digits(high)) {
      throw InvalidArgument("host list '" + printable(std::string(whole), 80) + "': '" +
                            std::string(item) + "' is not a number or a range A-B");
    }
    Range range{to_number(low, whole), to_number(high, whole), low.size()};
    if (range.high < range.low) {
      throw InvalidArgument("host list '" + printable(std::string(whole), 80) + "': range " +
                            std::string(item) + " is descending; write it as " + std::string(high) +
                            "-" + std::string(low));
    }
    ranges.push_back(range);
    start = comma + 1;
  }
  return ranges;
}

std::string pad(long long value, std::size_t width) {
  std::string digits = std::to_string(value);
  if (digits.size() < width) digits.insert(0, width - digits.size(), '0');
  return digits;
}

// Expands one comma-free item (it may hold several bracket groups) into `out`.
void expand_item(std::string_view item, std::string_view whole, std::vector<std::string>& out) {
  std::vector<std::string> partial{""};
  std::size_t pos = 0;
  while (pos < item.size()) {
    const std::size_t open = item.find('[', pos);
    const std::string_view literal = item.substr(pos, open - pos);
    if (literal.find(']') != std::string_view::npos) {
      throw InvalidArgument("host list '" + printable(std::string(whole), 80) +
                            "': ']' without '['");
    }
    for (std::string& prefix : partial) prefix.append(literal);
    if (open == std::string_view::npos) break;
    const std::size_t close = item.find(']', open);
    if (close == std::string_view::npos) {
      throw InvalidArgument("host list '" + printable(std::string(whole), 80) +
                            "': '[' is never closed");
    }
    const std::vector<Range> ranges = parse_bracket(item.substr(open + 1, close - open - 1), whole);
    // Counted without overflow: each range's size is at most 10^15, and the sum stops
    // growing once it is past the cap.
    std::size_t total = 0;
    for (const Range& r : ranges) {
      total += static_cast<std::size_t>(r.high - r.low + 1);
      if (total > kMaxHostlistSize) break;
    }
    if (total > kMaxHostlistSize || total > (kMaxHostlistSize - out.size()) / partial.size() ||
        total * partial.size() + out.size() > kMaxHostlistSize) {
      throw InvalidArgument("host list '" + printable(std::string(whole), 80) +
                            "' expands to more than " + std::to_string(kMaxHostlistSize) +
                            " names");
    }
    std::vector<std::string> next;
    next.reserve(partial.size() * total);
    for (const std::string& prefix : partial) {
      for (const Range& r : ranges) {
        for (long long v = r.low;; ++v) {
          next.push_back(prefix + pad(v, r.width));
          if (v == r.high) break;
        }
      }
    }
    partial = std::move(next);
    pos = close + 1;
  }
  for (std::string& name : partial) {
    if (name.empty())
      throw InvalidArgument("host list '" + printable(std::string(whole), 80) +
                            "' has an empty name");
    out.push_back(std::move(name));
  }
}

struct SplitName {
  std::string_view prefix;
  std::string_view digits;
  std::string_view suffix;
};

// Splits at the last run of digits: "b200-017" -> ("b200-", "017", "").
std::optional<SplitName> split_at_last_number(std::string_view name) {
  std::size_t end = name.size();
  while (end > 0 && !std::isdigit(static_cast<unsigned char>(name[end - 1]))) --end;
  if (end == 0) return std::nullopt;
  std::size_t begin = end;
  while (begin > 0 && std::isdigit(static_cast<unsigned char>(name[begin - 1]))) --begin;
  if (end - begin > 15) return std::nullopt;  // not a counter; keep the name as it is
  return SplitName{name.substr(0, begin), name.substr(begin, end - begin), name.substr(end)};
}

}  // namespace

std::vector<std::string> expand_hostlist(std::string_view text) {
  std::vector<std::string> names;
  std::size_t depth = 0;
  std::size_t start = 0;
  for (std::size_t i = 0; i <= text.size(); ++i) {
    const bool at_end = i == text.size();
    if (!at_end && text[i] == '[') ++depth;
    if (!at_end && text[i] == ']' && depth > 0) --depth;
    if (at_end || (text[i] == ',' && depth == 0)) {
      std::string_view item = text.substr(start, i - start);
      while (!item.empty() && std::isspace(static_cast<unsigned char>(item.front())))
        item.remove_prefix(1);
      while (!item.empty() && std::isspace(static_cast<unsigned char>(item.back())))
        item.remove_suffix(1);
      if (item.empty())
        throw InvalidArgument("host list '" + std::string(text) + "' has an empty entry");
      expand_item(item, text, names);
      start = i + 1;
    }
  }
  return names;
}

std::string hostname_problem(std::string_view name) {
  if (name.empty()) return "it is empty";
  if (name.size() > 253) return "it is longer than 253 characters";
  std::size_t start = 0;
  while (start <= name.size()) {
    std::size_t end = name.find('.', start);
    if (end == std::string_view::npos) end = name.size();
    const std::string_view label = name.substr(start, end - start);
    if (label.empty()) return "it has an empty label (\"..\", or a leading or trailing dot)";
    if (label.size() > 63) return "a label is longer than 63 characters";
    if (label.front() == '-' || label.back() == '-') return "a label starts or ends with '-'";
    for (char c : label) {
      const bool allowed = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                           (c >= '0' && c <= '9') || c == '-' || c == '_';
      if (!allowed) {
        const auto byte = static_cast<unsigned char>(c);
        if (byte >= 0x21 && byte < 0x7f) return std::string("it contains '") + c + "'";
        char code[8];
        std::snprintf(code, sizeof code, "0x%02x", byte);
        return std::string("it contains the byte ") + code;
      }
    }
    start = end + 1;
  }
  return {};
}

namespace {

// Merges runs of consecutive items whose split (by `split`) shares prefix, suffix and
// padding into one "prefix[ranges]suffix" item; items without a split stay as they are.
template <class Split>
std::vector<std::string> merge_runs(const std::vector<std::string>& items, Split split) {
  struct Group {
    std::string prefix, suffix;
    std::size_t width = 0;  // 0: numbers without leading zeros
    std::vector<Range> ranges;
  };
  std::vector<std::string> merged;
  std::optional<Group> group;
  auto flush = [&] {
    if (!group) return;
    const bool single = group->ranges.size() == 1 && group->ranges[0].low == group->ranges[0].high;
    std::string item = group->prefix;
    if (!single) item += '[';
    for (std::size_t i = 0; i < group->ranges.size(); ++i) {
      const Range& r = group->ranges[i];
      if (i > 0) item += ',';
      item += pad(r.low, group->width);
      if (r.high != r.low) item += '-' + pad(r.high, group->width);
    }
    if (!single) item += ']';
    item += group->suffix;
    merged.push_back(std::move(item));
    group.reset();
  };
  for (const std::string& item : items) {
    const std::optional<SplitName> parts = split(item);
    if (!parts) {
      flush();
      merged.push_back(item);
      continue;
    }
    const bool padded = parts->digits.size() > 1 && parts->digits.front() == '0';
    const long long value = to_number(parts->digits, item);
    const bool fits = group && group->prefix == parts->prefix && group->suffix == parts->suffix &&
                      (group->width == 0 ? !padded : parts->digits.size() == group->width);
    if (!fits) {
      flush();
      group = Group{std::string(parts->prefix),
                    std::string(parts->suffix),
                    padded ? parts->digits.size() : 0,
                    {}};
    }
    Range& last = group->ranges.empty() ? group->ranges.emplace_back(Range{value, value - 1, 0})
                                        : group->ranges.back();
    if (value == last.high + 1) {
      last.high = value;
    } else {
      group->ranges.push_back(Range{value, value, 0});
    }
  }
  flush();
  return merged;
}

// Splits a merged item at the number before its first range, or before its last number
// when it has no range: "r001t[01-18]" -> ("r", "001", "t[01-18]"), "su01-leaf-r0" ->
// ("su", "01", "-leaf-r0").
std::optional<SplitName> split_before_range(std::string_view item) {
  std::size_t end = item.find('[');
  if (end == std::string_view::npos) {
    const std::optional<SplitName> last = split_at_last_number(item);
    if (!last) return std::nullopt;
    end = last->prefix.size();
  }
  std::optional<SplitName> parts = split_at_last_number(item.substr(0, end));
  if (parts) parts->suffix = item.substr(parts->prefix.size() + parts->digits.size());
  return parts;
}

}  // namespace

std::string compress_hostlist(const std::vector<std::string>& hostnames, HostlistRanges ranges) {
  // Runs of the last number first ("r001t01".."r001t18" -> "r001t[01-18]"), then runs of
  // the number before it among items with equal rest ("r[001-002]t[01-18]").
  // Each item expands in place, outer range first, so the order of the names is kept.
  const auto split_again = [ranges](std::string_view item) -> std::optional<SplitName> {
    if (ranges == HostlistRanges::kOne && item.find('[') != std::string_view::npos) return {};
    return split_before_range(item);
  };
  const std::vector<std::string> merged =
      merge_runs(merge_runs(hostnames, split_at_last_number), split_again);
  std::string result;
  for (const std::string& item : merged) {
    if (!result.empty()) result += ',';
    result += item;
  }
  return result;
}

/// CPUs of one list, and the highest CPU number (Linux builds for at most 8192 CPUs).
constexpr std::size_t kMaxCpus = 65536;
constexpr int kMaxCpuNumber = 65535;

std::vector<int> parse_cpu_list(std::string_view text) {
  std::vector<int> cpus;
  if (text.empty()) return cpus;
  std::size_t start = 0;
  while (start <= text.size()) {
    const std::size_t comma = std::min(text.find(',', start), text.size());
    std::string_view item = text.substr(start, comma - start);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    const std::size_t dash = item.find('-');
    const std::string_view low = item.substr(0, dash);
    const std::string_view high = dash == std::string_view::npos ? low : item.substr(dash + 1);
    if (!all_digits(low) || !all_digits(high) || low.size() > 7 || high.size() > 7) {
      throw InvalidArgument("CPU list '" + std::string(text) + "': '" + std::string(item) +
                            "' is not a CPU number or a range A-B");
    }
    const int lo = static_cast<int>(to_number(low, text));
    const int hi = static_cast<int>(to_number(high, text));
    if (hi < lo) {
      throw InvalidArgument("CPU list '" + std::string(text) + "': range " + std::string(item) +
                            " is descending");
    }
    if (hi > kMaxCpuNumber || cpus.size() + static_cast<std::size_t>(hi - lo) >= kMaxCpus) {
      throw InvalidArgument(
          "CPU list '" + printable(std::string(text), 80) + "': " +
          (hi > kMaxCpuNumber
               ? "CPU " + std::to_string(hi) + " is past " + std::to_string(kMaxCpuNumber)
               : "more than " + std::to_string(kMaxCpus) + " CPUs") +
          " (a node has at most " + std::to_string(kMaxCpus) + ")");
    }
    for (int cpu = lo; cpu <= hi; ++cpu) cpus.push_back(cpu);
    start = comma + 1;
  }
  return cpus;
}

std::string format_cpu_list(const std::vector<int>& cpus) {
  std::string text;
  for (std::size_t i = 0; i < cpus.size();) {
    std::size_t j = i;
    while (j + 1 < cpus.size() && cpus[j + 1] == cpus[j] + 1) ++j;
    if (!text.empty()) text += ',';
    text += std::to_string(cpus[i]);
    if (j > i) text += '-' + std::to_string(cpus[j]);
    i = j + 1;
  }
  return text;
}

}  // namespace haein::topology
