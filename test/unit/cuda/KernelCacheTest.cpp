//===- KernelCacheTest.cpp - The compiled-kernel disk cache ----------------------===//
//
// With a counting stand-in for NVRTC, so that these run in every build: a hit compiles nothing, a changed option
// misses, damaged or truncated entries are recompiled and replaced (never used), a failed compilation stores
// nothing, and an unwritable directory only costs the entry. With NVRTC, a real kernel round-trips.
//
//===----------------------------------------------------------------------===//

#include "runtime/cuda/KernelCache.h"
#include "UniqueTempDir.h"

#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <iterator>

using namespace megatron::cuda;
namespace fs = std::filesystem;

namespace {

class KernelCacheTest : public testing::Test {
protected:
  void SetUp() override {
    dir = megatron::test::uniqueTempDir("megatron-kernel-cache-" +
                                        std::string(testing::UnitTest::GetInstance()->current_test_info()->name()));
  }
  void TearDown() override {
    fs::permissions(dir, fs::perms::owner_all, fs::perm_options::add);
    fs::remove_all(dir);
  }

  /// Compiles `key` through the cache with a compiler that returns "code(<key>)" and counts its calls.
  std::optional<std::string> get(KernelCache &cache, const std::string &key) {
    std::string error;
    return cache.getOrCompile("mt_test_kernel", key,
                              [&](std::string &) -> std::optional<std::string> {
                                ++compiles;
                                return "code(" + key + ")";
                              },
                              error);
  }

  static std::string readFile(const fs::path &path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  static void writeFile(const fs::path &path, const std::string &text) {
    std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
  }

  fs::path dir;
  int compiles = 0;
};

TEST_F(KernelCacheTest, SecondLookupIsAHitFromDisk) {
  {
    KernelCache cache(dir.string());
    EXPECT_EQ(get(cache, "source A"), "code(source A)");
    EXPECT_EQ(cache.misses(), 1);
  }
  KernelCache fresh(dir.string()); // another run
  EXPECT_EQ(get(fresh, "source A"), "code(source A)");
  EXPECT_EQ(compiles, 1);
  EXPECT_EQ(fresh.hits(), 1);
  EXPECT_EQ(fresh.misses(), 0);
}

TEST_F(KernelCacheTest, ChangedOptionsMiss) {
  KernelCache cache(dir.string());
  const std::string source = "extern \"C\" __global__ void k() {}";
  const std::string ptx = KernelCache::keyOf(source, {90, CodeKind::Ptx, {}});
  const std::string cubin = KernelCache::keyOf(source, {90, CodeKind::Cubin, {}});
  const std::string sm80 = KernelCache::keyOf(source, {80, CodeKind::Cubin, {}});
  const std::string lineInfo = KernelCache::keyOf(source, {90, CodeKind::Cubin, {"-lineinfo"}});
  for (const std::string *key : {&ptx, &cubin, &sm80, &lineInfo})
    get(cache, *key);
  EXPECT_EQ(compiles, 4);
  EXPECT_NE(cache.entryPath("k", ptx), cache.entryPath("k", cubin));
  get(cache, cubin);
  EXPECT_EQ(compiles, 4);
  EXPECT_EQ(cache.hits(), 1);
}

TEST_F(KernelCacheTest, CorruptOrTruncatedEntriesAreRecompiledNeverUsed) {
  KernelCache cache(dir.string());
  const std::string key = "source B";
  get(cache, key);
  const fs::path entry = cache.entryPath("mt_test_kernel", key);
  const std::string good = readFile(entry);
  ASSERT_GT(good.size(), 40u);

  std::string flipped = good;
  flipped.back() ^= 0x20; // one bit of the payload
  std::string header = good;
  header[30] ^= 1; // the recorded size
  for (const std::string &bad : {flipped, good.substr(0, good.size() - 3), good.substr(0, 20), std::string(), header}) {
    writeFile(entry, bad);
    int before = compiles;
    EXPECT_EQ(get(cache, key), "code(source B)");
    EXPECT_EQ(compiles, before + 1);
    EXPECT_EQ(readFile(entry), good) << "the damaged entry is replaced";
  }
  EXPECT_EQ(cache.rejected(), 5); // an empty file is a damaged entry too; an absent one is a plain miss
}

TEST_F(KernelCacheTest, AnEntryOfAnotherKeyIsNotUsed) {
  KernelCache cache(dir.string());
  get(cache, "source C");
  get(cache, "source D");
  // Put C's entry where D's belongs, as a file-name collision would.
  fs::copy_file(cache.entryPath("mt_test_kernel", "source C"), cache.entryPath("mt_test_kernel", "source D"),
                fs::copy_options::overwrite_existing);
  EXPECT_EQ(get(cache, "source D"), "code(source D)");
  EXPECT_EQ(compiles, 3);
}

TEST_F(KernelCacheTest, WritesAreAtomicAndFailuresStoreNothing) {
  KernelCache cache(dir.string());
  std::string error;
  auto fails = [](std::string &message) -> std::optional<std::string> {
    message = "NVRTC could not compile kernel 'mt_broken'";
    return std::nullopt;
  };
  EXPECT_FALSE(cache.getOrCompile("mt_broken", "broken", fails, error));
  EXPECT_EQ(error, "NVRTC could not compile kernel 'mt_broken'");
  EXPECT_FALSE(fs::exists(cache.entryPath("mt_broken", "broken")));
  get(cache, "source E");
  // Only whole entries are ever in the directory: no temporary file is left behind.
  int files = 0;
  for (const fs::directory_entry &entry : fs::directory_iterator(dir)) {
    ++files;
    EXPECT_EQ(entry.path().extension(), ".bin") << entry.path();
  }
  EXPECT_EQ(files, 1);
}

TEST_F(KernelCacheTest, AnUnwritableDirectoryCostsOnlyTheEntry) {
  fs::create_directories(dir);
  fs::permissions(dir, fs::perms::owner_read | fs::perms::owner_exec);
  if (std::ofstream(dir / "probe")) // root ignores permissions
    GTEST_SKIP() << "this user can write into a read-only directory";
  KernelCache cache(dir.string());
  EXPECT_EQ(get(cache, "source F"), "code(source F)");
  EXPECT_EQ(cache.writeFailures(), 1);
  EXPECT_NE(cache.lastWriteError().find(dir.string()), std::string::npos) << cache.lastWriteError();
}

TEST(KernelCacheDirectory, EnvironmentChoosesIt) {
  setenv("MEGATRON_KERNEL_CACHE", "/tmp/some-cache", 1);
  EXPECT_EQ(KernelCache::defaultDirectory(), "/tmp/some-cache");
  unsetenv("MEGATRON_KERNEL_CACHE");
  setenv("XDG_CACHE_HOME", "/tmp/xdg", 1);
  EXPECT_EQ(KernelCache::defaultDirectory(), "/tmp/xdg/megatron/kernels");
  unsetenv("XDG_CACHE_HOME");
  setenv("HOME", "/home/someone", 1);
  EXPECT_EQ(KernelCache::defaultDirectory(), "/home/someone/.cache/megatron/kernels");
}

TEST(KernelCacheNvrtc, ARealKernelRoundTrips) {
  if (!haveNvrtc())
    GTEST_SKIP() << "built without the CUDA toolkit: no NVRTC";
  fs::path dir = megatron::test::uniqueTempDir("megatron-kernel-cache-nvrtc");
  const std::string source = "extern \"C\" __global__ void mt_scale(float *x) { x[threadIdx.x] *= 2.0f; }";
  std::string error;
  KernelCache first(dir.string());
  std::optional<std::string> compiled = first.compile("mt_scale", source, {90, CodeKind::Cubin, {}}, error);
  ASSERT_TRUE(compiled) << error;
  KernelCache second(dir.string());
  EXPECT_EQ(second.compile("mt_scale", source, {90, CodeKind::Cubin, {}}, error), compiled);
  EXPECT_EQ(second.hits(), 1);
  fs::remove_all(dir);
}

} // namespace
