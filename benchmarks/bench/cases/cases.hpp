#pragma once
// The six cases of haein-bench collective, one file each; collective_case.cpp lists them.
#include "collective_case.hpp"

namespace haein::bench {

const CollectiveCase& all_reduce_case();
const CollectiveCase& reduce_scatter_case();
const CollectiveCase& all_gather_case();
const CollectiveCase& broadcast_case();
const CollectiveCase& reduce_case();
const CollectiveCase& all_to_all_case();

}  // namespace haein::bench
