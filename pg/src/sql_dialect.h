// SQLite's dialect, as the engine and the server write it, in PostgreSQL's.
//
// The engine (sync/) and the server (api/) speak SQLite's SQL to a Store. Over PostgreSQL, each
// statement is translated once (then cached with its prepared statement) by these rules:
//   ?N -> $N;  the column name `user` -> "user" (a keyword in PostgreSQL);
//   INSERT OR IGNORE -> ON CONFLICT DO NOTHING;  INSERT OR REPLACE -> an upsert on the primary key;
//   a plain INSERT ... VALUES -> ON CONFLICT DO NOTHING, its zero rows reported as SQLite's
//     UNIQUE failure (PostgreSQL would abort the whole transaction, SQLite only the statement);
//   INDEXED BY and WITHOUT ROWID dropped;  PRAGMA -> nothing (reads answer 0);
//   in CREATE TABLE: INTEGER -> BIGINT (INTEGER PRIMARY KEY an identity), BLOB -> BYTEA, REAL ->
//     DOUBLE PRECISION, no type -> TEXT, sealed columns -> BYTEA;
//   SQLite's append-only triggers (RAISE(ABORT, ...)) -> a PL/pgSQL trigger that raises;
//   a few SQLite functions by name (unixepoch(), strftime('%s','now'), two-argument min());
//     zeroblob(?N) (room for a row to grow in place) -> NULL, its parameter still bound.
// Comments (-- to the line's end, /* to */) read as a space, in every statement and schema.
// A statement using anything else fails on PostgreSQL with its error, caught by the server's
// integration suite, which runs on both backends.
#pragma once

#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace tsunagu::pg::detail {

// Columns whose values are sealed (crypto/sealed.h) before PostgreSQL stores them, per table,
// and the column holding the row's id, which is bound to each sealed value.
struct SealedTable {
    std::string id_column;
    std::set<std::string> columns;
};
using SealedColumns = std::map<std::string, SealedTable>;

// The engine's record contents: current field values, and the versions with every losing
// (conflict) value; the change log's lists of the fields each change set; and the server's kept
// refused change sets, with their reasons and comments. Ids, clocks, sequence numbers and scope
// keys stay in clear, for indexes.
//
// A column may be listed here only while no statement filters, compares, orders, indexes or
// computes on it in SQL: PostgreSQL holds ciphertext. Statements may write it from a parameter
// (with the row's id column set beside it, or selected by it) and read it back whole, with the
// id column in the same result.
const SealedColumns& tsunagu_sealed_columns();

enum class InsertMode {
    none,            // not an INSERT
    plain,           // INSERT ... VALUES: a uniqueness failure is reported, the transaction lives
    ignore,          // INSERT OR IGNORE
    replace,         // INSERT OR REPLACE: needs the table's primary key (see upsert_clause)
    other,           // INSERT with its own ON CONFLICT, or INSERT ... SELECT
};

// One SQLite statement, translated.
struct Translated {
    std::string sql;               // PostgreSQL's text ($N parameters)
    bool is_pragma = false;        // nothing to run; a read answers 0
    InsertMode insert = InsertMode::none;
    std::string table;             // INSERT / UPDATE target, lower case
    std::vector<std::string> insert_columns;  // INSERT's column list, in order
    std::vector<int> insert_params;           // the VALUES parameter of each (0: not a parameter)
    // UPDATE ... SET column = ?N pairs, and the WHERE column = ?N that selects the row.
    std::map<std::string, int> set_params;
    std::string where_column;
    int where_param = 0;
    int parameters = 0;            // the highest $N
};

// Splits SQL text holding several statements at their top-level semicolons (a trigger's
// BEGIN ... END stays whole).
std::vector<std::string> split_statements(std::string_view sql);

// Translates one statement; `sealed` says which CREATE TABLE columns become BYTEA.
Translated translate(std::string_view sqlite_sql, const SealedColumns& sealed);

// " ON CONFLICT (pk...) DO UPDATE SET c = EXCLUDED.c, ..." for INSERT OR REPLACE.
std::string upsert_clause(const std::vector<std::string>& primary_key, const std::vector<std::string>& columns);

}  // namespace tsunagu::pg::detail
