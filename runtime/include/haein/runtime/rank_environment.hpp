#pragma once
/// @file
/// The launcher/runtime environment contract, as the runtime's API names it: the one
/// reader lives in common (haein/common/rank_environment.hpp), shared with haein exec-rank
/// and the log prefixes.

#include "haein/common/rank_environment.hpp"

namespace haein::runtime {

using haein::RankEnvironment;
using haein::read_rank_environment;

}  // namespace haein::runtime
