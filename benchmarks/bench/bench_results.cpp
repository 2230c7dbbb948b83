#include "bench_results.hpp"

#include <hdf5.h>
#include <mpi.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>

#include "haein/common/error.hpp"
#include "haein/common/hdf5.hpp"
#include "haein/common/process.hpp"
#include "haein/common/settings.hpp"
#include "haein/common/version.hpp"
#if HAEIN_BENCH_CUDA
#include <cuda_runtime.h>
#include <nccl.h>
#endif

namespace haein::bench {

namespace {

using Hdf5Handle = haein::hdf5::Id;
using haein::hdf5::check;

void string_attribute(hid_t object, const std::string& name, const std::string& value) {
  Hdf5Handle type(H5Tcopy(H5T_C_S1), H5Tclose, "string type");
  check(H5Tset_size(type.get(), std::max<std::size_t>(value.size(), 1)), "string size");
  Hdf5Handle space(H5Screate(H5S_SCALAR), H5Sclose, "scalar space");
  Hdf5Handle attribute(
      H5Acreate2(object, name.c_str(), type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose,
      "attribute " + name);
  const std::string stored = value.empty() ? std::string(1, '\0') : value;
  check(H5Awrite(attribute.get(), type.get(), stored.data()), "writing attribute " + name);
}

void number_attribute(hid_t object, const std::string& name, double value) {
  Hdf5Handle space(H5Screate(H5S_SCALAR), H5Sclose, "scalar space");
  Hdf5Handle attribute(
      H5Acreate2(object, name.c_str(), H5T_NATIVE_DOUBLE, space.get(), H5P_DEFAULT, H5P_DEFAULT),
      H5Aclose, "attribute " + name);
  check(H5Awrite(attribute.get(), H5T_NATIVE_DOUBLE, &value), "writing attribute " + name);
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

}  // namespace

RunAttributes standard_attributes(int argc, char** argv) {
  RunAttributes attributes;
  std::string command;
  for (int i = 0; i < argc; ++i) command += (i ? " " : "") + std::string(argv[i]);
  attributes["command_line"] = command;
  attributes["haein_version"] = kVersion;
  char library[MPI_MAX_LIBRARY_VERSION_STRING];
  int length = 0;
  MPI_Get_library_version(library, &length);
  std::string mpi(library, static_cast<std::size_t>(length));
  while (!mpi.empty() && (mpi.back() == '\n' || mpi.back() == '\0')) mpi.pop_back();
  attributes["mpi_version"] = mpi;
  attributes["nccl_version"] = "none (host-only build)";
  attributes["cuda_version"] = "none (host-only build)";
#if HAEIN_BENCH_CUDA
  int nccl = 0;
  if (ncclGetVersion(&nccl) == ncclSuccess) {
    attributes["nccl_version"] = std::to_string(nccl / 10000) + "." +
                                 std::to_string(nccl / 100 % 100) + "." +
                                 std::to_string(nccl % 100);
  }
  int runtime = 0;
  if (cudaRuntimeGetVersion(&runtime) == cudaSuccess) {
    attributes["cuda_version"] =
        std::to_string(runtime / 1000) + "." + std::to_string(runtime % 1000 / 10);
  }
#endif
  // Every rank's host, in rank order.
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  char mine[64] = {};
  host_name().copy(mine, sizeof mine - 1);
  std::vector<char> all(64 * static_cast<std::size_t>(size));
  MPI_Allgather(mine, 64, MPI_CHAR, all.data(), 64, MPI_CHAR, MPI_COMM_WORLD);
  std::string hosts;
  for (int r = 0; r < size; ++r) hosts += (r ? "," : "") + std::string(&all[64 * r]);
  attributes["hosts"] = hosts;
  const std::string placement = settings::kPlacement.get();
  attributes["topology"] =
      !placement.empty() ? read_file(placement) : "(not started by haein run: no placement)";
  return attributes;
}

void write_hdf5(const std::string& path, const RunAttributes& attributes,
                const std::vector<Measurement>& measurements) {
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  try {
    Hdf5Handle access(H5Pcreate(H5P_FILE_ACCESS), H5Pclose, "file access list");
    check(H5Pset_fapl_mpio(access.get(), MPI_COMM_WORLD, MPI_INFO_NULL), "MPI-IO access");
    Hdf5Handle file(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, access.get()), H5Fclose,
                    "creating the file");
    for (const auto& [name, value] : attributes) string_attribute(file.get(), name, value);
    Hdf5Handle links(H5Pcreate(H5P_LINK_CREATE), H5Pclose, "link list");
    check(H5Pset_create_intermediate_group(links.get(), 1), "intermediate groups");
    Hdf5Handle transfer(H5Pcreate(H5P_DATASET_XFER), H5Pclose, "transfer list");
    check(H5Pset_dxpl_mpio(transfer.get(), H5FD_MPIO_COLLECTIVE), "collective transfer");
    for (const Measurement& m : measurements) {
      const std::string dataset_path = "/" + m.group + "/" + m.name;
      const hsize_t dims[2] = {static_cast<hsize_t>(size), m.times_us.size()};
      Hdf5Handle space(H5Screate_simple(2, dims, nullptr), H5Sclose, "dataspace");
      Hdf5Handle dataset(H5Dcreate2(file.get(), dataset_path.c_str(), H5T_NATIVE_DOUBLE,
                                    space.get(), links.get(), H5P_DEFAULT, H5P_DEFAULT),
                         H5Dclose, "creating " + dataset_path);
      const hsize_t start[2] = {static_cast<hsize_t>(rank), 0};
      const hsize_t count[2] = {1, m.times_us.size()};
      check(H5Sselect_hyperslab(space.get(), H5S_SELECT_SET, start, nullptr, count, nullptr),
            "row selection");
      Hdf5Handle memory(H5Screate_simple(2, count, nullptr), H5Sclose, "memory space");
      check(H5Dwrite(dataset.get(), H5T_NATIVE_DOUBLE, memory.get(), space.get(), transfer.get(),
                     m.times_us.data()),
            "writing " + dataset_path);
      string_attribute(dataset.get(), "unit", "microseconds per operation; row = rank");
      for (const auto& [name, value] : m.numbers) number_attribute(dataset.get(), name, value);
    }
  } catch (const Error& error) {
    throw Error("--hdf5 " + path + ": " + error.what());
  }
}

std::string format(const char* pattern, double value) {
  char text[48];
  std::snprintf(text, sizeof text, pattern, value);
  return text;
}

CsvFile::CsvFile(const std::string& path, const std::vector<std::string>& header) : path_(path) {
  if (path_.empty()) return;
  std::ofstream out(path_, std::ios::trunc);
  if (!out) throw InvalidArgument("--csv " + path_ + ": cannot open for writing");
  row(header);
}

void CsvFile::row(const std::vector<std::string>& fields) {
  if (path_.empty()) return;
  std::ofstream out(path_, std::ios::app);
  for (std::size_t i = 0; i < fields.size(); ++i) out << (i ? "," : "") << fields[i];
  out << "\n";
}

}  // namespace haein::bench
