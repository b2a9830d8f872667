//===- Launch.cpp - Which launcher started this process, and its world ----===//

#include "Launch.h"

#include "MpiCommunicator.h"
#include "MpiJoin.h"

#include <cctype>
#include <climits>
#include <cmath>
#include <cstdlib>
#include <optional>

namespace megatron::comm {

const char *toString(Launcher launcher) {
  switch (launcher) {
  case Launcher::None:
    return "none";
  case Launcher::OpenMpi:
    return "mpirun";
  case Launcher::Slurm:
    return "srun";
  case Launcher::Torchrun:
    return "torchrun";
  }
  return "?";
}

std::string LaunchInfo::describe() const {
  if (launcher == Launcher::None)
    return "none: a single process";
  std::string text = std::string(toString(launcher)) + ": world rank " + std::to_string(worldRank) + " of " +
                     std::to_string(worldSize) + ", local rank " + std::to_string(localRank);
  if (localSize > 0)
    text += " of " + std::to_string(localSize);
  if (!masterAddr.empty())
    text += ", master " + masterAddr + ":" + std::to_string(masterPort);
  if (rendezvousPort > 0 && rendezvousPort != masterPort)
    text += ", rendezvous port " + std::to_string(rendezvousPort);
  return text;
}

namespace {

const char *const kVariables[] = {
    "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK", "OMPI_COMM_WORLD_LOCAL_SIZE",
    "SLURM_PROCID",         "SLURM_STEP_NUM_TASKS", "SLURM_NTASKS",               "SLURM_LOCALID",
    "RANK",                 "WORLD_SIZE",           "LOCAL_RANK",                 "LOCAL_WORLD_SIZE",
    "MASTER_ADDR",          "MASTER_PORT",          "MEGATRON_RENDEZVOUS_TIMEOUT",
    "MEGATRON_RENDEZVOUS_PORT", "TORCHELASTIC_USE_AGENT_STORE",
};

/// Reads one launcher's variables; the first problem goes to `error`.
class Reader {
public:
  Reader(const Environment &env, std::string &error) : env(env), error(error) {}

  bool has(const char *name) const { return env.count(name) != 0; }

  /// A decimal integer in [0, INT_MAX]; nullopt (and the error) when absent or malformed. `why` says why an absent
  /// variable is needed (e.g. "OMPI_COMM_WORLD_RANK is set").
  std::optional<int> integer(const char *name, const std::string &why) {
    auto it = env.find(name);
    if (it == env.end()) {
      setError(why + " but " + name + " is not");
      return std::nullopt;
    }
    const std::string &text = it->second;
    long long value = 0;
    bool ok = !text.empty() && text.size() <= 10;
    for (char c : text) {
      ok = ok && c >= '0' && c <= '9';
      value = ok ? value * 10 + (c - '0') : value;
    }
    if (!ok || value > INT_MAX) {
      setError(std::string(name) + "=\"" + text + "\" is not a non-negative decimal integer");
      return std::nullopt;
    }
    return static_cast<int>(value);
  }

  /// Checks a rank, a size and a local rank (and a local size if known) read from `names`.
  bool consistent(const char *rankName, int rank, const char *sizeName, int size, const char *localName, int local,
                  const char *localSizeName = nullptr, int localSize = -1) {
    auto show = [](const char *name, int value) { return std::string(name) + "=" + std::to_string(value); };
    if (size < 1)
      return setError(show(sizeName, size) + ": a job has at least one process");
    if (rank >= size)
      return setError(show(rankName, rank) + " is not below " + show(sizeName, size));
    if (local >= size)
      return setError(show(localName, local) + " is not below " + show(sizeName, size));
    if (localSizeName) {
      if (localSize < 1 || localSize > size)
        return setError(show(localSizeName, localSize) + " is not between 1 and " + show(sizeName, size));
      if (local >= localSize)
        return setError(show(localName, local) + " is not below " + show(localSizeName, localSize));
    }
    return true;
  }

  bool setError(const std::string &text) {
    if (error.empty())
      error = text;
    return false;
  }

  const Environment &env;
  std::string &error;
};

/// Open MPI's mpirun: OMPI_COMM_WORLD_RANK, _SIZE, _LOCAL_RANK (and _LOCAL_SIZE).
std::optional<LaunchInfo> readOpenMpi(Reader &in) {
  const char *rankName = "OMPI_COMM_WORLD_RANK", *sizeName = "OMPI_COMM_WORLD_SIZE",
             *localName = "OMPI_COMM_WORLD_LOCAL_RANK", *localSizeName = "OMPI_COMM_WORLD_LOCAL_SIZE";
  const std::string why = std::string(in.has(rankName) ? rankName : sizeName) + " is set";
  auto rank = in.integer(rankName, why);
  auto size = rank ? in.integer(sizeName, why) : std::nullopt;
  auto local = size ? in.integer(localName, why) : std::nullopt;
  std::optional<int> localSize = -1;
  if (local && in.has(localSizeName))
    localSize = in.integer(localSizeName, why);
  if (!local || !localSize ||
      !in.consistent(rankName, *rank, sizeName, *size, localName, *local,
                     *localSize >= 0 ? localSizeName : nullptr, *localSize))
    return std::nullopt;
  LaunchInfo info;
  info.launcher = Launcher::OpenMpi;
  info.worldRank = *rank;
  info.worldSize = *size;
  info.localRank = *local;
  info.localSize = *localSize;
  return info;
}

/// torchrun (or by hand): RANK, WORLD_SIZE, LOCAL_RANK (and LOCAL_WORLD_SIZE); MASTER_ADDR and MASTER_PORT for
/// more than one process.
std::optional<LaunchInfo> readTorchrun(Reader &in) {
  const std::string why = std::string(in.has("RANK") ? "RANK" : "WORLD_SIZE") + " is set";
  auto rank = in.integer("RANK", why);
  auto size = rank ? in.integer("WORLD_SIZE", why) : std::nullopt;
  auto local = size ? in.integer("LOCAL_RANK", why) : std::nullopt;
  std::optional<int> localSize = -1;
  if (local && in.has("LOCAL_WORLD_SIZE"))
    localSize = in.integer("LOCAL_WORLD_SIZE", why);
  if (!local || !localSize ||
      !in.consistent("RANK", *rank, "WORLD_SIZE", *size, "LOCAL_RANK", *local,
                     *localSize >= 0 ? "LOCAL_WORLD_SIZE" : nullptr, *localSize))
    return std::nullopt;
  LaunchInfo info;
  info.launcher = Launcher::Torchrun;
  info.worldRank = *rank;
  info.worldSize = *size;
  info.localRank = *local;
  info.localSize = *localSize;
  // The rendezvous address: needed as soon as there is a peer to meet, checked whenever given.
  const std::string multi = "WORLD_SIZE=" + std::to_string(*size) + " (more than one process)";
  if (auto it = in.env.find("MASTER_ADDR"); it != in.env.end()) {
    if (it->second.empty()) {
      in.setError("MASTER_ADDR is empty");
      return std::nullopt;
    }
    info.masterAddr = it->second;
  } else if (*size > 1) {
    in.setError(multi + " is set but MASTER_ADDR is not");
    return std::nullopt;
  }
  if (in.has("MASTER_PORT") || *size > 1) {
    auto port = in.integer("MASTER_PORT", multi + " is set");
    if (!port)
      return std::nullopt;
    if (*port < 1 || *port > 65535) {
      in.setError("MASTER_PORT=" + std::to_string(*port) + " is not a TCP port (1 to 65535)");
      return std::nullopt;
    }
    info.masterPort = *port;
  }
  // Where rank 0 serves the rendezvous: MASTER_PORT, unless torchrun's agent holds it.
  info.rendezvousPort = info.masterPort;
  info.rendezvousPortName = "MASTER_PORT";
  if (in.has("MEGATRON_RENDEZVOUS_PORT")) {
    auto port = in.integer("MEGATRON_RENDEZVOUS_PORT", "");
    if (!port)
      return std::nullopt;
    if (*port < 1 || *port > 65535) {
      in.setError("MEGATRON_RENDEZVOUS_PORT=" + std::to_string(*port) + " is not a TCP port (1 to 65535)");
      return std::nullopt;
    }
    info.rendezvousPort = *port;
    info.rendezvousPortName = "MEGATRON_RENDEZVOUS_PORT";
  } else if (auto it = in.env.find("TORCHELASTIC_USE_AGENT_STORE"); it != in.env.end() && it->second == "True" &&
             info.masterPort > 0) {
    if (info.masterPort == 65535) {
      in.setError("MASTER_PORT=65535 is torchrun's own store (TORCHELASTIC_USE_AGENT_STORE=True), and rank 0's "
                  "rendezvous cannot take MASTER_PORT+1: set MEGATRON_RENDEZVOUS_PORT");
      return std::nullopt;
    }
    info.rendezvousPort = info.masterPort + 1;
    info.rendezvousPortName = "MASTER_PORT+1";
  }
  if (auto it = in.env.find("MEGATRON_RENDEZVOUS_TIMEOUT"); it != in.env.end()) {
    const std::string &text = it->second;
    char *end = nullptr;
    const double secondsValue = text.empty() || !std::isdigit(static_cast<unsigned char>(text[0]))
                                    ? -1
                                    : std::strtod(text.c_str(), &end);
    if (secondsValue <= 0 || secondsValue > 1e7 || !end || *end) {
      in.setError("MEGATRON_RENDEZVOUS_TIMEOUT=\"" + text + "\" is not a positive number of seconds");
      return std::nullopt;
    }
    info.rendezvousTimeout = std::chrono::milliseconds(static_cast<int64_t>(std::ceil(secondsValue * 1000)));
  }
  return info;
}

/// A task of srun: SLURM_PROCID, SLURM_STEP_NUM_TASKS (the step's tasks), SLURM_LOCALID.
std::optional<LaunchInfo> readSlurm(Reader &in) {
  const std::string why = "SLURM_PROCID and SLURM_STEP_NUM_TASKS are set";
  auto rank = in.integer("SLURM_PROCID", why);
  auto size = rank ? in.integer("SLURM_STEP_NUM_TASKS", why) : std::nullopt;
  auto local = size ? in.integer("SLURM_LOCALID", why) : std::nullopt;
  if (!local || !in.consistent("SLURM_PROCID", *rank, "SLURM_STEP_NUM_TASKS", *size, "SLURM_LOCALID", *local))
    return std::nullopt;
  LaunchInfo info;
  info.launcher = Launcher::Slurm;
  info.worldRank = *rank;
  info.worldSize = *size;
  info.localRank = *local;
  return info;
}

} // namespace

Environment processEnvironment() {
  Environment env;
  for (const char *name : kVariables)
    if (const char *value = std::getenv(name))
      env[name] = value;
  return env;
}

LaunchInfo detectLaunch(const Environment &env, std::string &error) {
  error.clear();
  Reader in(env, error);
  const bool openMpi = in.has("OMPI_COMM_WORLD_RANK") || in.has("OMPI_COMM_WORLD_SIZE");
  const bool torchrun = in.has("RANK") || in.has("WORLD_SIZE");
  // SLURM_PROCID and SLURM_NTASKS are also set in a batch script, which is not a task of srun: only srun sets the
  // step's task count.
  const bool slurm = in.has("SLURM_PROCID") && in.has("SLURM_STEP_NUM_TASKS");

  std::optional<LaunchInfo> info;
  if (openMpi) {
    info = readOpenMpi(in);
    if (info && torchrun) {
      // Both: they must describe the same process, else which one is right is a guess.
      std::optional<LaunchInfo> other = readTorchrun(in);
      if (!other)
        return LaunchInfo{};
      if (other->worldRank != info->worldRank || other->worldSize != info->worldSize) {
        error = "mpirun's and torchrun's variables disagree: OMPI_COMM_WORLD_RANK=" + std::to_string(info->worldRank) +
                " and OMPI_COMM_WORLD_SIZE=" + std::to_string(info->worldSize) + " but RANK=" +
                std::to_string(other->worldRank) + " and WORLD_SIZE=" + std::to_string(other->worldSize) +
                " (mpirun running torchrun, or RANK and WORLD_SIZE left in the environment?): start the ranks with "
                "one launcher";
        return LaunchInfo{};
      }
    }
  } else if (torchrun) {
    info = readTorchrun(in);
  } else if (slurm) {
    info = readSlurm(in);
  } else {
    return LaunchInfo{};
  }
  return info ? *info : LaunchInfo{};
}

std::unique_ptr<Communicator> connectWorld(const LaunchInfo &info, std::string &error) {
  error.clear();
  switch (info.launcher) {
  case Launcher::None:
    error = "no launcher started this process (none of OMPI_COMM_WORLD_RANK, RANK/WORLD_SIZE, or SLURM_PROCID with "
            "SLURM_STEP_NUM_TASKS is set): a single process runs its ranks as threads (ThreadWorld); start one "
            "process per rank with mpirun, srun or torchrun";
    return nullptr;
  case Launcher::Torchrun:
  case Launcher::OpenMpi:
  case Launcher::Slurm:
    break;
  }
  std::unique_ptr<Communicator> world =
      info.launcher == Launcher::Torchrun ? joinMpiWorld(info, error) : connectMpiWorld(error);
  if (!world) {
    error = "connecting the world (" + info.describe() + "): " + error;
    return nullptr;
  }
  if (world->rank() != info.worldRank || world->size() != info.worldSize) {
    error = "MPI's world (rank " + std::to_string(world->rank()) + " of " + std::to_string(world->size()) +
            ") does not match what " + toString(info.launcher) + " says (" + info.describe() + ")";
    if (info.launcher == Launcher::Slurm)
      error += ": Open MPI did not reach SLURM's process manager; launch with `srun --mpi=pmix`";
    return nullptr;
  }
  return world;
}

} // namespace megatron::comm
