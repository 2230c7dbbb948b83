#include "control_channel.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <system_error>
#include <vector>

#include "haein/common/error.hpp"
#include "haein/common/log.hpp"
#include "haein/common/process.hpp"

namespace haein::runtime::detail {

namespace {

constexpr std::size_t kMaxLine = 4096;

/// Reads up to a newline (dropped) before `deadline`; nullopt on timeout, EOF or error.
std::optional<std::string> read_line(int fd, std::chrono::steady_clock::time_point deadline) {
  std::string line;
  char c = 0;
  while (line.size() < kMaxLine) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return std::nullopt;
    pollfd entry{fd, POLLIN, 0};
    const int ready = ::poll(&entry, 1, static_cast<int>(left.count()));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) return std::nullopt;
    const ssize_t got = ::read(fd, &c, 1);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return std::nullopt;
    if (c == '\n') return line;
    line.push_back(c);
  }
  return std::nullopt;
}

bool write_all(int fd, const std::string& text) {
  std::size_t sent = 0;
  while (sent < text.size()) {
    const ssize_t n = ::send(fd, text.data() + sent, text.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    sent += static_cast<std::size_t>(n);
  }
  return true;
}

}  // namespace

namespace {
/// The same length and bytes, in time that does not depend on where they differ.
bool same_secret(const std::string& a, const std::string& b) {
  if (a.size() != b.size()) return false;
  unsigned char differ = 0;
  for (std::size_t i = 0; i < a.size(); ++i) differ |= static_cast<unsigned char>(a[i] ^ b[i]);
  return differ == 0;
}
}  // namespace

std::string control_secret() {
  unsigned char bytes[16];
  std::size_t got = 0;
  while (got < sizeof bytes) {
    const ssize_t n = ::getrandom(bytes + got, sizeof bytes - got, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw SysError("control channel: getrandom", errno);
    got += static_cast<std::size_t>(n);
  }
  static const char* const kHex = "0123456789abcdef";
  std::string secret;
  for (const unsigned char byte : bytes) {
    secret.push_back(kHex[byte >> 4]);
    secret.push_back(kHex[byte & 15]);
  }
  return secret;
}

std::string control_address() {
  char text[INET_ADDRSTRLEN] = {};
  // Towards MASTER_ADDR (haein run, torchrun): the address on the job's network.
  if (const char* master = std::getenv("MASTER_ADDR"); master != nullptr && *master != '\0') {
    addrinfo hints{};
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_DGRAM;
    addrinfo* found = nullptr;
    if (::getaddrinfo(master, "9", &hints, &found) == 0 && found != nullptr) {
      const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
      sockaddr_in mine{};
      socklen_t length = sizeof mine;
      const bool ok = fd >= 0 && ::connect(fd, found->ai_addr, found->ai_addrlen) == 0 &&
                      ::getsockname(fd, reinterpret_cast<sockaddr*>(&mine), &length) == 0;
      if (fd >= 0) ::close(fd);
      ::freeaddrinfo(found);
      if (ok && (ntohl(mine.sin_addr.s_addr) >> 24) != 127 &&
          ::inet_ntop(AF_INET, &mine.sin_addr, text, sizeof text) != nullptr)
        return text;
    }
  }
  ifaddrs* list = nullptr;
  std::string address = "127.0.0.1";
  if (::getifaddrs(&list) == 0) {
    for (const ifaddrs* entry = list; entry != nullptr; entry = entry->ifa_next) {
      if (entry->ifa_addr == nullptr || entry->ifa_addr->sa_family != AF_INET) continue;
      const in_addr ip = reinterpret_cast<const sockaddr_in*>(entry->ifa_addr)->sin_addr;
      if ((ntohl(ip.s_addr) >> 24) == 127) continue;
      if (::inet_ntop(AF_INET, &ip, text, sizeof text) != nullptr) {
        address = text;
        break;
      }
    }
    ::freeifaddrs(list);
  }
  return address;
}

namespace {
std::mutex server_mutex;
std::weak_ptr<ControlServer> process_server;
}  // namespace

std::unique_ptr<ControlServer::Registration> ControlServer::serve(std::string secret,
                                                                  Handler handler) {
  std::shared_ptr<ControlServer> server;
  {
    std::lock_guard lock(server_mutex);
    server = process_server.lock();
    if (!server) {
      server = std::shared_ptr<ControlServer>(new ControlServer());
      process_server = server;
    }
  }
  std::uint64_t id = 0;
  {
    std::lock_guard lock(server->handlers_mutex_);
    id = server->next_id_++;
    server->handlers_.push_back({id, std::move(secret), std::move(handler)});
  }
  return std::unique_ptr<Registration>(new Registration(std::move(server), id));
}

ControlServer::Registration::Registration(std::shared_ptr<ControlServer> server, std::uint64_t id)
    : server_(std::move(server)), id_(id) {}

ControlServer::Registration::~Registration() {
  std::lock_guard lock(server_->handlers_mutex_);
  auto& handlers = server_->handlers_;
  handlers.erase(std::remove_if(handlers.begin(), handlers.end(),
                                [&](const Entry& entry) { return entry.id == id_; }),
                 handlers.end());
}

int ControlServer::Registration::port() const { return server_->port_; }
const std::string& ControlServer::Registration::address() const { return server_->address_; }

ControlServer::ControlServer() : address_(control_address()) {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (listen_fd_ < 0) throw SysError("control channel: socket", errno);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = 0;
  if (::inet_pton(AF_INET, address_.c_str(), &address.sin_addr) != 1) {
    ::close(listen_fd_);
    throw Error("control channel: not an IPv4 address: " + address_);
  }
  socklen_t length = sizeof address;
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
      ::listen(listen_fd_, 64) != 0 ||
      ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    const std::string reason = std::strerror(errno);
    ::close(listen_fd_);
    throw Error("control channel: cannot listen on a TCP port of " + address_ + ": " + reason);
  }
  port_ = ntohs(address.sin_port);
  if (::pipe2(stop_pipe_, O_CLOEXEC) != 0) {
    ::close(listen_fd_);
    throw SysError("control channel: pipe", errno);
  }
  thread_ = std::thread([this] { run(); });
}

ControlServer::~ControlServer() {
  const char stop = 'x';
  if (::write(stop_pipe_[1], &stop, 1) < 0) HAEIN_LOG(kWarn, "control channel: cannot stop");
  if (thread_.joinable()) thread_.join();
  ::close(listen_fd_);
  ::close(stop_pipe_[0]);
  ::close(stop_pipe_[1]);
}

std::optional<std::string> ControlServer::dispatch(const std::string& request,
                                                   std::function<void()>& after_reply) {
  // "<secret> <request>": anything else is dropped unanswered.
  const std::size_t space = request.find(' ');
  if (space == std::string::npos) return std::nullopt;
  const std::string secret = request.substr(0, space);
  std::lock_guard lock(handlers_mutex_);
  for (const Entry& entry : handlers_) {
    if (!same_secret(secret, entry.secret)) continue;
    try {
      return entry.handler(request.substr(space + 1), after_reply);
    } catch (const std::exception& error) {
      return std::string("ERROR ") + error.what();
    }
  }
  return std::nullopt;
}

void ControlServer::run() {
  // Every connection is served at once, each with 2 s to send its line: idle connections
  // (any local user can open them) must not delay the job's own requests past the
  // asker's timeout, which would make this rank look unreachable.
  using Clock = std::chrono::steady_clock;
  struct Client {
    int fd;
    std::string line;
    Clock::time_point deadline;
  };
  constexpr std::size_t kMaxClients = 128;
  std::vector<Client> clients;
  const auto drop = [&](std::size_t i) {
    ::close(clients[i].fd);
    clients.erase(clients.begin() + static_cast<std::ptrdiff_t>(i));
  };
  for (;;) {
    std::vector<pollfd> entries{{listen_fd_, POLLIN, 0}, {stop_pipe_[0], POLLIN, 0}};
    for (const Client& client : clients) entries.push_back({client.fd, POLLIN, 0});
    int timeout = -1;
    if (!clients.empty()) {
      Clock::time_point first = clients.front().deadline;
      for (const Client& client : clients) first = std::min(first, client.deadline);
      timeout = static_cast<int>(std::max<long long>(
          0,
          std::chrono::duration_cast<std::chrono::milliseconds>(first - Clock::now()).count() + 1));
    }
    if (::poll(entries.data(), entries.size(), timeout) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (entries[1].revents != 0) break;
    // Requests first (the entries match `clients` before any accept or drop below).
    std::vector<std::size_t> finished;
    std::vector<std::function<void()>> after_replies;
    for (std::size_t i = 0; i < clients.size(); ++i) {
      if (entries[i + 2].revents == 0) continue;
      Client& client = clients[i];
      char buffer[512];
      const ssize_t n = ::recv(client.fd, buffer, sizeof buffer, MSG_DONTWAIT);
      if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) continue;
      if (n <= 0) {
        finished.push_back(i);
        continue;
      }
      client.line.append(buffer, static_cast<std::size_t>(n));
      const std::size_t end = client.line.find('\n');
      if (end == std::string::npos) {
        if (client.line.size() > kMaxLine) finished.push_back(i);
        continue;
      }
      finished.push_back(i);
      std::function<void()> after_reply;
      const std::optional<std::string> reply = dispatch(client.line.substr(0, end), after_reply);
      if (!reply) continue;
      write_all(client.fd, *reply + "\n");
      if (after_reply) after_replies.push_back(std::move(after_reply));
    }
    const Clock::time_point now = Clock::now();
    for (std::size_t i = clients.size(); i-- > 0;) {
      if (std::find(finished.begin(), finished.end(), i) != finished.end() ||
          clients[i].deadline <= now)
        drop(i);
    }
    for (auto& after_reply : after_replies) after_reply();
    if ((entries[0].revents & POLLIN) != 0) {
      for (;;) {
        const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0) break;
        if (clients.size() >= kMaxClients) drop(0);  // the oldest makes room
        clients.push_back({fd, {}, Clock::now() + std::chrono::seconds(2)});
      }
    }
  }
  for (const Client& client : clients) ::close(client.fd);
}

std::optional<std::string> control_request(const std::string& address, int port,
                                           const std::string& secret, const std::string& request,
                                           std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICHOST;  // a published address, never a name to resolve
  addrinfo* found = nullptr;
  if (::getaddrinfo(address.c_str(), std::to_string(port).c_str(), &hints, &found) != 0)
    return std::nullopt;
  std::optional<std::string> reply;
  for (addrinfo* candidate = found; candidate != nullptr && !reply;
       candidate = candidate->ai_next) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) continue;
    if (::connect(fd, candidate->ai_addr, candidate->ai_addrlen) != 0 && errno != EINPROGRESS) {
      ::close(fd);
      continue;
    }
    pollfd entry{fd, POLLOUT, 0};
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    int error = 0;
    socklen_t length = sizeof error;
    if (left.count() > 0 && ::poll(&entry, 1, static_cast<int>(left.count())) == 1 &&
        ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) == 0 && error == 0 &&
        write_all(fd, secret + " " + request + "\n")) {
      reply = read_line(fd, deadline);
    }
    ::close(fd);
  }
  ::freeaddrinfo(found);
  return reply;
}

std::vector<std::optional<std::string>> control_request_all(const std::vector<ControlPeer>& peers,
                                                            const std::string& secret,
                                                            const std::string& request,
                                                            std::chrono::milliseconds timeout) {
  // A thread per peer in rounds of kAtOnce: silent peers then cost one timeout per round,
  // not one each.
  constexpr std::size_t kAtOnce = 64;
  std::vector<std::optional<std::string>> replies(peers.size());
  for (std::size_t first = 0; first < peers.size(); first += kAtOnce) {
    std::vector<std::thread> askers;
    const std::size_t last = std::min(peers.size(), first + kAtOnce);
    for (std::size_t i = first; i < last; ++i) {
      const auto ask = [&, i] {
        replies[i] = control_request(peers[i].address, peers[i].port, secret, request, timeout);
      };
      try {
        askers.emplace_back(ask);
      } catch (const std::system_error&) {
        ask();  // no thread to be had (a process at its limit): ask from this one
      }
    }
    for (std::thread& asker : askers) asker.join();
  }
  return replies;
}

}  // namespace haein::runtime::detail
