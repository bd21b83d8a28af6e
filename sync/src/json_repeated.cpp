// json_repeated_member_error: a body naming one member twice in an object is refused, not read
// "last wins" (nlohmann's document) while another reader of the same text may take the first.
#include <algorithm>
#include <deque>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sync/protocol.h"
#include "sync/src/json_scan.h"

namespace tsunagu::sync {
namespace {

constexpr std::size_t kNameShown = 64;  // a hostile name may be long: the message shows its start

struct Name {
    std::string_view text;  // unescaped
    std::size_t at;         // the byte where its quote opens
};

// The open arrays and objects around the scan, and the names of the open objects' members (one
// flat list: an object's names start at its `first`).
class Scan {
  public:
    explicit Scan(std::string_view text) : text_(text) {}

    std::string run() {
        for (std::size_t i = 0; i < text_.size(); ++i) {
            switch (text_[i]) {
                case '{': open_.push_back({true, true, names_.size()}); break;
                case '[': open_.push_back({false, false, names_.size()}); break;
                case ',':
                    if (!open_.empty() && open_.back().object) open_.back().expect_name = true;
                    break;
                case '}':
                case ']':
                    if (open_.empty()) break;
                    if (open_.back().object) {
                        if (auto error = repeated(open_.back().first); !error.empty()) return error;
                    }
                    names_.resize(open_.back().first);
                    open_.pop_back();
                    break;
                case '"': i = string_at(i); break;
                default: break;
            }
        }
        return "";
    }

  private:
    struct Open {
        bool object;
        bool expect_name;   // the next string is a member's name
        std::size_t first;  // its names start here in names_
    };
    std::string_view text_;
    std::vector<Open> open_;
    std::vector<Name> names_;
    std::deque<std::string> unescaped_;  // names written with escapes, read (stable addresses)

    // Reads the string whose quote opens at `start` (a member's name when one is expected), and
    // returns where its closing quote is.
    std::size_t string_at(std::size_t start) {
        std::size_t end = start + 1;
        bool escaped = false;
        while (end < text_.size() && text_[end] != '"') {
            if (text_[end] == '\\') {
                escaped = true;
                ++end;
            }
            ++end;
        }
        if (open_.empty() || !open_.back().object || !open_.back().expect_name) return end;
        open_.back().expect_name = false;
        std::string_view name = text_.substr(start + 1, end - start - 1);
        if (escaped) {  // "\u0061" and "a" name one member
            if (auto read = detail::read_json_string(text_.substr(start, end - start + 1))) {
                name = unescaped_.emplace_back(std::move(*read));
            }
        }
        names_.push_back({name, start});
        return end;
    }

    // The refusal when two of the names from `first` on are the same: the one met second earliest.
    std::string repeated(std::size_t first) {
        const auto begin = names_.begin() + static_cast<std::ptrdiff_t>(first);
        if (names_.end() - begin < 2) return "";
        std::sort(begin, names_.end(),
                  [](const Name& a, const Name& b) { return a.text != b.text ? a.text < b.text : a.at < b.at; });
        const Name* second = nullptr;
        for (auto it = begin + 1; it != names_.end(); ++it) {
            if (it->text == (it - 1)->text && (!second || it->at < second->at)) second = &*it;
        }
        if (!second) return "";
        std::string shown(second->text.substr(0, kNameShown));
        if (second->text.size() > kNameShown) shown += "...";
        return "member \"" + shown + "\" appears twice in one object (at byte " + std::to_string(second->at + 1) +
               "): name each member once";
    }
};

}  // namespace

std::string json_repeated_member_error(std::string_view text) { return Scan(text).run(); }

}  // namespace tsunagu::sync
