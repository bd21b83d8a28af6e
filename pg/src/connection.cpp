// libpq behind pg/pg.h.
#include "pg/pg.h"

#include <libpq-fe.h>

#include <charconv>
#include <cstring>
#include <utility>

namespace tsunagu::pg {
namespace {

// libpq's own message for the connection, without its trailing newline.
std::string libpq_message(pg_conn* conn) {
    std::string message = conn ? PQerrorMessage(conn) : "no connection";
    while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) message.pop_back();
    return message;
}

// SQLSTATE classes a caller can act on; everything else is a storage failure.
ErrorCode code_of(const char* sqlstate) {
    if (sqlstate == nullptr) return ErrorCode::unavailable;  // no answer: the connection broke
    const std::string_view state(sqlstate);
    if (state == "23505") return ErrorCode::already_exists;           // unique_violation
    if (state.starts_with("23")) return ErrorCode::constraint;        // other integrity rules
    if (state == "40001" || state == "40P01") return ErrorCode::conflict;  // retry the transaction
    if (state.starts_with("08") || state.starts_with("57P")) return ErrorCode::unavailable;
    // lock_not_available (lock_timeout: another server held the tenant's lock too long): retry,
    // on this connection, which is as usable as before.
    if (state == "55P03") return ErrorCode::busy;
    // idle_in_transaction_session_timeout: this server stalled, and PostgreSQL ended its session.
    if (state == "25P03") return ErrorCode::unavailable;
    // Text the database cannot take: bytes that are not UTF-8 (an address a client escaped so), or
    // a character its encoding lacks. The request's, not the server's.
    if (state == "22021" || state == "22P05") return ErrorCode::invalid_argument;
    if (state == "53100") return ErrorCode::storage_full;  // disk_full
    if (state == "53200") return ErrorCode::io_error;      // out of memory
    return ErrorCode::internal;
}

// The primary message only (DETAIL may quote row values), with the SQLSTATE.
Status status_of(pg_conn* conn, PGresult* result, std::string_view doing) {
    const char* state = result ? PQresultErrorField(result, PG_DIAG_SQLSTATE) : nullptr;
    const char* primary = result ? PQresultErrorField(result, PG_DIAG_MESSAGE_PRIMARY) : nullptr;
    std::string message = "PostgreSQL ";
    message += doing;
    message += ": ";
    if (primary != nullptr) {
        message += primary;
    } else {
        // No result: libpq's own message (connection lost, out of memory); it holds no row data.
        const std::string own = libpq_message(conn);
        message += own.empty() ? "no answer from the server" : own;
    }
    if (state != nullptr) message += std::string(" (SQLSTATE ") + state + ")";
    if (conn != nullptr && PQstatus(conn) == CONNECTION_BAD) {
        return Status(ErrorCode::unavailable, message + "; the connection is lost: reconnect");
    }
    return Status(code_of(state), std::move(message));
}

// Parameters as libpq takes them: values (NULL for SQL NULL), lengths, and formats (bytes binary).
struct ParamArrays {
    std::vector<const char*> values;
    std::vector<int> lengths, formats;
    explicit ParamArrays(const std::vector<Param>& params) {
        values.reserve(params.size());
        for (const Param& p : params) {
            values.push_back(p.is_null() ? nullptr : p.data().data());
            lengths.push_back(static_cast<int>(p.data().size()));
            formats.push_back(p.is_binary() ? 1 : 0);
        }
    }
    int count() const { return static_cast<int>(values.size()); }
};

// libpq sends a text parameter up to its first NUL, whatever its length says: what follows would
// be dropped without a word (an audit entry stored shorter than the hash that chains it, "bob\0x"
// stored as "bob"). Such a value is refused before anything is sent, so nothing is aborted.
Status refuse_nul_in_text(const std::vector<Param>& params, std::string_view verb) {
    for (std::size_t i = 0; i < params.size(); ++i) {
        const Param& p = params[i];
        if (!p.is_null() && !p.is_binary() && p.data().find('\0') != std::string_view::npos) {
            return Status(ErrorCode::invalid_argument,
                          "PostgreSQL " + std::string(verb) + ": text value " + std::to_string(i + 1) +
                              " holds a NUL character (U+0000), which PostgreSQL's text cannot store: "
                              "remove it");
        }
    }
    return Status::ok();
}

// "SELECT ...", "INSERT ..." for messages: the statement's first word, never its parameters.
std::string_view verb_of(std::string_view sql) {
    std::size_t start = sql.find_first_not_of(" \t\r\n(");
    if (start == std::string_view::npos) return "statement";
    std::size_t end = sql.find_first_of(" \t\r\n(;", start);
    return sql.substr(start, end == std::string_view::npos ? sql.size() - start : end - start);
}

}  // namespace

Rows::Rows(Rows&& other) noexcept : result_(std::exchange(other.result_, nullptr)) {}
Rows& Rows::operator=(Rows&& other) noexcept {
    if (this != &other) {
        if (result_) PQclear(result_);
        result_ = std::exchange(other.result_, nullptr);
    }
    return *this;
}
Rows::~Rows() {
    if (result_) PQclear(result_);
}

int Rows::size() const noexcept { return result_ ? PQntuples(result_) : 0; }

std::int64_t Rows::affected() const noexcept {
    if (!result_) return 0;
    const char* n = PQcmdTuples(result_);
    std::int64_t value = 0;
    std::from_chars(n, n + std::strlen(n), value);
    return value;
}

int Rows::columns() const noexcept { return result_ ? PQnfields(result_) : 0; }
std::string_view Rows::column_name(int column) const { return PQfname(result_, column); }
unsigned Rows::column_table(int column) const { return PQftable(result_, column); }

bool Rows::is_null(int row, int column) const { return PQgetisnull(result_, row, column) != 0; }

std::string_view Rows::text(int row, int column) const {
    return {PQgetvalue(result_, row, column), static_cast<std::size_t>(PQgetlength(result_, row, column))};
}

std::int64_t Rows::integer(int row, int column) const {
    const std::string_view t = text(row, column);
    std::int64_t value = 0;
    std::from_chars(t.data(), t.data() + t.size(), value);
    return value;
}

std::vector<std::uint8_t> Rows::bytes(int row, int column) const {
    std::size_t length = 0;
    auto* raw = reinterpret_cast<const unsigned char*>(PQgetvalue(result_, row, column));
    unsigned char* decoded = PQunescapeBytea(raw, &length);
    if (decoded == nullptr) return {};
    std::vector<std::uint8_t> out(decoded, decoded + length);
    PQfreemem(decoded);
    return out;
}

Result<Connection> Connection::open(const std::string& conninfo) {
    // Client-side defaults before "dbname": with expand_dbname, what the connection string (put
    // in dbname) says overrides them (libpq: "processed values ... override any values that
    // appear before dbname").
    const char* const keywords[] = {"connect_timeout", "keepalives", "keepalives_idle", "keepalives_interval",
                                    "keepalives_count", "tcp_user_timeout", "dbname", nullptr};
    const char* const values[] = {"10", "1", "30", "10", "3", "60000", conninfo.c_str(), nullptr};
    pg_conn* conn = PQconnectdbParams(keywords, values, /*expand_dbname=*/1);
    if (conn == nullptr) return Status(ErrorCode::io_error, "libpq could not allocate a connection");
    Connection connection(conn);
    if (PQstatus(conn) != CONNECTION_OK) {
        return Status(ErrorCode::unavailable,
                      "cannot connect to PostgreSQL (" + libpq_message(conn) +
                          "): check that it runs and that --postgres names its host and database");
    }
    // Text goes both ways as UTF-8, whatever PGCLIENTENCODING says: names and notes are Japanese.
    // A database that cannot hold all of it (EUC_JP, LATIN1: every write of a character it lacks
    // would fail) is refused here, with what to do; SQL_ASCII keeps the bytes as they come.
    const char* encoding = PQparameterStatus(conn, "server_encoding");
    const std::string server_encoding = encoding == nullptr ? "unknown" : encoding;
    if (server_encoding != "UTF8" && server_encoding != "SQL_ASCII") {
        return Status(ErrorCode::invalid_argument,
                      "the PostgreSQL database's encoding is " + server_encoding +
                          ", which cannot hold every name and note Tsunagu keeps: use a database created with "
                          "ENCODING 'UTF8' (createdb -E UTF8 -T template0 NAME), and move the data with "
                          "pg_dump and pg_restore");
    }
    if (PQsetClientEncoding(conn, "UTF8") != 0) {
        return Status(ErrorCode::unavailable, "PostgreSQL refused the client encoding UTF8 (" + libpq_message(conn) + ")");
    }
    // Server-side timestamps in UTC and no notices on stderr: logs are the server's, as JSON.
    PQsetNoticeProcessor(conn, [](void*, const char*) {}, nullptr);
    TSUNAGU_TRY(connection.exec("SET TIME ZONE 'UTC'"));
    // Server-side limits (see pg.h), each only where nothing set it: 0 means none.
    TSUNAGU_TRY(connection.exec(
        "SELECT CASE WHEN current_setting('lock_timeout') = '0' THEN set_config('lock_timeout', '15s', false) END, "
        "CASE WHEN current_setting('idle_in_transaction_session_timeout') = '0' "
        "THEN set_config('idle_in_transaction_session_timeout', '60s', false) END, "
        "CASE WHEN current_setting('synchronous_commit') = 'off' THEN set_config('synchronous_commit', 'on', false) END"));
    return connection;
}

Connection::Connection(Connection&& other) noexcept
    : conn_(std::exchange(other.conn_, nullptr)),
      broken_(other.broken_),
      prepared_(std::move(other.prepared_)),
      statements_named_(other.statements_named_) {}
Connection& Connection::operator=(Connection&& other) noexcept {
    if (this != &other) {
        if (conn_) PQfinish(conn_);
        conn_ = std::exchange(other.conn_, nullptr);
        broken_ = other.broken_;
        prepared_ = std::move(other.prepared_);
        statements_named_ = other.statements_named_;
    }
    return *this;
}
Connection::~Connection() {
    if (conn_) PQfinish(conn_);
}

Status Connection::exec(std::string_view sql) {
    const std::string text(sql);
    PGresult* result = PQexec(conn_, text.c_str());
    Rows owned(result);
    const auto status = result ? PQresultStatus(result) : PGRES_FATAL_ERROR;
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) return failed(status_of(conn_, result, verb_of(sql)));
    return Status::ok();
}

Result<Rows> Connection::query(std::string_view sql, std::initializer_list<Param> params) {
    return query(sql, std::vector<Param>(params));
}

Result<Rows> Connection::query(std::string_view sql, const std::vector<Param>& params) {
    TSUNAGU_TRY(refuse_nul_in_text(params, verb_of(sql)));
    const ParamArrays p(params);
    const std::string text(sql);
    PGresult* result =
        PQexecParams(conn_, text.c_str(), p.count(), nullptr, p.values.data(), p.lengths.data(), p.formats.data(), 0);
    Rows rows(result);
    const auto status = result ? PQresultStatus(result) : PGRES_FATAL_ERROR;
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) return failed(status_of(conn_, result, verb_of(sql)));
    return rows;
}

Result<Rows> Connection::query_prepared(const std::string& sql, const std::vector<Param>& params) {
    TSUNAGU_TRY(refuse_nul_in_text(params, verb_of(sql)));
    auto known = prepared_.find(sql);
    if (known == prepared_.end()) {
        // Types inferred from the statement, as query() leaves them: the same meaning.
        const std::string name = "tsunagu_" + std::to_string(++statements_named_);
        Rows made(PQprepare(conn_, name.c_str(), sql.c_str(), static_cast<int>(params.size()), nullptr));
        const auto status = made.result_ ? PQresultStatus(made.result_) : PGRES_FATAL_ERROR;
        if (status != PGRES_COMMAND_OK) return failed(status_of(conn_, made.result_, verb_of(sql)));
        known = prepared_.emplace(sql, name).first;
    }
    const ParamArrays p(params);
    PGresult* result = PQexecPrepared(conn_, known->second.c_str(), p.count(), p.values.data(), p.lengths.data(),
                                      p.formats.data(), 0);
    Rows rows(result);
    const auto status = result ? PQresultStatus(result) : PGRES_FATAL_ERROR;
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
        // "cached plan must not change result type" (a table altered since): prepared anew next time.
        const char* state = result ? PQresultErrorField(result, PG_DIAG_SQLSTATE) : nullptr;
        if (state != nullptr && std::string_view(state) == "0A000") prepared_.erase(known);
        return failed(status_of(conn_, result, verb_of(sql)));
    }
    return rows;
}

Status Connection::begin() { return exec("BEGIN ISOLATION LEVEL READ COMMITTED"); }
Status Connection::begin_snapshot() { return exec("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"); }
Status Connection::commit() {
    PGresult* result = PQexec(conn_, "COMMIT");
    Rows owned(result);
    const auto status = result ? PQresultStatus(result) : PGRES_FATAL_ERROR;
    if (status != PGRES_COMMAND_OK) return failed(status_of(conn_, result, "COMMIT"));
    // COMMIT of a transaction that a failed statement aborted ends it with a rollback and says
    // so only in its command tag, "ROLLBACK": nothing of the transaction was written.
    if (std::string_view(PQcmdStatus(result)) != "COMMIT") {
        return Status(ErrorCode::internal,
                      "PostgreSQL COMMIT: a statement of the transaction had failed, so PostgreSQL rolled it back "
                      "instead: nothing of it was written");
    }
    return Status::ok();
}
Status Connection::rollback() { return exec("ROLLBACK"); }

bool Connection::in_transaction() const noexcept {
    const auto state = PQtransactionStatus(conn_);
    return state == PQTRANS_INTRANS || state == PQTRANS_INERROR || state == PQTRANS_ACTIVE;
}

bool Connection::healthy() const noexcept {
    return conn_ != nullptr && !broken_ && PQstatus(conn_) == CONNECTION_OK;
}

Status with_transaction(Connection& connection, const std::function<Status()>& body, int attempts) {
    Status last;
    for (int attempt = 0; attempt < attempts; ++attempt) {
        TSUNAGU_TRY(connection.begin());
        Status outcome;
        try {
            outcome = body();
        } catch (...) {
            (void)connection.rollback();
            throw;
        }
        if (outcome) outcome = connection.commit();
        if (outcome) return outcome;
        if (connection.in_transaction()) (void)connection.rollback();
        if (outcome.code() != ErrorCode::conflict) return outcome;
        last = outcome;  // serialization failure or deadlock: PostgreSQL asks for a retry
    }
    return last;
}

}  // namespace tsunagu::pg
