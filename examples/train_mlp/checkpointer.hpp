#pragma once
// When and where the trainer checkpoints (the format is checkpoint.hpp's): resumes from the
// newest intact checkpoint, writes one every N steps and at the last, keeps the newest few.
// Reads and writes run inside the communicator's watched sections: parallel HDF5 waits
// without a timeout inside MPI-IO.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "checkpoint.hpp"
#include "haein/runtime/communicator.hpp"

namespace haein::examples {

class Checkpointer {
 public:
  /// Throws InvalidArgument for `keep` 0 (it would delete the checkpoint just written).
  Checkpointer(std::string dir, std::uint64_t every, std::size_t keep, runtime::Communicator& comm);

  /// Collective: loads the newest checkpoint every rank reads intact into `model`, checks
  /// that it was made with `seed`, and says which (rank 0). Nothing when there is none.
  std::optional<TrainState> resume(Mlp& model, std::uint64_t seed);
  /// True when `step` gets a checkpoint: every `every` steps, and the last.
  bool due(std::uint64_t step, bool last) const;
  /// Collective: writes the checkpoint of `state`, then prunes the older ones (rank 0).
  void save(const TrainState& state, const Mlp& model);
  /// The file of `step`'s checkpoint.
  std::string path(std::uint64_t step) const { return checkpoint_path(dir_, step); }

 private:
  std::string dir_;
  std::uint64_t every_;
  std::size_t keep_;
  runtime::Communicator& comm_;
};

}  // namespace haein::examples
