#pragma once
/// @file
/// Slurm-style host lists ("dev[0-5,9]", "b200-[001-128]", "r[1-2]-n[01-04]") and Linux
/// CPU lists ("0-55,112-167").

#include <string>
#include <string_view>
#include <vector>

namespace haein::topology {

/// Expands a host list in order. Zero padding follows the lower bound ("[001-128]" →
/// "001".."128"). Throws InvalidArgument for a descending range ("n[5-2]"), an unclosed or
/// empty bracket, a non-numeric bound, or more than kMaxHostlistSize names.
std::vector<std::string> expand_hostlist(std::string_view text);

/// How many bracketed ranges one item of a written host list may hold: kOne for readers
/// that take one ("tux[1-4]", "su[01-16]-leaf-r0"), as Slurm documents its syntax; kMany
/// for haein's own files and messages ("r[001-694]t[01-18]").
enum class HostlistRanges { kOne, kMany };

/// The shortest host list this writer knows that expands back to the same names in the
/// same order: runs of consecutive numbers sharing prefix, suffix and padding are merged,
/// then runs of an earlier number among merged items with the same rest
/// ("su[01-16]-leaf-r0"; with kMany also "r[001-694]t[01-18]").
std::string compress_hostlist(const std::vector<std::string>& hostnames,
                              HostlistRanges ranges = HostlistRanges::kMany);

inline constexpr std::size_t kMaxHostlistSize = 1'000'000;

/// Why `name` is not a hostname, or "" when it is one: dot-separated labels of letters,
/// digits, '-' and '_' (RFC 1123, with the underscore some sites use), none empty, none
/// starting or ending with '-', at most 63 characters each and 253 in all. Host names end
/// up in file names (NCCL topology files), rankfile and hostfile lines and command lines:
/// '/', "..", spaces or a newline must not get that far.
std::string hostname_problem(std::string_view name);

/// Parses "0-3,8,10-11" into CPU numbers in the given order. Throws InvalidArgument.
std::vector<int> parse_cpu_list(std::string_view text);
/// Formats CPU numbers as ranges ("0-55,112-167").
std::string format_cpu_list(const std::vector<int>& cpus);

}  // namespace haein::topology
