#include "haein/common/error.hpp"

#include <cstdio>
#include <cstring>

namespace haein {

std::string printable(const std::string& text, std::size_t limit) {
  std::string shown;
  for (std::size_t i = 0; i < text.size() && i < limit; ++i) {
    const auto byte = static_cast<unsigned char>(text[i]);
    if (byte >= 0x20 && byte < 0x7f) {
      shown += text[i];
    } else {
      char code[8];
      std::snprintf(code, sizeof code, "\\x%02x", byte);
      shown += code;
    }
  }
  return text.size() > limit ? shown + "..." : shown;
}

namespace {
std::string located(const std::string& file, int line, const std::string& what) {
  if (file.empty()) return what;
  if (line <= 0) return file + ": " + what;
  return file + ":" + std::to_string(line) + ": " + what;
}
}  // namespace

ParseError::ParseError(std::string file, int line, const std::string& what)
    : Error(located(file, line, what)), file_(std::move(file)), line_(line), detail_(what) {}

SysError::SysError(const std::string& what, int error)
    : Error(what + ": " + std::strerror(error)), error_(error) {}

NotInThisBuild::NotInThisBuild(const std::string& what)
    : InvalidArgument(what +
                      ": this haein was built without CUDA and NCCL (a host-only build; "
                      "configure with HAEIN_WITH_CUDA=ON where they are installed)") {}

ExitCode exit_code_for(const std::exception& error) noexcept {
  if (dynamic_cast<const ParseError*>(&error) != nullptr ||
      dynamic_cast<const InvalidArgument*>(&error) != nullptr) {
    return ExitCode::kBadInput;
  }
  return ExitCode::kFailure;
}

}  // namespace haein
