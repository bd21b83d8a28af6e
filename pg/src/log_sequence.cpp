// Commit-ordered sequence numbers (pg/log_sequence.h).
#include "pg/log_sequence.h"

namespace tsunagu::pg {

Result<std::int64_t> LogSequence::take(Connection& connection, std::string_view stream, std::int64_t count) {
    if (count <= 0) return Status(ErrorCode::invalid_argument, "LogSequence::take needs a count above 0");
    if (!connection.in_transaction()) {
        return Status(ErrorCode::internal, "LogSequence::take outside a transaction would free its "
                                           "numbers before the log rows are written");
    }
    // One statement: creates the stream's row on first use, and otherwise locks and advances it.
    auto rows = connection.query(
        "INSERT INTO tsunagu_log_sequences(stream, last) VALUES ($1, $2) "
        "ON CONFLICT (stream) DO UPDATE SET last = tsunagu_log_sequences.last + EXCLUDED.last "
        "RETURNING last",
        {stream, count});
    TSUNAGU_TRY(rows);
    return rows->integer(0, 0) - count + 1;
}

Result<std::int64_t> LogSequence::last(Connection& connection, std::string_view stream) {
    auto rows = connection.query("SELECT last FROM tsunagu_log_sequences WHERE stream = $1", {stream});
    TSUNAGU_TRY(rows);
    return rows->empty() ? 0 : rows->integer(0, 0);
}

}  // namespace tsunagu::pg
