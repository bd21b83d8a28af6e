// Rewriting every value of a table's sealed columns in place, for what changes how they are
// sealed: a key rotation (pg/tenant_key.h) and the migration that seals a column older servers
// wrote in clear (pg/src/seal_columns.h).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "pg/pg.h"

namespace tsunagu::pg::detail {

// What to store instead of `stored`, the value of `column` in the row whose id (the column its
// sealed values are bound to) is `row_id`. A failure stops the rewrite and is returned as is.
using RewriteValue = std::function<Result<std::vector<std::uint8_t>>(
    std::span<const std::uint8_t> stored, const std::string& row_id, const std::string& column)>;

struct RewriteCount {
    std::size_t rows = 0;    // rows read and written back
    std::size_t values = 0;  // values rewritten (NULLs are left as they are, and not counted)
};

// Rewrites every non-NULL value of `columns` (BYTEA) of `table`, a few hundred rows at a time (a
// cursor's fetch, then one UPDATE), rows found by their primary key, which must be one column.
// Must run inside the caller's transaction, which makes it all or nothing; adds to `count`.
Status rewrite_values(Connection& connection, const std::string& table, const std::string& id_column,
                      const std::vector<std::string>& columns, const RewriteValue& rewrite, RewriteCount& count);

}  // namespace tsunagu::pg::detail
