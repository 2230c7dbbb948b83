#include "options.hpp"

#include <iostream>
#include <sstream>

#include "commands.hpp"
#include "haein/common/cli.hpp"
#include "haein/common/error.hpp"

namespace haein::bench {

namespace po = boost::program_options;

po::variables_map parse_options(const po::options_description& options, int argc, char** argv,
                                const std::string& command) {
  po::variables_map values;
  try {
    po::store(po::command_line_parser(argc, argv).options(options).run(), values);
    po::notify(values);
  } catch (const po::error& error) {
    throw InvalidArgument(std::string(error.what()) + " (see haein-bench " + command + " --help)");
  }
  if (values.count("help")) {
    std::cout << options << "\n";
    throw HelpShown{};
  }
  return values;
}

void OutputOptions::add_model(po::options_description& options) {
  options.add_options()("model", po::value(&model)->default_value(model),
                        "gpt2-124m, llama-3.2-1b or a parameter-list file");
}

void OutputOptions::add_files(po::options_description& options, const char* csv_help,
                              const char* hdf5_help) {
  options.add_options()("csv", po::value(&csv), csv_help)("hdf5", po::value(&hdf5), hdf5_help);
}

std::vector<double> parse_positive_list(const std::string& flag, const std::string& text) {
  std::vector<double> values;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    std::size_t used = 0;
    double value = 0;
    try {
      value = std::stod(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != item.size() || !(value > 0))
      throw InvalidArgument(flag + " '" + text + "': expected positive numbers like 1,5,25");
    values.push_back(value);
  }
  if (values.empty()) throw InvalidArgument(flag + " is empty");
  return values;
}

}  // namespace haein::bench
