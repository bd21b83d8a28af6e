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

}  // namespace tsunagu::pg::detail
