#pragma once
// The results of `haein-bench collective`, one row per size, and the one column table that
// renders them three ways: nccl-tests' terminal table, the CSV and the HDF5 attributes.

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "bench_results.hpp"
#include "collective_sweep.hpp"

namespace haein::bench {

/// What one timed mode of one size measured.
struct Timing {
  std::vector<double> mine_us;  ///< this rank, per repeat
  double median_us = 0;         ///< of the slowest rank per repeat
  double spread = 0;            ///< (max - min) / median of those
  std::size_t wrong = 0;        ///< elements wrong over every rank (checked runs)
};

/// One size of the sweep.
struct CollectiveRow {
  SweepPoint point;
  Timing out_of_place;
  Timing in_place;
  Timing baseline;  ///< direct library calls (--baseline); empty without
};

/// What every row of a run shares.
struct RunFacts {
  std::string op;        ///< "allreduce"
  std::string backend;   ///< "host" or "nccl"
  std::string type;      ///< nccl-tests' name, "float"
  std::string redop;     ///< "sum", or "none" for operations without one
  std::string baseline;  ///< "", "mpi" or "nccl"
  int ranks = 1;
  int root = -1;  ///< -1 for operations without a root
  double bus_factor = 1;
  bool checked = true;
};

/// Which timing of a row a column shows.
enum class RowMode { kNone, kOutOfPlace, kInPlace, kBaseline };

/// One column: where it appears and how, and its value in a row. A column with width 0 is
/// not in the table, one without a CSV name not in the CSV, one without an HDF5 name not
/// among the attributes of its mode's dataset (kNone: of every dataset).
struct Column {
  std::string group{};  ///< table: the heading over a run of columns, on its first column
  int group_width = 0;  ///< the group's printed width (0: not the group's first column)
  std::string heading{};
  std::string unit{};
  int width = 0;
  int table_digits = -1;  ///< decimals of a number in the table; -1: the text as it is
  std::string csv{};
  int csv_digits = -1;
  std::string hdf5{};
  RowMode mode = RowMode::kNone;
  struct Cell {
    double number = 0;   ///< what the HDF5 attribute and a formatted number show
    std::string text{};  ///< what the table and the CSV show when digits are -1
  };
  std::function<Cell(const CollectiveRow&)> value{};
};

/// The columns of a run with `facts`, in the order of the table and the CSV.
std::vector<Column> collective_columns(const RunFacts& facts);

/// nccl-tests' heading: the group line, the names and the units ("# ..." lines).
std::string table_heading(const std::vector<Column>& columns);
/// One table line (no newline).
std::string table_line(const std::vector<Column>& columns, const CollectiveRow& row);
/// The CSV header and one CSV record.
std::vector<std::string> csv_header(const std::vector<Column>& columns);
std::vector<std::string> csv_record(const std::vector<Column>& columns, const CollectiveRow& row);
/// The HDF5 datasets of `row`: out_of_place, in_place and (with a baseline) BASELINE_baseline
/// under "OP/BACKEND/", each with its mode's attributes and this rank's times.
std::vector<Measurement> hdf5_measurements(const std::vector<Column>& columns,
                                           const RunFacts& facts, const CollectiveRow& row);

}  // namespace haein::bench
