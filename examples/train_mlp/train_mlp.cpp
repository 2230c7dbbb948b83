// train_mlp: data-parallel training of an MLP classifier on a synthetic task, the way a
// DDP trainer does it. Each rank takes its slice of every global batch; backward hands each
// layer's gradients to the GradBucketer as they become final; SGD with momentum follows.
// Checkpoints in parallel HDF5 every N steps, resumed automatically; the ranks' parameters
// are compared every K steps; loss, accuracy and throughput per step; a loss CSV (and PNG
// through scripts/plot), the runtime's timeline and a summary JSON at the end.
//
//   haein run -n 4 --oversubscribe --backend mpirun -- train_mlp --steps 300 --out run1
//
// The loop below is the whole recipe; its collaborators are next to this file: the
// replica (host or GPU), the checkpointer, the replica check, the metrics sink and the
// fault injector the tests use.
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "checkpointer.hpp"
#include "dataset.hpp"
#include "fault_injector.hpp"
#include "haein/common/cli.hpp"
#include "haein/common/error.hpp"
#include "haein/common/settings.hpp"
#include "haein/runtime/bootstrap.hpp"
#include "haein/runtime/communicator.hpp"
#include "haein/runtime/grad_bucketer.hpp"
#include "haein/runtime/heartbeat.hpp"
#include "haein/runtime/rank_environment.hpp"
#include "haein/runtime/shared_folder.hpp"
#include "metrics_sink.hpp"
#include "replica.hpp"
#include "replica_check.hpp"
#include "train_options.hpp"

namespace fs = std::filesystem;

using haein::InvalidArgument;
using namespace haein::examples;
using namespace haein::runtime;

namespace {

/// The world communicator, its timeline in --out, after making the output folders and
/// checking that every rank sees them: every rank writes the checkpoints (parallel HDF5)
/// and rank 0 the rest, so a folder private to each host would split them.
Communicator open_world(const TrainOptions& o) {
  CommunicatorOptions options = CommunicatorOptions::from_environment();
  std::error_code ec;
  fs::create_directories(o.out, ec);
  fs::create_directories(o.checkpoint_dir, ec);
  if (!fs::is_directory(o.out) || !fs::is_directory(o.checkpoint_dir))
    throw InvalidArgument("cannot create the output directories " + o.out + " and " +
                          o.checkpoint_dir);
  if (options.timeline_file.empty())
    options.timeline_file = (fs::path(o.out) / "timeline.json").string();
  Communicator comm = Communicator::world(options);
  require_shared_folder(comm, o.out, "the output folder (--out)");
  require_shared_folder(comm, o.checkpoint_dir, "the checkpoint folder");
  return comm;
}

std::size_t local_batch_size(const TrainOptions& o, int ranks) {
  if (o.global_batch % static_cast<std::size_t>(ranks) != 0)
    throw InvalidArgument("--global-batch " + std::to_string(o.global_batch) +
                          " is not a multiple of the " + std::to_string(ranks) + " ranks");
  return o.global_batch / static_cast<std::size_t>(ranks);
}

/// Fixed pieces and bucket order: the same reductions in the same order on every run, so
/// that a resumed run is bitwise identical to an uninterrupted one.
BucketerOptions bucket_options(const TrainOptions& o, Replica& replica) {
  BucketerOptions options;
  options.bucket_cap_mb = o.bucket_cap_mb;
  options.first_bucket_cap_mb = std::min(o.bucket_cap_mb, 0.02);
  options.host_chunk_mb = 4;
  options.rebuild_buckets = false;
  if (o.wire != "f32") options.wire_type = parse_data_type(o.wire);
  options.stream = replica.stream();
  return options;
}

/// Every tensor's gradient, in model order, where the replica's layers write it.
void register_gradients(GradBucketer& bucketer, Replica& replica) {
  const std::vector<ParameterTensor>& tensors = replica.model().tensors();
  for (std::size_t t = 0; t < tensors.size(); ++t)
    bucketer.register_parameter(tensors[t].name, replica.gradient(t), tensors[t].gradient.size(),
                                DataType::kF32);
}

/// The features and labels of `count` samples from `indices`.
struct Batch {
  std::vector<float> x;
  std::vector<int> labels;

  void fill(const SyntheticDataset& data, const std::uint64_t* indices, std::size_t count) {
    const std::size_t features = data.shape().features;
    x.resize(count * features);
    labels.resize(count);
    for (std::size_t i = 0; i < count; ++i) labels[i] = data.sample(indices[i], &x[i * features]);
  }
};

/// The test set, split over the ranks; sums over all ranks.
Evaluation evaluate(Replica& replica, const SyntheticDataset& data, std::uint64_t samples,
                    Communicator& comm) {
  const std::uint64_t begin = samples * comm.rank() / comm.size();
  const std::uint64_t end = samples * (comm.rank() + 1) / comm.size();
  double sums[2] = {0, 0};
  std::vector<std::uint64_t> indices;
  Batch batch;
  constexpr std::uint64_t kChunk = 512;
  for (std::uint64_t first = begin; first < end; first += kChunk) {
    indices.clear();
    for (std::uint64_t i = first; i < std::min(end, first + kChunk); ++i)
      indices.push_back(SyntheticDataset::kTestBase + i);
    batch.fill(data, indices.data(), indices.size());
    const BatchResult r = replica.evaluate(batch.x.data(), batch.labels.data(), indices.size());
    sums[0] += r.loss_sum;
    sums[1] += static_cast<double>(r.correct);
  }
  comm.all_reduce(sums, sums, 2, DataType::kF64, ReduceOp::kSum);
  return {sums[0] / static_cast<double>(samples), sums[1] / static_cast<double>(samples)};
}

/// One data-parallel step on this rank's slice of the batch: forward, backward with each
/// layer's gradients handed to the bucketer as they become final, the averaged gradients,
/// SGD. Returns the loss and accuracy over all ranks.
StepRecord train_step(Replica& replica, GradBucketer& bucketer, const Batch& batch,
                      const TrainOptions& o, Communicator& comm) {
  const std::size_t local_batch = batch.labels.size();
  bucketer.begin_step();
  const auto layer_done = [&](std::size_t layer) {
    // Reverse registration order, as autograd produces them.
    bucketer.mark_ready(2 * layer + 1);
    bucketer.mark_ready(2 * layer);
  };
  const BatchResult result = replica.train_batch(batch.x.data(), batch.labels.data(), local_batch,
                                                 static_cast<double>(local_batch), layer_done);
  bucketer.finish();
  replica.sgd_step(o.learning_rate, o.momentum);
  double sums[2] = {result.loss_sum, static_cast<double>(result.correct)};
  comm.all_reduce(sums, sums, 2, DataType::kF64, ReduceOp::kSum);
  StepRecord record;
  record.loss = sums[0] / static_cast<double>(o.global_batch);
  record.accuracy = sums[1] / static_cast<double>(o.global_batch);
  return record;
}

std::string start_line(const TrainOptions& o, int ranks, const Mlp& model, const Replica& replica) {
  std::ostringstream line;
  line << "train_mlp: " << ranks << " ranks, " << model.parameter_count() << " parameters (layers";
  for (std::size_t s : model.sizes()) line << " " << s;
  line << "), global batch " << o.global_batch << " (" << o.global_batch / ranks << " per rank), "
       << o.steps << " steps, restart " << haein::settings::kRestartCount.get() << ", "
       << replica.where();
  return line.str();
}

int train(const TrainOptions& o) {
  Communicator comm = open_world(o);
  Checkpointer checkpointer(o.checkpoint_dir, o.checkpoint_every, o.keep_checkpoints, comm);
  const std::size_t local_batch = local_batch_size(o, comm.size());
  const SyntheticDataset data(o.data, o.seed);
  Sampler sampler(o.train_samples, o.seed);

  // The model: initial weights, or the newest checkpoint's; the same on every rank.
  Mlp initial(layer_sizes(o), o.seed);
  TrainState state{.step = 0, .cursor = sampler.cursor(), .seed = o.seed};
  if (auto resumed = checkpointer.resume(initial, o.seed)) {
    state = *resumed;
    sampler.restore(state.cursor);
  }
  const ReplicaCheck check_replicas(o.check_every, comm);
  check_replicas(initial, state.step);
  std::unique_ptr<Replica> replica = make_replica(
      std::move(initial), o.device, comm.rank(), [] { return read_rank_environment().local_rank; });

  GradBucketer bucketer(comm, bucket_options(o, *replica));
  register_gradients(bucketer, *replica);
  Heartbeat heartbeat = Heartbeat::from_environment();
  MetricsSink metrics(o.out, comm.rank() == 0, state.step, o.steps, o.log_every, o.global_batch,
                      o.plot ? HAEIN_PLOT_SCRIPT : "");
  metrics.announce(start_line(o, comm.size(), replica->model(), *replica));
  const FaultInjector faults(o.faults, comm.rank());

  Batch batch;
  Evaluation test{0, -1};
  std::uint64_t tested_at = 0;
  bool reached_target = false;
  while (state.step < o.steps && !reached_target) {
    const auto started = std::chrono::steady_clock::now();
    const std::vector<std::uint64_t> indices = sampler.next_batch(o.global_batch);
    batch.fill(data, indices.data() + local_batch * static_cast<std::size_t>(comm.rank()),
               local_batch);
    StepRecord record = train_step(*replica, bucketer, batch, o, comm);
    record.step = ++state.step;
    record.seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    state.cursor = sampler.cursor();
    heartbeat.beat();

    faults.perturb(state.step, *replica);
    const bool last_step = state.step == o.steps;
    if (check_replicas.due(state.step, last_step)) check_replicas(replica->model(), state.step);
    if ((o.eval_every != 0 && state.step % o.eval_every == 0) || last_step) {
      record.test = test = evaluate(*replica, data, o.test_samples, comm);
      tested_at = state.step;
      reached_target = o.target_accuracy > 0 && test.accuracy >= o.target_accuracy;
    }
    metrics.record(record);
    if (checkpointer.due(state.step, last_step || reached_target))
      checkpointer.save(state, replica->model());
    faults.kill(state.step);
  }
  if (tested_at != state.step) test = evaluate(*replica, data, o.test_samples, comm);
  check_replicas(replica->model(), state.step);
  metrics.finish({.step = state.step,
                  .ranks = comm.size(),
                  .test = test,
                  .parameter_checksum = parameter_checksum(replica->model()),
                  .reached_target = reached_target,
                  .target_accuracy = o.target_accuracy,
                  .buckets = bucketer.buckets().size(),
                  .bucket_cap_mb = o.bucket_cap_mb,
                  .wire = o.wire,
                  .checkpoint = checkpointer.path(state.step),
                  .timeline = comm.options().timeline_file});
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return train(parse_options(argc, argv));
  } catch (const haein::HelpShown&) {
    return 0;
  } catch (const std::exception& error) {
    std::cerr << "train_mlp: error: " << error.what() << std::endl;
    const int code = static_cast<int>(haein::exit_code_for(error));
    // Ranks that did not fail may be waiting for this one: end the job, do not finalise.
    haein::runtime::abort_job_on_error(code);
    return code;
  }
}
