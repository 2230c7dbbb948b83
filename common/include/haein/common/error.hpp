#pragma once
/// @file
/// The exception hierarchy used inside haein. Errors are thrown inside the libraries and
/// turned into a message and an exit code only at the edge (main()).

#include <cstddef>
#include <stdexcept>
#include <string>

namespace haein {

/// `text` as a message may show it: control and non-ASCII bytes as \xNN, cut after `limit`
/// characters ("..." marks the cut). For names and library messages that quote input.
std::string printable(const std::string& text, std::size_t limit = std::string::npos);

/// Base of every error haein throws.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

/// A CUDA runtime call failed.
class CudaError : public Error {
 public:
  CudaError(const std::string& message, int code) : Error(message), code_(code) {}
  /// The cudaError_t value.
  int code() const noexcept { return code_; }

 private:
  int code_;
};

/// An NCCL call failed.
class NcclError : public Error {
 public:
  NcclError(const std::string& message, int code) : Error(message), code_(code) {}
  /// The ncclResult_t value.
  int code() const noexcept { return code_; }

 private:
  int code_;
};

/// An MPI call failed.
class MpiError : public Error {
 public:
  MpiError(const std::string& message, int code) : Error(message), code_(code) {}
  /// The MPI error code.
  int code() const noexcept { return code_; }

 private:
  int code_;
};

/// Input text (a file or a string) is malformed or inconsistent. The message starts with
/// "FILE:LINE: " when the location is known.
class ParseError : public Error {
 public:
  /// @param file  name of the input ("<string>" for in-memory text)
  /// @param line  1-based line, 0 when unknown
  ParseError(std::string file, int line, const std::string& what);
  const std::string& file() const noexcept { return file_; }
  int line() const noexcept { return line_; }
  /// The message without the "FILE:LINE: " prefix.
  const std::string& detail() const noexcept { return detail_; }

 private:
  std::string file_;
  int line_;
  std::string detail_;
};

/// A request that cannot be met: a bad flag, an unknown name, an impossible value.
class InvalidArgument : public Error {
 public:
  explicit InvalidArgument(const std::string& message) : Error(message) {}
};

/// A system call failed (errno): a file that cannot be opened or written, a socket, a
/// fork. Not bad input: exit 1.
class SysError : public Error {
 public:
  /// "WHAT: the errno's text".
  SysError(const std::string& what, int error);
  int error() const noexcept { return error_; }

 private:
  int error_;
};

/// Something this build of haein does not have (CUDA, NCCL, a GPU kernel): the same
/// error from every module; an impossible request here, exit 2.
class NotInThisBuild : public InvalidArgument {
 public:
  /// "WHAT: this haein was built without CUDA (...)".
  explicit NotInThisBuild(const std::string& what);
};

/// Exit codes of haein's command-line tools.
enum class ExitCode : int {
  kSuccess = 0,
  kFailure = 1,   ///< a runtime failure (CUDA, NCCL, MPI, I/O)
  kBadInput = 2,  ///< malformed input or an invalid request (ParseError, InvalidArgument)
};

/// The exit code for an exception that reached main().
ExitCode exit_code_for(const std::exception& error) noexcept;

}  // namespace haein
