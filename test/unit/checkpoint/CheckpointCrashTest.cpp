//===- CheckpointCrashTest.cpp - Interrupted saves and unwritable dirs ----===//
//
// A save is killed at every point of its protocol (in a forked child that _exit()s there, so that nothing is
// cleaned up): the previous checkpoint must still load, latest must point at a complete checkpoint, and the next
// save must clean up. Saving into a directory that cannot be written fails without touching what is there.
//
//===----------------------------------------------------------------------===//

#include "CheckpointTestUtil.h"

#include <csignal>
#include <linux/fs.h>
#include <sys/resource.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <memory>
#include <thread>

namespace megatron::ckpt::test {
namespace {

using ::testing::HasSubstr;

/// Starts saveCheckpoint in a child process that dies right after `crashAt` (or, with crashInData, in the middle
/// of writing the data file); returns its pid.
pid_t startCrashingSave(const std::string &dir, const CheckpointInfo &info, const std::vector<OwnedTensor> &tensors,
                        std::optional<SaveStep> crashAt, bool crashInData, bool allowExchange) {
  pid_t pid = ::fork();
  if (pid == 0) {
    std::vector<SaveTensor> save = toSave(tensors);
    if (crashInData) {
      save.back().data = nullptr;
      save.back().read = [](uint64_t, void *, size_t) -> std::string { ::_exit(0); };
    }
    SaveOptions options;
    options.allowRenameExchange = allowExchange;
    options.afterStep = [&](SaveStep step) {
      if (crashAt && step == *crashAt)
        ::_exit(0);
    };
    std::string error = saveCheckpoint(dir, info, save, options);
    ::_exit(error.empty() ? 1 : 2);
  }
  return pid;
}

/// True when the child died where it was meant to (not after a complete save, nor after a failed one).
bool crashedAsPlanned(pid_t pid) {
  int status = 0;
  return pid > 0 && ::waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

struct CrashCase {
  const char *name;
  bool replace;       ///< Save iteration 10 again (it is the latest), rather than a new iteration 20.
  bool allowExchange; ///< RENAME_EXCHANGE, or the two-rename fallback.
};

void PrintTo(const CrashCase &c, std::ostream *os) { *os << c.name; }

class CheckpointCrashTest : public ::testing::TestWithParam<CrashCase> {};

TEST_P(CheckpointCrashTest, EveryPointOfTheProtocol) {
  const CrashCase &c = GetParam();
  std::vector<std::pair<std::optional<SaveStep>, const char *>> points = {
      {std::nullopt, "while writing the data file"},
      {SaveStep::TemporaryWritten, "TemporaryWritten"},
      {SaveStep::OldMovedAside, "OldMovedAside"},
      {SaveStep::Renamed, "Renamed"},
      {SaveStep::LatestUpdated, "LatestUpdated"},
      {SaveStep::Done, "Done"},
  };
  std::vector<OwnedTensor> before = smallModel(1), after = smallModel(2), next = smallModel(3);
  TempDir saved; // Iteration 10, saved once and copied for each point.
  ASSERT_EQ(saveCheckpoint(saved.path, infoFor(10), toSave(before)), "");
  int64_t iteration = c.replace ? 10 : 20;

  // The points run side by side (each in its own copy of the save directory), so that their fsyncs overlap.
  struct Run {
    std::optional<SaveStep> step;
    const char *label;
    std::unique_ptr<TempDir> dir;
    pid_t pid = -1;
    std::string nextSave;
  };
  std::vector<Run> runs;
  for (const auto &[step, label] : points) {
    if (step == SaveStep::OldMovedAside && !(c.replace && !c.allowExchange))
      continue; // That point exists only when replacing without RENAME_EXCHANGE.
    Run run{step, label, std::make_unique<TempDir>()};
    ASSERT_EQ(::rmdir(run.dir->path.c_str()), 0);
    copyTree(saved.path, run.dir->path);
    run.pid = startCrashingSave(run.dir->path, infoFor(iteration), after, step, !step, c.allowExchange);
    runs.push_back(std::move(run));
  }
  for (Run &run : runs)
    EXPECT_TRUE(crashedAsPlanned(run.pid)) << run.label;

  // Whatever the point, the latest checkpoint loads completely: the old one until the new one is in place.
  for (Run &run : runs) {
    SCOPED_TRACE(run.label);
    bool newInPlace = run.step && *run.step >= SaveStep::Renamed;
    bool newIsLatest = run.step && (*run.step >= SaveStep::LatestUpdated || (c.replace && newInPlace));
    CheckpointInfo loaded;
    EXPECT_EQ(loadAndCompare(run.dir->path, newIsLatest ? after : before, &loaded), "");
    EXPECT_EQ(loaded.iteration, newIsLatest ? iteration : 10);
    EXPECT_EQ(exists(iterationDirectory(run.dir->path, 20)), !c.replace && newInPlace);
  }

  // The next save removes every leftover and works.
  std::vector<std::thread> threads;
  for (Run &run : runs)
    threads.emplace_back([&run, &next] { run.nextSave = saveCheckpoint(run.dir->path, infoFor(30), toSave(next)); });
  for (std::thread &t : threads)
    t.join();
  for (Run &run : runs) {
    SCOPED_TRACE(run.label);
    EXPECT_EQ(run.nextSave, "");
    for (const std::string &name : entries(run.dir->path))
      EXPECT_NE(name[0], '.') << "leftover " << name;
    EXPECT_EQ(loadAndCompare(run.dir->path, next), "");
    CheckpointReader reader;
    ASSERT_EQ(reader.open(iterationDirectory(run.dir->path, 10)), "");
    EXPECT_EQ(reader.verifyAll(), "");
  }
}

INSTANTIATE_TEST_SUITE_P(Saves, CheckpointCrashTest,
                         ::testing::Values(CrashCase{"NewIteration", false, true},
                                           CrashCase{"ReplaceWithExchange", true, true},
                                           CrashCase{"ReplaceWithTwoRenames", true, false}),
                         [](const auto &info) { return std::string(info.param.name); });

TEST(CheckpointCrash, LeftoverTemporaryIsIgnoredThenRemoved) {
  TempDir dir;
  std::vector<OwnedTensor> tensors = smallModel(1);
  ASSERT_EQ(saveCheckpoint(dir.path, infoFor(10), toSave(tensors)), "");
  // What a save killed by the OOM killer or a node failure leaves: a half-written temporary directory, and a
  // temporary of the latest file.
  std::string leftover = dir / ".iter_0000020.tmp-12345-0";
  ASSERT_EQ(::mkdir(leftover.c_str(), 0777), 0);
  writeFile(leftover + "/model_optim_rng.bin", "MEGACKPT partial");
  writeFile(dir / "latest_checkpointed_iteration.txt.tmp.AbC123", "2");

  EXPECT_EQ(loadAndCompare(dir.path, tensors), "");
  ASSERT_EQ(saveCheckpoint(dir.path, infoFor(20), toSave(smallModel(2))), "");
  EXPECT_EQ(entries(dir.path),
            (std::set<std::string>{"iter_0000010", "iter_0000020", "latest_checkpointed_iteration.txt"}));
}

TEST(CheckpointCrash, AsideCopyIsRestoredWhenTheNewOneNeverArrived) {
  // Replacing without RENAME_EXCHANGE, a crash between the two renames leaves iteration 10 only as .iter_0000010.old:
  // loading falls back to it, and the next save puts it back.
  TempDir dir;
  std::vector<OwnedTensor> tensors = smallModel(1);
  ASSERT_EQ(saveCheckpoint(dir.path, infoFor(10), toSave(tensors)), "");
  ASSERT_EQ(::rename((dir / "iter_0000010").c_str(), (dir / ".iter_0000010.old").c_str()), 0);
  EXPECT_EQ(loadAndCompare(dir.path, tensors), "");
  ASSERT_EQ(saveCheckpoint(dir.path, infoFor(20), toSave(smallModel(2))), "");
  EXPECT_EQ(entries(dir.path),
            (std::set<std::string>{"iter_0000010", "iter_0000020", "latest_checkpointed_iteration.txt"}));
  CheckpointReader reader;
  ASSERT_EQ(reader.open(dir / "iter_0000010"), "");
  EXPECT_EQ(reader.verifyAll(), "");
}

//===----------------------------------------------------------------------===//
// Directories that cannot be written
//===----------------------------------------------------------------------===//

TEST(CheckpointUnwritable, SaveDirectoryUnderARegularFile) {
  TempDir dir;
  writeFile(dir / "file", "keep me");
  std::string saveDir = dir / "file/checkpoints";
  EXPECT_EQ(saveCheckpoint(saveDir, infoFor(1), toSave(smallModel(1))),
            "cannot save checkpoint iteration 1 to '" + saveDir + "': Not a directory");
  EXPECT_EQ(readFile(dir / "file"), "keep me");
  writeFile(dir / "iter_file", "x");
  EXPECT_EQ(saveCheckpoint(dir / "iter_file", infoFor(1), {}),
            "cannot save checkpoint iteration 1 to '" + dir / "iter_file" + "': it exists and is not a directory");
}

TEST(CheckpointUnwritable, DiskFullWhileWritingLeavesNothingBehind) {
  // RLIMIT_FSIZE makes write() fail part-way through the data file (EFBIG), as a full disk would (ENOSPC).
  TempDir dir;
  std::vector<OwnedTensor> tensors = smallModel(1);
  ASSERT_EQ(saveCheckpoint(dir.path, infoFor(10), toSave(tensors)), "");
  std::vector<OwnedTensor> big = {OwnedTensor::make("w", DType::F32, {64, 1024}, 2)};
  struct rlimit old;
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &old), 0);
  void (*oldHandler)(int) = ::signal(SIGXFSZ, SIG_IGN);
  struct rlimit small = old;
  small.rlim_cur = 100000;
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &small), 0);
  std::string error = saveCheckpoint(dir.path, infoFor(20), toSave(big));
  ::setrlimit(RLIMIT_FSIZE, &old);
  ::signal(SIGXFSZ, oldHandler);
  EXPECT_EQ(error.rfind("cannot save checkpoint iteration 20 to '" + dir.path + "': writing '" + dir.path +
                            "/.iter_0000020.tmp-",
                        0),
            0u)
      << error;
  EXPECT_THAT(error, HasSubstr("/model_optim_rng.bin': File too large"));
  EXPECT_EQ(entries(dir.path), (std::set<std::string>{"iter_0000010", "latest_checkpointed_iteration.txt"}));
  EXPECT_EQ(loadAndCompare(dir.path, tensors), "");
}

/// Makes a directory read-only for the lifetime of the object: with the immutable attribute when running as root
/// (root ignores permission bits), with permission bits otherwise. `reason` says why it could not.
class ReadOnlyDirectory {
public:
  explicit ReadOnlyDirectory(const std::string &path) : path(path) {
    if (::geteuid() != 0) {
      permissions = ::chmod(path.c_str(), 0555) == 0;
    } else {
      int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY);
      int flags = 0;
      if (fd >= 0 && ::ioctl(fd, FS_IOC_GETFLAGS, &flags) == 0) {
        flags |= FS_IMMUTABLE_FL;
        immutable = ::ioctl(fd, FS_IOC_SETFLAGS, &flags) == 0;
      }
      if (!immutable)
        reason = std::string("cannot set the immutable attribute: ") + std::strerror(errno);
      if (fd >= 0)
        ::close(fd);
    }
    // Whatever was tried, check that writing really fails.
    std::string probe = path + "/probe";
    int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0666);
    if (fd >= 0) {
      ::close(fd);
      ::unlink(probe.c_str());
      if (reason.empty())
        reason = "the directory stays writable";
    }
  }
  ~ReadOnlyDirectory() {
    if (permissions)
      ::chmod(path.c_str(), 0755);
    if (immutable) {
      int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY);
      int flags = 0;
      if (fd >= 0 && ::ioctl(fd, FS_IOC_GETFLAGS, &flags) == 0) {
        flags &= ~FS_IMMUTABLE_FL;
        ::ioctl(fd, FS_IOC_SETFLAGS, &flags);
      }
      if (fd >= 0)
        ::close(fd);
    }
  }

  std::string path, reason;
  bool permissions = false, immutable = false;
};

TEST(CheckpointUnwritable, ReadOnlySaveDirectoryKeepsItsCheckpoint) {
  TempDir dir;
  std::vector<OwnedTensor> tensors = smallModel(1);
  ASSERT_EQ(saveCheckpoint(dir.path, infoFor(10), toSave(tensors)), "");
  std::string latestBefore = readFile(dir / "latest_checkpointed_iteration.txt");
  {
    ReadOnlyDirectory readOnly(dir.path);
    if (!readOnly.reason.empty())
      GTEST_SKIP() << "cannot make a directory read-only here (" << readOnly.reason << ")";
    for (int64_t iteration : {20, 10}) { // A new iteration, and replacing the existing one.
      std::string error = saveCheckpoint(dir.path, infoFor(iteration), toSave(smallModel(2)));
      EXPECT_EQ(error.rfind("cannot save checkpoint iteration " + std::to_string(iteration) + " to '" + dir.path +
                                "': creating the temporary directory '" + dir.path + "/." +
                                iterationDirectoryName(iteration) + ".tmp-",
                            0),
                0u)
          << error;
      EXPECT_THAT(error, ::testing::AnyOf(HasSubstr("': Operation not permitted"), HasSubstr("': Permission denied")));
    }
  }
  EXPECT_EQ(entries(dir.path), (std::set<std::string>{"iter_0000010", "latest_checkpointed_iteration.txt"}));
  EXPECT_EQ(readFile(dir / "latest_checkpointed_iteration.txt"), latestBefore);
  EXPECT_EQ(loadAndCompare(dir.path, tensors), "");
}

} // namespace
} // namespace megatron::ckpt::test
