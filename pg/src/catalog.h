// What PostgreSQL's catalog says of a table, for pg/'s own sources.
#pragma once

#include <string>
#include <vector>

#include "pg/pg.h"

namespace tsunagu::pg::detail {

struct KeyColumn {
    std::string name;
    std::string type;  // as SQL writes it ("bigint", "text")
};

// The columns of `table`'s primary key (none when it has no primary key or does not exist).
inline Result<std::vector<KeyColumn>> primary_key_of(Connection& connection, const std::string& table) {
    auto rows = connection.query(
        "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_index i JOIN pg_attribute a"
        " ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) WHERE i.indrelid = to_regclass($1)"
        " AND i.indisprimary",
        {table});
    TSUNAGU_TRY(rows);
    std::vector<KeyColumn> key;
    for (int i = 0; i < rows->size(); ++i) key.push_back({std::string(rows->text(i, 0)), std::string(rows->text(i, 1))});
    return key;
}

// The type of `table`.`column` as SQL writes it ("bytea", "text"); "" when the table or the
// column does not exist.
inline Result<std::string> column_type(Connection& connection, const std::string& table, const std::string& column) {
    auto rows = connection.query(
        "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = to_regclass($1)"
        " AND attname = $2 AND attnum > 0 AND NOT attisdropped",
        {table, column});
    TSUNAGU_TRY(rows);
    return rows->empty() ? std::string() : std::string(rows->text(0, 0));
}

}  // namespace tsunagu::pg::detail
