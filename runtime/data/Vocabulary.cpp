//===- Vocabulary.cpp - Token ids and the words they stand for -------------===//

#include "runtime/data/Vocabulary.h"

#include <stdexcept>

namespace megatron::data {

namespace {

bool isSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

} // namespace

Vocabulary::Vocabulary(std::vector<std::string> wordList, int32_t endOfDocument)
    : words(std::move(wordList)), eod(endOfDocument) {
  for (size_t i = 0; i < words.size(); ++i) {
    const std::string &w = words[i];
    if (w.empty())
      throw std::invalid_argument("vocabulary: word " + std::to_string(i) + " is empty");
    for (char c : w)
      if (isSpace(c))
        throw std::invalid_argument("vocabulary: word " + std::to_string(i) + " ('" + w + "') contains whitespace");
    if (!ids.emplace(w, static_cast<int32_t>(i)).second)
      throw std::invalid_argument("vocabulary: the word '" + w + "' appears twice");
  }
  if (eod < 0 || eod >= size())
    throw std::invalid_argument("vocabulary: the end-of-document id " + std::to_string(eod) +
                                " is not one of the " + std::to_string(size()) + " ids");
}

const std::string &Vocabulary::word(int32_t id) const {
  if (id < 0 || id >= size())
    throw std::out_of_range("vocabulary: token id " + std::to_string(id) + " is outside [0, " +
                            std::to_string(size()) + ")");
  return words[id];
}

std::optional<int32_t> Vocabulary::id(std::string_view w) const {
  auto it = ids.find(std::string(w));
  if (it == ids.end())
    return std::nullopt;
  return it->second;
}

std::string Vocabulary::detokenize(const int32_t *tokens, size_t count) const {
  std::string text;
  for (size_t i = 0; i < count; ++i) {
    if (i > 0 && tokens[i - 1] != eod)
      text += ' ';
    text += word(tokens[i]);
    if (tokens[i] == eod)
      text += '\n';
  }
  return text;
}

std::vector<int32_t> Vocabulary::tokenize(std::string_view text) const {
  std::vector<int32_t> out;
  size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && isSpace(text[i]))
      ++i;
    size_t begin = i;
    while (i < text.size() && !isSpace(text[i]))
      ++i;
    if (begin == i)
      break;
    std::string_view w = text.substr(begin, i - begin);
    std::optional<int32_t> token = id(w);
    if (!token)
      throw std::invalid_argument("vocabulary: unknown word '" + std::string(w) + "' at offset " +
                                  std::to_string(begin));
    out.push_back(*token);
  }
  return out;
}

} // namespace megatron::data
