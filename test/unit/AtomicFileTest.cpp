//===- AtomicFileTest.cpp - Files are replaced whole or not at all ---------===//

#include "megatron/Support/AtomicFile.h"

#include <cstdlib>
#include <dirent.h>
#include <fstream>
#include <gtest/gtest.h>
#include <sstream>
#include <sys/stat.h>
#include <unistd.h>

using megatron::writeFileAtomically;

namespace {

class AtomicFileTest : public ::testing::Test {
protected:
  void SetUp() override {
    char pattern[] = "/tmp/megatron-atomic-XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir = pattern;
  }
  void TearDown() override { std::system(("rm -rf '" + dir + "'").c_str()); }

  static std::string read(const std::string &path) {
    std::ifstream in(path);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }

  /// Entries of the directory, so a test can see that no temporary was left behind.
  int entries() const {
    int n = 0;
    DIR *d = opendir(dir.c_str());
    while (dirent *e = readdir(d))
      n += std::string(e->d_name) != "." && std::string(e->d_name) != "..";
    closedir(d);
    return n;
  }

  std::string dir;
};

TEST_F(AtomicFileTest, WritesAndReplaces) {
  std::string path = dir + "/out.mlir";
  EXPECT_EQ(writeFileAtomically(path, "first"), "");
  EXPECT_EQ(read(path), "first");
  EXPECT_EQ(writeFileAtomically(path, "second"), "");
  EXPECT_EQ(read(path), "second");
  EXPECT_EQ(entries(), 1);
}

TEST_F(AtomicFileTest, GivesOrdinaryPermissions) {
  std::string path = dir + "/out.mlir";
  ASSERT_EQ(writeFileAtomically(path, "x"), "");
  struct stat st;
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  mode_t mask = umask(0);
  umask(mask);
  EXPECT_EQ(st.st_mode & 0777, 0666 & ~mask);
}

TEST_F(AtomicFileTest, ADirectoryIsNotReplaced) {
  std::string target = dir + "/target";
  ASSERT_EQ(mkdir(target.c_str(), 0755), 0);
  ASSERT_EQ(writeFileAtomically(target + "/precious", "keep"), "");
  std::string error = writeFileAtomically(target, "new");
  EXPECT_NE(error.find("is a directory"), std::string::npos) << error;
  EXPECT_EQ(read(target + "/precious"), "keep");
  EXPECT_EQ(entries(), 1);
}

TEST_F(AtomicFileTest, DevicesAreWrittenInPlaceNotReplaced) {
  // As root, renaming over /dev/null would turn the device into a regular file.
  ASSERT_EQ(writeFileAtomically("/dev/null", "discarded"), "");
  struct stat st;
  ASSERT_EQ(stat("/dev/null", &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode));
}

TEST_F(AtomicFileTest, ASymlinkKeepsPointingAtTheReplacedFile) {
  std::string real = dir + "/real.mlir", link = dir + "/link.mlir";
  ASSERT_EQ(writeFileAtomically(real, "old"), "");
  ASSERT_EQ(symlink(real.c_str(), link.c_str()), 0);
  ASSERT_EQ(writeFileAtomically(link, "new"), "");
  struct stat st;
  ASSERT_EQ(lstat(link.c_str(), &st), 0);
  EXPECT_TRUE(S_ISLNK(st.st_mode));
  EXPECT_EQ(read(real), "new");
  EXPECT_EQ(entries(), 2);
}

TEST_F(AtomicFileTest, MissingDirectoryIsReported) {
  std::string error = writeFileAtomically(dir + "/no/such/dir/file", "x");
  EXPECT_NE(error.find("no/such/dir/file"), std::string::npos) << error;
}

} // namespace
