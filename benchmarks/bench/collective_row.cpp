#include "collective_row.hpp"

#include <algorithm>
#include <cstdio>

namespace haein::bench {

namespace {

using Cell = Column::Cell;

Cell number(double value) { return {value, ""}; }
Cell text(std::string value) { return {0, std::move(value)}; }
Cell count(std::size_t value) { return {static_cast<double>(value), std::to_string(value)}; }

double algbw(const CollectiveRow& row, const Timing& t) {
  return t.median_us > 0 ? static_cast<double>(row.point.bytes) / t.median_us / 1e3 : 0.0;
}

/// size, count, type, redop, root and the CSV's run-wide fields.
void add_leading(std::vector<Column>& columns, const RunFacts& facts) {
  for (const auto& [name, value] : {std::pair{"op", facts.op},
                                    {"backend", facts.backend},
                                    {"ranks", std::to_string(facts.ranks)}})
    columns.push_back(
        {.csv = name, .value = [value](const CollectiveRow&) { return text(value); }});
  columns.push_back({.heading = "size",
                     .unit = "(B)",
                     .width = 10,
                     .csv = "size",
                     .hdf5 = "bytes",
                     .value = [](const CollectiveRow& r) { return count(r.point.bytes); }});
  columns.push_back({.heading = "count",
                     .unit = "(elements)",
                     .width = 12,
                     .csv = "count",
                     .hdf5 = "count",
                     .value = [](const CollectiveRow& r) { return count(r.point.count); }});
  for (const auto& [name, value, width] : {std::tuple{"type", facts.type, 8},
                                           {"redop", facts.redop, 6},
                                           {"root", std::to_string(facts.root), 6}}) {
    columns.push_back(
        {.heading = name, .width = width, .csv = name, .value = [value](const CollectiveRow&) {
           return text(value);
         }});
  }
}

/// time, algbw, busbw and #wrong of one mode, and its spread for the HDF5 file.
void add_mode(std::vector<Column>& columns, const RunFacts& facts, RowMode mode,
              Timing CollectiveRow::*timing, const std::string& group, const std::string& csv) {
  const double factor = facts.bus_factor;
  columns.push_back(
      {.group = group,
       .group_width = 31,
       .heading = "time",
       .unit = "(us)",
       .width = 9,
       .table_digits = 2,
       .csv = csv + "time_us",
       .csv_digits = 3,
       .hdf5 = "median_us",
       .mode = mode,
       .value = [timing](const CollectiveRow& r) { return number((r.*timing).median_us); }});
  columns.push_back(
      {.group = group,
       .heading = "algbw",
       .unit = "(GB/s)",
       .width = 7,
       .table_digits = 2,
       .csv = csv + "algbw",
       .csv_digits = 4,
       .hdf5 = "algbw_gbs",
       .mode = mode,
       .value = [timing](const CollectiveRow& r) { return number(algbw(r, r.*timing)); }});
  columns.push_back({.group = group,
                     .heading = "busbw",
                     .unit = "(GB/s)",
                     .width = 7,
                     .table_digits = 2,
                     .csv = csv + "busbw",
                     .csv_digits = 4,
                     .hdf5 = "busbw_gbs",
                     .mode = mode,
                     .value = [timing, factor](const CollectiveRow& r) {
                       return number(algbw(r, r.*timing) * factor);
                     }});
  const bool checked = facts.checked;
  columns.push_back(
      {.group = group,
       .heading = "#wrong",
       .width = 6,
       .csv = csv + "wrong",
       .hdf5 = "wrong",
       .mode = mode,
       .value = [timing, checked](const CollectiveRow& r) {
         const std::size_t wrong = (r.*timing).wrong;
         return Cell{static_cast<double>(wrong), checked ? std::to_string(wrong) : "N/A"};
       }});
  columns.push_back({.hdf5 = "spread", .mode = mode, .value = [timing](const CollectiveRow& r) {
                       return number((r.*timing).spread);
                     }});
}

/// The direct library calls: in the CSV always (empty without a baseline), in the table
/// and the HDF5 file only with one.
void add_baseline(std::vector<Column>& columns, const RunFacts& facts) {
  const std::string name = facts.baseline;
  columns.push_back(
      {.csv = "baseline", .value = [name](const CollectiveRow&) { return text(name); }});
  if (name.empty()) {
    for (const char* csv : {"baseline_time_us", "baseline_busbw", "baseline_ratio"})
      columns.push_back({.csv = csv, .value = [](const CollectiveRow&) { return text(""); }});
    return;
  }
  const double factor = facts.bus_factor;
  const std::string group = name == "mpi" ? "direct MPI        " : "direct NCCL       ";
  const RowMode mode = RowMode::kBaseline;
  columns.push_back({.group = group,
                     .group_width = 27,
                     .heading = "time",
                     .unit = "(us)",
                     .width = 9,
                     .table_digits = 2,
                     .csv = "baseline_time_us",
                     .csv_digits = 3,
                     .hdf5 = "median_us",
                     .mode = mode,
                     .value = [](const CollectiveRow& r) { return number(r.baseline.median_us); }});
  columns.push_back({.group = group,
                     .heading = "busbw",
                     .unit = "(GB/s)",
                     .width = 7,
                     .table_digits = 2,
                     .csv = "baseline_busbw",
                     .csv_digits = 4,
                     .hdf5 = "busbw_gbs",
                     .mode = mode,
                     .value = [factor](const CollectiveRow& r) {
                       return number(algbw(r, r.baseline) * factor);
                     }});
  columns.push_back({.group = group,
                     .heading = name + "/haein",
                     .unit = "(time)",
                     .width = 9,
                     .table_digits = 3,
                     .csv = "baseline_ratio",
                     .csv_digits = 4,
                     .value = [](const CollectiveRow& r) {
                       return number(r.baseline.median_us / r.out_of_place.median_us);
                     }});
  columns.push_back({.hdf5 = "algbw_gbs", .mode = mode, .value = [](const CollectiveRow& r) {
                       return number(algbw(r, r.baseline));
                     }});
  columns.push_back({.hdf5 = "spread", .mode = mode, .value = [](const CollectiveRow& r) {
                       return number(r.baseline.spread);
                     }});
  columns.push_back({.hdf5 = "wrong", .mode = mode, .value = [](const CollectiveRow& r) {
                       return number(static_cast<double>(r.baseline.wrong));
                     }});
}

std::string padded(const std::string& value, int width) {
  char line[128];
  std::snprintf(line, sizeof line, "%*s", width, value.c_str());
  return line;
}

/// The cell as the table (width > 0) or the CSV (width 0) shows it.
std::string render(const Cell& cell, int width, int digits) {
  if (digits < 0) return width > 0 ? padded(cell.text, width) : cell.text;
  char line[128];
  std::snprintf(line, sizeof line, "%*.*f", width, digits, cell.number);
  return line;
}

}  // namespace

std::vector<Column> collective_columns(const RunFacts& facts) {
  std::vector<Column> columns;
  add_leading(columns, facts);
  add_mode(columns, facts, RowMode::kOutOfPlace, &CollectiveRow::out_of_place,
           "out-of-place                 ", "");
  add_mode(columns, facts, RowMode::kInPlace, &CollectiveRow::in_place,
           "in-place                     ", "inplace_");
  columns.push_back({.heading = "spread",
                     .unit = "(%)",
                     .width = 7,
                     .table_digits = 1,
                     .csv = "spread_pct",
                     .csv_digits = 2,
                     .value = [](const CollectiveRow& r) {
                       return number(100 * std::max(r.out_of_place.spread, r.in_place.spread));
                     }});
  add_baseline(columns, facts);
  return columns;
}

std::string table_heading(const std::vector<Column>& columns) {
  std::string groups = "#\n#", headings = "\n#", units = "\n#";
  for (const Column& column : columns) {
    if (column.width == 0) continue;
    if (column.group_width > 0)
      groups += " " + padded(column.group, column.group_width);
    else if (column.group.empty())
      groups += " " + padded("", column.width);
    headings += " " + padded(column.heading, column.width);
    units += " " + padded(column.unit, column.width);
  }
  return groups + headings + units + "\n";
}

std::string table_line(const std::vector<Column>& columns, const CollectiveRow& row) {
  std::string line = " ";
  for (const Column& column : columns) {
    if (column.width == 0) continue;
    line += " " + render(column.value(row), column.width, column.table_digits);
  }
  return line;
}

std::vector<std::string> csv_header(const std::vector<Column>& columns) {
  std::vector<std::string> names;
  for (const Column& column : columns)
    if (!column.csv.empty()) names.push_back(column.csv);
  return names;
}

std::vector<std::string> csv_record(const std::vector<Column>& columns, const CollectiveRow& row) {
  std::vector<std::string> fields;
  for (const Column& column : columns) {
    if (column.csv.empty()) continue;
    fields.push_back(render(column.value(row), 0, column.csv_digits));
  }
  return fields;
}

std::vector<Measurement> hdf5_measurements(const std::vector<Column>& columns,
                                           const RunFacts& facts, const CollectiveRow& row) {
  std::vector<std::pair<RowMode, std::pair<std::string, const Timing*>>> modes = {
      {RowMode::kOutOfPlace, {"out_of_place", &row.out_of_place}},
      {RowMode::kInPlace, {"in_place", &row.in_place}}};
  if (!facts.baseline.empty())
    modes.push_back({RowMode::kBaseline, {facts.baseline + "_baseline", &row.baseline}});
  std::vector<Measurement> measurements;
  for (const auto& [mode, named] : modes) {
    Measurement m{facts.op + "/" + facts.backend + "/" + named.first,
                  std::to_string(row.point.bytes),
                  named.second->mine_us,
                  {}};
    for (const Column& column : columns) {
      if (column.hdf5.empty() || (column.mode != RowMode::kNone && column.mode != mode)) continue;
      m.numbers[column.hdf5] = column.value(row).number;
    }
    measurements.push_back(std::move(m));
  }
  return measurements;
}

}  // namespace haein::bench
