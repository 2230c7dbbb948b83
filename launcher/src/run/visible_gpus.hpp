#pragma once
// CUDA_VISIBLE_DEVICES as haein run reads it for the node it discovers itself.

#include <ostream>

#include "haein/topology/model.hpp"

namespace haein::launcher::detail {

/// Keeps the GPUs of `node` that `listed` (CUDA_VISIBLE_DEVICES; nullptr when unset) names
/// by index, as a program started here would see them: torchrun and mpirun users restrict
/// a shared machine that way. An empty list keeps none (ranks run on CPUs); as in CUDA,
/// the list ends at a negative entry ("-1" hides every GPU). A node without GPUs is left
/// alone. Throws InvalidArgument for an entry that is not an index of this node's GPUs
/// (UUIDs included) or is listed twice; says on `err` when GPUs were left out.
void keep_visible_gpus(topology::Node& node, const char* listed, std::ostream& err);

}  // namespace haein::launcher::detail
