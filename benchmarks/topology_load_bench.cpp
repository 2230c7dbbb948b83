// Load + validate time of large clusters (issue target: 4,096 nodes x 8 GPUs in < 1 s).
// Two encodings of the same cluster: templated YAML (as people write it) and per-host
// JSON (every host on its own, as `haein topo convert --to json` writes it). The baseline is
// the time to read the file's bytes, the least any loader must spend.
#include <benchmark/benchmark.h>

#include <fstream>
#include <sstream>
#include <string>

#include "generated_cluster.hpp"
#include "haein/topology/formats.hpp"
#include "haein/topology/validate.hpp"

namespace {

using namespace haein::topology;

std::string write_temp(const std::string& name, const std::string& text) {
  const std::string path = "/tmp/haein-bench-" + name;
  std::ofstream(path) << text;
  return path;
}

void BM_ReadBytes(benchmark::State& state, const std::string& path) {
  for (auto _ : state) {
    std::ifstream in(path);
    std::ostringstream text;
    text << in.rdbuf();
    benchmark::DoNotOptimize(text.str().size());
  }
}

void BM_LoadAndValidate(benchmark::State& state, const std::string& path) {
  std::size_t gpus = 0;
  for (auto _ : state) {
    const Cluster cluster = load_cluster(path);  // parse + validate
    gpus = static_cast<std::size_t>(cluster.gpu_count());
  }
  state.counters["gpus"] = static_cast<double>(gpus);
}

}  // namespace

int main(int argc, char** argv) {
  const std::string yaml_text = haein::bench::generated_yaml(4096);
  const std::string yaml = write_temp("4096.yaml", yaml_text);
  const std::string json =
      write_temp("4096.json", write_cluster_json(read_cluster_yaml(yaml_text, "generated")));
  for (const auto& [label, path] :
       {std::pair{"yaml_templated", yaml}, std::pair{"json_per_host", json}}) {
    benchmark::RegisterBenchmark((std::string("read_bytes/4096_nodes/") + label).c_str(),
                                 BM_ReadBytes, path)
        ->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark((std::string("load_and_validate/4096_nodes/") + label).c_str(),
                                 BM_LoadAndValidate, path)
        ->Unit(benchmark::kMillisecond)
        ->Repetitions(5)
        ->ReportAggregatesOnly(true);
  }
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
