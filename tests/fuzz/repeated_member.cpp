// has_repeated_member: nlohmann's SAX events, a set of member names per open object.
#include "fuzz/repeated_member.h"

#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace tsunagu::fuzz {
namespace {

using nlohmann::json;

class Names : public nlohmann::json_sax<json> {
  public:
    bool repeated = false;

    bool null() override { return true; }
    bool boolean(bool) override { return true; }
    bool number_integer(number_integer_t) override { return true; }
    bool number_unsigned(number_unsigned_t) override { return true; }
    bool number_float(number_float_t, const string_t&) override { return true; }
    bool string(string_t&) override { return true; }
    bool binary(binary_t&) override { return true; }
    bool start_object(std::size_t) override {
        open_.emplace_back();
        return true;
    }
    bool key(string_t& name) override {
        if (!open_.back().insert(name).second) repeated = true;
        return !repeated;
    }
    bool end_object() override {
        open_.pop_back();
        return true;
    }
    bool start_array(std::size_t) override { return true; }
    bool end_array() override { return true; }
    bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override {
        return false;
    }

  private:
    std::vector<std::set<std::string>> open_;
};

}  // namespace

bool has_repeated_member(std::string_view text) {
    Names names;
    json::sax_parse(text, &names);
    return names.repeated;
}

}  // namespace tsunagu::fuzz
