// PostgreSQL access for the server's scale-out storage: the one place in Tsunagu that includes
// libpq. A Connection is one PGconn; Rows is one PGresult; both are freed by their destructors.
//
// Contracts:
//  - Parameters travel separately from the SQL text ($1, $2, ...), never spliced into it.
//  - Results come in PostgreSQL's text format; Rows converts integers and bytea on access.
//  - Errors carry PostgreSQL's primary message and SQLSTATE, never its DETAIL (which can quote
//    the values of a row): nothing of a record reaches a log through an error.
//  - A Connection is used by one thread at a time.
#pragma once

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <variant>
#include <vector>

#include "crypto/status.h"

struct pg_conn;
struct pg_result;

namespace tsunagu::pg {

// One query parameter: NULL, an integer, text, or bytes (sent in binary, for bytea columns).
class Param {
public:
    Param(std::nullptr_t) {}  // NOLINT: implicit by design
    Param(std::int64_t v) : value_(std::to_string(v)), kind_(Kind::text) {}  // NOLINT
    Param(int v) : Param(static_cast<std::int64_t>(v)) {}                    // NOLINT
    Param(std::string_view v) : value_(v), kind_(Kind::text) {}              // NOLINT
    Param(const std::string& v) : Param(std::string_view(v)) {}               // NOLINT
    Param(const char* v) : Param(std::string_view(v)) {}                      // NOLINT
    static Param bytes(std::span<const std::uint8_t> v) {
        Param p(nullptr);
        p.value_.assign(reinterpret_cast<const char*>(v.data()), v.size());
        p.kind_ = Kind::bytes;
        return p;
    }

    bool is_null() const noexcept { return kind_ == Kind::null; }
    bool is_binary() const noexcept { return kind_ == Kind::bytes; }
    const std::string& data() const noexcept { return value_; }

private:
    enum class Kind { null, text, bytes };
    std::string value_;
    Kind kind_ = Kind::null;
};

// The rows a statement returned. Row and column indexes are 0-based.
class Rows {
public:
    Rows() = default;
    Rows(Rows&&) noexcept;
    Rows& operator=(Rows&&) noexcept;
    ~Rows();

    int size() const noexcept;
    bool empty() const noexcept { return size() == 0; }
    // Rows a statement without a result set touched (INSERT/UPDATE/DELETE).
    std::int64_t affected() const noexcept;

    int columns() const noexcept;
    std::string_view column_name(int column) const;
    // The table a result column was read from (its OID; 0 for an expression).
    unsigned column_table(int column) const;

    bool is_null(int row, int column) const;
    std::string_view text(int row, int column) const;
    std::int64_t integer(int row, int column) const;
    std::vector<std::uint8_t> bytes(int row, int column) const;  // a bytea column

private:
    friend class Connection;
    explicit Rows(pg_result* result) : result_(result) {}
    pg_result* result_ = nullptr;
};

// Whether a libpq connection string (keywords or a postgresql:// URI) holds a password: the
// database's, or the one of the client's TLS key (sslpassword).
bool conninfo_has_password(const std::string& conninfo);
// The first host a connection string names over the network (not a Unix socket, not loopback)
// without asking libpq to verify the server's certificate (sslmode verify-ca or verify-full);
// empty when there is none. Values the string leaves out are taken as libpq takes them, from
// PGHOST, PGHOSTADDR and PGSSLMODE; a service (service=, PGSERVICE) names hosts this cannot see,
// and counts as unverified unless sslmode says to verify. libpq's default, "prefer", takes an unencrypted or unverified
// connection: whoever sits between the machines reads password hashes and caseloads, and can
// change scopes in transit.
std::string conninfo_unverified_host(const std::string& conninfo);

class Connection {
public:
    // Connects with a libpq connection string ("host=/run/postgresql dbname=tsunagu"). Fails with
    // unavailable, naming the server it tried, when PostgreSQL cannot be reached.
    //
    // Where the connection string or the database's settings say nothing, a connection is made so
    // that a stalled peer can never hang the servers for good, and so that a commit answered is a
    // commit on disk:
    //  - connecting gives up after 10 s, and TCP keepalives (30 s idle, then 3 probes 10 s apart)
    //    and a 60 s TCP user timeout tell a database machine gone from the network;
    //  - lock_timeout 15 s: a writer waiting for the tenant's lock behind a server that stalled
    //    holding it fails as busy (503, retried by phones) instead of waiting for hours; the
    //    connection stays healthy (a pool keeps it, a writer does not reconnect for it);
    //  - idle_in_transaction_session_timeout 60 s: PostgreSQL ends the stalled holder's session,
    //    which releases the lock (a server's transactions never wait on anything but the database);
    //  - synchronous_commit is raised to "on" when the database set it "off" (a throughput tip
    //    that would lose pushes already acknowledged to phones); "local" and stronger are kept.
    // A value the connection string gives (options='-c lock_timeout=5s') or the database or role
    // sets is kept.
    static Result<Connection> open(const std::string& conninfo);

    Connection(Connection&&) noexcept;
    Connection& operator=(Connection&&) noexcept;
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;
    ~Connection();

    // Runs one or more statements without parameters (DDL, BEGIN, ...).
    Status exec(std::string_view sql);
    // Runs one statement with parameters.
    Result<Rows> query(std::string_view sql, std::initializer_list<Param> params = {});
    Result<Rows> query(std::string_view sql, const std::vector<Param>& params);
    // query(), for a statement this connection runs again and again (the engine's): PostgreSQL
    // parses and plans it once, as a named prepared statement, then only executes it. The same
    // results and errors as query(); a plan invalidated by a change of schema is prepared anew
    // at the next call.
    Result<Rows> query_prepared(const std::string& sql, const std::vector<Param>& params);

    Status begin();     // READ COMMITTED: what writers use (see log_sequence.h)
    Status begin_snapshot();  // REPEATABLE READ, READ ONLY: one consistent view for a reader
    // Fails (internal, nothing written) when PostgreSQL ended the transaction with a rollback
    // instead, as it does when a statement in it had failed: never reports such a COMMIT as done.
    Status commit();
    Status rollback();
    bool in_transaction() const noexcept;
    // The libpq handle, for pg/'s own sources only.
    pg_conn* native() const noexcept { return conn_; }
    // Whether the connection is still usable: false once a call failed with unavailable (the
    // server went away or ended the session); a pool drops such a connection.
    bool healthy() const noexcept;

private:
    explicit Connection(pg_conn* conn) : conn_(conn) {}
    Status failed(Status status) {
        if (status.code() == ErrorCode::unavailable) broken_ = true;
        return status;
    }
    pg_conn* conn_ = nullptr;
    bool broken_ = false;
    std::unordered_map<std::string, std::string> prepared_;  // SQL text -> prepared statement's name
    std::size_t statements_named_ = 0;                       // names are never reused
};

// Runs `body` in a READ COMMITTED transaction and commits; rolls back when `body` fails or
// throws. A transaction that PostgreSQL aborted for a serialization failure or a deadlock
// (ErrorCode::conflict) is retried from the start, up to `attempts` times in all.
Status with_transaction(Connection& connection, const std::function<Status()>& body, int attempts = 3);

}  // namespace tsunagu::pg
