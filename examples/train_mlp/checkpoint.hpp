#pragma once
// Training checkpoints in HDF5. A checkpoint holds the parameters, the optimizer's momentum,
// the step, and the data cursor (the shuffle generator's state, epoch and position), each
// dataset and the scalar state with a checksum. Ranks write it together through parallel
// HDF5 (each rank one slice of every tensor), to a temporary name that is renamed once the
// file is complete, so a crash never leaves a half-written file under a checkpoint's name.
// Loading takes the newest checkpoint that reads back whole and matches its checksums; a
// damaged one is reported and skipped.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "dataset.hpp"
#include "haein/runtime/communicator.hpp"
#include "mlp.hpp"

namespace haein::examples {

/// A 64-bit hash of bytes (not cryptographic): what checkpoints and the cross-rank
/// parameter check compare.
std::uint64_t checksum(const void* data, std::size_t bytes, std::uint64_t seed = 0);
/// Of every tensor's values, in order.
std::uint64_t parameter_checksum(const Mlp& model);

struct TrainState {
  std::uint64_t step = 0;  ///< optimizer steps completed
  DataCursor cursor;
  std::uint64_t seed = 0;
};

/// "DIR/ckpt-step-00000050.h5".
std::string checkpoint_path(const std::string& dir, std::uint64_t step);

/// Writes the checkpoint of `step`. Collective over `comm` (an MPI world communicator):
/// every rank calls it with the same model and state.
void write_checkpoint(const std::string& dir, const TrainState& state, const Mlp& model,
                      runtime::Communicator& comm);

/// Reads one checkpoint into `model` and returns its state. Throws InvalidArgument when it
/// holds another model (layer sizes), Error when it is damaged (unreadable, truncated,
/// checksum mismatch).
TrainState read_checkpoint(const std::string& path, Mlp& model);

/// Checkpoint files in `dir`, newest first.
std::vector<std::string> list_checkpoints(const std::string& dir);

/// Loads the newest checkpoint that every rank reads back intact. A damaged one is named
/// in a warning on rank 0 and the one before it is tried; one of another model is an
/// InvalidArgument on every rank. Collective.
std::optional<TrainState> load_latest_checkpoint(const std::string& dir, Mlp& model,
                                                 runtime::Communicator& comm);

/// Keeps the checkpoint of `step` (just written) and the `keep` - 1 before it, and removes
/// older ones and stale temporary files (rank 0 only). Files named after later steps are
/// not counted: they were skipped as damaged when this run resumed, or belong to another
/// run, and must not push out the checkpoint just written (they are left as they are).
void prune_checkpoints(const std::string& dir, std::size_t keep, std::uint64_t step);

}  // namespace haein::examples
