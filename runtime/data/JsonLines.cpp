//===- JsonLines.cpp - One line of a JSON-lines corpus --------------------===//

#include "runtime/data/JsonLines.h"

#include <nlohmann/json.hpp>

#include <cstdio>
#include <optional>

namespace megatron::data {

namespace {

const char *typeName(const nlohmann::json &value) {
  switch (value.type()) {
  case nlohmann::json::value_t::null:
    return "null";
  case nlohmann::json::value_t::boolean:
    return "a boolean";
  case nlohmann::json::value_t::number_integer:
  case nlohmann::json::value_t::number_unsigned:
  case nlohmann::json::value_t::number_float:
    return "a number";
  case nlohmann::json::value_t::object:
    return "an object";
  case nlohmann::json::value_t::array:
    return "a list";
  case nlohmann::json::value_t::string:
    return "a string";
  default:
    return "not text";
  }
}

/// nlohmann's parse error without its "[json.exception.parse_error.101] parse error at line 1, " preamble, as
/// "column N: ...", with any byte that is not printable ASCII written as \xNN (the input may not be UTF-8).
std::string describeParseError(const std::string &what) {
  std::string message = what;
  if (size_t bracket = message.find("] "); message.rfind("[json.exception", 0) == 0 && bracket != std::string::npos)
    message = message.substr(bracket + 2);
  const std::string preamble = "parse error at line 1, ";
  if (message.rfind(preamble, 0) == 0)
    message = message.substr(preamble.size());
  if (size_t colon = message.find(": "); message.rfind("column ", 0) == 0 && colon != std::string::npos)
    message = message.substr(0, colon) + ": malformed JSON: " + message.substr(colon + 2);
  else
    message = "malformed JSON: " + message;
  std::string out;
  for (unsigned char c : message) {
    if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      char escaped[8];
      std::snprintf(escaped, sizeof escaped, "\\x%02x", c);
      out += escaped;
    }
  }
  return out;
}

/// Python's json module reads NaN, Infinity and -Infinity (and json.dumps writes them for float NaN and
/// infinities), so Megatron accepts lines that hold them. Here they become null, outside strings only; nullopt
/// when the line has none.
std::optional<std::string> replacePythonConstants(std::string_view line) {
  std::string out;
  bool inString = false, changed = false;
  for (size_t i = 0; i < line.size(); ++i) {
    char c = line[i];
    if (inString) {
      out += c;
      if (c == '\\' && i + 1 < line.size())
        out += line[++i];
      else if (c == '"')
        inString = false;
      continue;
    }
    if (c == '"') {
      inString = true;
    } else {
      for (std::string_view constant : {"NaN", "Infinity", "-Infinity"}) {
        if (line.substr(i, constant.size()) == constant) {
          out += "null";
          i += constant.size() - 1;
          changed = true;
          c = 0;
          break;
        }
      }
      if (c == 0)
        continue;
    }
    out += c;
  }
  if (!changed)
    return std::nullopt;
  return out;
}

/// Parses one line as Python's json.loads would; an error message when it is not JSON.
std::string parseJson(std::string_view line, nlohmann::json &data) {
  try {
    data = nlohmann::json::parse(line.begin(), line.end());
    return {};
  } catch (const nlohmann::json::parse_error &e) {
    std::string error = describeParseError(e.what());
    if (std::optional<std::string> replaced = replacePythonConstants(line)) {
      try {
        data = nlohmann::json::parse(*replaced);
        return {};
      } catch (const nlohmann::json::parse_error &) {
      }
    }
    return error;
  }
}

} // namespace

struct JsonLine::Parsed {
  nlohmann::json data;
  std::vector<const nlohmann::json *> values; // one per key
};

JsonLine::JsonLine() : parsed(std::make_unique<Parsed>()) {}
JsonLine::~JsonLine() = default;

std::string JsonLine::parse(std::string_view line, const std::vector<std::string> &keys) {
  parsed->values.clear();
  if (!line.empty() && line.back() == '\n')
    line.remove_suffix(1);
  if (line.find_first_not_of(" \t\r") == std::string_view::npos)
    return "empty line (each line must be one JSON object)";
  nlohmann::json &data = parsed->data;
  std::string error = parseJson(line, data);
  if (!error.empty())
    return error;
  if (!data.is_object())
    return std::string("expected a JSON object, found ") + typeName(data);
  for (const std::string &key : keys) {
    auto it = data.find(key);
    if (it == data.end())
      return "no key \"" + key + "\"";
    if (it->is_array()) {
      for (size_t s = 0; s < it->size(); ++s)
        if (!(*it)[s].is_string())
          return "\"" + key + "\" element " + std::to_string(s) + " is " + typeName((*it)[s]) + ", expected a string";
    } else if (!it->is_string()) {
      return "\"" + key + "\" is " + typeName(*it) + ", expected a string or a list of strings";
    }
    parsed->values.push_back(&*it);
  }
  return {};
}

size_t JsonLine::numSentences(size_t k) const {
  const nlohmann::json &value = *parsed->values.at(k);
  return value.is_array() ? value.size() : 1;
}

std::string_view JsonLine::sentence(size_t k, size_t s) const {
  const nlohmann::json &value = *parsed->values.at(k);
  return value.is_array() ? value.at(s).get_ref<const std::string &>() : value.get_ref<const std::string &>();
}

std::string JsonLine::atLine(uint64_t lineNumber, const std::string &problem) {
  return "line " + std::to_string(lineNumber) + (problem.rfind("column ", 0) == 0 ? ", " : ": ") + problem;
}

std::string jsonTextLine(std::string_view text, std::string_view key) {
  nlohmann::json object = nlohmann::json::object();
  object[std::string(key)] = std::string(text);
  // Invalid UTF-8 becomes U+FFFD rather than an exception: the line is always valid JSON.
  return object.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

} // namespace megatron::data
