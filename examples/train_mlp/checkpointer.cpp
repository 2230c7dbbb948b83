#include "checkpointer.hpp"

#include <iostream>

#include "haein/common/error.hpp"

namespace haein::examples {

Checkpointer::Checkpointer(std::string dir, std::uint64_t every, std::size_t keep,
                           runtime::Communicator& comm)
    : dir_(std::move(dir)), every_(every), keep_(keep), comm_(comm) {
  if (keep_ == 0)
    throw InvalidArgument(
        "--keep-checkpoints 0 would delete every checkpoint, the one just written too; keep at "
        "least 1");
}

std::optional<TrainState> Checkpointer::resume(Mlp& model, std::uint64_t seed) {
  std::optional<TrainState> state;
  {
    const auto watched = comm_.watch_section("checkpoint read");
    state = load_latest_checkpoint(dir_, model, comm_);
  }
  if (!state) return state;
  if (state->seed != seed)
    throw InvalidArgument("the checkpoints in " + dir_ + " were made with --seed " +
                          std::to_string(state->seed));
  if (comm_.rank() == 0)
    std::cout << "resumed from " << path(state->step) << " (step " << state->step << ", epoch "
              << state->cursor.epoch << ")" << std::endl;
  return state;
}

bool Checkpointer::due(std::uint64_t step, bool last) const {
  return (every_ != 0 && step % every_ == 0) || last;
}

void Checkpointer::save(const TrainState& state, const Mlp& model) {
  {
    const auto watched = comm_.watch_section("checkpoint write");
    write_checkpoint(dir_, state, model, comm_);
  }
  if (comm_.rank() == 0) prune_checkpoints(dir_, keep_, state.step);
}

}  // namespace haein::examples
