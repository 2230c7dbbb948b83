#pragma once
// Parameter lists of real models (benchmarks/models/*.txt): one "name shape" per line,
// shape as "50257x768", '#' starts a comment. Header-only: the bucket and kernel
// benchmarks share it.

#include <cstddef>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "haein/common/error.hpp"

namespace haein::bench {

struct ModelParameter {
  std::string name;
  std::size_t count = 0;
};

/// `name_or_path`: a file, or the name of a list shipped in benchmarks/models/
/// (gpt2-124m, llama-3.2-1b).
inline std::vector<ModelParameter> load_model(const std::string& name_or_path) {
  const bool named =
      name_or_path.find('/') == std::string::npos && name_or_path.find('.') == std::string::npos;
  const std::string path =
      named ? std::string(HAEIN_MODELS_DIR) + "/" + name_or_path + ".txt" : name_or_path;
  std::ifstream in(path);
  if (!in && named) {
    throw InvalidArgument("unknown model '" + name_or_path +
                          "': expected gpt2-124m, llama-3.2-1b or a parameter-list file");
  }
  if (!in) throw InvalidArgument("cannot read the model parameter list " + path);
  std::vector<ModelParameter> parameters;
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (const auto hash = line.find('#'); hash != std::string::npos) line.resize(hash);
    std::istringstream fields(line);
    std::string name, shape;
    if (!(fields >> name)) continue;
    if (!(fields >> shape)) throw ParseError(path, number, "'" + name + "' has no shape");
    std::size_t count = 1;
    std::istringstream dims(shape);
    std::string dim;
    while (std::getline(dims, dim, 'x')) {
      std::size_t used = 0;
      unsigned long long value = 0;
      try {
        value = std::stoull(dim, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      if (used != dim.size() || dim.empty())
        throw ParseError(path, number, "bad shape '" + shape + "'");
      count *= value;
    }
    parameters.push_back({name, count});
  }
  if (parameters.empty()) throw ParseError(path, 0, "no parameters");
  return parameters;
}

}  // namespace haein::bench
