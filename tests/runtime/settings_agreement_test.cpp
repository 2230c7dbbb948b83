// Settings that must agree across ranks are compared when a communicator is created: a
// difference is an error on every rank that names the ranks and their values (a rank that
// checks fingerprints while another does not would wait for it forever).
#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

#include "haein/common/error.hpp"
#include "haein/runtime/bootstrap.hpp"
#include "haein/runtime/communicator.hpp"

namespace {

using haein::runtime::Communicator;
using haein::runtime::CommunicatorOptions;
using haein::runtime::ThreadBootstrap;

/// Creates a communicator on each of `options.size()` threads; returns each one's error.
std::vector<std::string> create_all(const std::vector<CommunicatorOptions>& options) {
  auto bootstraps =
      ThreadBootstrap::create_group(static_cast<int>(options.size()), std::chrono::seconds(30));
  std::vector<std::string> errors(options.size());
  std::vector<std::thread> threads;
  for (std::size_t r = 0; r < options.size(); ++r) {
    threads.emplace_back([&, r] {
      try {
        Communicator comm(std::move(bootstraps[r]), options[r]);
      } catch (const haein::InvalidArgument& error) {
        errors[r] = error.what();
      } catch (const std::exception& error) {
        errors[r] = std::string("unexpected: ") + error.what();
      }
    });
  }
  for (auto& thread : threads) thread.join();
  return errors;
}

CommunicatorOptions base() {
  CommunicatorOptions options;
  options.timeout = std::chrono::seconds(30);
  options.dump_dir = "/tmp";
  return options;
}

TEST(SettingsAgreement, EqualSettingsMakeACommunicator) {
  const auto errors = create_all({base(), base(), base()});
  for (const std::string& error : errors) EXPECT_EQ(error, "");
}

TEST(SettingsAgreement, ADifferentCheckOrTimeoutIsAnErrorOnEveryRankNamingThem) {
  std::vector<CommunicatorOptions> options{base(), base(), base()};
  options[2].check_collectives = true;
  auto errors = create_all(options);
  for (const std::string& error : errors) {
    EXPECT_NE(error.find("HAEIN_CHECK_COLLECTIVES differs across ranks: ranks 0, 1 have 0; "
                         "rank 2 has 1"),
              std::string::npos)
        << error;
  }
  options = {base(), base(), base()};
  options[1].timeout = std::chrono::milliseconds(4500);
  errors = create_all(options);
  for (const std::string& error : errors) {
    EXPECT_NE(error.find("HAEIN_TIMEOUT differs across ranks: ranks 0, 2 have 30 s; rank 1 has "
                         "4.5 s"),
              std::string::npos)
        << error;
  }
}

}  // namespace
