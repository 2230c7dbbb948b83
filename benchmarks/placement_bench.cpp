// Time and memory of `haein plan`'s placement (issue targets: 1,024 GPUs on the haein
// preset with 30% busy nodes in < 50 ms; 32,768 GPUs on a generated 4,096-node cluster
// in < 2 s; memory < 1 GiB). The haein preset has exactly 1,024 GPUs, so with 30% of its
// nodes busy the largest request it can serve is every free GPU; both that and 1,024 GPUs
// on the idle preset are timed. Baseline in the same run: the naive map-by-slot order over
// the same nodes, which does no selection at all.
#include <benchmark/benchmark.h>
#include <sys/resource.h>

#include <random>

#include "generated_cluster.hpp"
#include "haein/launcher/placement.hpp"
#include "haein/launcher/plan.hpp"
#include "haein/topology/formats.hpp"
#include "haein/topology/presets.hpp"

namespace {

using namespace haein;

launcher::BusySet busy_fraction(const topology::Cluster& cluster, double fraction, unsigned seed) {
  std::mt19937 rng(seed);
  launcher::BusySet busy(cluster.nodes.size());
  for (std::size_t i = 0; i < busy.size(); ++i)
    busy[i] = std::bernoulli_distribution(fraction)(rng);
  return busy;
}

int free_gpus(const topology::Cluster& cluster, const launcher::BusySet& busy) {
  int count = 0;
  for (std::size_t i = 0; i < busy.size(); ++i) {
    if (!busy[i]) count += static_cast<int>(cluster.nodes[i].hardware.gpus.size());
  }
  return count;
}

const topology::Cluster& haein_preset() {
  static const topology::Cluster cluster = topology::load_preset("haein");
  return cluster;
}

const topology::Cluster& generated() {
  static const topology::Cluster cluster = topology::parse_cluster(
      bench::generated_yaml(4096), topology::Format::kYaml, "generated-4096.yaml");
  return cluster;
}

void run_plan(benchmark::State& state, const topology::Cluster& cluster, double busy_share,
              int gpus, bool naive, bool explain) {
  const topology::FabricIndex fabric(cluster);
  const launcher::BusySet busy = busy_fraction(cluster, busy_share, 42);
  launcher::PlacementRequest request;
  request.gpus = gpus > 0 ? gpus : free_gpus(cluster, busy);
  const topology::CostModel model(cluster);
  for (auto _ : state) {
    const launcher::Placement placement =
        naive ? launcher::naive_placement(fabric, busy, request, launcher::NaiveOrder::kMapBySlot)
              : launcher::plan_placement(fabric, busy, request);
    if (explain) benchmark::DoNotOptimize(launcher::measure(model, placement, "haein"));
    benchmark::DoNotOptimize(placement.ranks.data());
  }
  state.counters["gpus"] = request.gpus;
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  state.counters["max_rss_MiB"] = usage.ru_maxrss / 1024.0;
}

}  // namespace

BENCHMARK_CAPTURE(run_plan, haein_idle_1024, haein_preset(), 0.0, 1024, false, false)
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(run_plan, haein_30busy_all_free, haein_preset(), 0.3, 0, false, false)
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(run_plan, haein_30busy_512, haein_preset(), 0.3, 512, false, false)
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(run_plan, haein_30busy_all_free_naive, haein_preset(), 0.3, 0, true, false)
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(run_plan, haein_30busy_all_free_explain, haein_preset(), 0.3, 0, false, true)
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(run_plan, generated4096_idle_32768, generated(), 0.0, 32768, false, false)
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(run_plan, generated4096_30busy_16384, generated(), 0.3, 16384, false, false)
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(run_plan, generated4096_idle_32768_naive, generated(), 0.0, 32768, true, false)
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(run_plan, generated4096_idle_32768_explain, generated(), 0.0, 32768, false, true)
    ->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
