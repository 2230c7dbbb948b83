#include "control_channel.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

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

ControlServer::ControlServer(Handler handler) : handler_(std::move(handler)) {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) throw Error(std::string("control channel: socket: ") + std::strerror(errno));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_ANY);
  address.sin_port = 0;
  socklen_t length = sizeof address;
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
      ::listen(listen_fd_, 64) != 0 ||
      ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    const std::string reason = std::strerror(errno);
    ::close(listen_fd_);
    throw Error("control channel: cannot listen on a TCP port: " + reason);
  }
  port_ = ntohs(address.sin_port);
  if (::pipe2(stop_pipe_, O_CLOEXEC) != 0) {
    ::close(listen_fd_);
    throw Error(std::string("control channel: pipe: ") + std::strerror(errno));
  }
  thread_ = std::thread([this] { serve(); });
}

ControlServer::~ControlServer() {
  const char stop = 'x';
  if (::write(stop_pipe_[1], &stop, 1) < 0) HAEIN_LOG(kWarn, "control channel: cannot stop");
  if (thread_.joinable()) thread_.join();
  ::close(listen_fd_);
  ::close(stop_pipe_[0]);
  ::close(stop_pipe_[1]);
}

void ControlServer::serve() {
  for (;;) {
    pollfd entries[2] = {{listen_fd_, POLLIN, 0}, {stop_pipe_[0], POLLIN, 0}};
    if (::poll(entries, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (entries[1].revents != 0) return;
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    // One request per connection; a peer that sends nothing is dropped after 2 s.
    const auto request = read_line(fd, std::chrono::steady_clock::now() + std::chrono::seconds(2));
    std::function<void()> after_reply;
    if (request) {
      std::string reply;
      try {
        reply = handler_(*request, after_reply);
      } catch (const std::exception& error) {
        reply = std::string("ERROR ") + error.what();
      }
      write_all(fd, reply + "\n");
    }
    ::close(fd);
    if (after_reply) after_reply();
  }
}

std::optional<std::string> control_request(const std::string& host, int port,
                                           const std::string& request,
                                           std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  const std::string target = host == host_name() ? "127.0.0.1" : host;
  if (::getaddrinfo(target.c_str(), std::to_string(port).c_str(), &hints, &found) != 0)
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
        write_all(fd, request + "\n")) {
      reply = read_line(fd, deadline);
    }
    ::close(fd);
  }
  ::freeaddrinfo(found);
  return reply;
}

}  // namespace haein::runtime::detail
