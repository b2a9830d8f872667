//===- Rendezvous.cpp - torchrun-style processes meet over TCP ------------===//
//
// The wire: every message is [kind: 1 byte][length: 4 bytes, big-endian][payload]. A rank's first message is a
// hello ("megatron-rendezvous 1 rank R size N"); rank 0 answers welcome or refuse (with the reason). Then scatter
// payloads from rank 0, and while watching: done (this rank ends normally) and failure (rank 0 relays a peer's
// end). Every wait is a poll() against a deadline.
//
//===----------------------------------------------------------------------===//

#include "Rendezvous.h"

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <thread>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

namespace megatron::comm {

namespace {

using Clock = std::chrono::steady_clock;

enum Kind : char { Hello = 'H', Welcome = 'W', Refuse = 'R', Payload = 'S', Done = 'D', Failed = 'F' };
constexpr uint32_t kLargestPayload = 1 << 20;
const char kMagic[] = "megatron-rendezvous 1";

std::string seconds(std::chrono::milliseconds d) {
  char text[32];
  std::snprintf(text, sizeof text, "%g s", d.count() / 1000.0);
  return text;
}

int millisecondsUntil(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return static_cast<int>(std::clamp<int64_t>(left, 0, 1 << 30));
}

std::string ranksList(const std::vector<int> &ranks) {
  std::string text = ranks.size() == 1 ? "rank " : "ranks ";
  for (size_t i = 0; i < ranks.size(); ++i)
    text += (i ? ", " : "") + std::to_string(ranks[i]);
  return text;
}

bool sendMessage(int fd, Kind kind, const std::string &payload) {
  std::string bytes(5 + payload.size(), '\0');
  bytes[0] = kind;
  const uint32_t length = htonl(static_cast<uint32_t>(payload.size()));
  std::memcpy(&bytes[1], &length, 4);
  std::memcpy(&bytes[5], payload.data(), payload.size());
  for (size_t sent = 0; sent < bytes.size();) {
    ssize_t n = ::send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return false;
    sent += static_cast<size_t>(n);
  }
  return true;
}

enum class Read { Ok, Closed, TimedOut, Garbage };

/// Reads `size` bytes before `deadline`.
Read readBytes(int fd, char *data, size_t size, Clock::time_point deadline) {
  for (size_t got = 0; got < size;) {
    pollfd p{fd, POLLIN, 0};
    int ready = ::poll(&p, 1, millisecondsUntil(deadline));
    if (ready < 0 && errno == EINTR)
      continue;
    if (ready == 0)
      return Read::TimedOut;
    ssize_t n = ::recv(fd, data + got, size - got, 0);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return Read::Closed;
    got += static_cast<size_t>(n);
  }
  return Read::Ok;
}

Read readMessage(int fd, Clock::time_point deadline, char &kind, std::string &payload) {
  char header[5];
  if (Read r = readBytes(fd, header, 5, deadline); r != Read::Ok)
    return r;
  kind = header[0];
  uint32_t length = 0;
  std::memcpy(&length, header + 1, 4);
  length = ntohl(length);
  if (std::string("HWRSDF").find(kind) == std::string::npos || length > kLargestPayload)
    return Read::Garbage;
  payload.assign(length, '\0');
  return length ? readBytes(fd, payload.data(), length, deadline) : Read::Ok;
}

std::string peerAddress(const sockaddr_storage &address) {
  char host[NI_MAXHOST] = "?", port[NI_MAXSERV] = "?";
  getnameinfo(reinterpret_cast<const sockaddr *>(&address), sizeof address, host, sizeof host, port, sizeof port,
              NI_NUMERICHOST | NI_NUMERICSERV);
  std::string text = host;
  if (text.rfind("::ffff:", 0) == 0 && text.find('.') != std::string::npos)
    text = text.substr(7); // an IPv4 peer of the dual-stack socket
  return text + ":" + port;
}

void closeFd(int &fd) {
  if (fd >= 0)
    ::close(fd);
  fd = -1;
}

/// Rank 0's listening socket on every interface (IPv6 and IPv4 when the host has IPv6, else IPv4), like torch's
/// TCPStore: MASTER_ADDR is what the others dial, and may name this host by any of its addresses.
int listenOn(const RendezvousOptions &options, int backlog, std::string &error) {
  const int port = options.masterPort;
  const std::string named = options.portName + "=" + std::to_string(port);
  for (int family : {AF_INET6, AF_INET}) {
    int fd = ::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
      continue; // no IPv6 on this host
    int one = 1, zero = 0;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one); // a previous run's TIME_WAIT does not block us
    sockaddr_storage address{};
    socklen_t length;
    if (family == AF_INET6) {
      setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
      auto *a6 = reinterpret_cast<sockaddr_in6 *>(&address);
      a6->sin6_family = AF_INET6;
      a6->sin6_addr = in6addr_any;
      a6->sin6_port = htons(static_cast<uint16_t>(port));
      length = sizeof(sockaddr_in6);
    } else {
      auto *a4 = reinterpret_cast<sockaddr_in *>(&address);
      a4->sin_family = AF_INET;
      a4->sin_addr.s_addr = htonl(INADDR_ANY);
      a4->sin_port = htons(static_cast<uint16_t>(port));
      length = sizeof(sockaddr_in);
    }
    if (::bind(fd, reinterpret_cast<sockaddr *>(&address), length) == 0 && ::listen(fd, backlog) == 0)
      return fd;
    const int why = errno;
    ::close(fd);
    if (why == EADDRINUSE) {
      error = named + " is in use on this host (another job, or an earlier run that still holds it): rank 0 serves "
                      "the rendezvous there; " +
              options.portAdvice;
      return -1;
    }
    if (family == AF_INET6 && (why == EAFNOSUPPORT || why == EADDRNOTAVAIL))
      continue;
    error = "rank 0 cannot listen on " + named + ": " + std::strerror(why);
    return -1;
  }
  if (error.empty())
    error = "rank 0 cannot open a TCP socket: " + std::string(std::strerror(errno));
  return -1;
}

/// Connects to addr:port before `deadline`, retrying while nobody listens there yet; -1 and `error` otherwise.
int dial(const RendezvousOptions &options, Clock::time_point deadline, std::string &error) {
  const std::string &host = options.masterAddr;
  const int port = options.masterPort;
  const std::string where = host + ":" + std::to_string(port);
  std::string last = "nothing tried";
  auto pause = std::chrono::milliseconds(50);
  for (;;) {
    addrinfo hints{}, *found = nullptr;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int rc = getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found);
    if (rc != 0 && rc != EAI_AGAIN) {
      error = "MASTER_ADDR=" + host + " cannot be resolved: " + gai_strerror(rc);
      return -1;
    }
    if (rc == EAI_AGAIN)
      last = gai_strerror(rc);
    for (addrinfo *ai = found; ai; ai = ai->ai_next) {
      int fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
      if (fd < 0) {
        last = std::strerror(errno);
        continue;
      }
      int why = 0;
      if (::connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        why = errno;
        if (why == EINPROGRESS) {
          pollfd p{fd, POLLOUT, 0};
          if (::poll(&p, 1, millisecondsUntil(deadline)) <= 0) {
            why = ETIMEDOUT;
          } else {
            socklen_t size = sizeof why;
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &why, &size);
          }
        }
      }
      if (why == 0) {
        freeaddrinfo(found);
        ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        return fd;
      }
      ::close(fd);
      last = std::strerror(why);
    }
    if (found)
      freeaddrinfo(found);
    if (Clock::now() + pause >= deadline) {
      error = "timed out after " + seconds(options.timeout) + ": nobody answered at MASTER_ADDR:" + options.portName +
              " = " + where + " (" + last + "); is rank 0 running, with the same MASTER_ADDR and " + options.portName +
              "?";
      return -1;
    }
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::milliseconds(1000));
  }
}

} // namespace

//===- Joining ----------------------------------------------------------------===//

Rendezvous::Rendezvous(RendezvousOptions options) : options(std::move(options)) {}

std::unique_ptr<Rendezvous> Rendezvous::join(const RendezvousOptions &options, std::string &error) {
  error.clear();
  std::unique_ptr<Rendezvous> self(new Rendezvous(options));
  const int n = options.size;
  const auto deadline = Clock::now() + options.timeout;
  const std::string where = options.masterAddr + ":" + std::to_string(options.masterPort);
  self->peers.assign(options.rank == 0 ? n : 1, -1);
  if (n == 1)
    return self;

  if (options.rank != 0) {
    int &fd = self->peers[0];
    fd = dial(options, deadline, error);
    if (fd < 0)
      return nullptr;
    const std::string hello =
        std::string(kMagic) + " rank " + std::to_string(options.rank) + " size " + std::to_string(n);
    char kind = 0;
    std::string reply;
    // Wait a grace period beyond our own deadline: rank 0 (which may have started later) says who is missing.
    const auto grace = std::min<std::chrono::milliseconds>(options.timeout, std::chrono::seconds(30));
    Read r = sendMessage(fd, Hello, hello) ? readMessage(fd, deadline + grace, kind, reply) : Read::Closed;
    if (r == Read::Ok && kind == Welcome)
      return self;
    if (r == Read::Ok && kind == Refuse)
      error = reply;
    else if (r == Read::TimedOut)
      error = "timed out after " + seconds(options.timeout + grace) + ": connected to rank 0 at " + where +
              ", which never answered";
    else if (r == Read::Closed)
      error = "rank 0 at " + where + " closed the connection before answering (it failed?)";
    else
      error = where + " answered, but not as megatron's rank 0 (another service on " + options.portName + "?)";
    return nullptr;
  }

  // Rank 0: wait for ranks 1..n-1, once each, all with our WORLD_SIZE.
  int listener = listenOn(options, std::max(n, 16), error);
  if (listener < 0)
    return nullptr;
  std::vector<std::string> fromWhere(n);
  auto refuseAll = [&](const std::string &reason, int extra) {
    for (int fd : self->peers)
      if (fd >= 0)
        sendMessage(fd, Refuse, reason);
    if (extra >= 0)
      sendMessage(extra, Refuse, reason);
    error = reason;
    ::close(listener);
    if (extra >= 0)
      ::close(extra);
    return nullptr;
  };
  int arrived = 1;
  while (arrived < n) {
    pollfd p{listener, POLLIN, 0};
    int ready = ::poll(&p, 1, millisecondsUntil(deadline));
    if (ready < 0 && errno == EINTR)
      continue;
    if (ready == 0) {
      std::vector<int> missing;
      for (int r = 1; r < n; ++r)
        if (self->peers[r] < 0)
          missing.push_back(r);
      return refuseAll("timed out after " + seconds(options.timeout) + " waiting at " + options.portName + "=" +
                           std::to_string(options.masterPort) + " for " + ranksList(missing) + " of " +
                           std::to_string(n) + " (WORLD_SIZE=" + std::to_string(n) + "): " +
                           (missing.size() == 1 ? "it" : "they") + " never connected",
                       -1);
    }
    sockaddr_storage address{};
    socklen_t length = sizeof address;
    int fd = ::accept4(listener, reinterpret_cast<sockaddr *>(&address), &length, SOCK_CLOEXEC);
    if (fd < 0)
      continue;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    // A rank sends its hello as soon as it connects; anything else (a port scanner, another service) is dropped.
    char kind = 0;
    std::string hello;
    int rank = -1, size = -1;
    char magic[64] = {0};
    if (readMessage(fd, std::min(deadline, Clock::now() + std::chrono::seconds(5)), kind, hello) != Read::Ok ||
        kind != Hello ||
        std::sscanf(hello.c_str(), "megatron-rendezvous %63s rank %d size %d", magic, &rank, &size) != 3 ||
        std::string("megatron-rendezvous ") + magic != kMagic) {
      ::close(fd);
      continue;
    }
    const std::string who = peerAddress(address);
    if (size != n)
      return refuseAll("rank " + std::to_string(rank) + " (from " + who + ") has WORLD_SIZE=" +
                           std::to_string(size) + " but rank 0 has WORLD_SIZE=" + std::to_string(n) +
                           ": every process of the job must be given the same WORLD_SIZE",
                       fd);
    if (rank < 1 || rank >= n)
      return refuseAll("a process (from " + who + ") has RANK=" + std::to_string(rank) +
                           ", which is not between 1 and WORLD_SIZE-1=" + std::to_string(n - 1),
                       fd);
    if (self->peers[rank] >= 0)
      return refuseAll("two processes have RANK=" + std::to_string(rank) + " (from " + fromWhere[rank] + " and " +
                           who + "): every rank of 0..WORLD_SIZE-1 must be started exactly once",
                       fd);
    self->peers[rank] = fd;
    fromWhere[rank] = who;
    ++arrived;
  }
  ::close(listener);
  for (int r = 1; r < n; ++r)
    sendMessage(self->peers[r], Welcome, "");
  return self;
}

//===- Exchanges ----------------------------------------------------------------===//

std::string Rendezvous::scatter(const std::vector<std::string> &perRank, std::string &mine) {
  if (watcher)
    return "Rendezvous::scatter after watch(): the watcher owns the connections";
  if (options.rank == 0) {
    if (static_cast<int>(perRank.size()) != options.size)
      return "Rendezvous::scatter: " + std::to_string(perRank.size()) + " payloads for " +
             std::to_string(options.size) + " ranks";
    for (int r = 1; r < options.size; ++r)
      if (!sendMessage(peers[r], Payload, perRank[r]))
        return "rank " + std::to_string(r) + " closed its connection to rank 0 (it failed?)";
    mine = perRank[0];
    return "";
  }
  char kind = 0;
  std::string payload;
  switch (readMessage(peers[0], Clock::now() + options.timeout, kind, payload)) {
  case Read::Ok:
    if (kind == Payload) {
      mine = std::move(payload);
      return "";
    }
    if (kind == Refuse || kind == Failed)
      return payload;
    return "rank 0 sent an unexpected message";
  case Read::TimedOut:
    return "timed out after " + seconds(options.timeout) + " waiting for rank 0's data";
  default:
    return "rank 0 closed the connection (it failed?)";
  }
}

std::string Rendezvous::broadcast(std::string &data) {
  return scatter(std::vector<std::string>(options.rank == 0 ? options.size : 0, data), data);
}

//===- Watching -----------------------------------------------------------------===//

struct Rendezvous::Watcher {
  std::thread thread;
  int wake[2] = {-1, -1}; // a byte on wake[1] makes the thread look at `stop` and `finishing` again
  std::mutex mutex;
  std::condition_variable changed;
  bool stop = false, finishing = false, over = false, settled = false;
};

void Rendezvous::watch(std::function<void(const std::string &)> onFailure, std::chrono::milliseconds timeout,
                       std::string timeoutWhat) {
  if (watcher || options.size == 1)
    return;
  watcher = std::make_unique<Watcher>();
  Watcher &w = *watcher;
  if (::pipe2(w.wake, O_CLOEXEC) != 0)
    w.wake[0] = w.wake[1] = -1;
  const Clock::time_point deadline = timeout.count() > 0 ? Clock::now() + timeout : Clock::time_point{};
  w.thread = std::thread([this, &w, onFailure = std::move(onFailure), deadline, timeout, timeoutWhat] {
    const int me = options.rank;
    std::vector<bool> finished(peers.size(), false);
    auto fail = [&](const std::string &message) {
      if (me == 0)
        for (size_t r = 1; r < peers.size(); ++r)
          if (peers[r] >= 0 && !finished[r])
            sendMessage(peers[r], Failed, message);
      onFailure(message);
    };
    for (;;) {
      bool finishing;
      {
        std::lock_guard<std::mutex> lock(w.mutex);
        if (w.stop)
          break;
        finishing = w.finishing;
      }
      std::vector<pollfd> polled{{w.wake[0], POLLIN, 0}};
      std::vector<int> owner{-1};
      for (size_t r = 0; r < peers.size(); ++r)
        if (peers[r] >= 0 && !finished[r]) {
          polled.push_back({peers[r], POLLIN, 0});
          owner.push_back(static_cast<int>(r));
        }
      if (me == 0 && finishing && polled.size() == 1)
        break; // every other rank has finished
      int waitMs = -1;
      bool deadlineSet = deadline != Clock::time_point{};
      {
        std::lock_guard<std::mutex> lock(w.mutex);
        deadlineSet = deadlineSet && !w.settled;
      }
      if (deadlineSet) {
        if (Clock::now() >= deadline) {
          fail(timeoutWhat + " timed out after " + seconds(timeout));
          break;
        }
        waitMs = std::min(millisecondsUntil(deadline) + 1, 1000);
      }
      if (::poll(polled.data(), polled.size(), waitMs) <= 0)
        continue;
      if (polled[0].revents) {
        char byte;
        (void)!::read(w.wake[0], &byte, 1);
      }
      std::string failure;
      for (size_t i = 1; i < polled.size() && failure.empty(); ++i) {
        if (!polled[i].revents)
          continue;
        const int r = owner[i];
        char kind = 0;
        std::string payload;
        Read got = readMessage(peers[r], Clock::now() + std::chrono::seconds(5), kind, payload);
        if (got == Read::Ok && kind == Done)
          finished[r] = true;
        else if (got == Read::Ok && kind == Failed)
          failure = payload;
        else if (got != Read::TimedOut)
          failure = me == 0 ? "world rank " + std::to_string(r) +
                                  " ended without finishing (its process exited or was killed, and its connection "
                                  "to rank 0 closed)"
                            : "rank 0 ended without finishing (its process exited or was killed, and the "
                              "connection to it closed)";
      }
      if (!failure.empty()) {
        fail(failure);
        break;
      }
    }
    std::lock_guard<std::mutex> lock(w.mutex);
    w.over = true;
    w.changed.notify_all();
  });
}

void Rendezvous::settle() {
  if (!watcher)
    return;
  std::lock_guard<std::mutex> lock(watcher->mutex);
  watcher->settled = true;
}

void Rendezvous::finish() {
  if (watcher) {
    Watcher &w = *watcher;
    std::unique_lock<std::mutex> lock(w.mutex);
    if (options.rank == 0) {
      // Keep watching (and relaying failures) until every other rank has finished: the job is watched to its end.
      w.finishing = true;
      if (w.wake[1] >= 0)
        (void)!::write(w.wake[1], "f", 1);
      w.changed.wait(lock, [&] { return w.over; });
    } else {
      w.stop = true;
      if (w.wake[1] >= 0)
        (void)!::write(w.wake[1], "s", 1);
    }
    lock.unlock();
    w.thread.join();
    closeFd(w.wake[0]);
    closeFd(w.wake[1]);
    watcher.reset();
  }
  if (options.rank != 0 && !peers.empty() && peers[0] >= 0)
    sendMessage(peers[0], Done, "");
  for (int &fd : peers)
    closeFd(fd);
}

Rendezvous::~Rendezvous() {
  if (watcher) {
    {
      std::lock_guard<std::mutex> lock(watcher->mutex);
      watcher->stop = true;
    }
    if (watcher->wake[1] >= 0)
      (void)!::write(watcher->wake[1], "s", 1);
    watcher->thread.join();
    closeFd(watcher->wake[0]);
    closeFd(watcher->wake[1]);
  }
  for (int &fd : peers)
    closeFd(fd);
}

int pickFreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_ANY);
  socklen_t length = sizeof address;
  int port = -1;
  if (fd >= 0 && ::bind(fd, reinterpret_cast<sockaddr *>(&address), sizeof address) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr *>(&address), &length) == 0)
    port = ntohs(address.sin_port);
  if (fd >= 0)
    ::close(fd);
  return port;
}

} // namespace megatron::comm
