// Rewriting a table's sealed values batch by batch (pg/src/sealed_rows.h).
#include "pg/src/sealed_rows.h"

#include "pg/src/catalog.h"

namespace tsunagu::pg::detail {
namespace {

std::string quoted(std::string_view name) { return "\"" + std::string(name) + "\""; }

// Rows read and rewritten at a time: a cursor's fetch, one UPDATE.
constexpr int kBatch = 200;

// UPDATE t SET a = v.c0, ... FROM (VALUES ($1, $2::bytea, ...), ...) AS v(k, c0, ...) WHERE t.pk = v.k
std::string update_for(const std::string& table, const KeyColumn& key, const std::vector<std::string>& columns,
                       int rows) {
    std::string values;
    int param = 0;
    for (int r = 0; r < rows; ++r) {
        values += r ? ", (" : "(";
        values += "$" + std::to_string(++param) + "::text";
        for (std::size_t c = 0; c < columns.size(); ++c) values += ", $" + std::to_string(++param) + "::bytea";
        values += ")";
    }
    std::string sets, names = "k";
    for (std::size_t c = 0; c < columns.size(); ++c) {
        sets += (c ? ", " : "") + quoted(columns[c]) + " = v.c" + std::to_string(c);
        names += ", c" + std::to_string(c);
    }
    return "UPDATE " + quoted(table) + " AS t SET " + sets + " FROM (VALUES " + values + ") AS v(" + names +
           ") WHERE t." + quoted(key.name) + " = CAST(v.k AS " + key.type + ")";
}

}  // namespace

Status rewrite_values(Connection& connection, const std::string& table, const std::string& id_column,
                      const std::vector<std::string>& columns, const RewriteValue& rewrite, RewriteCount& count) {
    auto key = primary_key_of(connection, table);
    TSUNAGU_TRY(key);
    if (key->size() != 1) {
        return Status(ErrorCode::internal, "table " + table + " has no one-column primary key to rewrite its rows by");
    }
    std::string select =
        "DECLARE tsunagu_rewrite NO SCROLL CURSOR FOR SELECT " + quoted(key->front().name) + "::text, " + quoted(id_column);
    for (const auto& c : columns) select += ", " + quoted(c);
    TSUNAGU_TRY(connection.exec(select + " FROM " + quoted(table)));
    for (;;) {
        auto batch = connection.query("FETCH " + std::to_string(kBatch) + " FROM tsunagu_rewrite");
        TSUNAGU_TRY(batch);
        if (batch->empty()) break;
        std::vector<Param> params;
        params.reserve(static_cast<std::size_t>(batch->size()) * (columns.size() + 1));
        for (int r = 0; r < batch->size(); ++r) {
            params.emplace_back(batch->text(r, 0));
            const auto id_bytes = batch->bytes(r, 1);
            const std::string id(id_bytes.begin(), id_bytes.end());
            for (std::size_t c = 0; c < columns.size(); ++c) {
                const int column = static_cast<int>(c) + 2;
                if (batch->is_null(r, column)) {
                    params.emplace_back(nullptr);
                    continue;
                }
                auto rewritten = rewrite(batch->bytes(r, column), id, columns[c]);
                TSUNAGU_TRY(rewritten);
                params.push_back(Param::bytes(*rewritten));
                ++count.values;
            }
        }
        TSUNAGU_TRY(connection.query(update_for(table, key->front(), columns, batch->size()), params).status());
        count.rows += static_cast<std::size_t>(batch->size());
    }
    return connection.exec("CLOSE tsunagu_rewrite");
}

}  // namespace tsunagu::pg::detail
