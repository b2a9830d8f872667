//===- LaunchTest.cpp - Which launcher started the process, from its environment ===//
//
// detectLaunch() on the variables of each launcher, their precedence when several are present, and every error
// (a missing companion, a malformed value, a value out of range, launchers that disagree). connectWorld()'s
// refusals that need no MPI; the multi-process paths are run by megatron-mpi-comm-check under mpirun.
//
//===----------------------------------------------------------------------===//

#include "runtime/comm/Launch.h"
#include "runtime/comm/MpiCommunicator.h"

#include <gtest/gtest.h>

using namespace megatron::comm;

namespace {

const Environment kOpenMpi = {{"OMPI_COMM_WORLD_RANK", "2"},
                              {"OMPI_COMM_WORLD_SIZE", "4"},
                              {"OMPI_COMM_WORLD_LOCAL_RANK", "0"},
                              {"OMPI_COMM_WORLD_LOCAL_SIZE", "2"}};
const Environment kSrun = {{"SLURM_PROCID", "5"},
                           {"SLURM_STEP_NUM_TASKS", "8"},
                           {"SLURM_NTASKS", "8"},
                           {"SLURM_LOCALID", "1"},
                           {"SLURM_JOB_ID", "1234"}};
const Environment kTorchrun = {{"RANK", "3"},          {"WORLD_SIZE", "16"},          {"LOCAL_RANK", "3"},
                               {"LOCAL_WORLD_SIZE", "8"}, {"MASTER_ADDR", "node017"}, {"MASTER_PORT", "29500"}};

Environment merge(Environment a, const Environment &b) {
  for (auto &[name, value] : b)
    a[name] = value;
  return a;
}
Environment with(Environment env, const std::string &name, const std::string &value) {
  env[name] = value;
  return env;
}
Environment without(Environment env, const std::string &name) {
  env.erase(name);
  return env;
}

LaunchInfo detect(const Environment &env) {
  std::string error = "stale";
  LaunchInfo info = detectLaunch(env, error);
  EXPECT_EQ(error, "");
  return info;
}

/// The error detectLaunch() gives for `env`; the info must then be a single process.
std::string errorOf(const Environment &env) {
  std::string error;
  LaunchInfo info = detectLaunch(env, error);
  EXPECT_EQ(info.launcher, Launcher::None) << error;
  EXPECT_FALSE(info.multiProcess());
  return error;
}

TEST(Launch, NoLauncherIsASingleProcess) {
  LaunchInfo info = detect({{"HOME", "/root"}, {"LOCAL_RANK", "3"}, {"MASTER_ADDR", "x"}});
  EXPECT_EQ(info.launcher, Launcher::None);
  EXPECT_FALSE(info.multiProcess());
  EXPECT_EQ(info.worldRank, 0);
  EXPECT_EQ(info.worldSize, 1);
  EXPECT_EQ(info.describe(), "none: a single process");
}

TEST(Launch, OpenMpi) {
  LaunchInfo info = detect(kOpenMpi);
  EXPECT_EQ(info.launcher, Launcher::OpenMpi);
  EXPECT_TRUE(info.multiProcess());
  EXPECT_EQ(info.worldRank, 2);
  EXPECT_EQ(info.worldSize, 4);
  EXPECT_EQ(info.localRank, 0);
  EXPECT_EQ(info.localSize, 2);
  EXPECT_EQ(info.describe(), "mpirun: world rank 2 of 4, local rank 0 of 2");
  // The local size is optional.
  EXPECT_EQ(detect(without(kOpenMpi, "OMPI_COMM_WORLD_LOCAL_SIZE")).localSize, -1);
}

TEST(Launch, Slurm) {
  LaunchInfo info = detect(kSrun);
  EXPECT_EQ(info.launcher, Launcher::Slurm);
  EXPECT_EQ(info.worldRank, 5);
  EXPECT_EQ(info.worldSize, 8);
  EXPECT_EQ(info.localRank, 1);
  EXPECT_EQ(info.localSize, -1);
  EXPECT_EQ(info.describe(), "srun: world rank 5 of 8, local rank 1");
  // srun -n 2 inside an allocation of 8 tasks: the step's task count is the world.
  EXPECT_EQ(detect(merge(kSrun, {{"SLURM_STEP_NUM_TASKS", "6"}, {"SLURM_PROCID", "1"}})).worldSize, 6);
}

TEST(Launch, ABatchScriptIsNotATaskOfSrun) {
  // sbatch sets SLURM_PROCID=0 and SLURM_NTASKS for the batch script itself; only srun sets the step's tasks.
  LaunchInfo info = detect(without(with(kSrun, "SLURM_PROCID", "0"), "SLURM_STEP_NUM_TASKS"));
  EXPECT_EQ(info.launcher, Launcher::None);
}

TEST(Launch, Torchrun) {
  LaunchInfo info = detect(kTorchrun);
  EXPECT_EQ(info.launcher, Launcher::Torchrun);
  EXPECT_EQ(info.worldRank, 3);
  EXPECT_EQ(info.worldSize, 16);
  EXPECT_EQ(info.localRank, 3);
  EXPECT_EQ(info.localSize, 8);
  EXPECT_EQ(info.masterAddr, "node017");
  EXPECT_EQ(info.masterPort, 29500);
  EXPECT_EQ(info.describe(), "torchrun: world rank 3 of 16, local rank 3 of 8, master node017:29500");
  // One process needs no rendezvous address.
  LaunchInfo one = detect({{"RANK", "0"}, {"WORLD_SIZE", "1"}, {"LOCAL_RANK", "0"}});
  EXPECT_EQ(one.launcher, Launcher::Torchrun);
  EXPECT_EQ(one.masterAddr, "");
  EXPECT_EQ(one.masterPort, 0);
}

TEST(Launch, Precedence) {
  // mpirun inside a SLURM allocation: SLURM_* describe the step that ran mpirun.
  EXPECT_EQ(detect(merge(kSrun, kOpenMpi)).launcher, Launcher::OpenMpi);
  EXPECT_EQ(detect(merge(kSrun, kOpenMpi)).worldRank, 2);
  // srun torchrun: SLURM_* describe the torchrun agent, RANK the worker.
  EXPECT_EQ(detect(merge(kSrun, kTorchrun)).launcher, Launcher::Torchrun);
  EXPECT_EQ(detect(merge(kSrun, kTorchrun)).worldRank, 3);
  // mpirun's and torchrun's variables that agree: mpirun started the process.
  Environment agreeing = merge(kOpenMpi, {{"RANK", "2"}, {"WORLD_SIZE", "4"}, {"LOCAL_RANK", "0"},
                                          {"MASTER_ADDR", "localhost"}, {"MASTER_PORT", "29500"}});
  EXPECT_EQ(detect(agreeing).launcher, Launcher::OpenMpi);
  EXPECT_EQ(detect(merge(agreeing, kSrun)).launcher, Launcher::OpenMpi);
  // A malformed variable of an ignored launcher does not matter.
  EXPECT_EQ(detect(with(kOpenMpi, "SLURM_PROCID", "x")).launcher, Launcher::OpenMpi);
}

TEST(Launch, LaunchersThatDisagree) {
  EXPECT_EQ(errorOf(merge(kOpenMpi, kTorchrun)),
            "mpirun's and torchrun's variables disagree: OMPI_COMM_WORLD_RANK=2 and OMPI_COMM_WORLD_SIZE=4 but "
            "RANK=3 and WORLD_SIZE=16 (mpirun running torchrun, or RANK and WORLD_SIZE left in the environment?): "
            "start the ranks with one launcher");
  // With mpirun's variables, torchrun's must still be well-formed.
  EXPECT_EQ(errorOf(merge(kOpenMpi, {{"RANK", "2"}})), "RANK is set but WORLD_SIZE is not");
}

TEST(Launch, MissingCompanions) {
  EXPECT_EQ(errorOf(without(kOpenMpi, "OMPI_COMM_WORLD_SIZE")),
            "OMPI_COMM_WORLD_RANK is set but OMPI_COMM_WORLD_SIZE is not");
  EXPECT_EQ(errorOf(without(kOpenMpi, "OMPI_COMM_WORLD_RANK")),
            "OMPI_COMM_WORLD_SIZE is set but OMPI_COMM_WORLD_RANK is not");
  EXPECT_EQ(errorOf(without(kOpenMpi, "OMPI_COMM_WORLD_LOCAL_RANK")),
            "OMPI_COMM_WORLD_RANK is set but OMPI_COMM_WORLD_LOCAL_RANK is not");
  EXPECT_EQ(errorOf(without(kSrun, "SLURM_LOCALID")),
            "SLURM_PROCID and SLURM_STEP_NUM_TASKS are set but SLURM_LOCALID is not");
  EXPECT_EQ(errorOf(without(kTorchrun, "WORLD_SIZE")), "RANK is set but WORLD_SIZE is not");
  EXPECT_EQ(errorOf(without(kTorchrun, "RANK")), "WORLD_SIZE is set but RANK is not");
  EXPECT_EQ(errorOf(without(kTorchrun, "LOCAL_RANK")), "RANK is set but LOCAL_RANK is not");
  EXPECT_EQ(errorOf(without(kTorchrun, "MASTER_ADDR")),
            "WORLD_SIZE=16 (more than one process) is set but MASTER_ADDR is not");
  EXPECT_EQ(errorOf(without(kTorchrun, "MASTER_PORT")),
            "WORLD_SIZE=16 (more than one process) is set but MASTER_PORT is not");
}

TEST(Launch, MalformedValues) {
  EXPECT_EQ(errorOf(with(kOpenMpi, "OMPI_COMM_WORLD_RANK", "two")),
            "OMPI_COMM_WORLD_RANK=\"two\" is not a non-negative decimal integer");
  EXPECT_EQ(errorOf(with(kOpenMpi, "OMPI_COMM_WORLD_SIZE", "")),
            "OMPI_COMM_WORLD_SIZE=\"\" is not a non-negative decimal integer");
  EXPECT_EQ(errorOf(with(kOpenMpi, "OMPI_COMM_WORLD_LOCAL_SIZE", "2x")),
            "OMPI_COMM_WORLD_LOCAL_SIZE=\"2x\" is not a non-negative decimal integer");
  EXPECT_EQ(errorOf(with(kSrun, "SLURM_PROCID", "-1")), "SLURM_PROCID=\"-1\" is not a non-negative decimal integer");
  EXPECT_EQ(errorOf(with(kSrun, "SLURM_STEP_NUM_TASKS", "8(x2)")),
            "SLURM_STEP_NUM_TASKS=\"8(x2)\" is not a non-negative decimal integer");
  EXPECT_EQ(errorOf(with(kTorchrun, "RANK", " 3")), "RANK=\" 3\" is not a non-negative decimal integer");
  EXPECT_EQ(errorOf(with(kTorchrun, "WORLD_SIZE", "+16")), "WORLD_SIZE=\"+16\" is not a non-negative decimal integer");
  EXPECT_EQ(errorOf(with(kTorchrun, "LOCAL_RANK", "3.0")), "LOCAL_RANK=\"3.0\" is not a non-negative decimal integer");
  EXPECT_EQ(errorOf(with(kTorchrun, "WORLD_SIZE", "4294967296")),
            "WORLD_SIZE=\"4294967296\" is not a non-negative decimal integer");
  EXPECT_EQ(errorOf(with(kTorchrun, "WORLD_SIZE", "99999999999999999999")),
            "WORLD_SIZE=\"99999999999999999999\" is not a non-negative decimal integer");
  EXPECT_EQ(errorOf(with(kTorchrun, "MASTER_PORT", "http")), "MASTER_PORT=\"http\" is not a non-negative decimal integer");
  EXPECT_EQ(errorOf(with(kTorchrun, "MASTER_ADDR", "")), "MASTER_ADDR is empty");
  // Leading zeros are still decimal.
  EXPECT_EQ(detect(with(kTorchrun, "RANK", "007")).worldRank, 7);
}

TEST(Launch, ValuesOutOfRange) {
  EXPECT_EQ(errorOf(with(kOpenMpi, "OMPI_COMM_WORLD_RANK", "4")),
            "OMPI_COMM_WORLD_RANK=4 is not below OMPI_COMM_WORLD_SIZE=4");
  EXPECT_EQ(errorOf(with(kOpenMpi, "OMPI_COMM_WORLD_SIZE", "0")),
            "OMPI_COMM_WORLD_SIZE=0: a job has at least one process");
  EXPECT_EQ(errorOf(with(kOpenMpi, "OMPI_COMM_WORLD_LOCAL_RANK", "2")),
            "OMPI_COMM_WORLD_LOCAL_RANK=2 is not below OMPI_COMM_WORLD_LOCAL_SIZE=2");
  EXPECT_EQ(errorOf(with(kOpenMpi, "OMPI_COMM_WORLD_LOCAL_SIZE", "5")),
            "OMPI_COMM_WORLD_LOCAL_SIZE=5 is not between 1 and OMPI_COMM_WORLD_SIZE=4");
  EXPECT_EQ(errorOf(with(kSrun, "SLURM_PROCID", "8")), "SLURM_PROCID=8 is not below SLURM_STEP_NUM_TASKS=8");
  EXPECT_EQ(errorOf(with(kSrun, "SLURM_LOCALID", "9")), "SLURM_LOCALID=9 is not below SLURM_STEP_NUM_TASKS=8");
  EXPECT_EQ(errorOf(with(kTorchrun, "RANK", "16")), "RANK=16 is not below WORLD_SIZE=16");
  EXPECT_EQ(errorOf(with(kTorchrun, "WORLD_SIZE", "0")), "WORLD_SIZE=0: a job has at least one process");
  EXPECT_EQ(errorOf(with(kTorchrun, "LOCAL_RANK", "8")), "LOCAL_RANK=8 is not below LOCAL_WORLD_SIZE=8");
  EXPECT_EQ(errorOf(with(kTorchrun, "LOCAL_WORLD_SIZE", "0")), "LOCAL_WORLD_SIZE=0 is not between 1 and WORLD_SIZE=16");
  EXPECT_EQ(errorOf(with(kTorchrun, "MASTER_PORT", "0")), "MASTER_PORT=0 is not a TCP port (1 to 65535)");
  EXPECT_EQ(errorOf(with(kTorchrun, "MASTER_PORT", "65536")), "MASTER_PORT=65536 is not a TCP port (1 to 65535)");
}

TEST(Launch, ErrorIsClearedOnSuccess) {
  std::string error = "left over";
  detectLaunch(kTorchrun, error);
  EXPECT_EQ(error, "");
  detectLaunch({}, error);
  EXPECT_EQ(error, "");
}

TEST(Launch, ProcessEnvironmentReadsTheLaunchersVariables) {
  // Whatever this test runs under, processEnvironment() holds only launcher variables, and detectLaunch() agrees
  // with the map it is given.
  Environment env = processEnvironment();
  for (auto &[name, value] : env)
    EXPECT_TRUE(name.rfind("OMPI_", 0) == 0 || name.rfind("SLURM_", 0) == 0 || name == "RANK" ||
                name == "WORLD_SIZE" || name == "LOCAL_RANK" || name == "LOCAL_WORLD_SIZE" ||
                name == "MASTER_ADDR" || name == "MASTER_PORT" || name.rfind("MEGATRON_RENDEZVOUS_", 0) == 0 ||
                name == "TORCHELASTIC_USE_AGENT_STORE")
        << name;
}

TEST(Launch, ConnectWorldRefusesWhatItCannotJoin) {
  std::string error;
  EXPECT_EQ(connectWorld(LaunchInfo{}, error), nullptr);
  EXPECT_NE(error.find("no launcher started this process"), std::string::npos) << error;
  EXPECT_NE(error.find("ThreadWorld"), std::string::npos) << error;
  // torchrun-style processes are joined (RendezvousTest.cpp, test/tools/megatron-run/torchrun*.test).
}

TEST(Launch, WithoutMpiConnectWorldSaysSo) {
  if (mpiAvailable())
    GTEST_SKIP() << "this build has MPI: megatron-mpi-comm-check covers connectWorld under mpirun";
  std::string error;
  EXPECT_EQ(connectWorld(detect(kOpenMpi), error), nullptr);
  EXPECT_NE(error.find("this build has no MPI communicator"), std::string::npos) << error;
}

} // namespace
