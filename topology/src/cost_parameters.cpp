// The cost model's calibration constants: names, defaults, ranges, and the overrides a
// cluster file carries. Where each default comes from: docs/cost-model.md.
#include <cmath>

#include "haein/common/error.hpp"
#include "haein/topology/cost_model.hpp"

namespace haein::topology {

namespace {

using P = CostParam;
constexpr CostParamKind T = CostParamKind::kTime;

// Latency defaults are NCCL's tuning constants (src/graph/tuning.cc, NCCL 2.18-2.19) where
// NCCL has one; the others and the efficiencies are fitted to the published points.
constexpr CostParamInfo kTable[] = {
    {P::kLaunchUs, "launch_us", 0.0, 0, 50,
     "per call: launch and completion as nccl-tests times it", T},
    {P::kRingBaseLlUs, "ring_base_ll_us", 6.858, 0, 100, "ring, LL: fixed latency", T},
    {P::kRingBaseLl128Us, "ring_base_ll128_us", 13.5, 0, 100, "ring, LL128: fixed latency", T},
    {P::kRingBaseSimpleUs, "ring_base_simple_us", 8.4, 0, 1000, "ring, Simple: fixed latency", T},
    {P::kTreeBaseLlUs, "tree_base_ll_us", 11.11, 0, 100, "tree, LL: fixed latency", T},
    {P::kTreeBaseLl128Us, "tree_base_ll128_us", 7.99, 0, 100, "tree, LL128: fixed latency", T},
    {P::kTreeBaseSimpleUs, "tree_base_simple_us", 0.0, 0, 1000, "tree, Simple: fixed latency", T},
    {P::kNvlinkStepLlUs, "nvlink_step_ll_us", 0.4862, 0, 50, "ring step over NVLink, LL", T},
    {P::kNvlinkStepLl128Us, "nvlink_step_ll128_us", 1.71, 0, 50, "ring step over NVLink, LL128", T},
    {P::kNvlinkStepSimpleUs, "nvlink_step_simple_us", 2.55, 0, 100, "ring step over NVLink, Simple",
     T},
    {P::kPcieStepLlUs, "pcie_step_ll_us", 1.0, 0, 50, "ring step over PCIe, LL", T},
    {P::kPcieStepLl128Us, "pcie_step_ll128_us", 2.5, 0, 50, "ring step over PCIe, LL128", T},
    {P::kPcieStepSimpleUs, "pcie_step_simple_us", 5.7, 0, 100, "ring step over PCIe, Simple", T},
    {P::kNetStepLlUs, "net_step_ll_us", 2.12, 0, 100, "ring step over the network, LL", T},
    {P::kNetStepLl128Us, "net_step_ll128_us", 8.74, 0, 100, "ring step over the network, LL128", T},
    {P::kNetStepSimpleUs, "net_step_simple_us", 16.1, 0, 1000, "ring step over the network, Simple",
     T},
    {P::kTreeNvlinkStepLlUs, "tree_nvlink_step_ll_us", 0.2509, 0, 50, "tree chain step, LL", T},
    {P::kTreeNvlinkStepLl128Us, "tree_nvlink_step_ll128_us", 1.38, 0, 50, "tree chain step, LL128",
     T},
    {P::kTreeNvlinkStepSimpleUs, "tree_nvlink_step_simple_us", 28.6, 0, 1000,
     "tree chain step, Simple (one 256 KiB chunk)", T},
    {P::kTreeNetStepLlUs, "tree_net_step_ll_us", 4.424, 0, 100, "tree level over the network, LL",
     T},
    {P::kTreeNetStepLl128Us, "tree_net_step_ll128_us", 23.58, 0, 100,
     "tree level over the network, LL128", T},
    {P::kTreeNetStepSimpleUs, "tree_net_step_simple_us", 28.2, 0, 1000,
     "tree level over the network, Simple", T},
    {P::kNvlsBaseUs, "nvls_base_us", 21.1, 0, 5000, "NVLS: fixed latency", T},
    {P::kNvlsPerGpuUs, "nvls_per_gpu_us", 0.88, 0, 100, "NVLS: latency per GPU of the domain", T},
    {P::kNvlsTreeNetStepUs, "nvls_tree_net_step_us", 63.3, 0, 1000,
     "NVLS tree: latency per tree level over the network", T},
    {P::kHopperRingEfficiency, "hopper_ring_efficiency", 0.81, 0.1, 1,
     "ring bus bandwidth / NVLink rate per direction, Hopper"},
    {P::kBlackwellRingEfficiency, "blackwell_ring_efficiency", 0.768, 0.1, 1,
     "ring bus bandwidth / NVLink rate per direction, Blackwell"},
    {P::kOtherRingEfficiency, "other_ring_efficiency", 0.8, 0.1, 1,
     "ring bus bandwidth / NVLink rate per direction, older GPUs"},
    {P::kHopperNvlsEfficiency, "hopper_nvls_efficiency", 0.5372, 0.1, 1,
     "NVLS all-reduce bus bandwidth / twice the NVLink rate, Hopper"},
    {P::kBlackwellNvlsEfficiency, "blackwell_nvls_efficiency", 0.5032, 0.1, 1,
     "NVLS all-reduce bus bandwidth / twice the NVLink rate, Blackwell"},
    {P::kNvlsTreeEfficiency, "nvls_tree_efficiency", 0.921, 0.1, 1,
     "share of a domain's NVLS bandwidth left while its tree runs"},
    {P::kNetEfficiency, "net_efficiency", 0.9283, 0.1, 1, "share of the NIC line rate reached"},
    {P::kNetChannelsPerDomain, "net_channels_per_domain", 20.73, 1, 1024,
     "most NICs of one NVLink domain a collective drives at once"},
    {P::kLlShare, "ll_share", 0.4985, 0.05, 1, "LL's share of the link bandwidth"},
    {P::kLlMaxOneDomainGbs, "ll_max_one_domain_gbs", 181.7, 1, 10000,
     "LL bus bandwidth cap inside one NVLink domain"},
    {P::kLlMaxNetGbs, "ll_max_net_gbs", 45.49, 1, 10000, "LL bus bandwidth cap across domains"},
    {P::kLl128Share, "ll128_share", 0.772, 0.1, 1, "LL128's share of the link bandwidth"},
    {P::kPcieGbs, "pcie_gbs", 24.0, 1, 1000, "GPU-to-GPU PCIe bandwidth, GB/s"},
    {P::kNvlsRampUsPerSqrtMib, "nvls_ramp_us_per_sqrt_mib", 6.48, 0, 1000,
     "NVLS and NVLS tree: pipeline ramp, us per square root of the MiB moved", T},
    {P::kRampUsPerSqrtMib, "ramp_us_per_sqrt_mib", 0.864, 0, 1000,
     "ring and tree, Simple: pipeline ramp, us per square root of the MiB moved", T},
    {P::kTreeLl128DepthLoss, "tree_ll128_depth_loss", 0.137, 0, 1,
     "tree, LL128: share of bandwidth lost per tree level beyond the first"},
    {P::kNvlsMultiNodeUs, "nvls_multi_node_us", 500, 0, 10000,
     "NVLS over a multi-node NVLink domain: added latency", T},
    {P::kTreeLl128MaxGbs, "tree_ll128_max_gbs", 282.2, 1, 10000,
     "tree, LL128: algorithm bandwidth cap (NCCL: 36.7 GB/s per channel x 16 channels / 2)"},
    {P::kLlUsPerDoubling, "ll_us_per_doubling", 0.3897, 0, 10,
     "LL: latency added per doubling of the message past 8 bytes (NCCL starts more threads "
     "and channels as a message grows)",
     T},
    {P::kLlNetUsPerDoubling, "ll_net_us_per_doubling", 0.4214, 0, 10,
     "LL: latency added per doubling of the message, per tree level over the network", T},
    {P::kLlDoublingCapKib, "ll_doubling_cap_kib", 52.92, 1, 1 << 20,
     "LL: the message size past which its latency grows no more (every channel runs)", T},
    {P::kCollNetBaseUs, "collnet_base_us", 31, 0, 1000,
     "CollNet: fixed latency over the network, the switches' reduction included (NCCL: 31 us)", T},
    {P::kCollNetNvlinkUs, "collnet_nvlink_us", 3.7, 0, 100,
     "CollNet: latency of one NVLink pass inside a node, each way (NCCL: 3.7 us)", T},
    {P::kCollNetPerGpuUs, "collnet_per_gpu_us", 0.4, 0, 100,
     "CollNet: latency per GPU of a node beyond the first, each way (NCCL: 0.4 us)", T},
    {P::kCollNetEfficiency, "collnet_efficiency", 0.74, 0.1, 1,
     "CollNet: share of a node's network bandwidth (NIC line rate x net_efficiency) that "
     "the reduction in the switches reaches"},
    {P::kTreeInteriorShare, "tree_interior_share", 0.574, 0.1, 1,
     "tree: share of its network bandwidth left where the tree has interior domains "
     "(three or more), which forward to two children"},
    {P::kNvlsTreeInteriorShare, "nvls_tree_interior_share", 0.8066, 0.1, 1,
     "NVLS tree: share of its network bandwidth left where the tree has interior domains"},
    {P::kRackRingEfficiency, "rack_ring_efficiency", 0.8674, 0.1, 1,
     "ring bus bandwidth / per-direction NVLink rate, GPUs of a multi-node NVLink domain "
     "(NVL72 racks)"},
};
static_assert(std::size(kTable) == kCostParamCount, "one table row per CostParam");

}  // namespace

std::span<const CostParamInfo> cost_param_table() {
  for (int i = 0; i < kCostParamCount; ++i) {
    if (static_cast<int>(kTable[i].id) != i) throw Error("cost parameter table out of order");
  }
  return kTable;
}

std::optional<CostParam> cost_param_from_string(std::string_view name) {
  for (const CostParamInfo& info : kTable) {
    if (info.name == name) return info.id;
  }
  return std::nullopt;
}

std::string cost_param_names() {
  std::string names;
  for (const CostParamInfo& info : kTable)
    names += (names.empty() ? "" : ", ") + std::string(info.name);
  return names;
}

CostParameters::CostParameters() {
  for (const CostParamInfo& info : kTable) values[static_cast<int>(info.id)] = info.value;
}

CostParameters CostParameters::from(const std::map<std::string, double>& overrides) {
  CostParameters parameters;
  for (const auto& [name, value] : overrides) {
    const std::optional<CostParam> id = cost_param_from_string(name);
    if (!id) {
      std::string names;
      for (const CostParamInfo& info : kTable)
        names += (names.empty() ? "" : ", ") + std::string(info.name);
      throw InvalidArgument("unknown cost-model parameter '" + name + "'; known: " + names);
    }
    const CostParamInfo& info = kTable[static_cast<int>(*id)];
    if (!std::isfinite(value) || value < info.min || value > info.max) {
      throw InvalidArgument("cost-model parameter " + name + " = " + std::to_string(value) +
                            " is outside [" + std::to_string(info.min) + ", " +
                            std::to_string(info.max) + "]");
    }
    parameters[*id] = value;
  }
  return parameters;
}

std::map<std::string, double> CostParameters::overrides() const {
  std::map<std::string, double> changed;
  for (const CostParamInfo& info : kTable) {
    const double value = values[static_cast<int>(info.id)];
    if (value != info.value) changed[std::string(info.name)] = value;
  }
  return changed;
}

}  // namespace haein::topology
