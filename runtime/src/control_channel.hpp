#pragma once
// A side channel between the ranks of a communicator that does not go through MPI or
// NCCL, so that it works while a collective is stuck: each rank answers one-line TCP
// requests on a thread of its own. The watchdog uses it to ask peers how far they got
// ("STATUS") and to make them dump their flight recorder and stop ("ABORT ...").

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

  /// Listens on an ephemeral TCP port of every interface.
  explicit ControlServer(Handler handler);
  ~ControlServer();
  ControlServer(const ControlServer&) = delete;
  ControlServer& operator=(const ControlServer&) = delete;

  int port() const { return port_; }

 private:
  void serve();
  Handler handler_;
  int listen_fd_ = -1;
  int stop_pipe_[2] = {-1, -1};
  int port_ = 0;
  std::thread thread_;
};

/// Sends `request` to host:port and returns the one-line reply, or nullopt when the peer
/// cannot be reached or does not answer within `timeout`. `host` equal to this machine's
/// name connects over loopback.
std::optional<std::string> control_request(const std::string& host, int port,
                                           const std::string& request,
                                           std::chrono::milliseconds timeout);

}  // namespace haein::runtime::detail
