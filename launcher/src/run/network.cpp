// Where rank 0 is reached from every host (MASTER_ADDR) and which interface a job uses.
// A hostname is not enough: Debian maps a host's own name to 127.0.1.1, so the ranks on
// rank 0's host would listen on loopback while the others try to reach them there.
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <set>

#include "haein/common/error.hpp"
#include "haein/common/process.hpp"
#include "job.hpp"

namespace haein::launcher::detail {

namespace {

bool loopback(const in_addr& address) { return (ntohl(address.s_addr) >> 24) == 127; }

std::string text_of(const in_addr& address) {
  char text[INET_ADDRSTRLEN] = {};
  ::inet_ntop(AF_INET, &address, text, sizeof text);
  return text;
}

/// `host`'s IPv4 address as this host resolves it; throws naming the host.
in_addr resolve(const std::string& host) {
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  const int error = ::getaddrinfo(host.c_str(), nullptr, &hints, &found);
  if (error != 0 || found == nullptr) {
    throw InvalidArgument("host '" + host + "' has no IPv4 address here: " + ::gai_strerror(error) +
                          "; check the cluster file, /etc/hosts or DNS");
  }
  const in_addr address = reinterpret_cast<const sockaddr_in*>(found->ai_addr)->sin_addr;
  ::freeaddrinfo(found);
  return address;
}

/// The local address the kernel would send from to reach `peer` (no packet is sent).
in_addr source_towards(const in_addr& peer) {
  const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw Error("socket: cannot find the route to the other hosts");
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(9);  // discard; connect() on UDP only picks the route
  to.sin_addr = peer;
  sockaddr_in from{};
  socklen_t length = sizeof from;
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to) == 0 &&
                  ::getsockname(fd, reinterpret_cast<sockaddr*>(&from), &length) == 0;
  ::close(fd);
  if (!ok) throw InvalidArgument("no route from this host to " + text_of(peer));
  return from.sin_addr;
}

}  // namespace

bool is_this_host(const std::string& host) {
  return host == host_name() || host == "localhost" || host == "127.0.0.1";
}

std::string interface_address(const std::string& interface) {
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0) throw Error("getifaddrs: cannot list this host's interfaces");
  std::string address;
  std::set<std::string> names;
  for (const ifaddrs* entry = list; entry != nullptr; entry = entry->ifa_next) {
    if (entry->ifa_addr == nullptr || entry->ifa_addr->sa_family != AF_INET) continue;
    names.insert(entry->ifa_name);
    if (interface == entry->ifa_name && address.empty())
      address = text_of(reinterpret_cast<const sockaddr_in*>(entry->ifa_addr)->sin_addr);
  }
  ::freeifaddrs(list);
  if (address.empty()) {
    std::string known;
    for (const std::string& name : names) known += (known.empty() ? "" : ", ") + name;
    throw InvalidArgument("--iface " + interface + ": no IPv4 interface of that name on " +
                          host_name() + " (it has " + known + ")");
  }
  return address;
}

std::string master_address(const Placement& placement, const std::string& interface) {
  std::set<std::string> hosts;
  for (const RankPlacement& r : placement.ranks) hosts.insert(r.host);
  if (hosts.size() < 2) return {};  // one host: its name serves
  const std::string& first = placement.ranks.front().host;
  if (is_this_host(first)) {
    if (!interface.empty()) return interface_address(interface);
    for (const std::string& other : hosts) {
      if (is_this_host(other)) continue;
      const in_addr peer = resolve(other);
      if (loopback(peer)) {
        throw InvalidArgument("host '" + other + "' resolves to " + text_of(peer) +
                              " (loopback) here; list the cluster's hosts by their network "
                              "addresses in /etc/hosts or DNS");
      }
      const in_addr mine = source_towards(peer);
      if (!loopback(mine)) return text_of(mine);
    }
    throw InvalidArgument("cannot tell which address of " + host_name() +
                          " the other hosts reach; give --iface");
  }
  const in_addr address = resolve(first);
  if (loopback(address)) {
    throw InvalidArgument("rank 0's host '" + first + "' resolves to " + text_of(address) +
                          " (loopback) here, which the other hosts cannot reach; list the "
                          "hosts by their network addresses in /etc/hosts or DNS");
  }
  return text_of(address);
}

}  // namespace haein::launcher::detail
