//===- Gpt2BpeLoadTest.cpp - Small vocabularies: loading errors, merges ---===//
//
// These tests build their own byte-level vocabularies, so they need no shared data: the messages for malformed
// vocab.json and merges.txt, and GPT-2's merge loop against a direct port of encoder.py's bpe() on random merge
// tables, on words short and long (the two code paths).
//
//===----------------------------------------------------------------------===//

#include "megatron/Tokenizer/Gpt2Bpe.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <random>

using megatron::tokenizer::Gpt2Bpe;

namespace {

std::string utf8(char32_t c) {
  std::string out;
  if (c < 0x80) {
    out += char(c);
  } else if (c < 0x800) {
    out += char(0xC0 | (c >> 6));
    out += char(0x80 | (c & 0x3F));
  } else {
    out += char(0xE0 | (c >> 12));
    out += char(0x80 | ((c >> 6) & 0x3F));
    out += char(0x80 | (c & 0x3F));
  }
  return out;
}

/// vocab.json's spelling of raw bytes, as a JSON string body.
std::string spell(const std::string &bytes) {
  std::string out;
  for (unsigned char b : bytes) {
    char32_t c = Gpt2Bpe::byteToUnicode(b);
    if (c == '"' || c == '\\')
      out += '\\';
    out += utf8(c);
  }
  return out;
}

/// A byte-level vocabulary: the 256 bytes (ids 0-255), then `extra` tokens, then <|endoftext|>; one per line.
std::string vocabJson(const std::vector<std::string> &extra, bool endOfText = true) {
  std::string out = "{";
  int id = 0;
  auto add = [&](const std::string &body) {
    out += (id ? ",\n" : "\n");
    out += "  \"" + body + "\": " + std::to_string(id++);
  };
  for (int b = 0; b < 256; ++b)
    add(spell(std::string(1, char(b))));
  for (const std::string &t : extra)
    add(spell(t));
  if (endOfText)
    add("<|endoftext|>");
  return out + "\n}\n";
}

std::string mergesTxt(const std::vector<std::pair<std::string, std::string>> &merges) {
  std::string out = "#version: 0.2\n";
  for (auto &[a, b] : merges)
    out += spell(a) + " " + spell(b) + "\n";
  return out;
}

std::string loadError(const std::string &vocab, const std::string &merges) {
  std::string error;
  auto t = Gpt2Bpe::loadFromMemory(vocab, merges, error);
  EXPECT_FALSE(t) << "loaded a bad vocabulary";
  EXPECT_FALSE(error.empty());
  return error;
}

std::vector<int32_t> encode(const Gpt2Bpe &t, std::string_view text) {
  std::vector<int32_t> ids;
  t.encode(text, ids);
  return ids;
}

TEST(Gpt2BpeLoadTest, SmallVocabulary) {
  std::string error;
  auto t = Gpt2Bpe::loadFromMemory(vocabJson({"ab", "abc", " ab"}), mergesTxt({{"a", "b"}, {"ab", "c"}, {" ", "ab"}}),
                                   error);
  ASSERT_TRUE(t) << error;
  EXPECT_EQ(t->vocabSize(), 260u);
  EXPECT_EQ(t->numMerges(), 3u);
  EXPECT_EQ(t->endOfText(), 259);
  EXPECT_EQ(encode(*t, "abc ab abx"), (std::vector<int32_t>{257, 258, 258, 'x'}));
  EXPECT_EQ(t->decode(encode(*t, "abc ab abx")), "abc ab abx");
}

TEST(Gpt2BpeLoadTest, MergesRoundByRoundLeftToRight) {
  std::string error;
  auto t = Gpt2Bpe::loadFromMemory(vocabJson({"aa", "aaaa"}), mergesTxt({{"a", "a"}, {"aa", "aa"}}), error);
  ASSERT_TRUE(t) << error;
  // "aaa": the pair (a, a) merges once, from the left.
  EXPECT_EQ(encode(*t, "aaa"), (std::vector<int32_t>{256, 'a'}));
  EXPECT_EQ(encode(*t, "aaaaa"), (std::vector<int32_t>{257, 'a'}));
  // Long words take the heap path: the same answer.
  std::vector<int32_t> expected(50, 257);
  EXPECT_EQ(encode(*t, std::string(200, 'a')), expected);
  expected.push_back('a');
  EXPECT_EQ(encode(*t, std::string(201, 'a')), expected);
  expected = std::vector<int32_t>(50, 257);
  expected.push_back(256);
  expected.push_back('a');
  EXPECT_EQ(encode(*t, std::string(203, 'a')), expected);
}

TEST(Gpt2BpeLoadTest, NoEndOfText) {
  std::string error;
  auto t = Gpt2Bpe::loadFromMemory(vocabJson({}, false), "#version: 0.2\n", error);
  ASSERT_TRUE(t) << error;
  EXPECT_EQ(t->endOfText(), -1);
  EXPECT_EQ(t->vocabSize(), 256u);
  std::vector<int32_t> ids;
  t->encode("<|endoftext|>", ids, megatron::tokenizer::SpecialTokens::Recognize);
  EXPECT_EQ(ids.size(), 13u);
}

TEST(Gpt2BpeLoadTest, MergesWithoutVersionLineAndWithCrLf) {
  std::string error;
  auto t = Gpt2Bpe::loadFromMemory(vocabJson({"ab"}), "a b\r\n\r\n", error);
  ASSERT_TRUE(t) << error;
  EXPECT_EQ(t->numMerges(), 1u);
  EXPECT_EQ(encode(*t, "ab"), (std::vector<int32_t>{256}));
}

/// encoder.py's bpe(), ported directly: a round merges every occurrence of the lowest-ranked pair, left to right.
std::vector<std::string> referenceBpe(const std::string &word,
                                      const std::map<std::pair<std::string, std::string>, size_t> &ranks) {
  std::vector<std::string> w;
  for (char c : word)
    w.push_back(std::string(1, c));
  while (w.size() > 1) {
    size_t best = SIZE_MAX;
    std::pair<std::string, std::string> bigram;
    for (size_t i = 0; i + 1 < w.size(); ++i) {
      auto it = ranks.find({w[i], w[i + 1]});
      if (it != ranks.end() && it->second < best) {
        best = it->second;
        bigram = it->first;
      }
    }
    if (best == SIZE_MAX)
      break;
    std::vector<std::string> next;
    for (size_t i = 0; i < w.size();) {
      if (i + 1 < w.size() && w[i] == bigram.first && w[i + 1] == bigram.second) {
        next.push_back(w[i] + w[i + 1]);
        i += 2;
      } else {
        next.push_back(w[i++]);
      }
    }
    w = std::move(next);
  }
  return w;
}

TEST(Gpt2BpeLoadTest, MergeLoopEqualsEncoderPyOnRandomMergeTables) {
  std::mt19937 rng(6);
  for (int table = 0; table < 20; ++table) {
    // Random merges over {a, b, c}; some tables also hold merges whose rank is lower than a part's own merge,
    // which GPT-2's files never do but which the round structure must still get right.
    std::vector<std::string> tokens = {"a", "b", "c"}, extra;
    std::vector<std::pair<std::string, std::string>> merges;
    std::map<std::pair<std::string, std::string>, size_t> ranks;
    while (merges.size() < 40) {
      const std::string &l = tokens[rng() % tokens.size()], &r = tokens[rng() % tokens.size()];
      if (l.size() + r.size() > 12 || ranks.count({l, r}))
        continue;
      std::string m = l + r;
      bool known = std::find(tokens.begin(), tokens.end(), m) != tokens.end();
      ranks[{l, r}] = merges.size();
      merges.emplace_back(l, r);
      if (!known) {
        tokens.push_back(m);
        extra.push_back(m);
      }
    }
    if (table % 2) {
      std::shuffle(merges.begin(), merges.end(), rng);
      for (size_t r = 0; r < merges.size(); ++r)
        ranks[merges[r]] = r;
    }
    std::string error;
    auto t = Gpt2Bpe::loadFromMemory(vocabJson(extra), mergesTxt(merges), error);
    ASSERT_TRUE(t) << error;
    for (int k = 0; k < 60; ++k) {
      size_t n = k % 3 == 0 ? 1 + rng() % 20 : 80 + rng() % 300; // both sides of the short/long threshold
      std::string word;
      for (size_t i = 0; i < n; ++i)
        word += char('a' + rng() % 3);
      std::vector<int32_t> expected;
      for (const std::string &piece : referenceBpe(word, ranks))
        expected.push_back(t->tokenId(piece));
      ASSERT_EQ(encode(*t, word), expected) << "table " << table << ", word " << word;
    }
  }
}

//===----------------------------------------------------------------------===//
// Errors: the file, the line and the problem.
//===----------------------------------------------------------------------===//

TEST(Gpt2BpeLoadTest, MissingFilesAreNamed) {
  std::string error;
  EXPECT_FALSE(Gpt2Bpe::load("/nonexistent/vocab.json", "/nonexistent/merges.txt", error));
  EXPECT_NE(error.find("/nonexistent/vocab.json: cannot open"), std::string::npos) << error;
}

TEST(Gpt2BpeLoadTest, MalformedVocabJson) {
  std::string merges = "#version: 0.2\n";
  std::string good = vocabJson({"ab"});
  EXPECT_EQ(loadError("", merges), "vocab.json:1: unexpected end of file: expected '{' opening the vocabulary object");
  EXPECT_EQ(loadError("[1, 2]", merges), "vocab.json:1: expected '{' opening the vocabulary object, found '['");
  EXPECT_EQ(loadError("{}", merges), "vocab.json:1: the vocabulary is empty");
  // Truncated in the middle of line 101, the token of id 99.
  std::string truncated = good.substr(0, good.find("\n  \"", good.find("98,")) + 6);
  std::string e = loadError(truncated, merges);
  EXPECT_EQ(e.rfind("vocab.json:101: unexpected end of file", 0), 0u) << e;
  e = loadError("{\n\"a\": 0,\n\"b\" 1}", merges);
  EXPECT_EQ(e, "vocab.json:3: expected ':' after the token, found '1'");
  e = loadError("{\n\"a\": 0,\n\"b\": 1.5}", merges);
  EXPECT_EQ(e, "vocab.json:3: the id is not an integer");
  e = loadError("{\n\"a\": 0,\n\"b\": \"1\"}", merges);
  EXPECT_EQ(e, "vocab.json:3: expected an integer id after the token");
  e = loadError("{\n\"a\": 0,\n\"b\": 1,\n}", merges);
  EXPECT_EQ(e, "vocab.json:4: expected '\"' opening a token string, found '}'");
  e = loadError("{\n\"a\": 0\n\"b\": 1}", merges);
  EXPECT_EQ(e, "vocab.json:3: expected ',' or '}' after the id, found '\"'");
  e = loadError("{\"a\": 0} x", merges);
  EXPECT_EQ(e, "vocab.json:1: unexpected text after the vocabulary object");
  e = loadError("{\n\"\\q\": 0}", merges);
  EXPECT_EQ(e, "vocab.json:2: bad escape '\\q' in a string");
  e = loadError("{\n\"\\ud800x\": 0}", merges);
  EXPECT_EQ(e, "vocab.json:2: high surrogate not followed by a low surrogate in a \\u escape");
  e = loadError("{\n\"a\": 0,\n\"\": 1}", merges);
  EXPECT_EQ(e, "vocab.json:3: empty token");
  // A character GPT-2's map never produces (a space must be spelt "Ġ").
  e = loadError("{\n\"a\": 0,\n\"a b\": 1}", merges);
  EXPECT_EQ(e, "vocab.json:3: the token \"a b\" has the character U+0020, which GPT-2's byte-to-unicode map does "
               "not produce");
  // Duplicates and ids.
  std::string dup = good;
  dup.insert(dup.rfind('}'), ",\n  \"ab\": 258");
  e = loadError(dup, merges);
  EXPECT_EQ(e, "vocab.json:261: the token \"ab\" appears twice (ids 256 and 258)");
  std::string dupId = good;
  dupId.insert(dupId.rfind('}'), ",\n  \"abc\": 256");
  e = loadError(dupId, merges);
  EXPECT_EQ(e, "vocab.json:261: the id 256 of \"abc\" is also the id of \"ab\" (line 258)");
  std::string gap = good;
  gap.insert(gap.rfind('}'), ",\n  \"abc\": 300");
  e = loadError(gap, merges);
  EXPECT_EQ(e, "vocab.json:261: the id 300 of \"abc\" is outside [0, 259): ids must number the 259 tokens from 0");
  e = loadError("{\n\"a\": -1}", merges);
  EXPECT_EQ(e, "vocab.json:2: the id -1 of \"a\" is outside [0, 1): ids must number the 1 tokens from 0");
  // A byte-level vocabulary has all 256 bytes.
  e = loadError("{\n\"a\": 0,\n\"b\": 1}", merges);
  EXPECT_EQ(e, "vocab.json: no token for the byte 0x00 (\"Ā\"): a byte-level vocabulary needs all 256");
}

TEST(Gpt2BpeLoadTest, MalformedMergesTxt) {
  std::string vocab = vocabJson({"ab", "abc"});
  EXPECT_EQ(loadError(vocab, "#version: 0.2\na b\nab  c\n"),
            "merges.txt:3: expected two tokens separated by one space, found \"ab  c\"");
  EXPECT_EQ(loadError(vocab, "#version: 0.2\na b\nabc\n"),
            "merges.txt:3: expected two tokens separated by one space, found \"abc\"");
  EXPECT_EQ(loadError(vocab, "#version: 0.2\na b\nab c d\n"),
            "merges.txt:3: expected two tokens separated by one space, found \"ab c d\"");
  EXPECT_EQ(loadError(vocab, "#version: 0.2\nab cd\n"), "merges.txt:2: the token \"cd\" is not in vocab.json");
  EXPECT_EQ(loadError(vocab, "#version: 0.2\na b\nb c\n"),
            "merges.txt:3: the merge's result \"bc\" is not in vocab.json");
  EXPECT_EQ(loadError(vocab, "#version: 0.2\na b\nab c\na b\n"),
            "merges.txt:4: the merge \"a b\" appears twice (first on line 2)");
  EXPECT_EQ(loadError(vocab, "#version: 0.2\na \xff\n"),
            "merges.txt:2: \"\xff\" is not spelt with GPT-2's byte-to-unicode map (or is not UTF-8)");
  // The names given to load appear in the messages.
  std::string dir = ::testing::TempDir();
  std::string vocabPath = dir + "/tok-vocab.json", mergesPath = dir + "/tok-merges.txt";
  std::ofstream(vocabPath) << vocab;
  std::ofstream(mergesPath) << "#version: 0.2\na b\nab x\n";
  std::string error;
  EXPECT_FALSE(Gpt2Bpe::load(vocabPath, mergesPath, error));
  EXPECT_EQ(error, mergesPath + ":3: the merge's result \"abx\" is not in " + vocabPath);
  std::remove(vocabPath.c_str());
  std::remove(mergesPath.c_str());
}

} // namespace
