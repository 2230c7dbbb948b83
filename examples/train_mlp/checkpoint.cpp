#include "checkpoint.hpp"

#include <fcntl.h>
#include <hdf5.h>
#include <mpi.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iostream>

#include "haein/common/error.hpp"
#include "haein/common/hdf5.hpp"

namespace haein::examples {

namespace fs = std::filesystem;

std::uint64_t checksum(const void* data, std::size_t bytes, std::uint64_t seed) {
  const auto* p = static_cast<const unsigned char*>(data);
  std::uint64_t h = 0x6A09E667F3BCC908ULL ^ (seed * 0x9E3779B97F4A7C15ULL) ^ bytes;
  std::size_t i = 0;
  for (; i + 8 <= bytes; i += 8) {
    std::uint64_t word;
    std::memcpy(&word, p + i, 8);
    h = (h ^ word) * 0x100000001B3ULL;
    h ^= h >> 29;
  }
  for (; i < bytes; ++i) h = (h ^ p[i]) * 0x100000001B3ULL;
  h ^= h >> 33;
  h *= 0xFF51AFD7ED558CCDULL;
  return h ^ (h >> 33);
}

std::uint64_t parameter_checksum(const Mlp& model) {
  std::uint64_t h = 0;
  for (const ParameterTensor& t : model.tensors()) {
    h = checksum(t.value.data(), t.value.size() * sizeof(float), h);
  }
  return h;
}

std::string checkpoint_path(const std::string& dir, std::uint64_t step) {
  char name[64];
  std::snprintf(name, sizeof name, "ckpt-step-%08" PRIu64 ".h5", step);
  return (fs::path(dir) / name).string();
}

namespace {

constexpr const char* kFormat = "haein-train-mlp-checkpoint-1";

using H5Id = haein::hdf5::Id;
using haein::hdf5::check;

// HDF5 prints its error stack to stderr by default; we report errors ourselves.
void quiet_hdf5() {
  static const bool done = [] {
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
    return true;
  }();
  (void)done;
}

// The scalar state in a fixed byte layout, for its checksum.
std::vector<std::uint64_t> state_words(const TrainState& state, const Mlp& model) {
  std::vector<std::uint64_t> words{state.step, state.seed, state.cursor.epoch,
                                   state.cursor.position};
  words.insert(words.end(), std::begin(state.cursor.rng_state), std::end(state.cursor.rng_state));
  for (std::size_t size : model.sizes()) words.push_back(size);
  return words;
}

void write_u64_attribute(hid_t object, const char* name, const std::uint64_t* values,
                         std::size_t count) {
  const hsize_t dims[1] = {count};
  H5Id space(H5Screate_simple(1, dims, nullptr), H5Sclose, "attribute space");
  H5Id attribute(H5Acreate2(object, name, H5T_NATIVE_UINT64, space, H5P_DEFAULT, H5P_DEFAULT),
                 H5Aclose, std::string("creating attribute ") + name);
  check(H5Awrite(attribute, H5T_NATIVE_UINT64, values), std::string("writing attribute ") + name);
}

std::vector<std::uint64_t> read_u64_attribute(hid_t object, const char* name) {
  H5Id attribute(H5Aopen(object, name, H5P_DEFAULT), H5Aclose,
                 std::string("attribute ") + name + " missing");
  H5Id space(H5Aget_space(attribute), H5Sclose, "attribute space");
  const hssize_t count = H5Sget_simple_extent_npoints(space);
  if (count <= 0) throw Error(std::string("attribute ") + name + " is empty");
  std::vector<std::uint64_t> values(static_cast<std::size_t>(count));
  check(H5Aread(attribute, H5T_NATIVE_UINT64, values.data()),
        std::string("reading attribute ") + name);
  return values;
}

void write_string_attribute(hid_t object, const char* name, const std::string& value) {
  H5Id type(H5Tcopy(H5T_C_S1), H5Tclose, "string type");
  check(H5Tset_size(type, value.size()), "string size");
  H5Id space(H5Screate(H5S_SCALAR), H5Sclose, "scalar space");
  H5Id attribute(H5Acreate2(object, name, type, space, H5P_DEFAULT, H5P_DEFAULT), H5Aclose,
                 std::string("creating attribute ") + name);
  check(H5Awrite(attribute, type, value.data()), std::string("writing attribute ") + name);
}

std::string read_string_attribute(hid_t object, const char* name) {
  H5Id attribute(H5Aopen(object, name, H5P_DEFAULT), H5Aclose,
                 std::string("attribute ") + name + " missing");
  H5Id type(H5Aget_type(attribute), H5Tclose, "attribute type");
  if (H5Tget_class(type) != H5T_STRING)
    throw Error(std::string("attribute ") + name + " is not a string");
  std::string value(H5Tget_size(type), '\0');
  H5Id memory(H5Tcopy(H5T_C_S1), H5Tclose, "string type");
  check(H5Tset_size(memory, value.size()), "string size");
  check(H5Aread(attribute, memory, value.data()), std::string("reading attribute ") + name);
  return value;
}

// One tensor, each rank writing its slice [rank * n / size, (rank + 1) * n / size).
void write_tensor(hid_t group, const std::string& name, const std::vector<float>& values,
                  hid_t transfer, int rank, int size) {
  const hsize_t total[1] = {values.size()};
  H5Id file_space(H5Screate_simple(1, total, nullptr), H5Sclose, "dataset space");
  H5Id dataset(H5Dcreate2(group, name.c_str(), H5T_NATIVE_FLOAT, file_space, H5P_DEFAULT,
                          H5P_DEFAULT, H5P_DEFAULT),
               H5Dclose, "creating dataset " + name);
  const hsize_t begin = values.size() * static_cast<hsize_t>(rank) / static_cast<hsize_t>(size);
  const hsize_t end = values.size() * static_cast<hsize_t>(rank + 1) / static_cast<hsize_t>(size);
  const hsize_t start[1] = {begin};
  const hsize_t count[1] = {end - begin};
  check(H5Sselect_hyperslab(file_space, H5S_SELECT_SET, start, nullptr, count, nullptr),
        "selecting a slice of " + name);
  H5Id memory_space(H5Screate_simple(1, count, nullptr), H5Sclose, "memory space");
  if (count[0] == 0) {
    check(H5Sselect_none(file_space), "empty slice");
    check(H5Sselect_none(memory_space), "empty slice");
  }
  check(H5Dwrite(dataset, H5T_NATIVE_FLOAT, memory_space, file_space, transfer,
                 values.data() + begin),
        "writing " + name);
  const std::uint64_t sum = checksum(values.data(), values.size() * sizeof(float));
  write_u64_attribute(dataset, "checksum", &sum, 1);
}

void read_tensor(hid_t group, const std::string& path, std::vector<float>& values) {
  H5Id dataset(H5Dopen2(group, path.c_str(), H5P_DEFAULT), H5Dclose, path + " missing");
  H5Id space(H5Dget_space(dataset), H5Sclose, path + ": no dataspace");
  const hssize_t count = H5Sget_simple_extent_npoints(space);
  if (count != static_cast<hssize_t>(values.size())) {
    throw Error(path + " has " + std::to_string(count) + " elements where the model has " +
                std::to_string(values.size()));
  }
  check(H5Dread(dataset, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data()),
        "reading " + path);
  const std::uint64_t stored = read_u64_attribute(dataset, "checksum").at(0);
  const std::uint64_t computed = checksum(values.data(), values.size() * sizeof(float));
  if (stored != computed) {
    char text[96];
    std::snprintf(text, sizeof text,
                  ": checksum mismatch (stored %016" PRIx64 ", read %016" PRIx64 ")", stored,
                  computed);
    throw Error(path + text);
  }
}

// What a checkpoint of `model` takes on disk: parameters and momentum as f32, and room
// for HDF5's metadata and the attributes.
std::uint64_t checkpoint_bytes(const Mlp& model) {
  std::uint64_t floats = 0;
  for (const ParameterTensor& t : model.tensors()) floats += t.value.size() + t.momentum.size();
  const std::uint64_t data = floats * sizeof(float);
  return data + data / 16 + (16u << 10);
}

// Why `dir` cannot take `bytes` more (its file system's space for this user), or "".
std::string room_problem(const std::string& dir, std::uint64_t bytes) {
  struct statvfs info {};
  if (::statvfs(dir.c_str(), &info) != 0)
    return "cannot check the space in " + dir + ": " + std::strerror(errno);
  const std::uint64_t free = static_cast<std::uint64_t>(info.f_bavail) * info.f_frsize;
  if (free >= bytes) return "";
  return "not enough space in " + dir + ": the checkpoint needs about " +
         std::to_string((bytes + 1023) / 1024) + " KiB, " + std::to_string(free / 1024) +
         " KiB are free; the older checkpoints are kept";
}

// Rank 0's failure (or success) of a step only it performs, made known to every rank.
void agree(bool ok_here, const std::string& what, runtime::Communicator& comm) {
  std::int32_t ok = ok_here ? 1 : 0;
  comm.all_reduce(&ok, &ok, 1, runtime::DataType::kI32, runtime::ReduceOp::kMin);
  if (ok == 0) throw Error(what);
}

/// Room first, decided by rank 0 for all: a disk that fills up inside HDF5's collective
/// writes leaves ranks in different collectives (ended only by the watchdog).
void require_room(const std::string& dir, const std::string& final_path, const Mlp& model,
                  runtime::Communicator& comm) {
  std::array<char, 512> room{};
  if (comm.rank() == 0) {
    const std::string problem = room_problem(dir, checkpoint_bytes(model));
    std::memcpy(room.data(), problem.data(), std::min(problem.size(), room.size() - 1));
  }
  comm.broadcast(room.data(), room.data(), room.size(), runtime::DataType::kU8, 0);
  room.back() = '\0';
  if (room.front() != '\0')
    throw Error("checkpoint " + final_path + " not written: " + std::string(room.data()));
}

/// The step, seed, data cursor, layer sizes, world size and state checksum.
void write_scalars(hid_t file, const TrainState& state, const Mlp& model, int world_size) {
  write_string_attribute(file, "format", kFormat);
  const std::uint64_t scalars[4] = {state.step, state.seed, state.cursor.epoch,
                                    state.cursor.position};
  write_u64_attribute(file, "step", &scalars[0], 1);
  write_u64_attribute(file, "seed", &scalars[1], 1);
  write_u64_attribute(file, "epoch", &scalars[2], 1);
  write_u64_attribute(file, "epoch_position", &scalars[3], 1);
  write_u64_attribute(file, "rng_state", state.cursor.rng_state, 4);
  std::vector<std::uint64_t> sizes(model.sizes().begin(), model.sizes().end());
  write_u64_attribute(file, "layer_sizes", sizes.data(), sizes.size());
  const auto world = static_cast<std::uint64_t>(world_size);
  write_u64_attribute(file, "world_size", &world, 1);
  const std::vector<std::uint64_t> words = state_words(state, model);
  const std::uint64_t state_sum = checksum(words.data(), words.size() * sizeof(std::uint64_t));
  write_u64_attribute(file, "state_checksum", &state_sum, 1);
}

/// Writes the checkpoint into `temporary` through collective MPI-IO; returns what failed on
/// this rank, or "".
std::string write_file(const std::string& temporary, const TrainState& state, const Mlp& model,
                       runtime::Communicator& comm) {
  try {
    H5Id access(H5Pcreate(H5P_FILE_ACCESS), H5Pclose, "file access list");
    check(H5Pset_fapl_mpio(access, MPI_COMM_WORLD, MPI_INFO_NULL), "MPI-IO file access");
    // The newest format checksums the file's metadata too.
    check(H5Pset_libver_bounds(access, H5F_LIBVER_LATEST, H5F_LIBVER_LATEST), "format bounds");
    H5Id file(H5Fcreate(temporary.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, access), H5Fclose,
              "creating " + temporary);
    H5Id transfer(H5Pcreate(H5P_DATASET_XFER), H5Pclose, "transfer list");
    check(H5Pset_dxpl_mpio(transfer, H5FD_MPIO_COLLECTIVE), "collective transfer");
    write_scalars(file, state, model, comm.size());
    for (const char* group_name : {"parameters", "momentum"}) {
      H5Id group(H5Gcreate2(file, group_name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose,
                 std::string("creating group ") + group_name);
      const bool momentum = std::strcmp(group_name, "momentum") == 0;
      for (const ParameterTensor& t : model.tensors())
        write_tensor(group, t.name, momentum ? t.momentum : t.value, transfer, comm.rank(),
                     comm.size());
    }
  } catch (const Error& error) {
    return error.what();
  }
  return "";
}

/// Rank 0: the data on disk before the name appears, the name on disk before we call it
/// done. Returns what failed, or "".
std::string put_in_place(const std::string& dir, const std::string& temporary,
                         const std::string& final_path) {
  const int fd = ::open(temporary.c_str(), O_RDONLY | O_CLOEXEC);
  bool renamed = fd >= 0 && ::fsync(fd) == 0;
  if (fd >= 0) ::close(fd);
  std::error_code ec;
  if (renamed) fs::rename(temporary, final_path, ec);
  renamed = renamed && !ec;
  const std::string failure = renamed ? "" : ec ? ec.message() : std::strerror(errno);
  const int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd >= 0) {
    ::fsync(dir_fd);
    ::close(dir_fd);
  }
  return failure;
}

}  // namespace

void write_checkpoint(const std::string& dir, const TrainState& state, const Mlp& model,
                      runtime::Communicator& comm) {
  quiet_hdf5();
  const std::string final_path = checkpoint_path(dir, state.step);
  const std::string temporary =
      (fs::path(dir) / ("." + fs::path(final_path).filename().string() + ".tmp")).string();
  require_room(dir, final_path, model, comm);
  const std::string failure = write_file(temporary, state, model, comm);
  std::int32_t ok = failure.empty() ? 1 : 0;
  comm.all_reduce(&ok, &ok, 1, runtime::DataType::kI32, runtime::ReduceOp::kMin);
  if (ok == 0) {
    // Every rank has left the file: the partial one goes, the older checkpoints stay.
    if (comm.rank() == 0) {
      std::error_code ignored;
      fs::remove(temporary, ignored);
    }
    throw Error("checkpoint " + final_path + " could not be written" +
                (failure.empty() ? std::string(" (on another rank)") : ": " + failure) +
                "; the older checkpoints are kept");
  }
  const std::string rename_failure =
      comm.rank() == 0 ? put_in_place(dir, temporary, final_path) : "";
  agree(rename_failure.empty(),
        "checkpoint " + final_path + " could not be put in place: " + rename_failure, comm);
}

TrainState read_checkpoint(const std::string& path, Mlp& model) {
  quiet_hdf5();
  // Every rank reads the whole file with the plain POSIX driver: the data is replicated,
  // and independent reads cannot leave ranks waiting for each other on a damaged file.
  H5Id file(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose, "cannot open");
  if (read_string_attribute(file, "format") != kFormat) {
    throw Error("not a train_mlp checkpoint (format attribute)");
  }
  TrainState state;
  state.step = read_u64_attribute(file, "step").at(0);
  state.seed = read_u64_attribute(file, "seed").at(0);
  state.cursor.epoch = read_u64_attribute(file, "epoch").at(0);
  state.cursor.position = read_u64_attribute(file, "epoch_position").at(0);
  const std::vector<std::uint64_t> rng = read_u64_attribute(file, "rng_state");
  if (rng.size() != 4) throw Error("rng_state does not have 4 words");
  std::copy(rng.begin(), rng.end(), state.cursor.rng_state);
  const std::vector<std::uint64_t> sizes = read_u64_attribute(file, "layer_sizes");
  if (!std::equal(sizes.begin(), sizes.end(), model.sizes().begin(), model.sizes().end())) {
    std::string text;
    for (std::uint64_t s : sizes) {
      if (!text.empty()) text += ',';
      text += std::to_string(s);
    }
    throw InvalidArgument("layer sizes " + text + " differ from this model's");
  }
  const std::vector<std::uint64_t> words = state_words(state, model);
  if (read_u64_attribute(file, "state_checksum").at(0) !=
      checksum(words.data(), words.size() * sizeof(std::uint64_t))) {
    throw Error("state checksum mismatch (step, seed, data cursor)");
  }
  for (ParameterTensor& t : model.tensors()) {
    read_tensor(file, "parameters/" + t.name, t.value);
    read_tensor(file, "momentum/" + t.name, t.momentum);
  }
  return state;
}

std::vector<std::string> list_checkpoints(const std::string& dir) {
  std::vector<std::string> paths;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("ckpt-step-", 0) == 0 && entry.path().extension() == ".h5") {
      paths.push_back(entry.path().string());
    }
  }
  // Zero-padded steps: the names sort by step.
  std::sort(paths.rbegin(), paths.rend());
  return paths;
}

std::optional<TrainState> load_latest_checkpoint(const std::string& dir, Mlp& model,
                                                 runtime::Communicator& comm) {
  // Rank 0's listing, so that all ranks try the same files in the same order.
  std::vector<std::string> paths = list_checkpoints(dir);
  std::uint64_t count = paths.size();
  comm.broadcast(&count, &count, 1, runtime::DataType::kI64, 0);
  if (comm.rank() != 0) paths.resize(count);
  for (std::string& path : paths) {
    std::uint64_t length = path.size();
    comm.broadcast(&length, &length, 1, runtime::DataType::kI64, 0);
    path.resize(length);
    comm.broadcast(path.data(), path.data(), length, runtime::DataType::kU8, 0);
  }
  const Mlp pristine = model;
  for (const std::string& path : paths) {
    std::string failure;
    TrainState state;
    // 1: read; 0: damaged, try the one before; -1: another model's, stop.
    std::int32_t ok = 1;
    try {
      state = read_checkpoint(path, model);
    } catch (const InvalidArgument& error) {
      failure = error.what();
      ok = -1;
    } catch (const Error& error) {
      failure = error.what();
      ok = 0;
    }
    comm.all_reduce(&ok, &ok, 1, runtime::DataType::kI32, runtime::ReduceOp::kMin);
    if (ok == 1) return state;
    if (ok == -1) {
      throw InvalidArgument("checkpoint " + path + " is of another model: " +
                            (failure.empty() ? "(seen on another rank)" : failure) +
                            "; give another --checkpoint-dir or the same model options");
    }
    model = pristine;
    if (comm.rank() == 0) {
      // One write, so that the line stays whole next to other output.
      const std::string line = "warning: checkpoint " + path + " is damaged, skipping it: " +
                               (failure.empty() ? "unreadable on another rank" : failure) + "\n";
      std::cout << std::flush;
      std::cerr << line << std::flush;
    }
  }
  return std::nullopt;
}

void prune_checkpoints(const std::string& dir, std::size_t keep, std::uint64_t step) {
  std::error_code ec;
  const std::vector<std::string> paths = list_checkpoints(dir);
  const std::string written = checkpoint_path(dir, step);
  const auto at = std::find(paths.begin(), paths.end(), written);
  if (at != paths.end()) {
    const std::size_t first = static_cast<std::size_t>(at - paths.begin());
    for (std::size_t i = first + std::max<std::size_t>(keep, 1); i < paths.size(); ++i)
      fs::remove(paths[i], ec);
  }
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind(".ckpt-step-", 0) == 0 && entry.path().extension() == ".tmp") {
      fs::remove(entry.path(), ec);
    }
  }
}

}  // namespace haein::examples
