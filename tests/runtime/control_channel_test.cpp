// The control channel answers only requests that carry a communicator's secret: a
// process outside the job that connects to a rank's port (any local user can) gets no
// answer, and its ABORT does nothing. One server per process, on the job's address.
#include "control_channel.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <string>
#include <vector>

namespace {

using haein::runtime::detail::control_request;
using haein::runtime::detail::control_secret;
using haein::runtime::detail::ControlServer;

/// Sends `line` on a plain TCP connection to the server; returns what came back.
std::string raw_exchange(const ControlServer::Registration& server, const std::string& line,
                         const std::string& address = "") {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(static_cast<std::uint16_t>(server.port()));
  ::inet_pton(AF_INET, (address.empty() ? server.address() : address).c_str(), &to.sin_addr);
  std::string got;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to) == 0 &&
      ::send(fd, line.data(), line.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(line.size())) {
    char buffer[256];
    pollfd entry{fd, POLLIN, 0};
    while (::poll(&entry, 1, 3000) == 1) {
      const ssize_t n = ::read(fd, buffer, sizeof buffer);
      if (n <= 0) break;
      got.append(buffer, static_cast<std::size_t>(n));
    }
  }
  ::close(fd);
  return got;
}

TEST(ControlChannel, AnswersOnlyRequestsWithTheSecret) {
  const std::string secret = control_secret();
  std::atomic<int> handled{0};
  const auto server =
      ControlServer::serve(secret, [&](const std::string& request, std::function<void()>&) {
        ++handled;
        return "got " + request;
      });
  const auto reply =
      control_request(server->address(), server->port(), secret, "STATUS", std::chrono::seconds(3));
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(*reply, "got STATUS");
  EXPECT_EQ(handled.load(), 1);

  EXPECT_FALSE(control_request(server->address(), server->port(), control_secret(), "ABORT x",
                               std::chrono::seconds(3))
                   .has_value())
      << "another job's secret";
  EXPECT_EQ(raw_exchange(*server, "ABORT from outside\n"), "");
  EXPECT_EQ(raw_exchange(*server, secret.substr(0, 31) + " ABORT\n"), "");
  EXPECT_EQ(raw_exchange(*server, std::string(5000, 'A') + "\n"), "");
  if (::geteuid() == 0) {
    // A second user on the host (nobody) tries too: no answer, nothing handled.
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      if (::setgid(65534) != 0 || ::setuid(65534) != 0) ::_exit(3);
      ::_exit(raw_exchange(*server, "ABORT by nobody\n").empty() ? 0 : 1);
    }
    int status = 0;
    ::waitpid(child, &status, 0);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status;
  }
  EXPECT_EQ(handled.load(), 1) << "a request without the secret reached the handler";

  // The server still serves the job after the intruders.
  EXPECT_EQ(raw_exchange(*server, secret + " STATUS\n"), "got STATUS\n");
  EXPECT_EQ(handled.load(), 2);
}

// Idle connections from outside the job (any local user can open them) once held the
// server 2 s each, so the job's own STATUS timed out and the rank looked unreachable.
TEST(ControlChannel, IdleConnectionsDoNotDelayTheJobsRequests) {
  const std::string secret = control_secret();
  const auto server = ControlServer::serve(
      secret, [&](const std::string& request, std::function<void()>&) { return "got " + request; });
  std::vector<int> idle;
  for (int i = 0; i < 160; ++i) {  // past the server's 128 open connections
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(static_cast<std::uint16_t>(server->port()));
    ::inet_pton(AF_INET, server->address().c_str(), &to.sin_addr);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to) == 0) {
      idle.push_back(fd);
    } else {
      ::close(fd);
    }
  }
  ASSERT_GE(idle.size(), 100u);
  const auto start = std::chrono::steady_clock::now();
  const auto reply =
      control_request(server->address(), server->port(), secret, "STATUS", std::chrono::seconds(1));
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_TRUE(reply.has_value()) << "no answer behind " << idle.size() << " idle connections";
  EXPECT_EQ(*reply, "got STATUS");
  EXPECT_LT(seconds, 0.5);
  for (int fd : idle) ::close(fd);
}

// A world and its splits share one server (one thread, one port) per process; each
// request reaches the handler of the secret it carries, and a communicator gone takes its
// handler with it.
TEST(ControlChannel, CommunicatorsOfAProcessShareOneServer) {
  const std::string a = control_secret(), b = control_secret();
  const auto first = ControlServer::serve(
      a, [](const std::string& request, std::function<void()>&) { return "a " + request; });
  auto second = ControlServer::serve(
      b, [](const std::string& request, std::function<void()>&) { return "b " + request; });
  EXPECT_EQ(first->port(), second->port());
  const auto ask = [&](const std::string& secret) {
    return control_request(first->address(), first->port(), secret, "STATUS",
                           std::chrono::seconds(2));
  };
  EXPECT_EQ(ask(a).value_or("none"), "a STATUS");
  EXPECT_EQ(ask(b).value_or("none"), "b STATUS");
  second.reset();
  EXPECT_FALSE(ask(b).has_value()) << "a request for a communicator that is gone";
  EXPECT_EQ(ask(a).value_or("none"), "a STATUS");
}

// The server listens on the job's address only: on a machine with another address, a
// connection to loopback (or any other local address) finds no server.
TEST(ControlChannel, ListensOnTheJobsAddressOnly) {
  const std::string secret = control_secret();
  const auto server = ControlServer::serve(
      secret, [](const std::string& request, std::function<void()>&) { return "got " + request; });
  if (server->address() == "127.0.0.1") GTEST_SKIP() << "this machine has loopback only";
  EXPECT_EQ(raw_exchange(*server, secret + " STATUS\n"), "got STATUS\n");
  EXPECT_EQ(raw_exchange(*server, secret + " STATUS\n", "127.0.0.1"), "")
      << "answered on loopback although it listens on " << server->address();
}

TEST(ControlChannel, SecretsAreFreshAndHex) {
  const std::string a = control_secret(), b = control_secret();
  EXPECT_EQ(a.size(), 32u);
  EXPECT_NE(a, b);
  EXPECT_EQ(a.find_first_not_of("0123456789abcdef"), std::string::npos) << a;
}

TEST(ControlChannel, RequestsGoToPublishedAddressesNotNames) {
  EXPECT_FALSE(
      control_request("localhost", 1, control_secret(), "STATUS", std::chrono::milliseconds(500))
          .has_value())
      << "a name must not be resolved";
}

}  // namespace
