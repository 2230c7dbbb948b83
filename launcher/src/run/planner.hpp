#pragma once
// `haein run`'s planner: from the options to the cluster the job may use (a cluster file,
// Slurm's live state or allocation, or this node discovered), its first placement, and a
// placement without hosts lost later (recovery by re-placement).

#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "haein/launcher/placement.hpp"
#include "haein/launcher/run.hpp"
#include "haein/topology/fabric.hpp"
#include "haein/topology/model.hpp"
#include "slurm.hpp"

namespace haein::launcher::detail {

class Planner {
 public:
  /// Loads the cluster and what of it is busy; InvalidArgument for a request it cannot hold.
  Planner(const RunOptions& options, std::ostream& err);
  Planner(const Planner&) = delete;
  Planner& operator=(const Planner&) = delete;

  const topology::Cluster& cluster() const { return cluster_; }
  /// The Slurm allocation haein runs inside (salloc, sbatch), if any.
  const std::optional<SlurmAllocation>& allocation() const { return allocation_; }

  /// The job's placement; its warnings are printed to `err`.
  Placement place(std::ostream& err) const;

  /// `current` without the nodes of `lost` hosts, which stay excluded from now on: each is
  /// replaced node for node by the nearest free node of the same hardware, or, where one
  /// has no such spare, the job is planned again on the nodes left free. `lines` gets what
  /// happened ("replacing h2 by h4 (same leaf leaf3)"); InvalidArgument when it cannot fit.
  Placement without(const Placement& current, const std::vector<std::string>& lost,
                    std::vector<std::string>& lines);

 private:
  std::optional<SlurmAllocation> allocation_;
  topology::Cluster cluster_;
  BusySet busy_;
  PlacementRequest request_;
  std::unique_ptr<topology::FabricIndex> fabric_;  ///< of cluster_, which does not move
};

/// The backend `asked` for, or the one that fits: srun inside an allocation or on a Slurm
/// cluster, local when every rank is here, else mpirun.
Backend choose_backend(Backend asked, bool all_local, bool slurm);

/// The program as execvp will find it; empty when it will not.
std::string find_program(const std::string& name);

}  // namespace haein::launcher::detail
