// Statement: a prepared SQLite statement with bind errors deferred to step().
#include "crypto/src/store_impl.h"

namespace tsunagu {

Statement::Statement(const StoreImpl* store, sqlite3_stmt* stmt, Status error)
    : store_(store), stmt_(stmt), error_(std::move(error)) {}

Statement::Statement(std::unique_ptr<StatementBackend> backend) : backend_(std::move(backend)) {}

Statement::Statement(Statement&& other) noexcept
    : store_(other.store_), stmt_(other.stmt_), error_(std::move(other.error_)), backend_(std::move(other.backend_)) {
    other.stmt_ = nullptr;
}

Statement& Statement::operator=(Statement&& other) noexcept {
    if (this != &other) {
        if (stmt_) sqlite3_finalize(stmt_);
        store_ = other.store_;
        stmt_ = other.stmt_;
        error_ = std::move(other.error_);
        backend_ = std::move(other.backend_);
        other.stmt_ = nullptr;
    }
    return *this;
}

Statement::~Statement() {
    if (stmt_) sqlite3_finalize(stmt_);
}

namespace {
Status bind_failure(int index, int rc) {
    return Status(ErrorCode::internal, "cannot bind parameter " + std::to_string(index) + ": " +
                                           sqlite3_errstr(rc));
}
}  // namespace

#define TSUNAGU_BIND(call)                                               \
    do {                                                                 \
        if (!stmt_ || !error_.is_ok()) return *this;                     \
        int rc_ = (call);                                                \
        if (rc_ != SQLITE_OK) error_ = bind_failure(index, rc_);         \
        return *this;                                                    \
    } while (0)

Statement& Statement::bind(int index, std::int64_t value) {
    if (backend_) return backend_->bind_int(index, value), *this;
    TSUNAGU_BIND(sqlite3_bind_int64(stmt_, index, value));
}
Statement& Statement::bind(int index, double value) {
    if (backend_) return backend_->bind_double(index, value), *this;
    TSUNAGU_BIND(sqlite3_bind_double(stmt_, index, value));
}
Statement& Statement::bind(int index, std::string_view text) {
    if (backend_) return backend_->bind_text(index, text), *this;
    TSUNAGU_BIND(sqlite3_bind_text64(stmt_, index, text.data(), text.size(), SQLITE_TRANSIENT,
                                     SQLITE_UTF8));
}
Statement& Statement::bind_blob(int index, std::span<const std::uint8_t> bytes) {
    if (backend_) return backend_->bind_blob(index, bytes), *this;
    TSUNAGU_BIND(bytes.empty() ? sqlite3_bind_zeroblob(stmt_, index, 0)
                               : sqlite3_bind_blob64(stmt_, index, bytes.data(), bytes.size(),
                                                     SQLITE_TRANSIENT));
}
Statement& Statement::bind_null(int index) {
    if (backend_) return backend_->bind_null(index), *this;
    TSUNAGU_BIND(sqlite3_bind_null(stmt_, index));
}

#undef TSUNAGU_BIND

int Statement::parameter_index(const char* name) const {
    if (backend_) return backend_->parameter_index(name);
    if (!stmt_) return -1;
    int i = sqlite3_bind_parameter_index(stmt_, name);
    return i == 0 ? -1 : i;
}

Result<bool> Statement::step() {
    if (backend_) return backend_->step();
    if (!error_.is_ok()) return error_;
    int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    Status failure = store_->error(rc);
    sqlite3_reset(stmt_);
    return failure;
}

Status Statement::run() {
    while (true) {
        auto row = step();
        if (!row) {
            reset();
            return row.status();
        }
        if (!*row) break;
    }
    reset();
    return Status::ok();
}

void Statement::reset() {
    if (backend_) return backend_->reset();
    if (!stmt_) return;  // a statement that failed to prepare keeps its error
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
    error_ = Status::ok();
}

int Statement::column_count() const {
    if (backend_) return backend_->column_count();
    return stmt_ ? sqlite3_column_count(stmt_) : 0;
}
bool Statement::column_is_null(int c) const {
    return backend_ ? backend_->column_is_null(c) : sqlite3_column_type(stmt_, c) == SQLITE_NULL;
}
std::int64_t Statement::column_int(int c) const {
    return backend_ ? backend_->column_int(c) : sqlite3_column_int64(stmt_, c);
}
double Statement::column_double(int c) const {
    return backend_ ? backend_->column_double(c) : sqlite3_column_double(stmt_, c);
}

std::string_view Statement::column_text(int c) const {
    if (backend_) return backend_->column_text(c);
    const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, c));
    if (!text) return {};
    return {text, static_cast<std::size_t>(sqlite3_column_bytes(stmt_, c))};
}

std::span<const std::uint8_t> Statement::column_blob(int c) const {
    if (backend_) return backend_->column_blob(c);
    const auto* blob = static_cast<const std::uint8_t*>(sqlite3_column_blob(stmt_, c));
    if (!blob) return {};
    return {blob, static_cast<std::size_t>(sqlite3_column_bytes(stmt_, c))};
}

}  // namespace tsunagu
