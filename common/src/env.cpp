#include "haein/common/env.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdlib>
#include <iomanip>

#include "haein/common/error.hpp"

namespace haein::env {

namespace {
[[noreturn]] void reject(const Setting& setting, const std::string& value, const char* expected) {
  throw InvalidArgument(std::string(setting.name()) + "='" + value + "' is not " + expected + " (" +
                        std::string(setting.help()) + ")");
}
}  // namespace

std::optional<std::string> Setting::raw() const {
  const char* value = std::getenv(std::string(name_).c_str());
  if (value == nullptr || *value == '\0') return std::nullopt;
  return std::string(value);
}

std::string Setting::text() const { return raw().value_or(std::string(default_text_)); }

std::int64_t IntSetting::get() const {
  const std::string value = text();
  std::int64_t result = 0;
  const auto [end, error] = std::from_chars(value.data(), value.data() + value.size(), result);
  if (error != std::errc() || end != value.data() + value.size())
    reject(*this, value, "an integer");
  return result;
}

double SecondsSetting::get() const {
  const std::string value = text();
  char* end = nullptr;
  const double seconds = std::strtod(value.c_str(), &end);
  // At most a year: larger values overflow the clocks they are added to (1e16 s did).
  if (end == value.c_str() || *end != '\0' || !(seconds >= 0.0) || !(seconds <= 31'536'000.0)) {
    reject(*this, value, "a number of seconds from 0 to 31536000 (a year)");
  }
  return seconds;
}

bool BoolSetting::get() const {
  std::string value = text();
  std::transform(value.begin(), value.end(), value.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (value == "1" || value == "true" || value == "yes" || value == "on") return true;
  if (value == "0" || value == "false" || value == "no" || value == "off") return false;
  reject(*this, text(), "a boolean (1/0, true/false, yes/no, on/off)");
}

void print_settings(std::ostream& out) {
  for (const Setting* setting : all_settings()) {
    const auto raw = setting->raw();
    out << std::left << std::setw(24) << setting->name() << " = " << std::setw(20)
        << setting->text() << (raw ? "  (environment)  " : "  (default)      ") << setting->help()
        << "\n";
  }
}

}  // namespace haein::env
