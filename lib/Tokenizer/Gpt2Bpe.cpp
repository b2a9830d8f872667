//===- Gpt2Bpe.cpp - GPT-2's byte-level BPE tokenizer ---------------------===//
//
// Loading (a strict reader of vocab.json's flat object and of merges.txt, with file:line messages), the merge
// loop (GPT-2's: each round merges every occurrence of the lowest-ranked pair, left to right), a per-thread
// cache of pre-token ids, and decoding. docs/tokenizer.md explains the choices.
//
//===----------------------------------------------------------------------===//

#include "megatron/Tokenizer/Gpt2Bpe.h"

#include "Unicode.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <fstream>
#include <queue>
#include <sstream>
#include <stdexcept>
#include <unordered_map>

namespace megatron::tokenizer {

using detail::nextPieceLength;

//===----------------------------------------------------------------------===//
// Byte-to-unicode map
//===----------------------------------------------------------------------===//

namespace {

struct ByteMap {
  char32_t toUnicode[256];
  // Code points below 0x144 back to bytes; -1 where none.
  int16_t toByte[0x144];
  ByteMap() {
    std::fill(std::begin(toByte), std::end(toByte), int16_t(-1));
    unsigned n = 0;
    for (unsigned b = 0; b < 256; ++b) {
      bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      toUnicode[b] = printable ? b : 256 + n++;
      toByte[toUnicode[b]] = int16_t(b);
    }
  }
};

const ByteMap &byteMap() {
  static const ByteMap map;
  return map;
}

void appendUtf8(std::string &out, char32_t c) {
  if (c < 0x80) {
    out += char(c);
  } else if (c < 0x800) {
    out += char(0xC0 | (c >> 6));
    out += char(0x80 | (c & 0x3F));
  } else if (c < 0x10000) {
    out += char(0xE0 | (c >> 12));
    out += char(0x80 | ((c >> 6) & 0x3F));
    out += char(0x80 | (c & 0x3F));
  } else {
    out += char(0xF0 | (c >> 18));
    out += char(0x80 | ((c >> 12) & 0x3F));
    out += char(0x80 | ((c >> 6) & 0x3F));
    out += char(0x80 | (c & 0x3F));
  }
}

/// vocab.json's spelling of a token, for messages.
std::string spell(std::string_view bytes) {
  std::string out;
  for (unsigned char b : bytes)
    appendUtf8(out, byteMap().toUnicode[b]);
  return out;
}

inline uint64_t hashBytes(const char *p, size_t n) {
  uint64_t h = 0x9E3779B97F4A7C15ull ^ (n * 0xff51afd7ed558ccdull);
  while (n >= 8) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    h = (h ^ w) * 0xbf58476d1ce4e5b9ull;
    h ^= h >> 29;
    p += 8;
    n -= 8;
  }
  uint64_t w = 0;
  std::memcpy(&w, p, n);
  h = (h ^ w) * 0x94d049bb133111ebull;
  h ^= h >> 31;
  h *= 0xbf58476d1ce4e5b9ull;
  h ^= h >> 32;
  return h | 1; // 0 marks an empty slot
}

} // namespace

char32_t Gpt2Bpe::byteToUnicode(uint8_t byte) { return byteMap().toUnicode[byte]; }

//===----------------------------------------------------------------------===//
// Impl
//===----------------------------------------------------------------------===//

namespace {

/// Open addressing from a pair of ids to its merge's rank and result.
class MergeTable {
public:
  struct Entry {
    uint64_t key; // (left << 32 | right) + 1; 0 = empty
    uint32_t rank;
    int32_t result;
  };
  void reserve(size_t n) {
    size_t cap = 16;
    while (cap < n * 2)
      cap <<= 1;
    entries.assign(cap, Entry{0, 0, 0});
    mask = cap - 1;
  }
  static uint64_t keyOf(int32_t a, int32_t b) { return ((uint64_t(uint32_t(a)) << 32) | uint32_t(b)) + 1; }
  static size_t slotOf(uint64_t key) { return size_t((key * 0x9E3779B97F4A7C15ull) >> 20); }
  /// False when the pair is already there.
  bool insert(int32_t a, int32_t b, uint32_t rank, int32_t result) {
    uint64_t key = keyOf(a, b);
    for (size_t i = slotOf(key) & mask;; i = (i + 1) & mask) {
      if (entries[i].key == key)
        return false;
      if (entries[i].key == 0) {
        entries[i] = Entry{key, rank, result};
        return true;
      }
    }
  }
  const Entry *find(int32_t a, int32_t b) const {
    uint64_t key = keyOf(a, b);
    for (size_t i = slotOf(key) & mask;; i = (i + 1) & mask) {
      const Entry &e = entries[i];
      if (e.key == key)
        return &e;
      if (e.key == 0)
        return nullptr;
    }
  }

private:
  std::vector<Entry> entries;
  size_t mask = 0;
};

std::atomic<uint64_t> nextInstanceId{1};

/// A thread's cache of pre-token ids: open addressing over the piece's bytes, keys and ids kept in two arenas.
/// It serves one tokenizer at a time (the one it was filled for) and is emptied when it fills up.
struct PieceCache {
  struct Slot {
    uint64_t hash = 0;
    uint32_t keyOffset = 0;
    uint32_t valueOffset = 0;
    uint16_t keyLength = 0;
    uint16_t valueLength = 0;
  };
  static constexpr size_t kInitialSlots = 1 << 12;
  static constexpr size_t kMaxSlots = 1 << 18; // at most kMaxSlots/2 pieces, about 10 MB
  static constexpr size_t kMaxPiece = 64;      // longer pieces are not cached

  uint64_t owner = 0;
  std::vector<Slot> slots;
  std::vector<char> keys;
  std::vector<int32_t> values;
  size_t count = 0;

  /// Empties the cache for `newOwner`, keeping its memory (a full cache stays at its largest size).
  void reset(uint64_t newOwner) {
    owner = newOwner;
    if (slots.empty())
      slots.assign(kInitialSlots, Slot{});
    else
      std::fill(slots.begin(), slots.end(), Slot{});
    keys.clear();
    values.clear();
    count = 0;
  }

  void release() {
    owner = 0;
    count = 0;
    std::vector<Slot>().swap(slots);
    std::vector<char>().swap(keys);
    std::vector<int32_t>().swap(values);
  }

  const Slot *find(uint64_t hash, const char *p, size_t n) const {
    size_t mask = slots.size() - 1;
    for (size_t i = hash & mask;; i = (i + 1) & mask) {
      const Slot &s = slots[i];
      if (s.hash == 0)
        return nullptr;
      if (s.hash == hash && s.keyLength == n && std::memcmp(keys.data() + s.keyOffset, p, n) == 0)
        return &s;
    }
  }

  void insert(uint64_t hash, const char *p, size_t n, const int32_t *ids, size_t m) {
    if ((count + 1) * 2 > slots.size()) {
      if (slots.size() >= kMaxSlots) {
        reset(owner);
      } else {
        std::vector<Slot> old(slots.size() * 2);
        old.swap(slots);
        size_t mask = slots.size() - 1;
        for (const Slot &s : old) {
          if (s.hash == 0)
            continue;
          size_t i = s.hash & mask;
          while (slots[i].hash != 0)
            i = (i + 1) & mask;
          slots[i] = s;
        }
      }
    }
    Slot s;
    s.hash = hash;
    s.keyOffset = uint32_t(keys.size());
    s.valueOffset = uint32_t(values.size());
    s.keyLength = uint16_t(n);
    s.valueLength = uint16_t(m);
    keys.insert(keys.end(), p, p + n);
    values.insert(values.end(), ids, ids + m);
    size_t mask = slots.size() - 1;
    size_t i = hash & mask;
    while (slots[i].hash != 0)
      i = (i + 1) & mask;
    slots[i] = s;
    ++count;
  }
};

thread_local PieceCache threadCache;

} // namespace

struct Gpt2Bpe::Impl {
  uint64_t instanceId = nextInstanceId.fetch_add(1);
  // Token bytes, concatenated; token i is tokenData[tokenOffsets[i], tokenOffsets[i + 1]).
  std::string tokenData;
  std::vector<uint32_t> tokenOffsets;
  std::unordered_map<std::string, int32_t> idOfBytes;
  int32_t byteIds[256];
  MergeTable merges;
  size_t numMerges = 0;
  int32_t endOfText = -1;

  std::string_view bytesOf(int32_t id) const {
    return std::string_view(tokenData).substr(tokenOffsets[id], tokenOffsets[id + 1] - tokenOffsets[id]);
  }

  static constexpr size_t kShortWord = 96;

  /// GPT-2's bpe() on the symbols word[0, n): returns the new count. Short words: rounds over the array, the
  /// rank of each adjacent pair kept between rounds (only the pairs beside a merge are looked up again); long
  /// ones: a heap of candidate pairs, one rank at a time, so that a paragraph of CJK is not quadratic.
  size_t bpe(int32_t *word, size_t n) const {
    if (n > kShortWord)
      return bpeLong(word, n);
    // rank[i], result[i]: the merge of (word[i], word[i + 1]); UINT32_MAX when there is none.
    uint32_t rank[kShortWord], newRank[kShortWord];
    int32_t result[kShortWord], newResult[kShortWord];
    // Of each symbol after a round: the index it had before, or -1 when a merge made it.
    int32_t from[kShortWord];
    auto lookup = [&](size_t i, uint32_t *r, int32_t *res, const int32_t *w) {
      const MergeTable::Entry *e = merges.find(w[i], w[i + 1]);
      r[i] = e ? e->rank : UINT32_MAX;
      res[i] = e ? e->result : 0;
    };
    for (size_t i = 0; i + 1 < n; ++i)
      lookup(i, rank, result, word);
    while (n > 1) {
      uint32_t best = UINT32_MAX;
      int32_t merged = 0;
      for (size_t i = 0; i + 1 < n; ++i)
        if (rank[i] < best) {
          best = rank[i];
          merged = result[i];
        }
      if (best == UINT32_MAX)
        break;
      // Every occurrence of the pair, left to right (a rank names one pair: (a, a) in "aaa" merges once).
      size_t w = 0;
      for (size_t i = 0; i < n;) {
        if (i + 1 < n && rank[i] == best) {
          word[w] = merged;
          from[w++] = -1;
          i += 2;
        } else {
          word[w] = word[i];
          from[w++] = int32_t(i++);
        }
      }
      for (size_t i = 0; i + 1 < w; ++i) {
        if (from[i] >= 0 && from[i + 1] >= 0) {
          newRank[i] = rank[from[i]];
          newResult[i] = result[from[i]];
        } else {
          lookup(i, newRank, newResult, word);
        }
      }
      std::copy(newRank, newRank + (w ? w - 1 : 0), rank);
      std::copy(newResult, newResult + (w ? w - 1 : 0), result);
      n = w;
    }
    return n;
  }

  size_t bpeLong(int32_t *word, size_t n) const {
    struct Candidate {
      uint32_t rank;
      uint32_t pos;
      int32_t left, right;
      bool operator>(const Candidate &o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
    };
    std::vector<int32_t> next(n), prev(n);
    for (size_t i = 0; i < n; ++i) {
      next[i] = i + 1 < n ? int32_t(i + 1) : -1;
      prev[i] = int32_t(i) - 1;
    }
    std::priority_queue<Candidate, std::vector<Candidate>, std::greater<Candidate>> heap;
    auto consider = [&](int32_t pos) {
      if (pos < 0 || word[pos] < 0 || next[pos] < 0)
        return;
      int32_t a = word[pos], b = word[next[pos]];
      if (const MergeTable::Entry *e = merges.find(a, b))
        heap.push(Candidate{e->rank, uint32_t(pos), a, b});
    };
    for (size_t i = 0; i + 1 < n; ++i)
      consider(int32_t(i));
    std::vector<int32_t> touched;
    while (!heap.empty()) {
      // One of GPT-2's rounds: every occurrence of the lowest-ranked pair, left to right; the pairs the merges
      // create wait for the next round.
      uint32_t rank = heap.top().rank;
      touched.clear();
      while (!heap.empty() && heap.top().rank == rank) {
        Candidate c = heap.top();
        heap.pop();
        int32_t pos = int32_t(c.pos);
        if (word[pos] != c.left || next[pos] < 0 || word[next[pos]] != c.right)
          continue;
        const MergeTable::Entry *e = merges.find(c.left, c.right);
        int32_t gone = next[pos];
        word[pos] = e->result;
        word[gone] = -1;
        next[pos] = next[gone];
        if (next[gone] >= 0)
          prev[next[gone]] = pos;
        touched.push_back(prev[pos]);
        touched.push_back(pos);
      }
      for (int32_t pos : touched)
        consider(pos);
    }
    size_t w = 0;
    for (int32_t pos = 0; pos >= 0; pos = next[pos])
      word[w++] = word[pos];
    return w;
  }

  /// Appends the ids of one pre-token.
  void encodePiece(const char *p, size_t n, std::vector<int32_t> &ids) const {
    if (n == 1) {
      ids.push_back(byteIds[uint8_t(p[0])]);
      return;
    }
    PieceCache &cache = threadCache;
    uint64_t hash = 0;
    if (n <= PieceCache::kMaxPiece) {
      if (cache.owner != instanceId)
        cache.reset(instanceId);
      hash = hashBytes(p, n);
      if (const PieceCache::Slot *s = cache.find(hash, p, n)) {
        const int32_t *v = cache.values.data() + s->valueOffset;
        ids.insert(ids.end(), v, v + s->valueLength);
        return;
      }
    }
    int32_t stackWord[PieceCache::kMaxPiece];
    std::vector<int32_t> heapWord;
    int32_t *word = stackWord;
    if (n > PieceCache::kMaxPiece) {
      heapWord.resize(n);
      word = heapWord.data();
    }
    for (size_t i = 0; i < n; ++i)
      word[i] = byteIds[uint8_t(p[i])];
    size_t m = bpe(word, n);
    ids.insert(ids.end(), word, word + m);
    if (n <= PieceCache::kMaxPiece)
      cache.insert(hash, p, n, word, m);
  }

  void encodePlain(std::string_view text, std::vector<int32_t> &ids) const {
    const uint8_t *table = detail::bmpClassTable();
    const uint8_t *s = reinterpret_cast<const uint8_t *>(text.data());
    size_t n = text.size();
    for (size_t i = 0; i < n;) {
      size_t len = nextPieceLength(table, s, n, i);
      encodePiece(text.data() + i, len, ids);
      i += len;
    }
  }
};

Gpt2Bpe::Gpt2Bpe(std::unique_ptr<Impl> impl) : impl(std::move(impl)) {}
Gpt2Bpe::~Gpt2Bpe() = default;

void Gpt2Bpe::encode(std::string_view text, std::vector<int32_t> &ids) const { impl->encodePlain(text, ids); }

void Gpt2Bpe::encode(std::string_view text, std::vector<int32_t> &ids, SpecialTokens special) const {
  if (special == SpecialTokens::AsText || impl->endOfText < 0) {
    impl->encodePlain(text, ids);
    return;
  }
  constexpr std::string_view marker = "<|endoftext|>";
  for (;;) {
    size_t at = text.find(marker);
    if (at == std::string_view::npos)
      break;
    impl->encodePlain(text.substr(0, at), ids);
    ids.push_back(impl->endOfText);
    text.remove_prefix(at + marker.size());
  }
  impl->encodePlain(text, ids);
}

std::string Gpt2Bpe::decode(const int32_t *ids, size_t count) const {
  std::string out;
  size_t total = 0;
  size_t vocab = impl->tokenOffsets.size() - 1;
  for (size_t i = 0; i < count; ++i) {
    if (ids[i] < 0 || size_t(ids[i]) >= vocab)
      throw std::out_of_range("Gpt2Bpe::decode: id " + std::to_string(ids[i]) + " at position " +
                              std::to_string(i) + " is outside the vocabulary [0, " + std::to_string(vocab) +
                              ")");
    total += impl->tokenOffsets[ids[i] + 1] - impl->tokenOffsets[ids[i]];
  }
  out.reserve(total);
  for (size_t i = 0; i < count; ++i)
    out += impl->bytesOf(ids[i]);
  return out;
}

int32_t Gpt2Bpe::endOfText() const { return impl->endOfText; }
size_t Gpt2Bpe::vocabSize() const { return impl->tokenOffsets.size() - 1; }
size_t Gpt2Bpe::numMerges() const { return impl->numMerges; }

std::string_view Gpt2Bpe::tokenBytes(int32_t id) const {
  if (id < 0 || size_t(id) >= vocabSize())
    return {};
  return impl->bytesOf(id);
}

int32_t Gpt2Bpe::tokenId(std::string_view bytes) const {
  auto it = impl->idOfBytes.find(std::string(bytes));
  return it == impl->idOfBytes.end() ? -1 : it->second;
}

void Gpt2Bpe::releaseThreadCache() { threadCache.release(); }

void Gpt2Bpe::pretokenize(std::string_view text, std::vector<std::string_view> &pieces) {
  const uint8_t *table = detail::bmpClassTable();
  const uint8_t *s = reinterpret_cast<const uint8_t *>(text.data());
  size_t n = text.size();
  for (size_t i = 0; i < n;) {
    size_t len = nextPieceLength(table, s, n, i);
    pieces.push_back(text.substr(i, len));
    i += len;
  }
}

//===----------------------------------------------------------------------===//
// Loading
//===----------------------------------------------------------------------===//

namespace {

/// A reader of vocab.json: one JSON object of strings to integers, nothing else (that is what GPT-2's file is).
class VocabReader {
public:
  VocabReader(std::string_view text, const std::string &name) : text(text), name(name) {}

  struct Entry {
    std::string bytes; // the token's raw bytes
    int64_t id;
    size_t line;
  };

  bool read(std::vector<Entry> &entries, std::string &error) {
    skipSpace();
    if (pos == 0 && text.substr(0, 3) == "\xEF\xBB\xBF") {
      pos = 3;
      skipSpace();
    }
    if (!expect('{', "'{' opening the vocabulary object", error))
      return false;
    skipSpace();
    if (peek() == '}') {
      ++pos;
    } else {
      for (;;) {
        skipSpace();
        Entry entry;
        entry.line = line;
        std::string key;
        if (!readString(key, error) || !spellingToBytes(key, entry.bytes, error))
          return false;
        skipSpace();
        if (!expect(':', "':' after the token", error))
          return false;
        skipSpace();
        if (!readInteger(entry.id, error))
          return false;
        entries.push_back(std::move(entry));
        skipSpace();
        if (peek() == ',') {
          ++pos;
          continue;
        }
        if (!expect('}', "',' or '}' after the id", error))
          return false;
        break;
      }
    }
    skipSpace();
    if (pos != text.size())
      return fail("unexpected text after the vocabulary object", error);
    return true;
  }

private:
  std::string_view text;
  const std::string &name;
  size_t pos = 0;
  size_t line = 1;

  int peek() const { return pos < text.size() ? static_cast<unsigned char>(text[pos]) : -1; }

  void skipSpace() {
    while (pos < text.size()) {
      char c = text[pos];
      if (c == '\n')
        ++line;
      else if (c != ' ' && c != '\t' && c != '\r')
        break;
      ++pos;
    }
  }

  bool fail(const std::string &message, std::string &error) const {
    error = name + ":" + std::to_string(line) + ": " + message;
    return false;
  }

  bool expect(char c, const char *what, std::string &error) {
    if (peek() == c) {
      ++pos;
      return true;
    }
    if (pos >= text.size())
      return fail(std::string("unexpected end of file: expected ") + what, error);
    return fail(std::string("expected ") + what + ", found '" + text[pos] + "'", error);
  }

  bool readHex4(uint32_t &v, std::string &error) {
    if (pos + 4 > text.size())
      return fail("unexpected end of file in a \\u escape", error);
    v = 0;
    for (int k = 0; k < 4; ++k) {
      char c = text[pos++];
      v <<= 4;
      if (c >= '0' && c <= '9')
        v |= c - '0';
      else if (c >= 'a' && c <= 'f')
        v |= c - 'a' + 10;
      else if (c >= 'A' && c <= 'F')
        v |= c - 'A' + 10;
      else
        return fail("bad hexadecimal digit in a \\u escape", error);
    }
    return true;
  }

  bool readString(std::string &out, std::string &error) {
    if (!expect('"', "'\"' opening a token string", error))
      return false;
    for (;;) {
      if (pos >= text.size())
        return fail("unexpected end of file in a string", error);
      unsigned char c = text[pos++];
      if (c == '"')
        return true;
      if (c < 0x20)
        return fail("control character in a string (a line break before the closing '\"'?)", error);
      if (c != '\\') {
        out += char(c);
        continue;
      }
      if (pos >= text.size())
        return fail("unexpected end of file in a string", error);
      char e = text[pos++];
      switch (e) {
      case '"': out += '"'; break;
      case '\\': out += '\\'; break;
      case '/': out += '/'; break;
      case 'b': out += '\b'; break;
      case 'f': out += '\f'; break;
      case 'n': out += '\n'; break;
      case 'r': out += '\r'; break;
      case 't': out += '\t'; break;
      case 'u': {
        uint32_t v = 0;
        if (!readHex4(v, error))
          return false;
        if (v >= 0xDC00 && v <= 0xDFFF)
          return fail("lone low surrogate in a \\u escape", error);
        if (v >= 0xD800 && v <= 0xDBFF) {
          uint32_t lo = 0;
          if (text.substr(pos, 2) != "\\u" || (pos += 2, !readHex4(lo, error)) || lo < 0xDC00 || lo > 0xDFFF)
            return fail("high surrogate not followed by a low surrogate in a \\u escape", error);
          v = 0x10000 + ((v - 0xD800) << 10) + (lo - 0xDC00);
        }
        appendUtf8(out, v);
        break;
      }
      default:
        return fail(std::string("bad escape '\\") + e + "' in a string", error);
      }
    }
  }

  bool readInteger(int64_t &v, std::string &error) {
    size_t start = pos;
    if (peek() == '-')
      ++pos;
    size_t digits = pos;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9')
      ++pos;
    if (pos == digits) {
      pos = start;
      return fail("expected an integer id after the token", error);
    }
    if (peek() == '.' || peek() == 'e' || peek() == 'E')
      return fail("the id is not an integer", error);
    if (pos - digits > 10)
      return fail("the id is out of range", error);
    v = std::stoll(std::string(text.substr(start, pos - start)));
    return true;
  }

  /// vocab.json spells bytes with GPT-2's byte-to-unicode map; back to the bytes.
  bool spellingToBytes(const std::string &utf8, std::string &bytes, std::string &error) {
    const uint8_t *s = reinterpret_cast<const uint8_t *>(utf8.data());
    for (size_t i = 0; i < utf8.size();) {
      char32_t cp;
      unsigned len = detail::decodeUtf8(s, utf8.size(), i, cp);
      if (len == 0)
        return fail("the token \"" + utf8 + "\" is not valid UTF-8", error);
      if (cp >= 0x144 || byteMap().toByte[cp] < 0) {
        char hex[16];
        std::snprintf(hex, sizeof hex, "U+%04X", unsigned(cp));
        return fail("the token \"" + utf8 + "\" has the character " + hex +
                        ", which GPT-2's byte-to-unicode map does not produce",
                    error);
      }
      bytes += char(byteMap().toByte[cp]);
      i += len;
    }
    if (bytes.empty())
      return fail("empty token", error);
    return true;
  }
};

bool readFile(const std::string &path, std::string &contents, std::string &error) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    error = path + ": cannot open: " + std::strerror(errno);
    return false;
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) {
    error = path + ": read error";
    return false;
  }
  contents = ss.str();
  return true;
}

} // namespace

std::unique_ptr<Gpt2Bpe> Gpt2Bpe::load(const std::string &vocabJsonPath, const std::string &mergesTxtPath,
                                       std::string &error) {
  std::string vocab, merges;
  if (!readFile(vocabJsonPath, vocab, error) || !readFile(mergesTxtPath, merges, error))
    return nullptr;
  return loadFromMemory(vocab, merges, error, vocabJsonPath, mergesTxtPath);
}

std::unique_ptr<Gpt2Bpe> Gpt2Bpe::loadFromMemory(std::string_view vocabJson, std::string_view mergesTxt,
                                                 std::string &error, const std::string &vocabName,
                                                 const std::string &mergesName) {
  error.clear();
  std::vector<VocabReader::Entry> entries;
  if (!VocabReader(vocabJson, vocabName).read(entries, error))
    return nullptr;
  auto impl = std::make_unique<Impl>();
  size_t n = entries.size();
  if (n == 0) {
    error = vocabName + ":1: the vocabulary is empty";
    return nullptr;
  }
  if (n > size_t(INT32_MAX)) {
    error = vocabName + ": too many tokens";
    return nullptr;
  }
  std::vector<const VocabReader::Entry *> byId(n, nullptr);
  impl->idOfBytes.reserve(n * 2);
  for (const VocabReader::Entry &e : entries) {
    std::string where = vocabName + ":" + std::to_string(e.line) + ": ";
    if (e.id < 0 || e.id >= int64_t(n)) {
      error = where + "the id " + std::to_string(e.id) + " of \"" + spell(e.bytes) + "\" is outside [0, " +
              std::to_string(n) + "): ids must number the " + std::to_string(n) + " tokens from 0";
      return nullptr;
    }
    if (const VocabReader::Entry *other = byId[e.id]) {
      error = where + "the id " + std::to_string(e.id) + " of \"" + spell(e.bytes) + "\" is also the id of \"" +
              spell(other->bytes) + "\" (line " + std::to_string(other->line) + ")";
      return nullptr;
    }
    byId[e.id] = &e;
    auto [it, inserted] = impl->idOfBytes.emplace(e.bytes, int32_t(e.id));
    if (!inserted) {
      error = where + "the token \"" + spell(e.bytes) + "\" appears twice (ids " + std::to_string(it->second) +
              " and " + std::to_string(e.id) + ")";
      return nullptr;
    }
  }
  impl->tokenOffsets.reserve(n + 1);
  impl->tokenOffsets.push_back(0);
  for (size_t id = 0; id < n; ++id) {
    impl->tokenData += byId[id]->bytes;
    impl->tokenOffsets.push_back(uint32_t(impl->tokenData.size()));
  }
  for (unsigned b = 0; b < 256; ++b) {
    auto it = impl->idOfBytes.find(std::string(1, char(b)));
    if (it == impl->idOfBytes.end()) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "0x%02X", b);
      error = vocabName + ": no token for the byte " + hex + " (\"" + spell(std::string(1, char(b))) +
              "\"): a byte-level vocabulary needs all 256";
      return nullptr;
    }
    impl->byteIds[b] = it->second;
  }
  auto eot = impl->idOfBytes.find("<|endoftext|>");
  impl->endOfText = eot == impl->idOfBytes.end() ? -1 : eot->second;

  // merges.txt: an optional "#version" first line, then "left right" per line, highest priority first.
  std::vector<std::pair<int32_t, int32_t>> pairs;
  std::vector<int32_t> results;
  std::vector<size_t> lines;
  size_t lineNo = 0;
  for (size_t pos = 0; pos < mergesTxt.size();) {
    size_t end = mergesTxt.find('\n', pos);
    if (end == std::string_view::npos)
      end = mergesTxt.size();
    std::string_view line = mergesTxt.substr(pos, end - pos);
    pos = end + 1;
    ++lineNo;
    if (!line.empty() && line.back() == '\r')
      line.remove_suffix(1);
    if (lineNo == 1 && line.substr(0, 8) == "#version")
      continue;
    if (line.empty())
      continue;
    std::string where = mergesName + ":" + std::to_string(lineNo) + ": ";
    size_t space = line.find(' ');
    if (space == std::string_view::npos || space == 0 || space + 1 == line.size() ||
        line.find(' ', space + 1) != std::string_view::npos) {
      error = where + "expected two tokens separated by one space, found \"" + std::string(line) + "\"";
      return nullptr;
    }
    std::string leftBytes, rightBytes;
    std::string_view parts[2] = {line.substr(0, space), line.substr(space + 1)};
    int32_t partIds[2];
    for (int k = 0; k < 2; ++k) {
      std::string bytes;
      const uint8_t *s = reinterpret_cast<const uint8_t *>(parts[k].data());
      for (size_t i = 0; i < parts[k].size();) {
        char32_t cp;
        unsigned len = detail::decodeUtf8(s, parts[k].size(), i, cp);
        if (len == 0 || cp >= 0x144 || byteMap().toByte[cp] < 0) {
          error = where + "\"" + std::string(parts[k]) +
                  "\" is not spelt with GPT-2's byte-to-unicode map (or is not UTF-8)";
          return nullptr;
        }
        bytes += char(byteMap().toByte[cp]);
        i += len;
      }
      auto it = impl->idOfBytes.find(bytes);
      if (it == impl->idOfBytes.end()) {
        error = where + "the token \"" + std::string(parts[k]) + "\" is not in " + vocabName;
        return nullptr;
      }
      partIds[k] = it->second;
      (k == 0 ? leftBytes : rightBytes) = std::move(bytes);
    }
    auto merged = impl->idOfBytes.find(leftBytes + rightBytes);
    if (merged == impl->idOfBytes.end()) {
      error = where + "the merge's result \"" + std::string(parts[0]) + std::string(parts[1]) + "\" is not in " +
              vocabName;
      return nullptr;
    }
    pairs.emplace_back(partIds[0], partIds[1]);
    results.push_back(merged->second);
    lines.push_back(lineNo);
  }
  impl->merges.reserve(pairs.size());
  for (size_t r = 0; r < pairs.size(); ++r) {
    if (!impl->merges.insert(pairs[r].first, pairs[r].second, uint32_t(r), results[r])) {
      size_t first = 0;
      while (pairs[first] != pairs[r])
        ++first;
      error = mergesName + ":" + std::to_string(lines[r]) + ": the merge \"" +
              spell(impl->bytesOf(pairs[r].first)) + " " + spell(impl->bytesOf(pairs[r].second)) +
              "\" appears twice (first on line " + std::to_string(lines[first]) + ")";
      return nullptr;
    }
  }
  impl->numMerges = pairs.size();
  return std::unique_ptr<Gpt2Bpe>(new Gpt2Bpe(std::move(impl)));
}

} // namespace megatron::tokenizer
