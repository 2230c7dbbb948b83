#include "haein/common/error.hpp"

namespace haein {

namespace {
std::string located(const std::string& file, int line, const std::string& what) {
  if (file.empty()) return what;
  if (line <= 0) return file + ": " + what;
  return file + ":" + std::to_string(line) + ": " + what;
}
}  // namespace

ParseError::ParseError(std::string file, int line, const std::string& what)
    : Error(located(file, line, what)), file_(std::move(file)), line_(line), detail_(what) {}

ExitCode exit_code_for(const std::exception& error) noexcept {
  if (dynamic_cast<const ParseError*>(&error) != nullptr ||
      dynamic_cast<const InvalidArgument*>(&error) != nullptr) {
    return ExitCode::kBadInput;
  }
  return ExitCode::kFailure;
}

}  // namespace haein
