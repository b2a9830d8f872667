//===- Gpt2BpeTest.cpp - GPT-2's tokenizer against an independent reference ===//
//
// The ids of gpt2-reference.tsv come from scripts/gpt2-bpe-reference.py (OpenAI's encoder.py algorithm, which
// Megatron-LM's GPT2BPETokenizer copies, with Python's `regex`, checked against Hugging Face's `tokenizers`). The
// tests that need GPT-2's files read them from ../shared/data/gpt2 and are skipped when it is absent.
//
//===----------------------------------------------------------------------===//

#include "megatron/Tokenizer/Gpt2Bpe.h"

#include <gtest/gtest.h>

#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>
#include <thread>

using megatron::tokenizer::Gpt2Bpe;
using megatron::tokenizer::SpecialTokens;

namespace {

const std::string kGpt2Dir = std::string(MEGATRON_SHARED_DATA_DIR) + "/gpt2";

/// GPT-2's tokenizer, loaded once; null when the shared data is absent.
const Gpt2Bpe *gpt2() {
  static const std::unique_ptr<Gpt2Bpe> tokenizer = [] {
    std::ifstream probe(kGpt2Dir + "/vocab.json");
    if (!probe)
      return std::unique_ptr<Gpt2Bpe>();
    std::string error;
    auto t = Gpt2Bpe::load(kGpt2Dir + "/vocab.json", kGpt2Dir + "/merges.txt", error);
    EXPECT_TRUE(t) << error;
    return t;
  }();
  return tokenizer.get();
}

#define REQUIRE_GPT2()                                                                                             \
  if (!gpt2())                                                                                                     \
  GTEST_SKIP() << "GPT-2's vocab.json and merges.txt are not in " << kGpt2Dir                                      \
               << " (the shared data is absent); nothing to test against"

struct Case {
  std::string category;
  std::string text;
  std::vector<int32_t> ids;
  size_t line;
};

std::string fromHex(const std::string &hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2)
    out += char(std::stoi(hex.substr(i, 2), nullptr, 16));
  return out;
}

const std::vector<Case> &referenceCases() {
  static const std::vector<Case> cases = [] {
    std::vector<Case> out;
    std::ifstream in(MEGATRON_TOKENIZER_FIXTURE);
    EXPECT_TRUE(in) << "cannot open " << MEGATRON_TOKENIZER_FIXTURE;
    std::string line;
    size_t lineNo = 0;
    while (std::getline(in, line)) {
      ++lineNo;
      if (line.empty() || line[0] == '#')
        continue;
      size_t t1 = line.find('\t'), t2 = line.find('\t', t1 + 1);
      EXPECT_NE(t2, std::string::npos) << "fixture line " << lineNo;
      if (t2 == std::string::npos)
        continue;
      Case c{line.substr(0, t1), fromHex(line.substr(t1 + 1, t2 - t1 - 1)), {}, lineNo};
      std::istringstream ids(line.substr(t2 + 1));
      for (int32_t id; ids >> id;)
        c.ids.push_back(id);
      out.push_back(std::move(c));
    }
    return out;
  }();
  return cases;
}

std::vector<int32_t> encode(const Gpt2Bpe &t, std::string_view text) {
  std::vector<int32_t> ids;
  t.encode(text, ids);
  return ids;
}

TEST(Gpt2BpeTest, LoadsGpt2) {
  REQUIRE_GPT2();
  const Gpt2Bpe &t = *gpt2();
  EXPECT_EQ(t.vocabSize(), 50257u);
  EXPECT_EQ(t.numMerges(), 50000u);
  EXPECT_EQ(t.endOfText(), 50256);
  EXPECT_EQ(t.tokenBytes(50256), "<|endoftext|>");
  EXPECT_EQ(t.tokenId(" the"), 262);
  EXPECT_EQ(t.tokenBytes(262), " the");
  EXPECT_EQ(t.tokenId("!"), 0);
  EXPECT_EQ(t.tokenId("not a token at all"), -1);
  EXPECT_EQ(t.tokenBytes(-1), "");
  EXPECT_EQ(t.tokenBytes(50257), "");
  // Byte 0x20 is spelt "Ġ" (U+0120) in vocab.json; its token is the byte itself.
  EXPECT_EQ(Gpt2Bpe::byteToUnicode(' '), U'\u0120');
  EXPECT_EQ(Gpt2Bpe::byteToUnicode('A'), U'A');
  EXPECT_EQ(t.tokenId(" "), 220);
}

TEST(Gpt2BpeTest, IdsEqualTheReference) {
  REQUIRE_GPT2();
  const Gpt2Bpe &t = *gpt2();
  const std::vector<Case> &cases = referenceCases();
  ASSERT_GE(cases.size(), 500u);
  std::map<std::string, int> perCategory;
  for (const Case &c : cases) {
    EXPECT_EQ(encode(t, c.text), c.ids) << c.category << " case on fixture line " << c.line << ": \"" << c.text
                                        << "\"";
    ++perCategory[c.category];
  }
  for (const char *category : {"ascii", "contractions", "whitespace", "accents", "cjk", "emoji", "mixed",
                               "numbers", "punctuation", "long", "random"})
    EXPECT_GT(perCategory[category], 0) << category;
  EXPECT_GE(perCategory["random"], 300);
}

TEST(Gpt2BpeTest, AppendsToIds) {
  REQUIRE_GPT2();
  std::vector<int32_t> ids = {7};
  gpt2()->encode("Hello world", ids);
  EXPECT_EQ(ids, (std::vector<int32_t>{7, 15496, 995}));
  gpt2()->encode("", ids);
  EXPECT_EQ(ids.size(), 3u);
}

TEST(Gpt2BpeTest, DecodeRoundTripsTheReference) {
  REQUIRE_GPT2();
  const Gpt2Bpe &t = *gpt2();
  for (const Case &c : referenceCases())
    EXPECT_EQ(t.decode(c.ids), c.text) << "fixture line " << c.line;
  EXPECT_EQ(t.decode(nullptr, 0), "");
  std::vector<int32_t> bad = {15496, 50257};
  EXPECT_THROW(t.decode(bad), std::out_of_range);
  bad = {-1};
  EXPECT_THROW(t.decode(bad), std::out_of_range);
}

TEST(Gpt2BpeTest, EndOfTextIsTextByDefaultAsInMegatron) {
  REQUIRE_GPT2();
  const Gpt2Bpe &t = *gpt2();
  std::vector<int32_t> asText = {27, 91, 437, 1659, 5239, 91, 29};
  EXPECT_EQ(encode(t, "<|endoftext|>"), asText);
  std::vector<int32_t> ids;
  t.encode("<|endoftext|>", ids, SpecialTokens::AsText);
  EXPECT_EQ(ids, asText);
  ids.clear();
  t.encode("<|endoftext|>", ids, SpecialTokens::Recognize);
  EXPECT_EQ(ids, (std::vector<int32_t>{50256}));

  // Recognized, the text on each side is encoded on its own (so " second" keeps its space).
  ids.clear();
  t.encode("first<|endoftext|> second<|endoftext|><|endoftext|>", ids, SpecialTokens::Recognize);
  std::vector<int32_t> expected = encode(t, "first");
  expected.push_back(50256);
  for (int32_t id : encode(t, " second"))
    expected.push_back(id);
  expected.push_back(50256);
  expected.push_back(50256);
  EXPECT_EQ(ids, expected);
  EXPECT_EQ(t.decode(ids), "first<|endoftext|> second<|endoftext|><|endoftext|>");
  // A partial marker is text.
  ids.clear();
  t.encode("<|endoftext|", ids, SpecialTokens::Recognize);
  EXPECT_EQ(ids, encode(t, "<|endoftext|"));
}

//===----------------------------------------------------------------------===//
// Invalid UTF-8: each byte that does not begin a well-formed sequence is a piece of its own.
//===----------------------------------------------------------------------===//

std::vector<std::string> pieces(std::string_view text) {
  std::vector<std::string_view> views;
  Gpt2Bpe::pretokenize(text, views);
  return std::vector<std::string>(views.begin(), views.end());
}

using Pieces = std::vector<std::string>;

TEST(Gpt2BpeTest, PretokenizesLikeGpt2) {
  EXPECT_EQ(pieces("Hello world"), (Pieces{"Hello", " world"}));
  EXPECT_EQ(pieces("it's IT'S"), (Pieces{"it", "'s", " IT", "'", "S"}));
  EXPECT_EQ(pieces("a  b"), (Pieces{"a", " ", " b"}));
  EXPECT_EQ(pieces("a \n\n b  "), (Pieces{"a", " \n\n", " b", "  "}));
  EXPECT_EQ(pieces("x2024 ?!"), (Pieces{"x", "2024", " ?!"}));
  EXPECT_EQ(pieces(""), Pieces{});
}

TEST(Gpt2BpeTest, InvalidUtf8BytesArePiecesOfTheirOwn) {
  EXPECT_EQ(pieces("\xff"), (Pieces{"\xff"}));
  EXPECT_EQ(pieces("ab\xff" "cd"), (Pieces{"ab", "\xff", "cd"}));
  EXPECT_EQ(pieces("a \xff"), (Pieces{"a", " ", "\xff"}));
  EXPECT_EQ(pieces("a  \xff"), (Pieces{"a", " ", " ", "\xff"}));
  EXPECT_EQ(pieces("!!\x80\x80!!"), (Pieces{"!!", "\x80", "\x80", "!!"}));
  // Overlong, surrogate, above U+10FFFF, truncated: every byte stands alone.
  EXPECT_EQ(pieces("\xc0\xaf"), (Pieces{"\xc0", "\xaf"}));
  EXPECT_EQ(pieces("\xed\xa0\x80"), (Pieces{"\xed", "\xa0", "\x80"}));
  EXPECT_EQ(pieces("\xf4\x90\x80\x80"), (Pieces{"\xf4", "\x90", "\x80", "\x80"}));
  EXPECT_EQ(pieces("x\xe2\x82"), (Pieces{"x", "\xe2", "\x82"}));
  // A well-formed neighbour is unaffected: "€" (E2 82 AC) is one character.
  EXPECT_EQ(pieces(" \xe2\x82\xac\xff"), (Pieces{" \xe2\x82\xac", "\xff"}));
  EXPECT_EQ(pieces("caf\xc3\xa9\xc3"), (Pieces{"caf\xc3\xa9", "\xc3"}));
}

TEST(Gpt2BpeTest, InvalidUtf8EncodesThroughTheByteMap) {
  REQUIRE_GPT2();
  const Gpt2Bpe &t = *gpt2();
  for (int b = 0x80; b < 0x100; ++b) {
    if (b >= 0xC2 && b <= 0xF4)
      continue; // lead bytes: alone they are truncated sequences, tested below
    std::string s(1, char(b));
    EXPECT_EQ(encode(t, s), (std::vector<int32_t>{t.tokenId(s)})) << b;
  }
  std::vector<int32_t> ids = encode(t, "Hello\xff world");
  EXPECT_EQ(ids, (std::vector<int32_t>{15496, t.tokenId("\xff"), 995}));
  EXPECT_EQ(t.decode(ids), "Hello\xff world");
}

TEST(Gpt2BpeTest, DecodeOfEncodeIsTheIdentityOnAnyBytes) {
  REQUIRE_GPT2();
  const Gpt2Bpe &t = *gpt2();
  std::mt19937_64 rng(6);
  const std::string alphabet = "ab \n'sé\xe4\xb8\xad\xf0\x9f\x98\x80";
  for (int k = 0; k < 3000; ++k) {
    size_t n = rng() % 40;
    std::string s;
    for (size_t i = 0; i < n; ++i) {
      if (k % 2)
        s += char(rng() & 0xFF); // uniformly random bytes: mostly invalid UTF-8
      else
        s += alphabet[rng() % alphabet.size()]; // fragments of multi-byte sequences among ASCII
    }
    std::vector<int32_t> ids = encode(t, s);
    ASSERT_EQ(t.decode(ids), s) << "case " << k;
    std::string joined;
    for (const std::string &p : pieces(s))
      joined += p;
    ASSERT_EQ(joined, s);
  }
}

//===----------------------------------------------------------------------===//
// Threads and caches
//===----------------------------------------------------------------------===//

TEST(Gpt2BpeTest, EncodesFromManyThreadsAtOnce) {
  REQUIRE_GPT2();
  const Gpt2Bpe &t = *gpt2();
  const std::vector<Case> &cases = referenceCases();
  std::vector<std::thread> threads;
  std::vector<int> failures(8, 0);
  for (int w = 0; w < 8; ++w)
    threads.emplace_back([&, w] {
      for (int round = 0; round < 5; ++round)
        for (size_t i = w; i < cases.size() + w; ++i) {
          const Case &c = cases[(i * 7 + round) % cases.size()];
          std::vector<int32_t> ids;
          t.encode(c.text, ids);
          failures[w] += ids != c.ids;
        }
    });
  for (std::thread &th : threads)
    th.join();
  for (int w = 0; w < 8; ++w)
    EXPECT_EQ(failures[w], 0) << "thread " << w;
}

TEST(Gpt2BpeTest, TwoTokenizersInOneThreadKeepTheirCachesApart) {
  REQUIRE_GPT2();
  // A second vocabulary in which " world" is spelt differently: the merge "Ġwor ld" is missing.
  std::string vocab, merges, error;
  {
    std::ifstream v(kGpt2Dir + "/vocab.json"), m(kGpt2Dir + "/merges.txt");
    std::stringstream vs, ms;
    vs << v.rdbuf();
    ms << m.rdbuf();
    vocab = vs.str();
    merges = ms.str();
  }
  std::string withoutWorld;
  std::istringstream lines(merges);
  for (std::string line; std::getline(lines, line);)
    if (line != "Ġwor ld")
      withoutWorld += line + "\n";
  auto other = Gpt2Bpe::loadFromMemory(vocab, withoutWorld, error);
  ASSERT_TRUE(other) << error;
  EXPECT_EQ(other->numMerges(), 49999u);
  for (int k = 0; k < 3; ++k) {
    EXPECT_EQ(encode(*gpt2(), "Hello world"), (std::vector<int32_t>{15496, 995}));
    std::vector<int32_t> ids = encode(*other, "Hello world");
    EXPECT_NE(ids, (std::vector<int32_t>{15496, 995}));
    EXPECT_EQ(other->decode(ids), "Hello world");
  }
}

TEST(Gpt2BpeTest, ManyDistinctPiecesOverflowTheCacheSafely) {
  REQUIRE_GPT2();
  const Gpt2Bpe &t = *gpt2();
  // More distinct pieces than a thread's cache holds, twice over; the ids stay those of a fresh tokenizer.
  std::string error;
  auto fresh = Gpt2Bpe::load(kGpt2Dir + "/vocab.json", kGpt2Dir + "/merges.txt", error);
  ASSERT_TRUE(fresh) << error;
  std::mt19937 rng(1);
  std::string text;
  for (int k = 0; k < 300000; ++k) {
    text += ' ';
    for (int i = 0, n = 2 + rng() % 8; i < n; ++i)
      text += char('a' + rng() % 26);
  }
  std::vector<int32_t> a = encode(t, text), b;
  std::thread([&] { fresh->encode(text, b); }).join();
  EXPECT_EQ(a, b);
  EXPECT_EQ(t.decode(a), text);
}

} // namespace
