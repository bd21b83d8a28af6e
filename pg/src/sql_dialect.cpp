// SQLite's dialect in PostgreSQL's (pg/src/sql_dialect.h).
#include "pg/src/sql_dialect.h"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <regex>
#include <stdexcept>

namespace tsunagu::pg::detail {

namespace {

std::string lower_of(std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
    return out;
}


enum class Kind { word, param, string, quoted, space, other };

struct Token {
    Kind kind;
    std::string text;
    std::string lower;  // words only
};

std::vector<Token> tokenize(std::string_view sql) {
    std::vector<Token> tokens;
    std::size_t i = 0;
    while (i < sql.size()) {
        const char c = sql[i];
        const std::size_t start = i;
        if (c == '\'' || c == '"') {  // a literal or quoted identifier; '' and "" escape
            ++i;
            while (i < sql.size()) {
                if (sql[i] == c) {
                    if (i + 1 < sql.size() && sql[i + 1] == c) {
                        i += 2;
                        continue;
                    }
                    ++i;
                    break;
                }
                ++i;
            }
            tokens.push_back({c == '\'' ? Kind::string : Kind::quoted, std::string(sql.substr(start, i - start)), {}});
        } else if (c == '-' && i + 1 < sql.size() && sql[i + 1] == '-') {  // a comment to the line's end
            i = std::min(sql.find('\n', i), sql.size());
            tokens.push_back({Kind::space, " ", {}});
        } else if (c == '/' && i + 1 < sql.size() && sql[i + 1] == '*') {  // a comment to "*/"
            const std::size_t end = sql.find("*/", i + 2);
            if (end == std::string_view::npos)
                throw std::runtime_error("a /* comment is not closed: end it with */ or remove it");
            i = end + 2;
            tokens.push_back({Kind::space, " ", {}});
        } else if (std::isspace(static_cast<unsigned char>(c))) {
            while (i < sql.size() && std::isspace(static_cast<unsigned char>(sql[i]))) ++i;
            tokens.push_back({Kind::space, " ", {}});
        } else if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
            while (i < sql.size() && (std::isalnum(static_cast<unsigned char>(sql[i])) || sql[i] == '_')) ++i;
            std::string word(sql.substr(start, i - start));
            tokens.push_back({Kind::word, word, lower_of(word)});
        } else if (c == '?') {
            ++i;
            while (i < sql.size() && std::isdigit(static_cast<unsigned char>(sql[i]))) ++i;
            tokens.push_back({Kind::param, std::string(sql.substr(start, i - start)), {}});
        } else {
            ++i;
            tokens.push_back({Kind::other, std::string(1, c), {}});
        }
    }
    return tokens;
}

// The tokens without spaces, for pattern matching.
std::vector<const Token*> solid(const std::vector<Token>& tokens) {
    std::vector<const Token*> out;
    for (const auto& t : tokens)
        if (t.kind != Kind::space) out.push_back(&t);
    return out;
}

bool is_word(const Token* t, std::string_view lower) { return t && t->kind == Kind::word && t->lower == lower; }

std::string quote_if_keyword(const Token& t) {
    if (t.kind == Kind::word && t.lower == "user") return "\"user\"";
    return t.text;
}

// SQLite functions PostgreSQL lacks, by their exact spelling in our SQL.
std::string rewrite_functions(std::string sql) {
    static const std::pair<const char*, const char*> kPhrases[] = {
        {"unixepoch()", "(extract(epoch from now())::bigint)"},
        {"strftime('%s','now')", "(extract(epoch from now())::bigint)"},
        {"min(cursor, outbox_floor)", "LEAST(cursor, outbox_floor)"},
    };
    for (const auto& [from, to] : kPhrases) {
        for (std::size_t at = sql.find(from); at != std::string::npos; at = sql.find(from, at + std::strlen(to)))
            sql.replace(at, std::strlen(from), to);
    }
    // zeroblob(?N): room for a row to grow in place, which SQLite's pages want and PostgreSQL's
    // heap (a new row version at every update) does not. NULL, with the parameter still used.
    static const std::regex kZeroBlob(R"(zeroblob\(\s*\?(\d+)\s*\))", std::regex::icase);
    sql = std::regex_replace(sql, kZeroBlob, "(CASE WHEN CAST(?$1 AS BIGINT) IS NULL THEN NULL END)::bytea");
    return sql;
}

std::string trim(std::string_view s) {
    const auto a = s.find_first_not_of(" \t\r\n");
    if (a == std::string_view::npos) return {};
    const auto b = s.find_last_not_of(" \t\r\n");
    return std::string(s.substr(a, b - a + 1));
}

// Splits at top-level commas.
std::vector<std::string> split_items(std::string_view body) {
    std::vector<std::string> items;
    int depth = 0;
    std::string current;
    for (const Token& t : tokenize(body)) {
        if (t.kind == Kind::other && t.text == "(") ++depth;
        if (t.kind == Kind::other && t.text == ")") --depth;
        if (depth == 0 && t.kind == Kind::other && t.text == ",") {
            items.push_back(trim(current));
            current.clear();
            continue;
        }
        current += t.text;
    }
    if (!trim(current).empty()) items.push_back(trim(current));
    return items;
}

std::string join_quoted(const std::vector<Token>& tokens, std::size_t from = 0) {
    std::string out;
    for (std::size_t i = from; i < tokens.size(); ++i) out += quote_if_keyword(tokens[i]);
    return out;
}

Translated create_table(const std::string& sql, const SealedColumns& sealed) {
    static const std::regex kHead(R"(^\s*CREATE\s+TABLE\s+(IF\s+NOT\s+EXISTS\s+)?(\w+)\s*\(([\s\S]*)\)\s*(WITHOUT\s+ROWID)?\s*$)",
                                  std::regex::icase);
    std::smatch m;
    if (!std::regex_match(sql, m, kHead)) throw std::runtime_error("unrecognised CREATE TABLE");
    const std::string table = lower_of(m[2].str());
    const auto sealed_table = sealed.find(table);
    std::string out = "CREATE TABLE " + m[1].str() + m[2].str() + "(";
    bool first = true;
    for (const std::string& item : split_items(m[3].str())) {
        const auto tokens = tokenize(item);
        const auto words = solid(tokens);
        std::string column;
        const std::string head = words.empty() ? "" : words[0]->lower;
        if (head == "primary" || head == "unique" || head == "check" || head == "foreign" || head == "constraint") {
            column = join_quoted(tokens);
        } else {
            const std::string name = words[0]->lower;
            std::size_t rest = 0;  // index into tokens after the name
            while (&tokens[rest] != words[0]) ++rest;
            ++rest;
            std::string type = "TEXT";
            std::size_t after = rest;
            // The declared type, when the next word is one.
            std::size_t k = rest;
            while (k < tokens.size() && tokens[k].kind == Kind::space) ++k;
            if (k < tokens.size() && tokens[k].kind == Kind::word) {
                const std::string& w = tokens[k].lower;
                if (w == "integer" || w == "int" || w == "bigint") type = "BIGINT", after = k + 1;
                else if (w == "text") type = "TEXT", after = k + 1;
                else if (w == "blob") type = "BYTEA", after = k + 1;
                else if (w == "real" || w == "double") type = "DOUBLE PRECISION", after = k + 1;
            }
            std::string constraints = join_quoted(tokens, after);
            const std::string lowered = lower_of(constraints);
            if (sealed_table != sealed.end() && sealed_table->second.columns.contains(name)) type = "BYTEA";
            else if (type == "BIGINT" && lowered.find("primary key") != std::string::npos)
                type = "BIGINT GENERATED BY DEFAULT AS IDENTITY";
            column = quote_if_keyword(*words[0]) + " " + type + constraints;
        }
        out += (first ? "" : ", ") + column;
        first = false;
    }
    out += ")";
    Translated t;
    t.sql = out;
    return t;
}

// SQLite: CREATE TRIGGER [IF NOT EXISTS] name BEFORE UPDATE|DELETE ON table
//           BEGIN SELECT raise(ABORT, 'message'); END
Translated create_trigger(const std::string& sql) {
    static const std::regex kTrigger(
        R"(^\s*CREATE\s+TRIGGER\s+(IF\s+NOT\s+EXISTS\s+)?(\w+)\s+(BEFORE|AFTER)\s+(UPDATE|DELETE|INSERT)\s+ON\s+(\w+)\s+BEGIN\s+SELECT\s+raise\s*\(\s*ABORT\s*,\s*('(?:[^']|'')*')\s*\)\s*;\s*END\s*;?\s*$)",
        std::regex::icase);
    std::smatch m;
    if (!std::regex_match(sql, m, kTrigger)) throw std::runtime_error("unrecognised CREATE TRIGGER");
    const std::string name = m[2].str();
    const std::string function = "tsunagu_raise_" + name;
    Translated t;
    t.sql = "CREATE OR REPLACE FUNCTION " + function +
            "() RETURNS trigger LANGUAGE plpgsql AS $tsunagu$ BEGIN RAISE EXCEPTION " + m[6].str() +
            "; END $tsunagu$; CREATE OR REPLACE TRIGGER " + name + " " + m[3].str() + " " + m[4].str() + " ON " +
            m[5].str() + " FOR EACH ROW EXECUTE FUNCTION " + function + "()";
    return t;
}

}  // namespace

const SealedColumns& tsunagu_sealed_columns() {
    static const SealedColumns kSealed = {
        // A record's contents, and its change list: the entries for change sets it has not received
        // yet name the fields they set.
        {"sync_records", {"id", {"fields", "meta", "log"}}},
        // The change log's field lists: which fields each change set (a client's risk flags were
        // raised at 9:14), bound to the line's sequence number. Only ever read back by it.
        {"sync_log", {"seq", {"fields"}}},
        // Refused change sets kept for supervisors (api/src/refused_changes.h), and what was said of them.
        {"refused_change", {"change_id", {"change", "reason", "comment"}}},
        // The secret that keys the hashes of names failed sign-ins were tried under
        // (api/src/sign_in_throttle.h): without it they cannot be tried against guesses.
        {"sign_in_name_secret", {"id", {"secret"}}},
    };
    return kSealed;
}

std::vector<std::string> split_statements(std::string_view sql) {
    std::vector<std::string> out;
    std::string current;
    bool in_trigger_body = false;
    for (const Token& t : tokenize(sql)) {
        if (t.kind == Kind::word && t.lower == "begin" && lower_of(trim(current)).starts_with("create trigger"))
            in_trigger_body = true;
        if (t.kind == Kind::word && t.lower == "end") in_trigger_body = false;
        if (t.kind == Kind::other && t.text == ";" && !in_trigger_body) {
            if (!trim(current).empty()) out.push_back(trim(current));
            current.clear();
            continue;
        }
        current += t.text;
    }
    if (!trim(current).empty()) out.push_back(trim(current));
    return out;
}

std::string upsert_clause(const std::vector<std::string>& primary_key, const std::vector<std::string>& columns) {
    std::string out = " ON CONFLICT (";
    for (std::size_t i = 0; i < primary_key.size(); ++i) out += (i ? ", \"" : "\"") + primary_key[i] + "\"";
    out += ")";
    std::string sets;
    for (const auto& c : columns) {
        if (std::find(primary_key.begin(), primary_key.end(), c) != primary_key.end()) continue;
        sets += (sets.empty() ? "" : ", ") + std::string("\"") + c + "\" = EXCLUDED.\"" + c + "\"";
    }
    return out + (sets.empty() ? " DO NOTHING" : " DO UPDATE SET " + sets);
}

namespace {
// The statement with each comment replaced by a space (quotes inside a comment are not quotes).
std::string without_comments(std::string_view sql) {
    std::string out;
    for (const Token& t : tokenize(sql)) out += t.text;
    return out;
}
}  // namespace

Translated translate(std::string_view sqlite_sql, const SealedColumns& sealed) {
    const std::string sql = rewrite_functions(trim(without_comments(sqlite_sql)));
    const std::string head = lower_of(sql.substr(0, 32));
    if (head.starts_with("pragma")) {
        Translated t;
        t.is_pragma = true;
        return t;
    }
    if (std::regex_search(head, std::regex("^create\\s+table"))) return create_table(sql, sealed);
    if (std::regex_search(head, std::regex("^create\\s+trigger"))) return create_trigger(sql);

    const auto tokens = tokenize(sql);
    const auto words = solid(tokens);
    Translated t;
    // Drops: INSERT's OR IGNORE / OR REPLACE, INDEXED BY name, WITHOUT ROWID.
    std::set<const Token*> dropped;
    for (std::size_t i = 0; i + 1 < words.size(); ++i) {
        if (i == 0 && is_word(words[0], "insert") && is_word(words[1], "or") && i + 2 < words.size()) {
            t.insert = words[2]->lower == "ignore" ? InsertMode::ignore : InsertMode::replace;
            dropped.insert(words[1]);
            dropped.insert(words[2]);
        }
        if (is_word(words[i], "indexed") && is_word(words[i + 1], "by") && i + 2 < words.size()) {
            dropped.insert({words[i], words[i + 1], words[i + 2]});
        }
        if (is_word(words[i], "without") && is_word(words[i + 1], "rowid")) dropped.insert({words[i], words[i + 1]});
    }
    std::string out;
    int next_anonymous = 0;
    bool after_dropped = false;  // a dropped word takes its following space with it
    for (const Token& token : tokens) {
        if (dropped.contains(&token) || (after_dropped && token.kind == Kind::space)) {
            after_dropped = dropped.contains(&token);
            continue;
        }
        after_dropped = false;
        if (token.kind == Kind::param) {
            int n = token.text.size() > 1 ? std::stoi(token.text.substr(1)) : ++next_anonymous;
            t.parameters = std::max(t.parameters, n);
            out += "$" + std::to_string(n);
        } else {
            out += quote_if_keyword(token);
        }
    }
    // What the statement writes, for sealing and for INSERT's conflict handling.
    auto param_number = [](const Token* tok) { return tok->text.size() > 1 ? std::stoi(tok->text.substr(1)) : 0; };
    if (!words.empty() && is_word(words[0], "insert")) {
        std::size_t i = 1;
        while (i < words.size() && !is_word(words[i], "into")) ++i;
        if (i + 1 < words.size()) t.table = words[i + 1]->lower;
        std::size_t j = i + 2;
        if (j < words.size() && words[j]->text == "(") {
            for (++j; j < words.size() && words[j]->text != ")"; ++j)
                if (words[j]->kind == Kind::word) t.insert_columns.push_back(words[j]->lower);
            ++j;
        }
        const std::string rest = lower_of(sql);
        const bool values = j < words.size() && is_word(words[j], "values");
        if (values && j + 1 < words.size() && words[j + 1]->text == "(") {
            // Each top-level item of the VALUES list: a lone parameter's number, else 0.
            int depth = 0, item_param = 0, item_tokens = 0;
            for (std::size_t k = j + 2; k < words.size(); ++k) {
                const std::string& text = words[k]->text;
                if (depth == 0 && (text == "," || text == ")")) {
                    t.insert_params.push_back(item_tokens == 1 ? item_param : 0);
                    item_param = item_tokens = 0;
                    if (text == ")") break;
                    continue;
                }
                if (text == "(") ++depth;
                if (text == ")") --depth;
                ++item_tokens;
                if (words[k]->kind == Kind::param) item_param = param_number(words[k]);
            }
        }
        const bool own_conflict = rest.find("on conflict") != std::string::npos || rest.find("returning") != std::string::npos;
        if (t.insert == InsertMode::none) t.insert = values && !own_conflict ? InsertMode::plain : InsertMode::other;
        if (t.insert == InsertMode::plain || t.insert == InsertMode::ignore) out += " ON CONFLICT DO NOTHING";
    } else if (words.size() > 3 && is_word(words[0], "update")) {
        t.table = words[1]->lower;
        std::size_t i = 2;
        if (is_word(words[i], "set")) {
            for (++i; i + 2 < words.size() && !is_word(words[i], "where"); ++i) {
                if (words[i]->kind == Kind::word && words[i + 1]->text == "=" && words[i + 2]->kind == Kind::param &&
                    (i + 3 >= words.size() || words[i + 3]->text == "," || is_word(words[i + 3], "where"))) {
                    t.set_params[words[i]->lower] = param_number(words[i + 2]);
                }
            }
            if (i + 3 < words.size() && is_word(words[i], "where") && words[i + 2]->text == "=" &&
                words[i + 3]->kind == Kind::param) {
                t.where_column = words[i + 1]->lower;
                t.where_param = param_number(words[i + 3]);
            }
        }
    }
    t.sql = std::move(out);
    return t;
}

}  // namespace tsunagu::pg::detail
