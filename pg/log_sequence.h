// Gap-free sequence numbers for a change log that several servers append to at once.
//
// The trap: a PostgreSQL SEQUENCE hands out numbers when asked, and transactions commit in any
// order. A transaction holding 7 can still be running when one holding 8 commits; a device that
// pulls then sees 8, moves its cursor past 7, and never receives 7.
//
// The rule here: a writer takes its numbers last, just before COMMIT, by updating its stream's
// counter row. The row lock of that update lasts until the transaction ends, so the next writer
// of the stream waits there until the first has committed (PostgreSQL releases it only once the
// commit is visible). Numbers are therefore handed out in commit order: any snapshot that sees a
// number sees every smaller one. A transaction that rolls back gives its numbers back to the next
// taker, so the log has no holes either.
//
// The cost: writers of one stream queue only for the moment between taking numbers and their
// commit (writing the log rows, and the commit's WAL flush), not for their whole transaction.
// Writers must run at READ COMMITTED (pg::with_transaction does): at REPEATABLE READ the second
// taker would fail with a serialization error instead of waiting.
#pragma once

#include <cstdint>
#include <string_view>

#include "pg/pg.h"

namespace tsunagu::pg {

class LogSequence {
public:
    // Inside a READ COMMITTED transaction, as its last step before writing its log rows and
    // committing: reserves `count` (> 0) numbers of `stream` and returns the first. The numbers
    // are the transaction's once it commits.
    static Result<std::int64_t> take(Connection& connection, std::string_view stream, std::int64_t count);
    // The last number of `stream` committed (or taken by this transaction); 0 for a new stream.
    static Result<std::int64_t> last(Connection& connection, std::string_view stream);
};

}  // namespace tsunagu::pg
