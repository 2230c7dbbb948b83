#pragma once
/// @file
/// Typed access to HAEIN_* environment settings. Every setting is declared once, in
/// haein/common/settings.hpp, so that all values in effect can be listed
/// (`haein env`, `haein run --print-env`).

#include <cstdint>
#include <optional>
#include <ostream>
#include <span>
#include <string>
#include <string_view>

namespace haein::env {

/// A HAEIN_* variable: its name, default and meaning. Values are read on every call so
/// that tests and launchers can change the environment.
class Setting {
 public:
  constexpr Setting(std::string_view name, std::string_view default_text, std::string_view help)
      : name_(name), default_text_(default_text), help_(help) {}
  std::string_view name() const { return name_; }
  std::string_view default_text() const { return default_text_; }
  std::string_view help() const { return help_; }
  /// The environment's value, or nullopt when unset or empty.
  std::optional<std::string> raw() const;
  /// The environment's value, or the default.
  std::string text() const;

 private:
  std::string_view name_;
  std::string_view default_text_;
  std::string_view help_;
};

/// A free-form string setting.
class StringSetting : public Setting {
 public:
  using Setting::Setting;
  std::string get() const { return text(); }
};

/// An integer setting; a value that is not an integer throws InvalidArgument naming it.
class IntSetting : public Setting {
 public:
  using Setting::Setting;
  std::int64_t get() const;
};

/// A non-negative number of seconds (fractions allowed).
class SecondsSetting : public Setting {
 public:
  using Setting::Setting;
  double get() const;
};

/// 1/0, true/false, yes/no, on/off (any case).
class BoolSetting : public Setting {
 public:
  using Setting::Setting;
  bool get() const;
};

/// Every HAEIN_* setting this build knows.
std::span<const Setting* const> all_settings();

/// Prints "NAME=value  (default|environment)  help" for every setting.
void print_settings(std::ostream& out);

}  // namespace haein::env
