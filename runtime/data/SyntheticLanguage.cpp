//===- SyntheticLanguage.cpp - The grammar, its state machine, and document sampling ---===//
//
// The grammar is written as an expansion function: for a grammar state, the distribution of the next word and
// the state each word leads to. Breadth-first search from the start state enumerates the reachable states and
// gives them numbers; the result is a UnifilarProcess. docs/data.md has the grammar in BNF with the same
// probabilities as the constants below.
//
//===----------------------------------------------------------------------===//

#include "runtime/data/SyntheticLanguage.h"

#include "runtime/data/SplitMix.h"

#include <cassert>
#include <cmath>
#include <deque>
#include <map>
#include <stdexcept>
#include <unordered_map>

namespace megatron::data {

namespace {

//===----------------------------------------------------------------------===//
// Words
//===----------------------------------------------------------------------===//

/// A content word: its two forms (singular/plural for nouns, third-person singular/base for verbs, the same word
/// twice for adjectives).
struct Lexeme {
  const char *singular;
  const char *plural;
};

struct Topic {
  const char *name;
  Lexeme nouns[10];
  const char *adjectives[5];
  Lexeme transitiveVerbs[5];
  Lexeme intransitiveVerbs[4];
};

// Every content word starts with a consonant, so "a" never needs to be "an".
const Topic kTopics[] = {
    {"farm",
     {{"cat", "cats"}, {"dog", "dogs"}, {"cow", "cows"}, {"horse", "horses"}, {"farmer", "farmers"},
      {"hen", "hens"}, {"pig", "pigs"}, {"goat", "goats"}, {"barn", "barns"}, {"field", "fields"}},
     {"brown", "lazy", "muddy", "hungry", "fat"},
     {{"feeds", "feed"}, {"chases", "chase"}, {"follows", "follow"}, {"kicks", "kick"}, {"counts", "count"}},
     {{"sleeps", "sleep"}, {"barks", "bark"}, {"eats", "eat"}, {"grazes", "graze"}}},
    {"sea",
     {{"ship", "ships"}, {"sailor", "sailors"}, {"whale", "whales"}, {"wave", "waves"}, {"captain", "captains"},
      {"boat", "boats"}, {"gull", "gulls"}, {"shark", "sharks"}, {"net", "nets"}, {"shell", "shells"}},
     {"blue", "wet", "salty", "calm", "stormy"},
     {{"steers", "steer"}, {"catches", "catch"}, {"pulls", "pull"}, {"washes", "wash"}, {"spots", "spot"}},
     {{"swims", "swim"}, {"drifts", "drift"}, {"sinks", "sink"}, {"floats", "float"}}},
    {"town",
     {{"teacher", "teachers"}, {"student", "students"}, {"car", "cars"}, {"bus", "buses"}, {"shop", "shops"},
      {"street", "streets"}, {"child", "children"}, {"doctor", "doctors"}, {"driver", "drivers"},
      {"baker", "bakers"}},
     {"busy", "red", "new", "quiet", "noisy"},
     {{"meets", "meet"}, {"helps", "help"}, {"visits", "visit"}, {"calls", "call"}, {"pays", "pay"}},
     {{"walks", "walk"}, {"talks", "talk"}, {"works", "work"}, {"laughs", "laugh"}}},
    {"forest",
     {{"fox", "foxes"}, {"bear", "bears"}, {"wolf", "wolves"}, {"tree", "trees"}, {"rabbit", "rabbits"},
      {"hunter", "hunters"}, {"river", "rivers"}, {"bird", "birds"}, {"mushroom", "mushrooms"}, {"path", "paths"}},
     {"green", "dark", "wild", "silent", "snowy"},
     {{"hunts", "hunt"}, {"hears", "hear"}, {"watches", "watch"}, {"finds", "find"}, {"climbs", "climb"}},
     {{"runs", "run"}, {"hides", "hide"}, {"howls", "howl"}, {"sings", "sing"}}},
};
constexpr int kNumTopics = sizeof(kTopics) / sizeof(kTopics[0]);

// Words every topic shares, and where they rank in each topic's Zipf-weighted list (1-based).
const Lexeme kSharedNouns[] = {{"man", "men"}, {"woman", "women"}};
const int kSharedNounRanks[] = {3, 7};
const Lexeme kSharedTransitive[] = {{"sees", "see"}, {"likes", "like"}};
const int kSharedTransitiveRanks[] = {1, 4};
const Lexeme kSharedIntransitive[] = {{"waits", "wait"}};
const int kSharedIntransitiveRanks[] = {3};
const char *const kCommonAdjectives[] = {"big", "small", "young", "little", "good"};
const char *const kAdverbs[] = {"quickly", "slowly", "today", "again", "now", "here"};

enum class Number : uint8_t { Unknown = 0, Singular = 1, Plural = 2 };

struct Determiner {
  const char *word;
  Number number; // Unknown: "the", whose noun decides
  double weight;
};
const Determiner kDeterminers[] = {
    {"the", Number::Unknown, 10}, {"a", Number::Singular, 4},  {"this", Number::Singular, 1},
    {"every", Number::Singular, 1}, {"two", Number::Plural, 2}, {"three", Number::Plural, 1},
    {"some", Number::Plural, 2},   {"these", Number::Plural, 1}, {"many", Number::Plural, 1},
};
const std::pair<const char *, double> kPrepositions[] = {
    {"near", 3}, {"behind", 2}, {"with", 2}, {"under", 1}, {"beside", 1}};

//===----------------------------------------------------------------------===//
// Grammar probabilities (docs/data.md repeats them)
//===----------------------------------------------------------------------===//

constexpr double kQuestion = 0.2;           // a sentence is a yes/no question ("does"/"do" half each)
constexpr double kCommonAdjective = 0.2;    // after a determiner: big, small, ...
constexpr double kTopicAdjective = 0.25;    // after a determiner: brown, blue, ...
constexpr double kTopicAfterCommon = 0.3;   // a topic adjective after a common one
constexpr double kPrepositionalPhrase = 0.2; // after a statement's subject
constexpr double kTransitive = 0.5, kIntransitive = 0.35, kSays = 0.15; // a statement's verb
constexpr double kTransitiveInQuote = 0.6, kIntransitiveInQuote = 0.4;  // no nested quotes
constexpr double kTransitiveInQuestion = 0.55, kIntransitiveInQuestion = 0.45;
constexpr double kAdverbAfterObject = 0.2;
constexpr double kAdverbAfterIntransitive = 0.5;
constexpr double kEndOfDocument = 0.12; // after a sentence: the document ends

//===----------------------------------------------------------------------===//
// Grammar states
//===----------------------------------------------------------------------===//

enum class Pos : uint8_t {
  SentenceStart,      // a determiner (statement) or does/do (question)
  QuestionSubject,    // after does/do: a determiner that agrees
  AfterDeterminer,    // in a noun phrase (role says which)
  AfterCommonAdj,
  AfterTopicAdj,
  AfterSubject,       // a statement's subject is complete: preposition or verb
  VerbAfterPhrase,    // after the subject's prepositional phrase: the verb
  PhraseStart,        // after a preposition: its noun phrase's determiner
  ObjectStart,        // after a transitive verb: the object's determiner
  QuestionVerb,       // a question's subject is complete: the verb's base form
  AfterObject,        // adverb or end of sentence
  AfterIntransitive,  // adverb or end of sentence
  EndPunctuation,     // after an adverb: "." or "?"
  OpenQuote,          // after says/say: the opening quote
  AfterSentence,      // after "." or "?": closing quote, end of document, or the next sentence
  Count
};
const char *const kPosNames[] = {"SentenceStart", "QuestionSubject", "AfterDeterminer", "AfterCommonAdj",
                                 "AfterTopicAdj",  "AfterSubject",    "VerbAfterPhrase", "PhraseStart",
                                 "ObjectStart",    "QuestionVerb",    "AfterObject",     "AfterIntransitive",
                                 "EndPunctuation", "OpenQuote",       "AfterSentence"};
static_assert(sizeof(kPosNames) / sizeof(kPosNames[0]) == static_cast<size_t>(Pos::Count));

enum class Role : uint8_t { Subject, QuestionSubject, Phrase, Object };
const char *const kRoleNames[] = {"subject", "question-subject", "phrase", "object"};

/// A grammar state. Each position carries only the fields its future depends on (the others stay 0), so that
/// equal futures are one state.
struct State {
  Pos pos = Pos::SentenceStart;
  Role role = Role::Subject;       // noun-phrase positions
  Number np = Number::Unknown;     // noun-phrase positions: the number the noun must have
  Number subject = Number::Unknown; // the number the verb must agree with (statement subject; kept over a phrase)
  uint8_t topic = 0;               // 0: not yet known; 1..kNumTopics
  bool question = false;           // the sentence ends with "?"
  bool quote = false;              // inside a quotation, which must be closed

  uint32_t pack() const {
    return uint32_t(pos) | uint32_t(role) << 4 | uint32_t(np) << 6 | uint32_t(subject) << 8 | uint32_t(topic) << 10 |
           uint32_t(question) << 13 | uint32_t(quote) << 14;
  }
  static State unpack(uint32_t k) {
    State s;
    s.pos = Pos(k & 15);
    s.role = Role(k >> 4 & 3);
    s.np = Number(k >> 6 & 3);
    s.subject = Number(k >> 8 & 3);
    s.topic = uint8_t(k >> 10 & 7);
    s.question = k >> 13 & 1;
    s.quote = k >> 14 & 1;
    return s;
  }
};

State make(Pos pos, uint8_t topic, bool quote) {
  State s;
  s.pos = pos;
  s.topic = topic;
  s.quote = quote;
  return s;
}

//===----------------------------------------------------------------------===//
// The lexicon as weighted lists per topic
//===----------------------------------------------------------------------===//

/// A word of a slot: its forms, its probability within the slot, and the topic it reveals (0: any topic).
struct Entry {
  int32_t forms[2];
  double probability;
  uint8_t topic;
};

/// The slots whose words depend on the topic. lists[slot][topic - 1] sums to 1 for every topic, and a shared word
/// has the same probability in every topic's list, so drawing a word with the topic not yet known (the mixture
/// over topics) is the same as drawing the topic first: the topic is uniform and fixed for the document.
enum Slot { Noun, TopicAdjective, TransitiveVerb, IntransitiveVerb, NumSlots };

struct Lexicon {
  std::vector<std::string> words;
  std::unordered_map<std::string, int32_t> ids;
  std::vector<Entry> lists[NumSlots][kNumTopics];
  std::vector<std::pair<int32_t, double>> commonAdjectives, adverbs, prepositions;

  int32_t add(const std::string &w) {
    auto [it, inserted] = ids.emplace(w, static_cast<int32_t>(words.size()));
    if (inserted)
      words.push_back(w);
    return it->second;
  }
  int32_t operator[](const std::string &w) const { return ids.at(w); }
};

/// Zipf weights 1/rank, normalised.
std::vector<double> zipf(int n) {
  std::vector<double> w(n);
  double total = 0.0;
  for (int r = 0; r < n; ++r)
    total += w[r] = 1.0 / (r + 1);
  for (double &x : w)
    x /= total;
  return w;
}

/// A topic's list for a slot: `shared` words at their ranks, the topic's own words at the other ranks, in order.
template <size_t NS, size_t NT>
std::vector<Entry> rankedList(Lexicon &lex, const Lexeme (&shared)[NS], const int (&ranks)[NS],
                              const Lexeme (&own)[NT], uint8_t topic) {
  const int n = static_cast<int>(NS + NT);
  std::vector<double> p = zipf(n);
  std::vector<Entry> list;
  size_t nextOwn = 0;
  for (int r = 1; r <= n; ++r) {
    const Lexeme *w = nullptr;
    uint8_t t = topic;
    for (size_t i = 0; i < NS; ++i)
      if (ranks[i] == r) {
        w = &shared[i];
        t = 0;
      }
    if (!w)
      w = &own[nextOwn++];
    list.push_back({{lex.add(w->singular), lex.add(w->plural)}, p[r - 1], t});
  }
  return list;
}

Lexicon buildLexicon() {
  Lexicon lex;
  // Ids: the end-of-document token first, then punctuation and function words, then the content words.
  lex.add(std::string(Vocabulary::kEndOfDocument));
  for (const char *w : {".", "?", "\"", "does", "do", "says", "say"})
    lex.add(w);
  for (const Determiner &d : kDeterminers)
    lex.add(d.word);
  double prepTotal = 0.0;
  for (const auto &[w, weight] : kPrepositions)
    prepTotal += weight;
  for (const auto &[w, weight] : kPrepositions)
    lex.prepositions.push_back({lex.add(w), weight / prepTotal});
  std::vector<double> common = zipf(5), adverb = zipf(6);
  for (int i = 0; i < 5; ++i)
    lex.commonAdjectives.push_back({lex.add(kCommonAdjectives[i]), common[i]});
  for (int i = 0; i < 6; ++i)
    lex.adverbs.push_back({lex.add(kAdverbs[i]), adverb[i]});

  for (int k = 0; k < kNumTopics; ++k) {
    const Topic &topic = kTopics[k];
    const uint8_t t = static_cast<uint8_t>(k + 1);
    lex.lists[Noun][k] = rankedList(lex, kSharedNouns, kSharedNounRanks, topic.nouns, t);
    std::vector<double> p = zipf(5);
    for (int i = 0; i < 5; ++i) {
      int32_t id = lex.add(topic.adjectives[i]);
      lex.lists[TopicAdjective][k].push_back({{id, id}, p[i], t});
    }
    lex.lists[TransitiveVerb][k] = rankedList(lex, kSharedTransitive, kSharedTransitiveRanks, topic.transitiveVerbs, t);
    lex.lists[IntransitiveVerb][k] =
        rankedList(lex, kSharedIntransitive, kSharedIntransitiveRanks, topic.intransitiveVerbs, t);
  }
  return lex;
}

//===----------------------------------------------------------------------===//
// Expansion: the next-word distribution of a grammar state
//===----------------------------------------------------------------------===//

/// Collects (word, probability, next state), merging a word reached two ways (a shared word drawn under each
/// topic while the topic is unknown); the two ways must agree on the next state, or the grammar is not unifilar.
class Emitter {
public:
  void emit(int32_t word, double p, const State &next) {
    auto [it, inserted] = index.emplace(word, arcs.size());
    if (inserted) {
      arcs.push_back({word, p, next.pack()});
      return;
    }
    Arc &arc = arcs[it->second];
    if (arc.next != next.pack())
      throw std::logic_error("synthetic language: the grammar is not unifilar (word " + std::to_string(word) +
                             " leads to two states)");
    arc.probability += p;
  }

  struct Arc {
    int32_t word;
    double probability;
    uint32_t next;
  };
  std::vector<Arc> arcs;

private:
  std::map<int32_t, size_t> index;
};

class Grammar {
public:
  explicit Grammar(const Lexicon &lex) : lex(lex) {}

  void expand(const State &s, double scale, Emitter &out) const {
    switch (s.pos) {
    case Pos::SentenceStart: {
      State np = make(Pos::AfterDeterminer, s.topic, s.quote);
      np.role = Role::Subject;
      determiners(np, Number::Unknown, scale * (1.0 - kQuestion), out);
      State q = make(Pos::QuestionSubject, s.topic, s.quote);
      q.question = true;
      q.np = Number::Singular;
      out.emit(lex["does"], scale * kQuestion / 2, q);
      q.np = Number::Plural;
      out.emit(lex["do"], scale * kQuestion / 2, q);
      return;
    }
    case Pos::QuestionSubject: {
      State np = s;
      np.pos = Pos::AfterDeterminer;
      np.role = Role::QuestionSubject;
      determiners(np, s.np, scale, out);
      return;
    }
    case Pos::PhraseStart: {
      State np = s;
      np.pos = Pos::AfterDeterminer;
      np.role = Role::Phrase;
      determiners(np, Number::Unknown, scale, out);
      return;
    }
    case Pos::ObjectStart: {
      State np = s;
      np.pos = Pos::AfterDeterminer;
      np.role = Role::Object;
      determiners(np, Number::Unknown, scale, out);
      return;
    }
    case Pos::AfterDeterminer: {
      State next = s;
      next.pos = Pos::AfterCommonAdj;
      for (const auto &[w, p] : lex.commonAdjectives)
        out.emit(w, scale * kCommonAdjective * p, next);
      topicWords(TopicAdjective, s, scale * kTopicAdjective, out, [&](const State &after, int32_t) {
        State n = after;
        n.pos = Pos::AfterTopicAdj;
        return n;
      });
      nouns(s, scale * (1.0 - kCommonAdjective - kTopicAdjective), out);
      return;
    }
    case Pos::AfterCommonAdj:
      topicWords(TopicAdjective, s, scale * kTopicAfterCommon, out, [&](const State &after, int32_t) {
        State n = after;
        n.pos = Pos::AfterTopicAdj;
        return n;
      });
      nouns(s, scale * (1.0 - kTopicAfterCommon), out);
      return;
    case Pos::AfterTopicAdj:
      nouns(s, scale, out);
      return;
    case Pos::AfterSubject: {
      State phrase = make(Pos::PhraseStart, s.topic, s.quote);
      phrase.subject = s.subject;
      for (const auto &[w, p] : lex.prepositions)
        out.emit(w, scale * kPrepositionalPhrase * p, phrase);
      verbs(s, scale * (1.0 - kPrepositionalPhrase), out);
      return;
    }
    case Pos::VerbAfterPhrase:
      verbs(s, scale, out);
      return;
    case Pos::QuestionVerb: {
      auto after = [&](Pos pos) {
        return [pos](const State &a, int32_t) {
          State n = make(pos, a.topic, a.quote);
          n.question = true;
          return n;
        };
      };
      // The base form is the plural one.
      State plural = s;
      plural.subject = Number::Plural;
      topicWords(TransitiveVerb, plural, scale * kTransitiveInQuestion, out, after(Pos::ObjectStart));
      topicWords(IntransitiveVerb, plural, scale * kIntransitiveInQuestion, out, after(Pos::AfterIntransitive));
      return;
    }
    case Pos::AfterObject:
    case Pos::AfterIntransitive: {
      double adverb = s.pos == Pos::AfterObject ? kAdverbAfterObject : kAdverbAfterIntransitive;
      State end = make(Pos::EndPunctuation, s.topic, s.quote);
      end.question = s.question;
      for (const auto &[w, p] : lex.adverbs)
        out.emit(w, scale * adverb * p, end);
      punctuation(s, scale * (1.0 - adverb), out);
      return;
    }
    case Pos::EndPunctuation:
      punctuation(s, scale, out);
      return;
    case Pos::OpenQuote:
      out.emit(lex["\""], scale, make(Pos::SentenceStart, s.topic, /*quote=*/true));
      return;
    case Pos::AfterSentence:
      if (s.quote) {
        out.emit(lex["\""], scale, make(Pos::AfterSentence, s.topic, false));
        return;
      }
      out.emit(lex[std::string(Vocabulary::kEndOfDocument)], scale * kEndOfDocument, start());
      expand(make(Pos::SentenceStart, s.topic, false), scale * (1.0 - kEndOfDocument), out);
      return;
    case Pos::Count:
      break;
    }
    throw std::logic_error("synthetic language: bad grammar state");
  }

  static State start() { return make(Pos::SentenceStart, 0, false); }

private:
  /// Determiners agreeing with `number` (all of them for Unknown); each fixes the noun phrase's number.
  void determiners(State np, Number number, double scale, Emitter &out) const {
    double total = 0.0;
    for (const Determiner &d : kDeterminers)
      if (number == Number::Unknown || d.number == number || d.number == Number::Unknown)
        total += d.weight;
    for (const Determiner &d : kDeterminers) {
      if (!(number == Number::Unknown || d.number == number || d.number == Number::Unknown))
        continue;
      np.np = number == Number::Unknown ? d.number : number;
      out.emit(lex[d.word], scale * d.weight / total, np);
    }
  }

  /// Words of a topic slot: the topic's list, or while the topic is unknown the uniform mixture of all topics'
  /// lists, where a topic's own word makes the topic known. `next(stateWithTopic, form)` gives the next state.
  template <typename Next>
  void topicWords(Slot slot, const State &s, double scale, Emitter &out, Next next, int form = -1) const {
    if (form < 0)
      form = s.subject == Number::Plural ? 1 : 0;
    for (int k = 0; k < kNumTopics; ++k) {
      if (s.topic != 0 && s.topic != k + 1)
        continue;
      double weight = s.topic == 0 ? scale / kNumTopics : scale;
      for (const Entry &e : lex.lists[slot][k]) {
        State after = s;
        if (after.topic == 0)
          after.topic = e.topic;
        out.emit(e.forms[form], weight * e.probability, next(after, e.forms[form]));
      }
    }
  }

  /// The head noun of a noun phrase, then what follows the phrase in its role.
  void nouns(const State &s, double scale, Emitter &out) const {
    for (Number number : {Number::Singular, Number::Plural}) {
      if (s.np != Number::Unknown && s.np != number)
        continue;
      double p = s.np == Number::Unknown ? 0.5 : 1.0;
      topicWords(
          Noun, s, scale * p, out,
          [&](const State &a, int32_t) {
            switch (s.role) {
            case Role::Subject: {
              State n = make(Pos::AfterSubject, a.topic, a.quote);
              n.subject = number;
              return n;
            }
            case Role::QuestionSubject:
              return make(Pos::QuestionVerb, a.topic, a.quote);
            case Role::Phrase: {
              State n = make(Pos::VerbAfterPhrase, a.topic, a.quote);
              n.subject = a.subject;
              return n;
            }
            case Role::Object:
              break;
            }
            State n = make(Pos::AfterObject, a.topic, a.quote);
            n.question = a.question;
            return n;
          },
          number == Number::Plural ? 1 : 0);
    }
  }

  /// A statement's verb, agreeing with the subject: transitive, intransitive, or says/say and a quotation.
  void verbs(const State &s, double scale, Emitter &out) const {
    double transitive = s.quote ? kTransitiveInQuote : kTransitive;
    double intransitive = s.quote ? kIntransitiveInQuote : kIntransitive;
    topicWords(TransitiveVerb, s, scale * transitive, out,
               [](const State &a, int32_t) { return make(Pos::ObjectStart, a.topic, a.quote); });
    topicWords(IntransitiveVerb, s, scale * intransitive, out,
               [](const State &a, int32_t) { return make(Pos::AfterIntransitive, a.topic, a.quote); });
    if (!s.quote)
      out.emit(lex[s.subject == Number::Plural ? "say" : "says"], scale * kSays, make(Pos::OpenQuote, s.topic, false));
  }

  void punctuation(const State &s, double scale, Emitter &out) const {
    out.emit(lex[s.question ? "?" : "."], scale, make(Pos::AfterSentence, s.topic, s.quote));
  }

  const Lexicon &lex;
};

} // namespace

//===----------------------------------------------------------------------===//
// SyntheticLanguage
//===----------------------------------------------------------------------===//

namespace {

struct Built {
  std::vector<std::string> words;
  int32_t eod;
  std::vector<std::vector<Transition>> transitions;
  std::vector<uint32_t> keys;
};

Built build() {
  Lexicon lex = buildLexicon();
  Grammar grammar(lex);
  Built b;
  std::unordered_map<uint32_t, int32_t> number;
  std::deque<uint32_t> queue;
  auto visit = [&](uint32_t key) {
    auto [it, inserted] = number.emplace(key, static_cast<int32_t>(b.keys.size()));
    if (inserted) {
      b.keys.push_back(key);
      queue.push_back(key);
    }
    return it->second;
  };
  visit(Grammar::start().pack());
  while (!queue.empty()) {
    uint32_t key = queue.front();
    queue.pop_front();
    Emitter out;
    grammar.expand(State::unpack(key), 1.0, out);
    std::vector<Transition> arcs;
    for (const Emitter::Arc &a : out.arcs)
      arcs.push_back({a.word, visit(a.next), a.probability});
    b.transitions.push_back(std::move(arcs)); // states are numbered in the order they are expanded
  }
  b.words = lex.words;
  b.eod = lex[std::string(Vocabulary::kEndOfDocument)];
  return b;
}

} // namespace

const SyntheticLanguage &SyntheticLanguage::builtin() {
  static const SyntheticLanguage language;
  return language;
}

SyntheticLanguage::SyntheticLanguage() : vocab({std::string(Vocabulary::kEndOfDocument)}, 0) {
  Built b = build();
  vocab = Vocabulary(std::move(b.words), b.eod);
  machine = std::make_unique<UnifilarProcess>(std::move(b.transitions), 0);
  stateKeys = std::move(b.keys);
}

double SyntheticLanguage::entropyRateBits() const { return entropyRate() / std::log(2.0); }

size_t SyntheticLanguage::appendDocument(uint64_t seed, uint64_t documentIndex, size_t maxTokens,
                                         std::vector<int32_t> &out) const {
  SplitMix64 rng(seed, documentIndex);
  int32_t state = machine->startState();
  const int32_t eod = endOfDocument();
  size_t n = 0;
  while (n < maxTokens) {
    const Transition &t = machine->choose(state, rng.uniform());
    out.push_back(t.token);
    ++n;
    state = t.next;
    if (t.token == eod)
      break;
  }
  return n;
}

std::vector<int32_t> SyntheticLanguage::document(uint64_t seed, uint64_t documentIndex) const {
  std::vector<int32_t> out;
  appendDocument(seed, documentIndex, SIZE_MAX, out);
  return out;
}

const std::vector<std::string> &SyntheticLanguage::topicNames() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> n{"unknown"};
    for (const Topic &t : kTopics)
      n.push_back(t.name);
    return n;
  }();
  return names;
}

std::string SyntheticLanguage::stateName(int32_t state) const {
  State s = State::unpack(stateKeys.at(state));
  static const char *const kNumberNames[] = {"unknown", "singular", "plural"};
  std::string name = kPosNames[static_cast<int>(s.pos)];
  if (s.pos == Pos::AfterDeterminer || s.pos == Pos::AfterCommonAdj || s.pos == Pos::AfterTopicAdj)
    name += std::string(" role=") + kRoleNames[static_cast<int>(s.role)] + " noun=" +
            kNumberNames[static_cast<int>(s.np)];
  if (s.pos == Pos::QuestionSubject)
    name += std::string(" noun=") + kNumberNames[static_cast<int>(s.np)];
  if (s.subject != Number::Unknown)
    name += std::string(" subject=") + kNumberNames[static_cast<int>(s.subject)];
  name += " topic=" + topicNames()[s.topic];
  if (s.question)
    name += " question";
  if (s.quote)
    name += " quote";
  return name;
}

} // namespace megatron::data
