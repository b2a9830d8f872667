//===- BpeTrainer.cpp - Learn byte-level BPE merges, GPT-2 style ----------===//
//
// Pair counts over the distinct pieces (weighted by their counts), a max-heap of pairs with lazy deletion
// (a popped entry whose count is stale is pushed again with the current one), and for each pair the pieces that
// hold it, so a merge rewrites only those.
//
//===----------------------------------------------------------------------===//

#include "megatron/Tokenizer/BpeTrainer.h"

#include "megatron/Tokenizer/Gpt2Bpe.h"

#include <algorithm>
#include <queue>
#include <unordered_set>
#include <vector>

namespace megatron::tokenizer {

void BpeTrainer::addText(std::string_view text) {
  std::vector<std::string_view> pieces;
  Gpt2Bpe::pretokenize(text, pieces);
  for (std::string_view p : pieces)
    ++counts[std::string(p)];
}

void BpeTrainer::addPiece(std::string_view piece, uint64_t count) {
  if (!piece.empty() && count)
    counts[std::string(piece)] += count;
}

namespace {

void appendUtf8(std::string &out, char32_t c) {
  if (c < 0x80) {
    out += char(c);
  } else {
    // GPT-2's map stays below U+0800.
    out += char(0xC0 | (c >> 6));
    out += char(0x80 | (c & 0x3F));
  }
}

std::string spell(const std::string &bytes) {
  std::string out;
  for (unsigned char b : bytes)
    appendUtf8(out, Gpt2Bpe::byteToUnicode(b));
  return out;
}

std::string jsonString(const std::string &s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\')
      out += '\\';
    out += c;
  }
  return out + "\"";
}

uint64_t keyOf(int32_t a, int32_t b) { return (uint64_t(uint32_t(a)) << 32) | uint32_t(b); }

struct HeapEntry {
  uint64_t count;
  uint64_t key;
  // The most frequent pair first; among equals, the smaller (left id, right id).
  bool operator<(const HeapEntry &o) const { return count != o.count ? count < o.count : key > o.key; }
};

} // namespace

BpeTrainerResult BpeTrainer::train(const BpeTrainerOptions &options) const {
  // The 256 bytes first, in GPT-2's order (by their spelling's code point: GPT-2's ids 0-255).
  std::vector<std::string> tokens;
  std::vector<int32_t> idOfByte(256);
  {
    std::vector<int> order(256);
    for (int b = 0; b < 256; ++b)
      order[b] = b;
    std::sort(order.begin(), order.end(),
              [](int x, int y) { return Gpt2Bpe::byteToUnicode(uint8_t(x)) < Gpt2Bpe::byteToUnicode(uint8_t(y)); });
    for (int k = 0; k < 256; ++k) {
      idOfByte[order[k]] = k;
      tokens.push_back(std::string(1, char(order[k])));
    }
  }
  std::unordered_map<std::string, int32_t> idOfToken;
  for (int32_t id = 0; id < 256; ++id)
    idOfToken[tokens[id]] = id;

  // The pieces, sorted so that nothing depends on the hash map's order.
  struct Word {
    std::vector<int32_t> symbols;
    uint64_t count;
  };
  std::vector<std::pair<std::string, uint64_t>> sorted(counts.begin(), counts.end());
  std::sort(sorted.begin(), sorted.end());
  std::vector<Word> words;
  words.reserve(sorted.size());
  for (auto &[piece, count] : sorted) {
    Word w{{}, count};
    for (unsigned char b : piece)
      w.symbols.push_back(idOfByte[b]);
    words.push_back(std::move(w));
  }

  std::unordered_map<uint64_t, uint64_t> pairCount;
  std::unordered_map<uint64_t, std::vector<uint32_t>> where;
  for (uint32_t w = 0; w < words.size(); ++w) {
    const std::vector<int32_t> &s = words[w].symbols;
    for (size_t i = 0; i + 1 < s.size(); ++i) {
      uint64_t k = keyOf(s[i], s[i + 1]);
      pairCount[k] += words[w].count;
      std::vector<uint32_t> &list = where[k];
      if (list.empty() || list.back() != w)
        list.push_back(w);
    }
  }
  std::priority_queue<HeapEntry> heap;
  for (auto &[k, c] : pairCount)
    heap.push(HeapEntry{c, k});

  size_t reserved = options.endOfText ? 1 : 0;
  std::vector<std::pair<int32_t, int32_t>> merges;
  std::vector<uint32_t> seen(words.size(), 0);
  uint32_t stamp = 0;
  std::unordered_map<uint64_t, int64_t> delta;
  std::unordered_set<uint64_t> mergedPairs;
  BpeTrainerResult result;
  while (tokens.size() + reserved < options.vocabSize && !heap.empty()) {
    HeapEntry top = heap.top();
    heap.pop();
    auto it = pairCount.find(top.key);
    uint64_t current = it == pairCount.end() ? 0 : it->second;
    if (current != top.count) {
      if (current > 0)
        heap.push(HeapEntry{current, top.key});
      continue;
    }
    if (current < std::max<uint64_t>(options.minFrequency, 1))
      break;
    int32_t a = int32_t(top.key >> 32), b = int32_t(uint32_t(top.key));
    std::string merged = tokens[a] + tokens[b];
    int32_t c;
    auto known = idOfToken.find(merged);
    if (known != idOfToken.end()) {
      c = known->second; // the same bytes reached by another merge: one token, two merges
    } else {
      c = int32_t(tokens.size());
      tokens.push_back(merged);
      idOfToken.emplace(merged, c);
    }
    // A pair merged before can come back only when two merges spell one token (a later merge re-creates one of
    // its symbols). It is merged again, as the encoder would, without a second line in merges.txt.
    if (mergedPairs.insert(top.key).second)
      merges.emplace_back(a, b);
    else
      ++result.remerges;

    ++stamp;
    delta.clear();
    std::vector<uint32_t> list;
    list.swap(where[top.key]);
    for (uint32_t w : list) {
      if (seen[w] == stamp)
        continue;
      seen[w] = stamp;
      std::vector<int32_t> &s = words[w].symbols;
      int64_t n = int64_t(words[w].count);
      bool found = false;
      for (size_t i = 0; i + 1 < s.size() && !found; ++i)
        found = s[i] == a && s[i + 1] == b;
      if (!found)
        continue;
      for (size_t i = 0; i + 1 < s.size(); ++i)
        delta[keyOf(s[i], s[i + 1])] -= n;
      size_t out = 0;
      for (size_t i = 0; i < s.size();) {
        if (i + 1 < s.size() && s[i] == a && s[i + 1] == b) {
          s[out++] = c;
          i += 2;
        } else {
          s[out++] = s[i++];
        }
      }
      s.resize(out);
      for (size_t i = 0; i + 1 < s.size(); ++i) {
        uint64_t k = keyOf(s[i], s[i + 1]);
        delta[k] += n;
        if (s[i] == c || s[i + 1] == c) {
          std::vector<uint32_t> &l = where[k];
          if (l.empty() || l.back() != w)
            l.push_back(w);
        }
      }
    }
    for (auto &[k, d] : delta) {
      if (d == 0)
        continue;
      uint64_t &count = pairCount[k];
      count = uint64_t(int64_t(count) + d);
      if (d > 0)
        heap.push(HeapEntry{count, k});
      if (count == 0)
        pairCount.erase(k);
    }
  }

  for (const Word &w : words)
    result.corpusTokens += w.count * w.symbols.size();
  result.vocabJson = "{";
  for (size_t id = 0; id < tokens.size(); ++id)
    result.vocabJson += (id ? ", " : "") + jsonString(spell(tokens[id])) + ": " + std::to_string(id);
  if (options.endOfText)
    result.vocabJson += ", \"<|endoftext|>\": " + std::to_string(tokens.size());
  result.vocabJson += "}";
  result.mergesTxt = "#version: 0.2\n";
  for (auto &[a, b] : merges)
    result.mergesTxt += spell(tokens[a]) + " " + spell(tokens[b]) + "\n";
  result.vocabSize = tokens.size() + reserved;
  result.numMerges = merges.size();
  return result;
}

} // namespace megatron::tokenizer
