#pragma once
// A side channel between the ranks of a communicator that does not go through MPI or
// NCCL, so that it works while a collective is stuck: each rank answers one-line TCP
// requests on a thread of its own. The watchdog uses it to ask peers how far they got
// ("STATUS") and to make them dump their flight recorder and stop ("ABORT ...").
// Every request carries the communicator's secret, which rank 0 drew and the bootstrap
// (MPI, or the threads of a test) handed to its ranks only; a request without it gets no
// answer and does nothing. Peers are reached at the addresses they published through the
// bootstrap, not by resolving their hostnames.

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <thread>

namespace haein::runtime::detail {

class ControlServer {
 public:
  /// `handle(request)` returns the reply; when it sets `after_reply`, that runs once the
  /// reply has been sent (used to exit the process after acknowledging an ABORT).
  using Handler =
      std::function<std::string(const std::string& request, std::function<void()>& after_reply)>;

  /// Listens on an ephemeral TCP port of every interface and serves requests that begin
  /// with `secret` (see control_secret()).
  ControlServer(std::string secret, Handler handler);
  ~ControlServer();
  ControlServer(const ControlServer&) = delete;
  ControlServer& operator=(const ControlServer&) = delete;

  int port() const { return port_; }

 private:
  void serve();
  std::string secret_;
  Handler handler_;
  int listen_fd_ = -1;
  int stop_pipe_[2] = {-1, -1};
  int port_ = 0;
  std::thread thread_;
};

/// A fresh secret: 32 hex digits from the kernel's random source.
std::string control_secret();

/// This process's IPv4 address as other hosts reach it: the route's source address
/// towards MASTER_ADDR when that is set, else the first non-loopback interface address,
/// else 127.0.0.1.
std::string control_address();

/// Sends `request` with `secret` to address:port (IPv4, as published) and returns the
/// one-line reply, or nullopt when the peer cannot be reached or does not answer within
/// `timeout`.
std::optional<std::string> control_request(const std::string& address, int port,
                                           const std::string& secret, const std::string& request,
                                           std::chrono::milliseconds timeout);

}  // namespace haein::runtime::detail
