//===- MpiJoin.cpp - One MPI world from processes started one by one ------===//
//
// Processes that no mpirun started are MPI "singletons": each is a world of one, and Open MPI 4 connects two of
// them (MPI_Comm_connect/accept, MPI_Comm_join) only through a shared data server, ompi-server; without one they
// fail with "MPI_Comm_join ... Underlying runtime environment does not support join functionality". So:
//   1. the ranks meet over TCP at MASTER_ADDR:MASTER_PORT (Rendezvous.h: who is there, the same WORLD_SIZE);
//   2. rank 0 starts ompi-server, opens one MPI port per other rank and sends every rank the server's address
//      (which each sets as OMPI_MCA_pmix_server_uri before MPI_Init) and its port;
//   3. the world grows one rank at a time in RANK order: ranks 0..k-1 accept on port k (collectively), rank k
//      connects, and MPI_Intercomm_merge puts the newcomer last. One port per rank, because Open MPI 4 hangs when
//      several processes connect to one port at once.
//   4. ompi-server is stopped (only connecting needs it) and the communicator is MpiCommunicator's world
//      (adoptMpiWorld).
// MPI cannot wake a rank blocked in a call with a peer that died, and MPI_Abort in a joined singleton ends only
// its own process; the rendezvous's connections stay open to watch the job instead (Rendezvous::watch): when a rank
// ends without MPI_Finalize, the others end too, naming it. MPI_Finalize tells the peers (an attribute of
// MPI_COMM_SELF, whose delete callback MPI_Finalize runs first).
//
//===----------------------------------------------------------------------===//

#include "MpiJoin.h"

#include "MpiCommunicator.h"
#include "Rendezvous.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>

#if MEGATRON_HAVE_MPI

#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>

#include <csignal>
#include <thread>

#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

namespace megatron::comm {

namespace {

using Clock = std::chrono::steady_clock;

/// The joined process's rendezvous, alive until MPI_Finalize (or the process's end): its watcher must outlive
/// every communicator. Deliberately leaked.
Rendezvous *joined = nullptr;

int finishAtFinalize(MPI_Comm, int, void *, void *) {
  if (joined)
    joined->finish();
  return MPI_SUCCESS;
}

std::string mpiError(const char *call, int code) {
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(code, text, &length);
  return std::string(call) + " failed: " + std::string(text, static_cast<size_t>(length));
}

/// ompi-server next to Open MPI's mpirun (found when configured), else on PATH; "" if none.
std::string findOmpiServer() {
#ifdef MEGATRON_OMPI_SERVER_PATH
  if (::access(MEGATRON_OMPI_SERVER_PATH, X_OK) == 0)
    return MEGATRON_OMPI_SERVER_PATH;
#endif
  const char *path = std::getenv("PATH");
  std::string dirs = path ? path : "/usr/bin:/bin";
  for (size_t begin = 0; begin <= dirs.size();) {
    size_t end = dirs.find(':', begin);
    if (end == std::string::npos)
      end = dirs.size();
    std::string candidate = (end > begin ? dirs.substr(begin, end - begin) : ".") + "/ompi-server";
    if (::access(candidate.c_str(), X_OK) == 0)
      return candidate;
    begin = end + 1;
  }
  return "";
}

/// Starts `ompi-server --no-daemonize -r FILE` and reads the address it reports there (on a pipe it would sit in
/// stdout's buffer). The server dies with this process (PR_SET_PDEATHSIG) at the latest. -1 and `error` on failure.
pid_t startOmpiServer(Clock::time_point deadline, std::string &uri, std::string &error) {
  const std::string program = findOmpiServer();
  if (program.empty()) {
    error = "ompi-server (Open MPI's data server, package openmpi-bin) is not on PATH; rank 0 needs it to connect "
            "processes that mpirun did not start";
    return -1;
  }
  const char *tmp = std::getenv("TMPDIR");
  std::string directory = std::string(tmp && *tmp ? tmp : "/tmp") + "/megatron-ompi-server.XXXXXX";
  if (!::mkdtemp(directory.data())) {
    error = "cannot create a directory for ompi-server's address in " + directory + ": " + std::strerror(errno);
    return -1;
  }
  const std::string file = directory + "/uri";
  const pid_t parent = ::getpid();
  const char *argv[] = {program.c_str(), "--no-daemonize", "-r", file.c_str(), nullptr};
  pid_t pid = ::fork();
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent)
      ::_exit(1);
    ::execv(argv[0], const_cast<char *const *>(argv));
    ::_exit(127);
  }
  if (pid < 0)
    error = std::string("fork: ") + std::strerror(errno);
  // The address is one line; wait until the whole line is there.
  for (int status = 0; pid > 0 && error.empty();) {
    if (std::FILE *f = std::fopen(file.c_str(), "r")) {
      char line[4096];
      const bool whole = std::fgets(line, sizeof line, f) && std::strchr(line, '\n');
      std::fclose(f);
      if (whole) {
        uri.assign(line, std::strchr(line, '\n'));
        break;
      }
    }
    if (::waitpid(pid, &status, WNOHANG) == pid) {
      error = program + " ended (" +
              (WIFEXITED(status) ? "exit status " + std::to_string(WEXITSTATUS(status)) : std::string("killed")) +
              ") before reporting its address; see its messages above";
      pid = -1;
    } else if (Clock::now() > deadline) {
      error = program + " did not report its address in time";
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  std::remove(file.c_str());
  ::rmdir(directory.c_str());
  if (!error.empty() && pid > 0) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
  }
  return error.empty() ? pid : -1;
}

void stopOmpiServer(pid_t pid) {
  ::kill(pid, SIGKILL); // it keeps nothing worth saving: it only served the connections
  ::waitpid(pid, nullptr, 0);
}

[[noreturn]] void endProcess(int rank, int size, const std::string &message) {
  std::fflush(stdout);
  std::fprintf(stderr,
               "megatron-comm: world rank %d of %d: %s; ending this process too (MPI cannot wake the calls that "
               "wait for that rank)\n",
               rank, size, message.c_str());
  std::fflush(stderr);
  std::_Exit(1);
}

/// Open MPI's shared-memory transport does not connect processes that mpirun did not start together: TCP must
/// be allowed.
std::string checkTransports() {
  const char *btl = std::getenv("OMPI_MCA_btl");
  if (!btl || !*btl)
    return "";
  std::string list = btl;
  const bool excluding = list[0] == '^';
  const bool mentionsTcp = list.find("tcp") != std::string::npos;
  if (excluding == mentionsTcp)
    return "OMPI_MCA_btl=" + list +
           " leaves out tcp, the only Open MPI transport between processes that mpirun did not start together "
           "(shared memory, vader, connects a job's own processes only); allow tcp, e.g. OMPI_MCA_btl=self,vader,tcp";
  return "";
}

} // namespace

std::unique_ptr<Communicator> joinMpiWorld(const LaunchInfo &info, std::string &error) {
  error.clear();
  const int n = info.worldSize, me = info.worldRank;
  if (n == 1 || joined) // a world of one is MPI's singleton; a second call: another handle on the joined world
    return connectMpiWorld(error);
#ifndef OPEN_MPI
  error = "joining processes that mpirun did not start needs Open MPI (its ompi-server); this MPI is another";
  return nullptr;
#endif
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (initialized) {
    error = "MPI is already initialized in this process, as a world of its own; joining the others must start it";
    return nullptr;
  }
  if (error = checkTransports(); !error.empty())
    return nullptr;

  // 1. Meet.
  RendezvousOptions options;
  options.masterAddr = info.masterAddr;
  options.masterPort = info.rendezvousPort;
  options.portName = info.rendezvousPortName;
  options.portAdvice = info.rendezvousPortName == "MASTER_PORT+1"
                           ? "torchrun's agent serves MASTER_PORT itself (TORCHELASTIC_USE_AGENT_STORE=True), so "
                             "rank 0 takes MASTER_PORT+1; set MEGATRON_RENDEZVOUS_PORT to a free port"
                           : "choose a free " + info.rendezvousPortName;
  options.rank = me;
  options.size = n;
  options.timeout = info.rendezvousTimeout;
  std::unique_ptr<Rendezvous> rendezvous = Rendezvous::join(options, error);
  if (!rendezvous)
    return nullptr;

  // 2. Rank 0: the data server and the ports; everyone: MPI, told where the server is.
  const auto deadline = Clock::now() + info.rendezvousTimeout;
  std::unique_ptr<Communicator> singleton;
  std::vector<std::string> ports(n);
  pid_t server = -1;
  std::string mine;
  if (me == 0) {
    std::string uri;
    server = startOmpiServer(deadline, uri, error);
    if (server > 0) {
      ::setenv("OMPI_MCA_pmix_server_uri", uri.c_str(), 1);
      singleton = connectMpiWorld(error);
    }
    std::vector<std::string> payloads(n, "ok\n" + uri + "\n");
    for (int r = 1; r < n && singleton; ++r) {
      char port[MPI_MAX_PORT_NAME] = {0};
      if (int rc = MPI_Open_port(MPI_INFO_NULL, port); rc != MPI_SUCCESS) {
        error = mpiError("MPI_Open_port", rc);
        break;
      }
      ports[r] = port;
      payloads[r] += port;
    }
    if (!error.empty())
      payloads.assign(n, "error\nrank 0 failed to start MPI: " + error);
    if (std::string problem = rendezvous->scatter(payloads, mine); !problem.empty() && error.empty())
      error = problem;
    if (!error.empty()) {
      if (server > 0)
        stopOmpiServer(server);
      return nullptr;
    }
  } else {
    if (error = rendezvous->scatter({}, mine); !error.empty())
      return nullptr;
    if (mine.rfind("error\n", 0) == 0) {
      error = mine.substr(6);
      return nullptr;
    }
    const size_t lineEnd = mine.find('\n', 3);
    ::setenv("OMPI_MCA_pmix_server_uri", mine.substr(3, lineEnd - 3).c_str(), 1);
    ports[me] = mine.substr(lineEnd + 1);
    if (singleton = connectMpiWorld(error); !singleton)
      return nullptr;
  }

  // 3. Grow the world in RANK order. From here the rendezvous watches: a peer's death or the deadline ends this
  // process, since the MPI calls below cannot be interrupted.
  rendezvous->watch([me, n](const std::string &message) { endProcess(me, n, message); },
                    info.rendezvousTimeout,
                    "joining the MPI world (MPI_Comm_connect/MPI_Comm_accept with ompi-server)");
  MPI_Comm_set_errhandler(MPI_COMM_SELF, MPI_ERRORS_RETURN);
  MPI_Comm group = MPI_COMM_SELF;
  int size = 1;
  auto grow = [&](MPI_Comm inter, bool newcomer) {
    MPI_Comm merged = MPI_COMM_NULL;
    int rc = MPI_Intercomm_merge(inter, newcomer, &merged);
    MPI_Comm_free(&inter);
    if (rc != MPI_SUCCESS)
      return mpiError("MPI_Intercomm_merge", rc);
    if (group != MPI_COMM_SELF)
      MPI_Comm_free(&group);
    group = merged;
    MPI_Comm_set_errhandler(group, MPI_ERRORS_RETURN);
    MPI_Comm_size(group, &size);
    return std::string();
  };
  if (me > 0) {
    MPI_Comm inter = MPI_COMM_NULL;
    if (int rc = MPI_Comm_connect(ports[me].c_str(), MPI_INFO_NULL, 0, MPI_COMM_SELF, &inter); rc != MPI_SUCCESS)
      error = mpiError("MPI_Comm_connect", rc);
    else
      error = grow(inter, /*newcomer=*/true);
  }
  while (error.empty() && size < n) {
    MPI_Comm inter = MPI_COMM_NULL;
    // The port matters at the root (rank 0) only.
    if (int rc = MPI_Comm_accept(me == 0 ? ports[size].c_str() : "", MPI_INFO_NULL, 0, group, &inter);
        rc != MPI_SUCCESS)
      error = mpiError("MPI_Comm_accept", rc);
    else
      error = grow(inter, /*newcomer=*/false);
  }
  int rank = -1;
  if (error.empty() && (MPI_Comm_rank(group, &rank), rank != me || size != n))
    error = "the joined MPI world puts this process at rank " + std::to_string(rank) + " of " +
            std::to_string(size) + ", not " + std::to_string(me) + " of " + std::to_string(n);
  if (me == 0) {
    for (int r = 1; r < n; ++r)
      if (!ports[r].empty())
        MPI_Close_port(ports[r].c_str());
    stopOmpiServer(server);
  }
  if (!error.empty())
    return nullptr; // the peers see this process end and end too
  rendezvous->settle();

  // 4. MPI_Finalize tells the peers that this process ended normally; the world is MpiCommunicator's.
  int key = MPI_KEYVAL_INVALID;
  MPI_Comm_create_keyval(MPI_COMM_NULL_COPY_FN, finishAtFinalize, &key, nullptr);
  MPI_Comm_set_attr(MPI_COMM_SELF, key, nullptr);
  joined = rendezvous.release();
  std::unique_ptr<Communicator> world = adoptMpiWorld(&group, error);
  return world; // `singleton` goes; the session stays with `world`
}

} // namespace megatron::comm

#else // !MEGATRON_HAVE_MPI

namespace megatron::comm {

std::unique_ptr<Communicator> joinMpiWorld(const LaunchInfo &, std::string &error) {
  return connectMpiWorld(error); // says that this build has no MPI
}

} // namespace megatron::comm

#endif
