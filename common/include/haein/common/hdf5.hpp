#pragma once
/// @file
/// Small helpers for code that calls the HDF5 C library (the trainer's checkpoints,
/// haein-bench's result files): the innermost message of HDF5's error stack, an id that
/// closes itself, and a status check. Header-only: include it after <hdf5.h> is
/// available and link HDF5 yourself; haein::common itself does not depend on HDF5.

#include <hdf5.h>

#include <iostream>
#include <string>

#include "haein/common/error.hpp"

namespace haein::hdf5 {

/// The innermost message of HDF5's error stack ("truncated file: eof = ..."), and clears it.
inline std::string last_error() {
  std::string message;
  H5Ewalk2(
      H5E_DEFAULT, H5E_WALK_DOWNWARD,
      [](unsigned, const H5E_error2_t* entry, void* out) -> herr_t {
        if (entry->desc != nullptr && entry->desc[0] != '\0') {
          *static_cast<std::string*>(out) = entry->desc;
        }
        return 0;
      },
      &message);
  H5Eclear2(H5E_DEFAULT);
  return message.empty() ? "HDF5 call failed" : message;
}

/// Throws haein::Error "what: <HDF5's message>" for a negative status.
inline void check(herr_t status, const std::string& what) {
  if (status < 0) throw Error(what + ": " + last_error());
}

/// An HDF5 id closed by its own close function at scope exit; a negative id is an Error
/// named by `what`. The destructor never throws.
class Id {
 public:
  Id(hid_t id, herr_t (*close)(hid_t), const std::string& what) : id_(id), close_(close) {
    if (id_ < 0) throw Error(what + ": " + last_error());
  }
  Id(const Id&) = delete;
  Id& operator=(const Id&) = delete;
  ~Id() {
    if (close_(id_) < 0) std::cerr << "warning: closing an HDF5 handle failed\n";
  }
  hid_t get() const { return id_; }
  operator hid_t() const { return id_; }  // NOLINT: handles read like the ids they wrap

 private:
  hid_t id_;
  herr_t (*close_)(hid_t);
};

}  // namespace haein::hdf5
