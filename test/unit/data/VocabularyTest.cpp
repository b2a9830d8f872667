//===- VocabularyTest.cpp - Ids, words and text ----------------------------===//

#include "runtime/data/SyntheticLanguage.h"
#include "runtime/data/Vocabulary.h"

#include <algorithm>
#include <gtest/gtest.h>
#include <set>
#include <stdexcept>

using megatron::data::SyntheticLanguage;
using megatron::data::Vocabulary;

namespace {

TEST(VocabularyTest, BuiltinIdsAndWordsRoundTrip) {
  const Vocabulary &v = SyntheticLanguage::builtin().vocabulary();
  EXPECT_GE(v.size(), 100);
  EXPECT_LE(v.size(), 500);
  EXPECT_EQ(v.word(v.endOfDocument()), "<|endoftext|>");
  std::set<std::string> seen;
  for (int32_t id = 0; id < v.size(); ++id) {
    const std::string &w = v.word(id);
    EXPECT_TRUE(seen.insert(w).second) << w;
    ASSERT_TRUE(v.id(w).has_value()) << w;
    EXPECT_EQ(*v.id(w), id);
  }
  for (const char *w : {".", "?", "\"", "the", "cat", "cats", "sees", "see", "says"})
    EXPECT_TRUE(v.id(w).has_value()) << w;
  EXPECT_FALSE(v.id("unicorn").has_value());
  EXPECT_THROW(v.word(-1), std::out_of_range);
  EXPECT_THROW(v.word(v.size()), std::out_of_range);
}

TEST(VocabularyTest, TextRoundTrip) {
  const SyntheticLanguage &lang = SyntheticLanguage::builtin();
  const Vocabulary &v = lang.vocabulary();
  std::vector<int32_t> ids;
  for (uint64_t d = 0; d < 20; ++d) {
    std::vector<int32_t> doc = lang.document(7, d);
    ids.insert(ids.end(), doc.begin(), doc.end());
  }
  std::string text = v.detokenize(ids);
  EXPECT_EQ(v.tokenize(text), ids);
  // One document per line.
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 20);
  // Text that starts or ends mid-document.
  std::vector<int32_t> middle(ids.begin() + 3, ids.begin() + 200);
  EXPECT_EQ(v.tokenize(v.detokenize(middle)), middle);
}

TEST(VocabularyTest, Detokenize) {
  Vocabulary v({"<|endoftext|>", "the", "cat", "runs", "."}, 0);
  EXPECT_EQ(v.detokenize({1, 2, 3, 4, 0, 1}), "the cat runs . <|endoftext|>\nthe");
  EXPECT_EQ(v.detokenize({}), "");
  EXPECT_EQ(v.tokenize("  the\tcat\n\nruns .  "), (std::vector<int32_t>{1, 2, 3, 4}));
  EXPECT_THROW(v.tokenize("the dog"), std::invalid_argument);
  EXPECT_THROW(v.detokenize({5}), std::out_of_range);
}

TEST(VocabularyTest, RejectsBadWordLists) {
  EXPECT_THROW(Vocabulary({"a", "a"}, 0), std::invalid_argument);
  EXPECT_THROW(Vocabulary({"a", ""}, 0), std::invalid_argument);
  EXPECT_THROW(Vocabulary({"a", "b c"}, 0), std::invalid_argument);
  EXPECT_THROW(Vocabulary({"a"}, 1), std::invalid_argument);
}

} // namespace
