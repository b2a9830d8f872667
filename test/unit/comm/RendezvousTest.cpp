//===- RendezvousTest.cpp - torchrun-style processes meet over TCP -----------===//
//
// Rendezvous (runtime/comm/Rendezvous.h) with its ranks as threads of this process, on a free port of 127.0.0.1:
// the meeting, scatter and broadcast from rank 0 (the NCCL unique id, later), and every failure with its message
// and a bounded wait: ranks that never arrive, rank 0 that never answers, the port in use, WORLD_SIZE that differs,
// a RANK given twice, an unresolvable MASTER_ADDR; then the watch that ends a joined job when one of its processes
// ends without finishing. Also MEGATRON_RENDEZVOUS_TIMEOUT, and connectWorld()'s torchrun path up to the
// rendezvous (MPI is never started here). The MPI join itself runs in test/tools/megatron-run/torchrun*.test.
//
//===----------------------------------------------------------------------===//

#include "runtime/comm/Launch.h"
#include "runtime/comm/MpiCommunicator.h"
#include "runtime/comm/Rendezvous.h"

#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <thread>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

using namespace megatron::comm;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

#define EXPECT_CONTAINS(text, part) EXPECT_NE(std::string(text).find(part), std::string::npos) << (text)

namespace {

RendezvousOptions at(int port, int rank, int size, std::chrono::milliseconds timeout = 20s,
                     std::string host = "127.0.0.1") {
  RendezvousOptions options;
  options.masterAddr = std::move(host);
  options.masterPort = port;
  options.rank = rank;
  options.size = size;
  options.timeout = timeout;
  return options;
}

struct Joined {
  std::unique_ptr<Rendezvous> rendezvous;
  std::string error;
};

/// Rendezvous::join for every options[i], each on its own thread, as the processes of a job would.
std::vector<Joined> meet(const std::vector<RendezvousOptions> &options) {
  std::vector<Joined> joined(options.size());
  std::vector<std::thread> threads;
  for (size_t i = 0; i < options.size(); ++i)
    threads.emplace_back([&, i] { joined[i].rendezvous = Rendezvous::join(options[i], joined[i].error); });
  for (std::thread &t : threads)
    t.join();
  return joined;
}

/// Runs body(i) on a thread per element and waits for all.
template <typename Body> void onEach(size_t n, Body body) {
  std::vector<std::thread> threads;
  for (size_t i = 0; i < n; ++i)
    threads.emplace_back([&, i] { body(i); });
  for (std::thread &t : threads)
    t.join();
}

double secondsSince(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

TEST(Rendezvous, FourRanksMeetThenScatterAndBroadcast) {
  const int port = pickFreePort();
  ASSERT_GT(port, 0);
  // "localhost" may resolve to ::1 first: rank 0 listens on IPv6 and IPv4.
  std::vector<Joined> joined =
      meet({at(port, 0, 4), at(port, 1, 4), at(port, 2, 4, 20s, "localhost"), at(port, 3, 4)});
  for (size_t r = 0; r < joined.size(); ++r) {
    ASSERT_NE(joined[r].rendezvous, nullptr) << joined[r].error;
    EXPECT_EQ(joined[r].error, "");
    EXPECT_EQ(joined[r].rendezvous->rank(), static_cast<int>(r));
    EXPECT_EQ(joined[r].rendezvous->size(), 4);
  }
  std::vector<std::string> mine(4), broadcast(4), errors(4);
  std::string id(128, '\0'); // like NCCL's unique id: binary, zeros included
  for (int i = 0; i < 128; ++i)
    id[i] = static_cast<char>(i * 37);
  onEach(4, [&](size_t r) {
    std::vector<std::string> payloads;
    if (r == 0)
      payloads = {"for 0", "for 1", std::string(100000, 'x'), ""};
    errors[r] = joined[r].rendezvous->scatter(payloads, mine[r]);
    if (errors[r].empty()) {
      broadcast[r] = r == 0 ? id : "stale";
      errors[r] = joined[r].rendezvous->broadcast(broadcast[r]);
    }
  });
  for (int r = 0; r < 4; ++r) {
    EXPECT_EQ(errors[r], "") << "rank " << r;
    EXPECT_EQ(broadcast[r], id) << "rank " << r;
  }
  EXPECT_EQ(mine[0], "for 0");
  EXPECT_EQ(mine[1], "for 1");
  EXPECT_EQ(mine[2], std::string(100000, 'x'));
  EXPECT_EQ(mine[3], "");
}

TEST(Rendezvous, AWorldOfOneNeedsNoPeer) {
  std::string error;
  std::unique_ptr<Rendezvous> alone = Rendezvous::join(at(1, 0, 1), error);
  ASSERT_NE(alone, nullptr) << error;
  std::string data = "id";
  EXPECT_EQ(alone->broadcast(data), "");
  EXPECT_EQ(data, "id");
}

TEST(Rendezvous, RanksThatNeverArriveAreNamed) {
  const int port = pickFreePort();
  const auto start = Clock::now();
  std::vector<Joined> joined = meet({at(port, 0, 4, 1s), at(port, 2, 4, 1s)});
  const std::string expected = "timed out after 1 s waiting at MASTER_PORT=" + std::to_string(port) +
                               " for ranks 1, 3 of 4 (WORLD_SIZE=4): they never connected";
  EXPECT_EQ(joined[0].rendezvous, nullptr);
  EXPECT_EQ(joined[0].error, expected);
  // Rank 2 was there: rank 0 tells it who was missing.
  EXPECT_EQ(joined[1].rendezvous, nullptr);
  EXPECT_EQ(joined[1].error, expected);
  EXPECT_LT(secondsSince(start), 5);

  joined = meet({at(port, 0, 2, 500ms)});
  EXPECT_EQ(joined[0].error, "timed out after 0.5 s waiting at MASTER_PORT=" + std::to_string(port) +
                                 " for rank 1 of 2 (WORLD_SIZE=2): it never connected");
}

TEST(Rendezvous, RankZeroThatNeverAnswers) {
  const int port = pickFreePort();
  const auto start = Clock::now();
  std::vector<Joined> joined = meet({at(port, 1, 2, 500ms)});
  EXPECT_EQ(joined[0].rendezvous, nullptr);
  EXPECT_EQ(joined[0].error, "timed out after 0.5 s: nobody answered at MASTER_ADDR:MASTER_PORT = 127.0.0.1:" +
                                 std::to_string(port) +
                                 " (Connection refused); is rank 0 running, with the same MASTER_ADDR and "
                                 "MASTER_PORT?");
  EXPECT_LT(secondsSince(start), 3);
}

TEST(Rendezvous, ThePortInUse) {
  // Whoever holds the port, on every interface or on one address.
  for (in_addr_t address : {htonl(INADDR_ANY), htonl(INADDR_LOOPBACK)}) {
    int holder = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = address;
    ASSERT_EQ(::bind(holder, reinterpret_cast<sockaddr *>(&a), sizeof a), 0);
    ASSERT_EQ(::listen(holder, 4), 0);
    socklen_t length = sizeof a;
    ::getsockname(holder, reinterpret_cast<sockaddr *>(&a), &length);
    const int port = ntohs(a.sin_port);
    const auto start = Clock::now();
    std::vector<Joined> joined = meet({at(port, 0, 2, 10s)});
    EXPECT_EQ(joined[0].rendezvous, nullptr);
    EXPECT_EQ(joined[0].error, "MASTER_PORT=" + std::to_string(port) +
                                   " is in use on this host (another job, or an earlier run that still holds it): "
                                   "rank 0 serves the rendezvous there; choose a free MASTER_PORT");
    EXPECT_LT(secondsSince(start), 1); // at once, not after the timeout
    ::close(holder);
  }
}

TEST(Rendezvous, WorldSizesThatDisagree) {
  const int port = pickFreePort();
  const auto start = Clock::now();
  std::vector<Joined> joined = meet({at(port, 0, 2, 10s), at(port, 1, 3, 10s)});
  for (const Joined &j : joined) {
    EXPECT_EQ(j.rendezvous, nullptr);
    EXPECT_CONTAINS(j.error, "rank 1 (from 127.0.0.1:");
    EXPECT_CONTAINS(j.error, ") has WORLD_SIZE=3 but rank 0 has WORLD_SIZE=2: every process of the job must be "
                             "given the same WORLD_SIZE");
  }
  EXPECT_LT(secondsSince(start), 5); // as soon as rank 1 arrives
}

TEST(Rendezvous, ARankGivenTwice) {
  const int port = pickFreePort();
  std::vector<Joined> joined = meet({at(port, 0, 3, 10s), at(port, 1, 3, 10s), at(port, 1, 3, 10s)});
  for (const Joined &j : joined) {
    EXPECT_EQ(j.rendezvous, nullptr);
    EXPECT_CONTAINS(j.error, "two processes have RANK=1 (from 127.0.0.1:");
    EXPECT_CONTAINS(j.error, "every rank of 0..WORLD_SIZE-1 must be started exactly once");
  }
}

TEST(Rendezvous, AnUnresolvableMasterAddr) {
  const auto start = Clock::now();
  std::vector<Joined> joined = meet({at(pickFreePort(), 1, 2, 1s, "no-such-host.invalid")});
  EXPECT_EQ(joined[0].rendezvous, nullptr);
  // Said at once, or (where name resolution is temporarily unavailable) after the timeout.
  EXPECT_CONTAINS(joined[0].error, "no-such-host.invalid");
  EXPECT_LT(secondsSince(start), 5);
}

/// What the watchers of a job reported.
struct Reports {
  std::mutex mutex;
  std::vector<std::string> messages = std::vector<std::string>(8);
  std::function<void(const std::string &)> of(int rank) {
    return [this, rank](const std::string &message) {
      std::lock_guard<std::mutex> lock(mutex);
      messages[rank] = message;
    };
  }
  std::string operator[](int rank) {
    std::lock_guard<std::mutex> lock(mutex);
    return messages[rank];
  }
};

/// Three ranks meet on `port`, each watched, reporting to `reports` (a rank that failed to join is left unwatched).
std::vector<Joined> meetWatched(int port, Reports &reports) {
  std::vector<Joined> joined = meet({at(port, 0, 3), at(port, 1, 3), at(port, 2, 3)});
  for (int r = 0; r < 3; ++r)
    if (joined[r].rendezvous)
      joined[r].rendezvous->watch(reports.of(r));
  return joined;
}

/// Polls until `done` or 5 s.
template <typename Done> bool eventually(Done done) {
  for (auto until = Clock::now() + 5s; Clock::now() < until; std::this_thread::sleep_for(10ms))
    if (done())
      return true;
  return done();
}

TEST(Rendezvous, AProcessThatEndsWithoutFinishingEndsTheJob) {
  const int port = pickFreePort();
  Reports reports;
  std::vector<Joined> joined = meetWatched(port, reports);
  for (int r = 0; r < 3; ++r)
    ASSERT_NE(joined[r].rendezvous, nullptr) << joined[r].error;
  joined[2].rendezvous.reset(); // rank 2's process ends (crash, kill, MPI_Abort): its connection closes
  const std::string expected = "world rank 2 ended without finishing (its process exited or was killed, and its "
                               "connection to rank 0 closed)";
  EXPECT_TRUE(eventually([&] { return !reports[0].empty() && !reports[1].empty(); }));
  EXPECT_EQ(reports[0], expected);
  EXPECT_EQ(reports[1], expected); // relayed by rank 0

  // Rank 0's end reaches the others.
  joined = meet({at(port, 0, 2), at(port, 1, 2)});
  Reports second;
  for (int r = 0; r < 2; ++r)
    joined[r].rendezvous->watch(second.of(r));
  joined[0].rendezvous.reset();
  EXPECT_TRUE(eventually([&] { return !second[1].empty(); }));
  EXPECT_EQ(second[1], "rank 0 ended without finishing (its process exited or was killed, and the connection to "
                       "it closed)");
}

TEST(Rendezvous, FinishingIsNotAFailure) {
  const int port = pickFreePort();
  Reports reports;
  std::vector<Joined> joined = meetWatched(port, reports);
  for (int r = 0; r < 3; ++r)
    ASSERT_NE(joined[r].rendezvous, nullptr) << joined[r].error;
  // Rank 0 finishes first: it keeps watching until the others have finished.
  std::atomic<bool> rankZeroFinished{false};
  std::thread zero([&] {
    joined[0].rendezvous->finish();
    rankZeroFinished = true;
  });
  std::this_thread::sleep_for(200ms);
  EXPECT_FALSE(rankZeroFinished);
  joined[1].rendezvous->finish();
  joined[1].rendezvous.reset();
  std::this_thread::sleep_for(100ms);
  EXPECT_FALSE(rankZeroFinished);
  joined[2].rendezvous->finish();
  zero.join();
  EXPECT_TRUE(rankZeroFinished);
  for (int r = 0; r < 3; ++r)
    EXPECT_EQ(reports[r], "") << "rank " << r;
}

TEST(Rendezvous, TheDeadlineOfAWatchedStep) {
  const int port = pickFreePort();
  std::vector<Joined> joined = meet({at(port, 0, 2), at(port, 1, 2)});
  Reports reports;
  const auto start = Clock::now();
  for (int r = 0; r < 2; ++r)
    joined[r].rendezvous->watch(reports.of(r), 300ms, "joining the world");
  EXPECT_TRUE(eventually([&] { return !reports[0].empty() && !reports[1].empty(); }));
  EXPECT_LT(secondsSince(start), 3);
  for (int r = 0; r < 2; ++r)
    EXPECT_EQ(reports[r], "joining the world timed out after 0.3 s");

  // Settled in time: no report.
  joined = meet({at(port, 0, 2), at(port, 1, 2)});
  Reports settled;
  for (int r = 0; r < 2; ++r) {
    joined[r].rendezvous->watch(settled.of(r), 300ms, "joining the world");
    joined[r].rendezvous->settle();
  }
  std::this_thread::sleep_for(600ms);
  EXPECT_EQ(settled[0], "");
  EXPECT_EQ(settled[1], "");
  joined[1].rendezvous->finish();
  joined[0].rendezvous->finish();
}

TEST(Rendezvous, TimeoutFromTheEnvironment) {
  const Environment torchrun = {{"RANK", "1"}, {"WORLD_SIZE", "2"}, {"LOCAL_RANK", "1"},
                                {"MASTER_ADDR", "127.0.0.1"}, {"MASTER_PORT", "29500"}};
  std::string error;
  EXPECT_EQ(detectLaunch(torchrun, error).rendezvousTimeout, 600s);
  Environment env = torchrun;
  env["MEGATRON_RENDEZVOUS_TIMEOUT"] = "2.5";
  EXPECT_EQ(detectLaunch(env, error).rendezvousTimeout, 2500ms);
  EXPECT_EQ(error, "");
  for (const char *bad : {"0", "-1", " 5", "5s", "", "abc"}) {
    env["MEGATRON_RENDEZVOUS_TIMEOUT"] = bad;
    EXPECT_EQ(detectLaunch(env, error).launcher, Launcher::None);
    EXPECT_EQ(error, std::string("MEGATRON_RENDEZVOUS_TIMEOUT=\"") + bad + "\" is not a positive number of seconds");
  }
}

TEST(Rendezvous, ThePortThatRankZeroServes) {
  const Environment torchrun = {{"RANK", "1"}, {"WORLD_SIZE", "2"}, {"LOCAL_RANK", "1"},
                                {"MASTER_ADDR", "127.0.0.1"}, {"MASTER_PORT", "29500"}};
  std::string error;
  LaunchInfo info = detectLaunch(torchrun, error);
  EXPECT_EQ(info.rendezvousPort, 29500);
  EXPECT_EQ(info.rendezvousPortName, "MASTER_PORT");
  // torchrun's agent serves its own store on MASTER_PORT (static rendezvous; c10d since torch 2.4).
  Environment env = torchrun;
  env["TORCHELASTIC_USE_AGENT_STORE"] = "True";
  info = detectLaunch(env, error);
  EXPECT_EQ(error, "");
  EXPECT_EQ(info.rendezvousPort, 29501);
  EXPECT_EQ(info.rendezvousPortName, "MASTER_PORT+1");
  EXPECT_EQ(info.describe(),
            "torchrun: world rank 1 of 2, local rank 1, master 127.0.0.1:29500, rendezvous port 29501");
  env["MASTER_PORT"] = "65535";
  EXPECT_EQ(detectLaunch(env, error).launcher, Launcher::None);
  EXPECT_EQ(error, "MASTER_PORT=65535 is torchrun's own store (TORCHELASTIC_USE_AGENT_STORE=True), and rank 0's "
                   "rendezvous cannot take MASTER_PORT+1: set MEGATRON_RENDEZVOUS_PORT");
  env["MEGATRON_RENDEZVOUS_PORT"] = "31000"; // chosen by hand: wins
  info = detectLaunch(env, error);
  EXPECT_EQ(info.rendezvousPort, 31000);
  EXPECT_EQ(info.rendezvousPortName, "MEGATRON_RENDEZVOUS_PORT");
  env["TORCHELASTIC_USE_AGENT_STORE"] = "False";
  env["MASTER_PORT"] = "29500";
  EXPECT_EQ(detectLaunch(env, error).rendezvousPort, 31000);
  env["MEGATRON_RENDEZVOUS_PORT"] = "0";
  EXPECT_EQ(detectLaunch(env, error).launcher, Launcher::None);
  EXPECT_EQ(error, "MEGATRON_RENDEZVOUS_PORT=0 is not a TCP port (1 to 65535)");
}

TEST(Rendezvous, ConnectWorldMeetsAtMasterPort) {
  // connectWorld()'s torchrun path up to the rendezvous: here rank 0 finds its port taken, before MPI starts.
  int holder = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  ASSERT_EQ(::bind(holder, reinterpret_cast<sockaddr *>(&a), sizeof a), 0);
  ASSERT_EQ(::listen(holder, 4), 0);
  socklen_t length = sizeof a;
  ::getsockname(holder, reinterpret_cast<sockaddr *>(&a), &length);
  const std::string port = std::to_string(ntohs(a.sin_port));
  std::string error;
  LaunchInfo info = detectLaunch({{"RANK", "0"},
                                  {"WORLD_SIZE", "2"},
                                  {"LOCAL_RANK", "0"},
                                  {"MASTER_ADDR", "127.0.0.1"},
                                  {"MASTER_PORT", port},
                                  {"MEGATRON_RENDEZVOUS_TIMEOUT", "5"}},
                                 error);
  ASSERT_EQ(error, "");
  EXPECT_EQ(connectWorld(info, error), nullptr);
  if (mpiAvailable())
    EXPECT_CONTAINS(error, "connecting the world (torchrun: world rank 0 of 2, local rank 0, master 127.0.0.1:" +
                               port + "): MASTER_PORT=" + port + " is in use on this host");
  else
    EXPECT_CONTAINS(error, "this build has no MPI communicator");
  ::close(holder);
}

} // namespace
