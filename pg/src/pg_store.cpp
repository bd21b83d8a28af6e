// A Store over PostgreSQL (pg/pg_store.h): SQLite's SQL translated (sql_dialect.h), record
// contents sealed on the way in and opened on the way out.
#include "pg/pg_store.h"

#include <libpq-fe.h>

#include <algorithm>
#include <cstdlib>
#include <optional>
#include <unordered_map>

#include "pg/migrations.h"
#include "pg/pg.h"
#include "pg/src/catalog.h"
#include "pg/src/lock_key.h"
#include "pg/src/seal_columns.h"
#include "pg/src/sql_dialect.h"
#include "pg/tenant_key.h"

namespace tsunagu::pg {
namespace {

using detail::InsertMode;
using detail::Translated;

class PgBackend;

class PgStatement final : public StatementBackend {
public:
    PgStatement(PgBackend& backend, Translated translated)
        : backend_(backend), t_(std::move(translated)), params_(static_cast<std::size_t>(t_.parameters), nullptr) {}

    void bind_int(int index, std::int64_t value) override { set(index, Param(value)); }
    void bind_double(int index, double value) override {
        char text[32];
        std::snprintf(text, sizeof text, "%.17g", value);
        set(index, Param(std::string_view(text)));
    }
    void bind_text(int index, std::string_view text) override { set(index, Param(text)); }
    void bind_blob(int index, std::span<const std::uint8_t> bytes) override { set(index, Param::bytes(bytes)); }
    void bind_null(int index) override { set(index, Param(nullptr)); }
    int parameter_index(const char*) const override { return -1; }  // Tsunagu binds by number

    Result<bool> step() override;
    void reset() override {
        rows_ = Rows();
        row_ = -1;
        executed_ = false;
        error_ = Status::ok();
        for (auto& p : params_) p = Param(nullptr);
    }

    int column_count() const override { return rows_.columns(); }
    bool column_is_null(int c) const override { return rows_.is_null(row_, c); }
    std::int64_t column_int(int c) const override {
        const std::string_view t = rows_.text(row_, c);
        if (t == "t") return 1;  // booleans read as SQLite's integers
        if (t == "f") return 0;
        return rows_.integer(row_, c);
    }
    double column_double(int c) const override { return std::strtod(std::string(rows_.text(row_, c)).c_str(), nullptr); }
    std::string_view column_text(int c) const override {
        if (c < static_cast<int>(opened_.size()) && opened_[static_cast<std::size_t>(c)]) return *opened_[static_cast<std::size_t>(c)];
        return rows_.text(row_, c);
    }
    std::span<const std::uint8_t> column_blob(int c) const override {
        if (c < static_cast<int>(opened_.size()) && opened_[static_cast<std::size_t>(c)]) {
            const std::string& opened = *opened_[static_cast<std::size_t>(c)];
            return {reinterpret_cast<const std::uint8_t*>(opened.data()), opened.size()};
        }
        auto& slot = blobs_[static_cast<std::size_t>(c)];
        if (!slot) slot = rows_.is_null(row_, c) ? std::vector<std::uint8_t>() : rows_.bytes(row_, c);
        return *slot;
    }

private:
    void set(int index, Param value) {
        if (index < 1 || index > static_cast<int>(params_.size())) {
            if (error_) error_ = Status(ErrorCode::internal, "parameter " + std::to_string(index) + " is not in the statement");
            return;
        }
        params_[static_cast<std::size_t>(index - 1)] = std::move(value);
    }
    Status execute();
    Status seal_parameters();
    // The value an INSERT binds to `column`, or "" when it binds none from a parameter.
    std::string inserted(const std::string& column) const;
    Status open_row();

    PgBackend& backend_;
    Translated t_;
    std::vector<Param> params_;
    Status error_;
    bool executed_ = false;
    Rows rows_;
    int row_ = -1;
    // The current row's sealed columns, opened; and bytea columns, decoded (on first access).
    std::vector<std::optional<std::string>> opened_;
    mutable std::vector<std::optional<std::vector<std::uint8_t>>> blobs_;
    // Result columns that are sealed: each with its name and the result column holding the id of
    // its row (a join may read sealed columns of several tables, each bound to its own row).
    struct SealedResult {
        int column;
        std::string table, name;
        int id_column;
    };
    std::vector<SealedResult> sealed_columns_;
};

class PgBackend final : public StoreBackend {
public:
    PgBackend(Connection connection, PgStoreOptions options)
        : connection_(std::move(connection)),
          options_(std::move(options)),
          writer_lock_(detail::writers_lock(options_.tenant)),
          describe_("PostgreSQL database of tenant '" + options_.tenant + "'") {}

    Status exec(std::string_view sql) override {
        // (Transactions begin through begin_immediate() and begin_deferred(), never through here.)
        for (const std::string& statement : detail::split_statements(sql)) {
            Translated t;
            try {
                t = detail::translate(statement, detail::tsunagu_sealed_columns());
            } catch (const std::exception& e) {
                return untranslatable(statement, e.what());
            }
            if (t.is_pragma) continue;
            TSUNAGU_TRY(connection_.exec(t.sql));
        }
        return Status::ok();
    }

    Result<std::unique_ptr<StatementBackend>> prepare(std::string_view sql) override {
        try {
            return std::unique_ptr<StatementBackend>(
                new PgStatement(*this, detail::translate(sql, detail::tsunagu_sealed_columns())));
        } catch (const std::exception& e) {
            return untranslatable(sql, e.what());
        }
    }

    Status begin_immediate() override {
        TSUNAGU_TRY(connection_.exec("BEGIN ISOLATION LEVEL READ COMMITTED"));
        Status checked = lock_and_check_key();
        if (!checked) (void)connection_.exec("ROLLBACK");
        return checked;
    }
    Status begin_deferred() override { return connection_.exec("BEGIN ISOLATION LEVEL REPEATABLE READ"); }
    Status commit() override { return connection_.commit(); }
    Status rollback() override { return in_transaction() ? connection_.exec("ROLLBACK") : Status::ok(); }
    bool in_transaction() const override { return connection_.in_transaction(); }
    // The value the last INSERT drew from an identity column (an INTEGER PRIMARY KEY left to the
    // database, as SQLite's rowid): such INSERTs return it (see PgStatement::execute).
    std::int64_t last_insert_rowid() const override { return last_rowid_; }
    void set_last_rowid(std::int64_t rowid) { last_rowid_ = rowid; }

    // A table's identity column (cached), or "" when it has none.
    Result<std::string> identity_column(const std::string& table) {
        auto it = identities_.find(table);
        if (it != identities_.end()) return it->second;
        auto rows = connection_.query(
            "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass($1) AND attidentity <> ''", {table});
        TSUNAGU_TRY(rows);
        std::string column = rows->empty() ? "" : std::string(rows->text(0, 0));
        identities_[table] = column;
        return column;
    }
    int changes() const override { return changes_; }
    const std::string& describe() const override { return describe_; }
    bool healthy() const override { return connection_.healthy(); }

    Connection& connection() { return connection_; }
    const Sealer& sealer() const { return *options_.sealer; }
    void set_changes(std::int64_t n) { changes_ = static_cast<int>(n); }

    // The OID of a table (cached), to recognise its columns in results; 0 while it does not exist.
    // A failed lookup is an error, never 0: the table's sealed columns would go unrecognised, and
    // their sealed bytes be handed on as the values.
    Result<unsigned> table_oid(const std::string& table) {
        auto it = oids_.find(table);
        if (it != oids_.end()) return it->second;
        auto rows = connection_.query("SELECT COALESCE(to_regclass($1)::oid, 0)", {table});
        TSUNAGU_TRY(rows);
        if (rows->empty()) return Status(ErrorCode::internal, "PostgreSQL did not say whether " + table + " exists");
        const unsigned oid = static_cast<unsigned>(rows->integer(0, 0));
        if (oid != 0) oids_[table] = oid;
        return oid;
    }

    // A table's primary key columns (cached), for INSERT OR REPLACE.
    Result<std::vector<std::string>> primary_key(const std::string& table) {
        auto it = keys_.find(table);
        if (it != keys_.end()) return it->second;
        auto columns = detail::primary_key_of(connection_, table);
        TSUNAGU_TRY(columns);
        std::vector<std::string> key;
        for (const detail::KeyColumn& c : *columns) key.push_back(c.name);
        if (key.empty()) return Status(ErrorCode::internal, "table " + table + " has no primary key to replace on");
        keys_[table] = key;
        return key;
    }

    // Row ids for sealing an UPDATE that selects its row by another unique column (sync_records'
    // rid): remembered from the rows read and inserted (the engine reads a record before it
    // writes it), at most 100,000 at a time; recalled_id() answers "" for one not remembered.
    void remember_id(std::string_view column, std::string_view value, std::string id) {
        if (ids_.size() >= 100'000) ids_.clear();
        ids_[std::string(column) + "=" + std::string(value)] = std::move(id);
    }
    std::string recalled_id(std::string_view column, std::string_view value) const {
        auto it = ids_.find(std::string(column) + "=" + std::string(value));
        return it == ids_.end() ? std::string() : it->second;
    }

private:
    // In the open transaction: waits for the tenant's writer lock, then checks that its data key
    // is still the one this server seals with. The key is read by a statement of its own, begun
    // once the lock is granted: under READ COMMITTED a statement sees what was committed when it
    // began, so read in the statement that waited, it would be the key from before the wait, from
    // before a rotation that held the lock meanwhile.
    Status lock_and_check_key() {
        TSUNAGU_TRY(connection_.query_prepared("SELECT pg_advisory_xact_lock($1)", {writer_lock_}).status());
        auto key = connection_.query_prepared("SELECT wrapped FROM tsunagu_tenant_keys WHERE tenant = $1",
                                              {options_.tenant});
        TSUNAGU_TRY(key);
        if (key->empty() || key->bytes(0, 0) != options_.wrapped_key) {
            return Status(ErrorCode::wrong_key,
                          "the data key of tenant '" + options_.tenant +
                              "' was rotated (tsunagu-server rotate-key) since this server started: nothing was "
                              "written; restart the server with the new key file");
        }
        return Status::ok();
    }

    Status untranslatable(std::string_view sql, const char* why) {
        return Status(ErrorCode::internal, std::string("no PostgreSQL form for the statement (") + why + "): " +
                                               std::string(sql.substr(0, 80)));
    }

    Connection connection_;
    PgStoreOptions options_;
    std::int64_t writer_lock_;
    std::string describe_;
    int changes_ = 0;
    std::int64_t last_rowid_ = 0;
    std::unordered_map<std::string, std::string> identities_;
    std::unordered_map<std::string, unsigned> oids_;
    std::unordered_map<std::string, std::vector<std::string>> keys_;
    std::unordered_map<std::string, std::string> ids_;
};

Result<bool> PgStatement::step() {
    if (!executed_) {
        executed_ = true;
        if (!error_) return error_;
        if (t_.is_pragma) return false;
        error_ = execute();
        if (!error_) return error_;
    }
    ++row_;
    if (row_ >= rows_.size()) return false;
    Status opened = open_row();
    if (!opened) return opened;
    return true;
}

Status PgStatement::seal_parameters() {
    const auto& sealed = detail::tsunagu_sealed_columns();
    const auto table = sealed.find(t_.table);
    if (table == sealed.end()) return Status::ok();
    const std::string& id_column = table->second.id_column;
    std::vector<std::pair<int, std::string>> to_seal;  // parameter number, column
    std::string id;
    if (!t_.insert_columns.empty()) {
        id = inserted(id_column);
        for (std::size_t i = 0; i < t_.insert_columns.size() && i < t_.insert_params.size(); ++i) {
            const std::string& column = t_.insert_columns[i];
            const int param = t_.insert_params[i];
            if (table->second.columns.contains(column)) {
                if (param <= 0) return Status(ErrorCode::internal, "a sealed column must be set from a parameter");
                to_seal.emplace_back(param, column);
            }
        }
    } else {
        for (const auto& [column, param] : t_.set_params)
            if (table->second.columns.contains(column)) to_seal.emplace_back(param, column);
        if (to_seal.empty()) return Status::ok();
        const Param& key = params_[static_cast<std::size_t>(t_.where_param - 1)];
        if (t_.where_column == id_column) {
            id = key.data();
        } else {
            id = backend_.recalled_id(t_.where_column, key.data());
            if (id.empty()) {
                auto rows = backend_.connection().query(
                    "SELECT " + id_column + " FROM " + t_.table + " WHERE " + t_.where_column + " = $1", {key});
                TSUNAGU_TRY(rows);
                if (rows->empty()) return Status::ok();  // no row: the UPDATE changes nothing
                const auto bytes = rows->bytes(0, 0);
                id.assign(bytes.begin(), bytes.end());
            }
        }
    }
    if (to_seal.empty()) return Status::ok();
    if (id.empty()) return Status(ErrorCode::internal, "a write of sealed columns of " + t_.table + " without the row's id");
    for (const auto& [param, column] : to_seal) {
        Param& p = params_[static_cast<std::size_t>(param - 1)];
        if (p.is_null()) continue;
        p = Param::bytes(backend_.sealer().seal(p.data(), id, column));
    }
    return Status::ok();
}

Status PgStatement::execute() {
    TSUNAGU_TRY(seal_parameters());
    std::string sql = t_.sql;
    if (t_.insert == InsertMode::replace) {
        auto key = backend_.primary_key(t_.table);
        TSUNAGU_TRY(key);
        sql += detail::upsert_clause(*key, t_.insert_columns);
    }
    // An INSERT that leaves the identity column to the database returns what it drew.
    std::string identity;
    if (t_.insert != InsertMode::none && t_.insert != InsertMode::other) {
        auto column = backend_.identity_column(t_.table);
        TSUNAGU_TRY(column);
        if (!column->empty() &&
            std::find(t_.insert_columns.begin(), t_.insert_columns.end(), *column) == t_.insert_columns.end()) {
            identity = *column;
            sql += " RETURNING \"" + identity + "\"";
        }
    }
    auto rows = backend_.connection().query_prepared(sql, params_);
    TSUNAGU_TRY(rows);
    rows_ = std::move(*rows);
    backend_.set_changes(rows_.affected());
    if (!identity.empty() && !rows_.empty()) {
        backend_.set_last_rowid(rows_.integer(0, 0));
        // Remember the new row's id for sealing later updates that select it by this column.
        const auto sealed = detail::tsunagu_sealed_columns().find(t_.table);
        if (sealed != detail::tsunagu_sealed_columns().end()) {
            std::string id = inserted(sealed->second.id_column);
            if (!id.empty()) backend_.remember_id(identity, rows_.text(0, 0), std::move(id));
        }
    }
    if (t_.insert == InsertMode::plain && rows_.affected() == 0) {
        // SQLite fails only the statement; PostgreSQL would abort the transaction. ON CONFLICT DO
        // NOTHING kept it alive, and the caller hears what SQLite would have said.
        return Status(ErrorCode::constraint, "UNIQUE constraint failed: " + t_.table);
    }
    // Which result columns are sealed, and where each one's row id is.
    sealed_columns_.clear();
    opened_.assign(static_cast<std::size_t>(rows_.columns()), std::nullopt);
    blobs_.assign(static_cast<std::size_t>(rows_.columns()), std::nullopt);
    for (const auto& [table, spec] : detail::tsunagu_sealed_columns()) {
        auto table_oid = backend_.table_oid(table);
        TSUNAGU_TRY(table_oid);
        const unsigned oid = *table_oid;
        if (oid == 0) continue;
        auto table_identity = backend_.identity_column(table);
        TSUNAGU_TRY(table_identity);
        int identity_column = -1, id_column = -1;
        const std::size_t first_sealed = sealed_columns_.size();
        for (int c = 0; c < rows_.columns(); ++c) {
            if (rows_.column_table(c) != oid) continue;
            const std::string name(rows_.column_name(c));
            if (name == spec.id_column) id_column = c;
            if (name == *table_identity) identity_column = c;
            if (spec.columns.contains(name)) sealed_columns_.push_back({c, table, name, -1});
        }
        if (sealed_columns_.size() > first_sealed && id_column < 0) {
            return Status(ErrorCode::internal, "a query reads sealed columns of " + table + " without its " +
                                                   spec.id_column + " column, which they are bound to");
        }
        for (std::size_t i = first_sealed; i < sealed_columns_.size(); ++i) sealed_columns_[i].id_column = id_column;
        // (A table whose id column is its identity, as sync_log's seq, needs no such memory.)
        if (identity_column >= 0 && id_column >= 0 && identity_column != id_column) {
            for (int r = 0; r < rows_.size(); ++r) {
                const auto id = rows_.bytes(r, id_column);
                backend_.remember_id(*table_identity, rows_.text(r, identity_column),
                                     std::string(id.begin(), id.end()));
            }
        }
    }
    return Status::ok();
}

std::string PgStatement::inserted(const std::string& column) const {
    for (std::size_t i = 0; i < t_.insert_columns.size() && i < t_.insert_params.size(); ++i) {
        if (t_.insert_columns[i] == column && t_.insert_params[i] > 0)
            return params_[static_cast<std::size_t>(t_.insert_params[i] - 1)].data();
    }
    return {};
}

Status PgStatement::open_row() {
    for (auto& slot : blobs_) slot.reset();
    for (const SealedResult& sealed : sealed_columns_) {
        auto& slot = opened_[static_cast<std::size_t>(sealed.column)];
        slot.reset();
        if (rows_.is_null(row_, sealed.column)) continue;
        const auto id_bytes = rows_.bytes(row_, sealed.id_column);
        const std::string id(id_bytes.begin(), id_bytes.end());
        auto plain = backend_.sealer().open(rows_.bytes(row_, sealed.column), id, sealed.name);
        if (!plain) return Status(plain.status().code(), "table " + sealed.table + ": " + plain.status().message());
        slot = std::move(*plain);
    }
    return Status::ok();
}

// Tenants on one database would share its tables (there is no tenant column, no schema per
// tenant): a second tenant would find the first one's accounts, break its reads with rows
// sealed under another key, and share its sequence counter under another writer lock. So a
// database serves the tenant whose key it holds, and no other. Run under the migration lock, so
// that two tenants starting at once are told apart.
Status check_sole_tenant(Connection& connection, const std::string& tenant) {
    auto others = connection.query(
        "SELECT string_agg(quote_literal(tenant), ', ' ORDER BY tenant) FROM tsunagu_tenant_keys WHERE tenant <> $1",
        {tenant});
    TSUNAGU_TRY(others);
    if (others->is_null(0, 0)) return Status::ok();
    return Status(ErrorCode::invalid_argument,
                  "this PostgreSQL database belongs to tenant " + std::string(others->text(0, 0)) +
                      ", and tenants on one database would share its tables (accounts, records, the change "
                      "log): tenant '" + tenant + "' was not started; give each tenant a database of its own "
                      "(createdb, then --postgres \"... dbname=THAT_DATABASE\"), or start with that tenant's --tenant");
}

// How to open stores on the tenant's data: its key unwrapped with `kek` (created on first use),
// once check_sole_tenant() agrees. Run under the migration lock.
Result<PgStoreOptions> unwrap_tenant_key(Connection& connection, const std::string& conninfo,
                                         const std::string& tenant, const Secret& kek) {
    TSUNAGU_TRY(check_sole_tenant(connection, tenant));
    auto key = tenant_data_key(connection, tenant, kek);
    TSUNAGU_TRY(key);
    auto sealer = Sealer::with_key(std::move(key->key));
    TSUNAGU_TRY(sealer);
    return PgStoreOptions{conninfo, tenant, std::make_shared<const Sealer>(std::move(*sealer)),
                          std::move(key->wrapped)};
}

}  // namespace

Result<Store> open_store(const PgStoreOptions& options) {
    if (!options.sealer || options.wrapped_key.empty()) {
        return Status(ErrorCode::internal, "open_store needs the tenant's sealer and wrapped key (prepare_database)");
    }
    auto connection = Connection::open(options.conninfo);
    TSUNAGU_TRY(connection);
    return Store::over(std::make_unique<PgBackend>(std::move(*connection), options));
}

Result<PgStoreOptions> prepare_database(const std::string& conninfo, const std::string& tenant, const Secret& kek,
                                        const std::function<Status(Store&)>& create_schema) {
    auto admin = Connection::open(conninfo);
    TSUNAGU_TRY(admin);
    // Held (re-entrantly) across the migrations and the server's own schema: servers starting
    // together each find the work done, or wait while one does it.
    auto lock = MigrationLock::take(*admin);
    TSUNAGU_TRY(lock);
    // The tenant's key, for the migration that seals with it and, once they are all done, for the
    // stores. Read anew each time, as the database holds it in the transaction of the moment (a
    // migration retried after a serialization failure must not keep a key its first try created).
    std::optional<PgStoreOptions> options;
    auto sealer = [&]() -> Result<const Sealer*> {
        auto unwrapped = unwrap_tenant_key(*admin, conninfo, tenant, kek);
        TSUNAGU_TRY(unwrapped);
        options = std::move(*unwrapped);
        return options->sealer.get();
    };
    std::vector<Migration> migrations = base_migrations();
    migrations.push_back({2, "the sync engine's and the server's tables (created by their own code)", ""});
    migrations.push_back({3, "the change log's field lists sealed (sync_log.fields)", "",
                          [&](Connection& c) { return detail::seal_log_fields(c, sealer); }});
    migrations.push_back({4, "the records' change lists sealed (sync_records.log)", "",
                          [&](Connection& c) { return detail::seal_records_log(c, sealer); }});
    TSUNAGU_TRY(migrate(*admin, migrations));
    auto unwrapped = sealer();
    TSUNAGU_TRY(unwrapped);
    auto store = open_store(*options);
    TSUNAGU_TRY(store);
    TSUNAGU_TRY(create_schema(*store));
    return std::move(*options);
}

}  // namespace tsunagu::pg
