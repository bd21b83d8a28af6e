// scan_object and json_nests_deeper_than: structural scans of JSON text; json_body_error,
// json_depth_error and json_nul_error: the words a body's refusal takes.
#include "sync/src/json_scan.h"

#include "sync/protocol.h"

#include <nlohmann/json.hpp>

namespace tsunagu::sync::detail {
namespace {

bool is_space(char c) {
    return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

class Scanner {
  public:
    explicit Scanner(std::string_view text) : text_(text) {}

    std::optional<std::vector<Member>> object() {
        std::vector<Member> members;
        skip_space();
        if (!take('{')) return std::nullopt;
        skip_space();
        if (take('}')) return finish(std::move(members));
        while (true) {
            skip_space();
            const std::size_t key_start = pos_;
            bool escaped = false;
            if (!string(escaped)) return std::nullopt;
            std::string key;
            if (escaped) {
                auto read = read_json_string(text_.substr(key_start, pos_ - key_start));
                if (!read) return std::nullopt;
                key = std::move(*read);
            } else {
                key = std::string(text_.substr(key_start + 1, pos_ - key_start - 2));
            }
            skip_space();
            if (!take(':')) return std::nullopt;
            skip_space();
            const std::size_t value_start = pos_;
            if (!value(0)) return std::nullopt;
            members.emplace_back(std::move(key), text_.substr(value_start, pos_ - value_start));
            skip_space();
            if (take(',')) continue;
            if (take('}')) return finish(std::move(members));
            return std::nullopt;
        }
    }

  private:
    std::string_view text_;
    std::size_t pos_ = 0;

    std::optional<std::vector<Member>> finish(std::vector<Member> members) {
        skip_space();
        if (pos_ != text_.size()) return std::nullopt;
        return members;
    }
    void skip_space() {
        while (pos_ < text_.size() && is_space(text_[pos_])) ++pos_;
    }
    bool take(char c) {
        if (pos_ < text_.size() && text_[pos_] == c) {
            ++pos_;
            return true;
        }
        return false;
    }
    bool string(bool& escaped) {
        if (!take('"')) return false;
        while (pos_ < text_.size()) {
            const char c = text_[pos_++];
            if (c == '"') return true;
            if (static_cast<unsigned char>(c) < 0x20) return false;
            if (c == '\\') {
                escaped = true;
                if (pos_ >= text_.size()) return false;
                ++pos_;
            }
        }
        return false;
    }
    bool scalar() {
        const std::size_t start = pos_;
        while (pos_ < text_.size()) {
            const char c = text_[pos_];
            const bool number =
                (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E';
            const bool letter = c >= 'a' && c <= 'z';
            if (!number && !letter) break;
            ++pos_;
        }
        const std::string_view token = text_.substr(start, pos_ - start);
        return token == "true" || token == "false" || token == "null" || is_number(token);
    }
    // JSON's number grammar: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? (the fuzz target
    // object_scan found "-q.5e3" read as one).
    static bool is_number(std::string_view t) {
        std::size_t i = 0;
        auto digits = [&] {
            const std::size_t from = i;
            while (i < t.size() && t[i] >= '0' && t[i] <= '9') ++i;
            return i > from;
        };
        if (i < t.size() && t[i] == '-') ++i;
        if (i < t.size() && t[i] == '0') {
            ++i;
        } else if (!digits()) {
            return false;
        }
        if (i < t.size() && t[i] == '.' && !(++i, digits())) return false;
        if (i < t.size() && (t[i] == 'e' || t[i] == 'E')) {
            ++i;
            if (i < t.size() && (t[i] == '+' || t[i] == '-')) ++i;
            if (!digits()) return false;
        }
        return i == t.size();
    }
    bool value(int depth) {
        if (depth > 64 || pos_ >= text_.size()) return false;
        const char c = text_[pos_];
        if (c == '"') {
            bool escaped = false;
            return string(escaped);
        }
        if (c == '{' || c == '[') {
            const char close = c == '{' ? '}' : ']';
            ++pos_;
            skip_space();
            if (take(close)) return true;
            while (true) {
                skip_space();
                if (c == '{') {
                    bool escaped = false;
                    if (!string(escaped)) return false;
                    skip_space();
                    if (!take(':')) return false;
                    skip_space();
                }
                if (!value(depth + 1)) return false;
                skip_space();
                if (take(',')) continue;
                return take(close);
            }
        }
        return scalar();
    }
};

}  // namespace

std::optional<std::vector<Member>> scan_object(std::string_view text) {
    return Scanner(text).object();
}

std::optional<std::string> read_json_string(std::string_view quoted) {
    const auto parsed = nlohmann::json::parse(quoted, nullptr, false);
    if (!parsed.is_string()) return std::nullopt;
    return parsed.get<std::string>();
}

bool names_any(std::string_view text, const std::set<std::string>& records) {
    constexpr std::size_t kIdChars = 32;
    // The quote that ends the string opened before `from`: the next one not escaped (preceded by
    // an odd number of backslashes).
    const auto closing = [&](std::size_t from) {
        for (std::size_t at = text.find('"', from); at != std::string_view::npos; at = text.find('"', at + 1)) {
            std::size_t backslashes = 0;
            while (backslashes < at && text[at - 1 - backslashes] == '\\') ++backslashes;
            if (backslashes % 2 == 0) return at;
        }
        return std::string_view::npos;
    };
    for (std::size_t open = text.find('"'); open != std::string_view::npos;) {
        const std::size_t close = closing(open + 1);
        if (close == std::string_view::npos) break;
        if (close - open - 1 == kIdChars) {
            const std::string_view quoted = text.substr(open + 1, kIdChars);
            if (is_id(quoted) && records.contains(std::string(quoted))) return true;
        }
        open = text.find('"', close + 1);
    }
    return false;
}

}  // namespace tsunagu::sync::detail

namespace tsunagu::sync {

std::string json_body_error(std::size_t position, const Json::exception& error) {
    // A syntax error knows its byte; a number out of range is reported where the reader stopped.
    const auto* syntax = dynamic_cast<const Json::parse_error*>(&error);
    const bool utf8 = std::string_view(error.what()).find("UTF-8") != std::string_view::npos;
    return std::string(utf8 ? "the body is not valid UTF-8" : "the body is not valid JSON") + " (at byte " +
           std::to_string(syntax ? syntax->byte : position) + ")";
}

std::string exception_text(const std::exception& error) {
    std::string text = error.what();
    // The excerpt may itself hold "; " or quotes: everything from its label on goes.
    if (const std::size_t excerpt = text.find("last read:"); excerpt != std::string::npos) {
        std::size_t end = excerpt;
        while (end > 0 && (text[end - 1] == ' ' || text[end - 1] == ';')) --end;
        text.resize(end);
    }
    return text;
}

std::string json_depth_error(int max_depth) {
    return "the body nests deeper than " + std::to_string(max_depth) + " levels";
}

std::string json_nul_error(std::string_view text) {
    const std::size_t nul = text.find('\0');
    if (nul == std::string_view::npos) return "";
    return "the body is not valid JSON (at byte " + std::to_string(nul + 1) + ")";
}

// A scan of the bytes before parsing, so that a hostile body never becomes a deep document in
// memory, and the parse itself runs without a per-event callback (about half the cost).
bool json_nests_deeper_than(std::string_view text, int max_depth) {
    int open = 0;
    bool in_string = false, escaped = false;
    for (const char c : text) {
        if (in_string) {
            if (escaped) escaped = false;
            else if (c == '\\') escaped = true;
            else if (c == '"') in_string = false;
            continue;
        }
        switch (c) {
            case ']':
            case '}': --open; break;
            case ' ':
            case '\t':
            case '\n':
            case '\r':
            case ',':
            case ':': break;
            default:  // the start or the inside of an element
                if (open > max_depth) return true;
                if (c == '"') in_string = true;
                if (c == '[' || c == '{') ++open;
        }
    }
    return false;
}

}  // namespace tsunagu::sync
