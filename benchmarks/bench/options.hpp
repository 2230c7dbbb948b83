#pragma once
// Command-line parsing shared by the haein-bench subcommands.

#include <boost/program_options.hpp>
#include <string>
#include <vector>

namespace haein::bench {

/// Parses argv against `options`: an unknown or malformed flag is InvalidArgument that
/// points at `haein-bench COMMAND --help`; --help prints `options` and throws HelpShown.
boost::program_options::variables_map parse_options(
    const boost::program_options::options_description& options, int argc, char** argv,
    const std::string& command);

/// The options every subcommand that writes results shares: --csv and --hdf5, and --model
/// for those that run a model's parameter list (bucket, kernel).
struct OutputOptions {
  std::string model = "gpt2-124m";
  std::string csv;
  std::string hdf5;
  /// Adds --model (its default as above) to `options`.
  void add_model(boost::program_options::options_description& options);
  /// Adds --csv and --hdf5, with help texts that say what this command writes there.
  void add_files(boost::program_options::options_description& options, const char* csv_help,
                 const char* hdf5_help);
};

/// "1,5,25" as numbers, each > 0; anything else is InvalidArgument naming `flag`.
std::vector<double> parse_positive_list(const std::string& flag, const std::string& text);

}  // namespace haein::bench
