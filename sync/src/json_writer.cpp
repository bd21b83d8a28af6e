// write_json: compact JSON text, appended in place.
#include "sync/src/json_writer.h"

#include <charconv>

namespace tsunagu::sync::detail {
namespace {

// The length of the valid UTF-8 sequence starting at text[i], or 0.
std::size_t utf8_sequence(std::string_view text, std::size_t i) {
    const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(text[k]); };
    const unsigned char c = byte(i);
    std::size_t length;
    std::uint32_t min;
    if (c >= 0xC2 && c <= 0xDF) {
        length = 2;
        min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
        length = 3;
        min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        length = 4;
        min = 0x10000;
    } else {
        return 0;
    }
    if (i + length > text.size()) return 0;
    std::uint32_t code = c & (0xFF >> (length + 1));
    for (std::size_t k = 1; k < length; ++k) {
        if ((byte(i + k) & 0xC0) != 0x80) return 0;
        code = (code << 6) | (byte(i + k) & 0x3F);
    }
    if (code < min || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF)) return 0;
    return length;
}

}  // namespace

bool is_utf8(std::string_view text) {
    for (std::size_t i = 0; i < text.size();) {
        if (static_cast<unsigned char>(text[i]) < 0x80) {
            ++i;
            continue;
        }
        const std::size_t length = utf8_sequence(text, i);
        if (length == 0) return false;
        i += length;
    }
    return true;
}

bool holds_invalid_utf8(const Json& value) {
    if (value.is_string()) return !is_utf8(value.get_ref<const std::string&>());
    if (value.is_object()) {
        for (const auto& [name, member] : value.items()) {
            if (!is_utf8(name) || holds_invalid_utf8(member)) return true;
        }
    }
    if (value.is_array()) {
        for (const Json& item : value) {
            if (holds_invalid_utf8(item)) return true;
        }
    }
    return false;
}

void write_json_string(std::string& out, std::string_view text) {
    static constexpr char kHex[] = "0123456789abcdef";
    out.push_back('"');
    std::size_t i = 0;
    while (i < text.size()) {
        // Copy the longest run that needs no escaping in one go.
        std::size_t run = i;
        while (run < text.size()) {
            const auto c = static_cast<unsigned char>(text[run]);
            if (c < 0x20 || c == '"' || c == '\\' || c >= 0x80) break;
            ++run;
        }
        out.append(text.data() + i, run - i);
        i = run;
        if (i == text.size()) break;
        const auto c = static_cast<unsigned char>(text[i]);
        if (c >= 0x80) {
            const std::size_t length = utf8_sequence(text, i);
            if (length == 0) {
                out.append("\xEF\xBF\xBD");
                ++i;
            } else {
                out.append(text.data() + i, length);
                i += length;
            }
            continue;
        }
        switch (c) {
            case '"':
                out.append("\\\"");
                break;
            case '\\':
                out.append("\\\\");
                break;
            case '\b':
                out.append("\\b");
                break;
            case '\f':
                out.append("\\f");
                break;
            case '\n':
                out.append("\\n");
                break;
            case '\r':
                out.append("\\r");
                break;
            case '\t':
                out.append("\\t");
                break;
            default:
                out.append("\\u00");
                out.push_back(kHex[c >> 4]);
                out.push_back(kHex[c & 15]);
        }
        ++i;
    }
    out.push_back('"');
}

void write_key(std::string& out, const char* key) {
    out.push_back('"');
    out.append(key);
    out.append("\":");
}

void write_int(std::string& out, std::int64_t n) {
    char buffer[24];
    auto end = std::to_chars(buffer, buffer + sizeof buffer, n).ptr;
    out.append(buffer, end);
}

void write_json(std::string& out, const Json& value) {
    switch (value.type()) {
        case Json::value_t::null:
        case Json::value_t::discarded:
            out.append("null");
            return;
        case Json::value_t::boolean:
            out.append(value.get<bool>() ? "true" : "false");
            return;
        case Json::value_t::number_integer:
        case Json::value_t::number_unsigned: {
            char buffer[24];
            auto result =
                value.is_number_unsigned()
                    ? std::to_chars(buffer, buffer + sizeof buffer, value.get<std::uint64_t>())
                    : std::to_chars(buffer, buffer + sizeof buffer, value.get<std::int64_t>());
            out.append(buffer, result.ptr);
            return;
        }
        case Json::value_t::number_float:
            out.append(value.dump());  // nlohmann's round-trip formatting
            return;
        case Json::value_t::string:
            write_json_string(out, value.get_ref<const std::string&>());
            return;
        case Json::value_t::array: {
            out.push_back('[');
            bool first = true;
            for (const Json& item : value) {
                if (!first) out.push_back(',');
                first = false;
                write_json(out, item);
            }
            out.push_back(']');
            return;
        }
        case Json::value_t::object: {
            out.push_back('{');
            bool first = true;
            for (auto it = value.begin(); it != value.end(); ++it) {
                if (!first) out.push_back(',');
                first = false;
                write_json_string(out, it.key());
                out.push_back(':');
                write_json(out, it.value());
            }
            out.push_back('}');
            return;
        }
        case Json::value_t::binary:
            out.append(value.dump());
            return;
    }
}

}  // namespace tsunagu::sync::detail

namespace tsunagu::sync {

bool is_utf8(std::string_view text) { return detail::is_utf8(text); }

}  // namespace tsunagu::sync
