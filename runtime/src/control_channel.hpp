#pragma once
// A side channel between the ranks of a communicator that does not go through MPI or
// NCCL, so that it works while a collective is stuck: each process answers one-line TCP
// requests on a thread of its own. The watchdog uses it to ask peers how far they got
// ("STATUS") and to make them dump their flight recorder and stop ("ABORT ...").
// One server per process, whatever the number of communicators (a world and its splits):
// each communicator registers its handler under its own secret, which its rank 0 drew and
// the bootstrap (MPI, or the threads of a test) handed to its ranks only. A request goes
// to the handler whose secret it carries; one without a registered secret gets no answer
// and does nothing. The server listens on the job's address only (control_address()), and
// peers are reached at the addresses they published through the bootstrap, not by
// resolving their hostnames.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace haein::runtime::detail {

class ControlServer {
 public:
  /// `handle(request)` returns the reply; when it sets `after_reply`, that runs once the
  /// reply has been sent (used to exit the process after acknowledging an ABORT).
  using Handler =
      std::function<std::string(const std::string& request, std::function<void()>& after_reply)>;

  /// A handler served under its secret; unregistered when destroyed (after a call of it
  /// that is under way has returned). The last one stops the server.
  class Registration {
   public:
    ~Registration();
    Registration(const Registration&) = delete;
    Registration& operator=(const Registration&) = delete;
    int port() const;
    /// The IPv4 address the server listens on, as other hosts reach it.
    const std::string& address() const;

   private:
    friend class ControlServer;
    Registration(std::shared_ptr<ControlServer> server, std::uint64_t id);
    std::shared_ptr<ControlServer> server_;
    std::uint64_t id_;  ///< this registration's entry (threads of one test share a secret)
  };

  /// Serves `handler` under `secret` (see control_secret()) on this process's server,
  /// starting it on an ephemeral TCP port of control_address() if none runs.
  static std::unique_ptr<Registration> serve(std::string secret, Handler handler);

  ~ControlServer();
  ControlServer(const ControlServer&) = delete;
  ControlServer& operator=(const ControlServer&) = delete;

 private:
  ControlServer();
  void run();
  /// The reply of the handler registered under the request's secret; nullopt without one.
  std::optional<std::string> dispatch(const std::string& request,
                                      std::function<void()>& after_reply);

  struct Entry {
    std::uint64_t id;
    std::string secret;
    Handler handler;
  };
  std::mutex handlers_mutex_;  ///< held while a handler runs
  std::vector<Entry> handlers_;
  std::uint64_t next_id_ = 0;
  std::string address_;
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

/// A control server as a peer published it.
struct ControlPeer {
  std::string address;
  int port = 0;
};

/// control_request() to every peer at once (a bounded number of connections at a time),
/// each within `timeout`: the replies in the peers' order.
std::vector<std::optional<std::string>> control_request_all(const std::vector<ControlPeer>& peers,
                                                            const std::string& secret,
                                                            const std::string& request,
                                                            std::chrono::milliseconds timeout);

}  // namespace haein::runtime::detail
