//===- CorpusText.cpp - The built-in language as text for a subword tokenizer -===//

#include "runtime/data/CorpusText.h"

#include <unordered_map>

namespace megatron::data {

std::string documentText(const SyntheticLanguage &language, uint64_t seed, uint64_t documentIndex) {
  std::vector<int32_t> words = language.document(seed, documentIndex);
  if (!words.empty() && words.back() == language.endOfDocument())
    words.pop_back();
  return language.vocabulary().detokenize(words);
}

double tokensPerWord(const SyntheticLanguage &language, const std::function<size_t(std::string_view)> &countTokens) {
  const UnifilarProcess &process = language.process();
  const Vocabulary &vocabulary = language.vocabulary();
  // Each (word, at a document's start) is tokenized once.
  std::unordered_map<int64_t, size_t> cache;
  auto tokens = [&](int32_t word, bool documentStart) -> size_t {
    if (word == language.endOfDocument())
      return 1;
    int64_t key = int64_t(word) * 2 + (documentStart ? 1 : 0);
    auto [it, inserted] = cache.try_emplace(key, 0);
    if (inserted)
      it->second = countTokens(documentStart ? vocabulary.word(word) : " " + vocabulary.word(word));
    return it->second;
  };
  double expected = 0.0;
  for (int32_t s = 0; s < process.numStates(); ++s) {
    double perWord = 0.0;
    for (const Transition &t : process.transitions(s))
      perWord += t.probability * static_cast<double>(tokens(t.token, s == process.startState()));
    expected += process.stationaryDistribution()[s] * perWord;
  }
  return expected;
}

} // namespace megatron::data
