// sync_bench: what does the sync engine cost over plain storage? In one process:
//  - apply: 100k change sets (60% new records of ten fields, about 500 bytes; 40% edits of one to
//    three fields of existing records) pushed to an upstream on the encrypted store, in batches of
//    500 (one transaction each), as ten devices would;
//  - pull: every resulting record pulled into a fresh device replica on the encrypted store, in
//    pages of 1,000 (each applied with its cursor in one transaction); and the same pull carried
//    through the JSON wire form, as the server will;
//  - a case worker's first pull (30 of the 2,000 clients), as the upstream reads its pages: walking
//    the whole log against looking the worker's keys up in the log filed by key; and that caseload
//    handed to a second worker, against the scan of every record per client it took before;
//  - compaction as the server runs it, in slices of 500 records with every device past
//    everything: the whole run and its longest slice (what a push sharing its group waits), against
//    one read of every record's state and history;
//  - baselines, with plain SQLite (the store's settings: page_size 4096, WAL, synchronous=FULL) and
//    through the encrypted store, in the same batches: the same rows inserted (one per change set:
//    its id, record id, collection and JSON values; one per pulled record); and, for apply, what a
//    plain app storing the records would write (a record's row inserted when new, its values
//    replaced when edited).
//
// Usage: sync_bench [--json] [--changes N] [--dir FOLDER] [--cache-mb N] [--apply-only]
// Prints readable lines; with --json, one JSON object on the last line, each cost ratio (elapsed
// time over the baseline's; 1.0 = no overhead) under a key ending in "_ratio". --apply-only runs
// the engine's apply phase alone and prints its time (for profiling).
#include <malloc.h>
#include <sqlite3.h>
#include <sys/resource.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "crypto/store.h"
#include "sync/engine.h"

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using namespace tsunagu;
using namespace tsunagu::sync;

namespace {

constexpr std::size_t kBatch = 500;
// Every connection, baselines included, gets the same page cache: SQLite's default (about 2 MB)
// unless --cache-mb says otherwise.
std::string g_cache_pragma;
constexpr std::size_t kPage = 1000;
constexpr int kDevices = 10;
constexpr std::size_t kCaseload = 30;  // a case worker's clients

[[noreturn]] void fail(const std::string& what) {
    std::fprintf(stderr, "sync_bench: %s\n", what.c_str());
    std::exit(1);
}
template <typename T>
T must(Result<T> r, const char* doing) {
    if (!r) fail(std::string(doing) + ": " + r.status().to_string());
    return std::move(r).value();
}
void must(const Status& s, const char* doing) {
    if (!s) fail(std::string(doing) + ": " + s.to_string());
}

double seconds_since(Clock::time_point start) {
    return std::chrono::duration<double>(Clock::now() - start).count();
}

// CPU seconds this process has used (user and system), to tell computing from waiting on the disk.
double cpu_seconds() {
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    auto seconds = [](const timeval& t) { return static_cast<double>(t.tv_sec) + t.tv_usec / 1e6; };
    return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

long peak_rss_mb() {
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    return usage.ru_maxrss / 1024;
}

// Linux: resets the peak resident size that vm_hwm_mb() reports (so a phase can be measured alone).
void reset_peak_rss() {
    if (FILE* f = std::fopen("/proc/self/clear_refs", "w")) {
        std::fputs("5", f);
        std::fclose(f);
    }
}

long vm_hwm_mb() {
    long kb = 0;
    if (FILE* f = std::fopen("/proc/self/status", "r")) {
        char line[256];
        while (std::fgets(line, sizeof line, f)) {
            if (std::sscanf(line, "VmHWM: %ld kB", &kb) == 1) break;
        }
        std::fclose(f);
    }
    return kb / 1024;
}

// ---- the workload ------------------------------------------------------------------------------

Schema bench_schema() {
    Schema schema;
    CollectionSchema visit{"home_visit", {}, {ScopeRule::Kind::field, "client", "client:"}, 1};
    visit.fields = {
        {.name = "date", .type = FieldType::date, .required = true},
        {.name = "client", .type = FieldType::reference, .target = "client"},
        {.name = "visitor", .type = FieldType::string},
        {.name = "duration_min", .type = FieldType::integer, .min = 1, .max = 1440},
        {.name = "purpose",
         .type = FieldType::enumeration,
         .choices = {"post_discharge", "crisis_follow_up", "check_in"}},
        {.name = "observations", .type = FieldType::text, .max = 4000},
        {.name = "risk_flags",
         .type = FieldType::list,
         .max = 5,
         .choices = {"self_harm", "housing", "medication", "isolation"},
         .item = FieldType::enumeration},
        {.name = "next_visit", .type = FieldType::date},
        {.name = "location", .type = FieldType::string},
        {.name = "follow_up",
         .type = FieldType::enumeration,
         .choices = {"none", "phone", "visit", "referral"}},
    };
    schema.collections = {visit};
    return schema;
}

struct Workload {
    std::vector<std::string> devices;
    std::vector<PushBatch> batches;  // as the devices push them
    std::size_t records = 0;
    // For each change set, in order, the record's whole current values after it (the row a plain
    // app storing records would insert or update).
    std::vector<std::string> record_after;
    std::vector<std::string> clients;  // every client the visits are about
};

class Generator {
  public:
    explicit Generator(std::uint64_t seed) : rng_(seed) {
        for (int c = 0; c < 2000; ++c) clients_.push_back(id());  // a city's caseload
    }

    std::string id() {
        static constexpr char kHex[] = "0123456789abcdef";
        std::string out(32, '0');
        for (char& c : out) c = kHex[rng_() & 15];
        return out;
    }
    int below(int n) { return static_cast<int>(rng_() % static_cast<std::uint64_t>(n)); }

    std::string words(std::size_t length) {
        static const char* kWords[] = {"client",  "calm",  "visit",  "reported", "sleep",  "better",
                                       "meds",    "taken", "family", "present",  "follow", "up",
                                       "anxious", "walk",  "talked", "about",    "work",   "plan"};
        std::string out;
        while (out.size() < length) {
            out += kWords[below(18)];
            out += ' ';
        }
        out.resize(length);
        return out;
    }

    Json value_of(const std::string& field) {
        if (field == "date" || field == "next_visit") {
            char date[11];
            std::snprintf(date, sizeof date, "2020-%02d-%02d", 1 + below(12), 1 + below(28));
            return date;
        }
        if (field == "client")
            return clients_[static_cast<std::size_t>(below(static_cast<int>(clients_.size())))];
        if (field == "visitor") return "worker-" + id().substr(0, 8);
        if (field == "duration_min") return 5 + below(120);
        if (field == "purpose")
            return std::vector<std::string>{"post_discharge", "crisis_follow_up",
                                            "check_in"}[below(3)];
        if (field == "observations") return words(200 + below(150));
        if (field == "risk_flags") return below(2) ? Json::array({"housing"}) : Json::array();
        if (field == "location") return "area " + std::to_string(below(6));
        return std::vector<std::string>{"none", "phone", "visit", "referral"}[below(4)];
    }

    const std::vector<std::string>& clients() const { return clients_; }

  private:
    std::mt19937_64 rng_;
    std::vector<std::string> clients_;
};

// 60% creates, 40% edits of one to three fields of a random existing record, with correct bases.
Workload make_workload(std::size_t changes, const Schema& schema) {
    Generator g(20261125);
    Workload w;
    for (int d = 0; d < kDevices; ++d) w.devices.push_back(g.id());
    const auto& fields = schema.collections[0].fields;
    struct Known {
        std::string id;
        std::array<std::string, 10> version;  // per field: the change set that wrote it
        Json values;
    };
    std::vector<Known> known;
    known.reserve(changes);
    const std::int64_t start_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                      std::chrono::system_clock::now().time_since_epoch())
                                      .count() -
                                  static_cast<std::int64_t>(changes) - 3'600'000;
    for (std::size_t i = 0; i < changes; ++i) {
        if (i % kBatch == 0) {
            const std::string& device = w.devices[(i / kBatch) % kDevices];
            w.batches.push_back({device, "worker", 0, {}, {}});
        }
        PushBatch& batch = w.batches.back();
        ChangeSet c;
        c.id = g.id();
        c.collection = "home_visit";
        c.hlc = Hlc{start_ms + static_cast<std::int64_t>(i), 0};
        c.replica = batch.replica;
        c.user = batch.user;
        c.schema_version = 1;
        if (known.empty() || g.below(10) < 6) {
            Known k{g.id(), {}, {}};
            c.record = k.id;
            c.create = true;
            for (std::size_t f = 0; f < fields.size(); ++f) {
                c.set[fields[f].name] = g.value_of(fields[f].name);
                k.version[f] = c.id;
            }
            k.values = c.set;
            w.record_after.push_back(k.values.dump());
            known.push_back(std::move(k));
        } else {
            Known& k = known[static_cast<std::size_t>(g.below(static_cast<int>(known.size())))];
            c.record = k.id;
            const int n = 1 + g.below(3);
            for (int e = 0; e < n; ++e) {
                const auto f = static_cast<std::size_t>(2 + g.below(8));  // not date or client
                if (c.set.contains(fields[f].name)) continue;
                c.set[fields[f].name] = g.value_of(fields[f].name);
                c.base[fields[f].name] = {k.version[f]};
                k.version[f] = c.id;
                k.values[fields[f].name] = c.set[fields[f].name];
            }
            w.record_after.push_back(k.values.dump());
        }
        batch.changes.push_back(std::move(c));
    }
    w.records = known.size();
    w.clients = g.clients();
    return w;
}

// ---- baselines: plain SQLite, and the encrypted store, inserting the same rows ----------------

struct Row {
    std::array<std::uint8_t, 16> id;
    std::array<std::uint8_t, 16> record;
    std::string fields;
};

std::array<std::uint8_t, 16> bytes_of(const std::string& hex) {
    std::array<std::uint8_t, 16> out{};
    for (std::size_t i = 0; i < 16; ++i)
        out[i] = static_cast<std::uint8_t>(std::stoi(hex.substr(2 * i, 2), nullptr, 16));
    return out;
}

constexpr const char* kBaselineTable =
    "CREATE TABLE rows(id BLOB PRIMARY KEY, record BLOB NOT NULL, collection TEXT NOT NULL, fields "
    "TEXT NOT NULL)";
constexpr const char* kBaselineInsert =
    "INSERT INTO rows(id, record, collection, fields) VALUES (?1, ?2, ?3, ?4)";
// A plain app storing records: the record's row is inserted, or replaced by its new values.
constexpr const char* kBaselineUpsert =
    "INSERT INTO rows(id, record, collection, fields) VALUES (?2, ?2, ?3, ?4)"
    " ON CONFLICT(id) DO UPDATE SET fields = excluded.fields";

// Inserts (or upserts by record id) rows in transactions of `batch` on a raw connection; returns
// seconds.
double insert_rows(sqlite3* db, const std::vector<Row>& rows, std::size_t batch,
                   bool upsert = false) {
    auto exec = [&](const char* sql) {
        if (sqlite3_exec(db, sql, nullptr, nullptr, nullptr) != SQLITE_OK)
            fail(std::string(sql) + ": " + sqlite3_errmsg(db));
    };
    exec(kBaselineTable);
    sqlite3_stmt* insert = nullptr;
    if (sqlite3_prepare_v2(db, upsert ? kBaselineUpsert : kBaselineInsert, -1, &insert, nullptr) !=
        SQLITE_OK) {
        fail(sqlite3_errmsg(db));
    }
    const auto start = Clock::now();
    for (std::size_t i = 0; i < rows.size(); ++i) {
        if (i % batch == 0) exec("BEGIN IMMEDIATE");
        const Row& r = rows[i];
        if (!upsert) sqlite3_bind_blob(insert, 1, r.id.data(), 16, SQLITE_STATIC);
        sqlite3_bind_blob(insert, 2, r.record.data(), 16, SQLITE_STATIC);
        sqlite3_bind_text(insert, 3, "home_visit", -1, SQLITE_STATIC);
        sqlite3_bind_text(insert, 4, r.fields.data(), static_cast<int>(r.fields.size()),
                          SQLITE_STATIC);
        if (sqlite3_step(insert) != SQLITE_DONE) fail(sqlite3_errmsg(db));
        sqlite3_reset(insert);
        if (i % batch == batch - 1 || i + 1 == rows.size()) exec("COMMIT");
    }
    const double elapsed = seconds_since(start);
    sqlite3_finalize(insert);
    return elapsed;
}

double plain_sqlite(const fs::path& path, const std::vector<Row>& rows, std::size_t batch,
                    bool upsert = false) {
    sqlite3* db = nullptr;
    if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) !=
        SQLITE_OK)
        fail("open");
    sqlite3_exec(db,
                 "PRAGMA page_size=4096; PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
                 " PRAGMA temp_store=MEMORY; PRAGMA mmap_size=0;",
                 nullptr, nullptr, nullptr);
    if (!g_cache_pragma.empty())
        sqlite3_exec(db, g_cache_pragma.c_str(), nullptr, nullptr, nullptr);
    const double elapsed = insert_rows(db, rows, batch, upsert);
    sqlite3_close_v2(db);
    return elapsed;
}

KeySource bench_key() {
    std::vector<std::uint8_t> key(32, 0x42);
    return must(KeySource::raw_key(key), "key");
}

Store open_encrypted(const fs::path& path) {
    Store store = must(Store::open(path.string(), bench_key()), "opening an encrypted store");
    if (!g_cache_pragma.empty()) must(store.exec(g_cache_pragma), "setting the cache size");
    return store;
}

double encrypted_store(const fs::path& path, const std::vector<Row>& rows, std::size_t batch,
                       bool upsert = false) {
    Store store = open_encrypted(path);
    return insert_rows(store.handle(), rows, batch, upsert);
}

// ---- the engine --------------------------------------------------------------------------------

struct Figures {
    double apply_cpu_s = 0;  // CPU time of the apply phase: the rest of apply_s is waiting (fsync)
    double apply_s = 0, plain_apply_s = 0, encrypted_apply_s = 0, plain_upsert_s = 0,
           encrypted_upsert_s = 0;
    double pull_s = 0, pull_json_s = 0, plain_pull_s = 0, encrypted_pull_s = 0;
    double caseload_walk_s = 0, caseload_by_key_s = 0;
    double grant_s = 0, grant_scan_s = 0;
    // Compaction in the server's slices: the whole run, its longest slice, and the read of every
    // record's state and history it cannot avoid.
    double compact_s = 0, compact_slice_max_s = 0, compact_scan_s = 0;
    std::size_t compact_slices = 0, compact_history_purged = 0, compact_filed_purged = 0;
    std::size_t caseload_records = 0;
    std::size_t changes = 0, records = 0;
    long rss_mb = 0;       // peak resident size of the whole run (the generated workload included)
    long pull_rss_mb = 0;  // peak resident size while pulling (the workload freed)
};

// Pulls everything into a fresh device; with `wire`, every request and page goes through JSON text.
double pull_into_fresh_device(Upstream& upstream, const fs::path& path, const Schema& schema,
                              bool wire, std::size_t expected) {
    Store store = open_encrypted(path);
    Device device = must(Device::open(store, schema, DeviceOptions{.user = "supervisor"}),
                         "opening the device");
    const auto start = Clock::now();
    while (true) {
        PullRequest request = must(device.prepare_pull(kPage), "prepare_pull");
        if (wire)
            request = must(parse_pull_request(Json::parse(Json(request).dump())), "request JSON");
        PullPage page = must(upstream.pull(request), "pull");
        if (wire) page = must(parse_pull_page_text(pull_page_text(page)), "page JSON");
        must(device.apply_pull(page), "apply_pull");
        if (!page.more) break;
    }
    const double elapsed = seconds_since(start);
    Statement& count = store.cached("SELECT count(*) FROM sync_records");
    if (!must(count.step(), "count") || static_cast<std::size_t>(count.column_int(0)) != expected) {
        fail("the device holds " + std::to_string(count.column_int(0)) + " records, expected " +
             std::to_string(expected));
    }
    count.reset();
    return elapsed;
}

// A case worker's first pull, page by page, as the upstream reads it (no device): every record of
// their caseload's clients, found the way `lines` says. Returns the time; counts the records.
double caseload_first_pull(Store& store, const Schema& schema, PullLines lines, std::size_t& records) {
    Upstream upstream = must(Upstream::open(store, schema, UpstreamOptions{.pull_lines = lines}),
                             "opening the upstream");
    PullRequest request;
    request.replica = "0123456789abcdef0123456789abcdef";
    request.user = "caseworker";
    request.limit = kPage;
    records = 0;
    // Registered first, as the server does for a new phone (read_page reads nothing for a device
    // compaction does not know).
    must(upstream.record_progress(request), "registering the device");
    const auto start = Clock::now();
    while (true) {
        PullPage page = must(upstream.read_page(request), "read_page");
        records += page.records.size();
        if (!page.more) break;
        request.after = page.next;
    }
    return seconds_since(start);
}

Figures run(const fs::path& dir, std::size_t changes, bool apply_only) {
    const Schema schema = bench_schema();
    Workload work = make_workload(changes, schema);
    Figures f;
    f.changes = changes;
    f.records = work.records;

    // Upstream: apply every batch.
    Store upstream_store = open_encrypted(dir / "upstream.db");
    UpstreamOptions upstream_options;
    upstream_options.keep_history_ms = 0;  // compaction below purges what every device allows
    Upstream upstream = must(Upstream::open(upstream_store, schema, upstream_options), "opening the upstream");
    must(upstream.set_scope("worker", {"*"}), "scope");
    must(upstream.set_scope("supervisor", {"*"}), "scope");
    std::vector<std::string> caseload;  // 30 of the city's 2,000 clients
    for (std::size_t c = 0; c < kCaseload; ++c) caseload.push_back("client:" + work.clients[c]);
    must(upstream.set_scope("caseworker", caseload), "scope");
    const double cpu_before = cpu_seconds();
    auto start = Clock::now();
    for (const PushBatch& batch : work.batches) {
        PushResult result = must(upstream.push(batch), "push");
        for (const auto& o : result.outcomes) {
            if (o.status != PushStatus::accepted) fail("a change was not accepted: " + o.reason);
        }
    }
    f.apply_s = seconds_since(start);
    f.apply_cpu_s = cpu_seconds() - cpu_before;
    if (apply_only) return f;

    // Baselines for apply: one row per change set; and each record's row stored as a plain app
    // would (inserted when new, its values replaced when edited).
    std::vector<Row> change_rows;
    change_rows.reserve(changes);
    for (const auto& batch : work.batches) {
        for (const auto& c : batch.changes)
            change_rows.push_back({bytes_of(c.id), bytes_of(c.record), c.set.dump()});
    }
    f.plain_apply_s = plain_sqlite(dir / "plain_apply.db", change_rows, kBatch);
    f.encrypted_apply_s = encrypted_store(dir / "encrypted_apply.db", change_rows, kBatch);
    for (std::size_t i = 0; i < change_rows.size(); ++i)
        change_rows[i].fields = work.record_after[i];
    f.plain_upsert_s = plain_sqlite(dir / "plain_upsert.db", change_rows, kBatch, true);
    f.encrypted_upsert_s = encrypted_store(dir / "encrypted_upsert.db", change_rows, kBatch, true);
    change_rows.clear();
    change_rows.shrink_to_fit();
    f.rss_mb = peak_rss_mb();
    const std::size_t records = work.records;
    work = Workload{};
    malloc_trim(0);
    reset_peak_rss();

    // Pull into fresh devices, in process and through JSON.
    f.pull_s = pull_into_fresh_device(upstream, dir / "device.db", schema, false, records);
    f.pull_json_s = pull_into_fresh_device(upstream, dir / "device_json.db", schema, true, records);
    f.pull_rss_mb = vm_hwm_mb();

    // A case worker's first pull, walking the whole log and looking their clients up.
    std::size_t walked = 0, looked_up = 0;
    f.caseload_walk_s = caseload_first_pull(upstream_store, schema, PullLines::walk_log, walked);
    f.caseload_by_key_s = caseload_first_pull(upstream_store, schema, PullLines::by_key, looked_up);
    if (walked != looked_up) fail("the two ways of pulling a caseload found different records");
    if (walked == 0) fail("the caseload's first pull found no records");
    f.caseload_records = walked;

    // The caseload handed to a second worker: each client's records found (through the log filed
    // by key) and given fresh lines, in one write; against the scan of every record per client that
    // finding them took before.
    auto start_scan = Clock::now();
    std::size_t scanned = 0;
    for (const std::string& key : caseload) {
        Statement& scan = upstream_store.cached("SELECT rid FROM sync_records WHERE scope_key = ?1");
        scan.bind(1, key);
        while (must(scan.step(), "scanning records")) ++scanned;
        scan.reset();
    }
    f.grant_scan_s = seconds_since(start_scan);
    const auto start_grant = Clock::now();
    must(upstream.set_scope("second_worker", caseload), "granting the caseload");
    f.grant_s = seconds_since(start_grant);
    if (scanned != walked) fail("the caseload's records scanned differ from those pulled");

    // Baselines for pull: one row per record, its current values.
    std::vector<Row> record_rows;
    record_rows.reserve(records);
    Statement& all = upstream_store.cached("SELECT id, fields FROM sync_records ORDER BY seq");
    while (must(all.step(), "reading records")) {
        Row r{};
        auto blob = all.column_blob(0);
        std::copy_n(blob.begin(), 16, r.id.begin());
        r.record = r.id;
        r.fields = std::string(all.column_text(1));
        record_rows.push_back(std::move(r));
    }
    all.reset();
    f.plain_pull_s = plain_sqlite(dir / "plain_pull.db", record_rows, kPage);
    f.encrypted_pull_s = encrypted_store(dir / "encrypted_pull.db", record_rows, kPage);

    // Compaction, as the server runs it (slices of 500 records, each its own transaction), with
    // every device past everything (their progress dropped: no device holds anything back);
    // against one read of every record's state and history, which compaction cannot avoid.
    const auto start_read = Clock::now();
    std::size_t state_bytes = 0;
    Statement& states = upstream_store.cached("SELECT meta, log FROM sync_records");
    while (must(states.step(), "reading record states"))
        state_bytes += states.column_text(0).size() + states.column_blob(1).size();
    states.reset();
    f.compact_scan_s = seconds_since(start_read);
    if (state_bytes == 0) fail("no record states to read");
    if (Status dropped = upstream_store.cached("DELETE FROM sync_replicas").run(); !dropped)
        fail("dropping the devices' progress: " + dropped.to_string());
    CompactionProgress progress;
    const auto start_compact = Clock::now();
    while (!progress.done()) {
        const auto slice = Clock::now();
        if (Status s = upstream.compact_some(progress, 500); !s) fail("compacting: " + s.to_string());
        f.compact_slice_max_s = std::max(f.compact_slice_max_s, seconds_since(slice));
        ++f.compact_slices;
    }
    f.compact_s = seconds_since(start_compact);
    f.compact_history_purged = progress.report.history_purged;
    f.compact_filed_purged = progress.report.filed_purged;
    return f;
}

void line(const char* what, std::size_t n, double s, double baseline, const char* against) {
    std::printf("%-44s %8zu in %7.3f s %9.0f /s   %.2fx %s\n", what, n, s,
                static_cast<double>(n) / s, s / baseline, against);
}

}  // namespace

int main(int argc, char** argv) {
    bool json = false;
    bool apply_only = false;
    std::size_t changes = 100'000;
    std::string dir_arg;
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "--json") == 0) {
            json = true;
        } else if (std::strcmp(argv[i], "--apply-only") == 0) {
            apply_only = true;
        } else if (std::strcmp(argv[i], "--changes") == 0 && i + 1 < argc) {
            changes = std::stoul(argv[++i]);
        } else if (std::strcmp(argv[i], "--dir") == 0 && i + 1 < argc) {
            dir_arg = argv[++i];
        } else if (std::strcmp(argv[i], "--cache-mb") == 0 && i + 1 < argc) {
            g_cache_pragma = "PRAGMA cache_size=-" + std::to_string(std::stoul(argv[++i]) * 1024);
        } else {
            std::fprintf(
                stderr, "usage: sync_bench [--json] [--changes N] [--dir FOLDER] [--cache-mb N]"
                " [--apply-only]\n");
            return 2;
        }
    }
    std::error_code ignored;
    const fs::path parent = dir_arg.empty() ? fs::temp_directory_path() : fs::path(dir_arg);
    const fs::path dir = parent / ("sync_bench-" + std::to_string(::getpid()));
    fs::create_directories(dir);
    const Figures f = run(dir, changes, apply_only);
    fs::remove_all(dir, ignored);
    if (apply_only) {
        std::printf("upstream applies %zu change sets: %.3f s, %.3f s of CPU\n", f.changes, f.apply_s,
                    f.apply_cpu_s);
        return 0;
    }

    std::printf(
        "sync_bench: %zu change sets (%zu new records of 10 fields, ~500 bytes; the rest edits),\n"
        "batches of %zu, pages of %zu; WAL, synchronous=FULL, page_size 4096\n",
        f.changes, f.records, kBatch, kPage);
    line("plain SQLite: insert one row per change", f.changes, f.plain_apply_s, f.plain_apply_s,
         "");
    line("encrypted store: insert one row per change", f.changes, f.encrypted_apply_s,
         f.plain_apply_s, "plain SQLite");
    line("plain SQLite: insert or update each record", f.changes, f.plain_upsert_s, f.plain_apply_s,
         "plain SQLite inserts");
    line("encrypted store: insert or update each record", f.changes, f.encrypted_upsert_s,
         f.plain_apply_s, "plain SQLite inserts");
    line("upstream applies the change sets", f.changes, f.apply_s, f.plain_apply_s,
         "plain SQLite inserts");
    line("", f.changes, f.apply_s, f.encrypted_apply_s, "encrypted inserts");
    line("", f.changes, f.apply_s, f.plain_upsert_s, "plain SQLite record upserts");
    line("", f.changes, f.apply_s, f.encrypted_upsert_s, "encrypted record upserts");
    std::printf("%-44s %.3f s of CPU; the rest waits on the disk\n", "", f.apply_cpu_s);
    line("plain SQLite: insert one row per record", f.records, f.plain_pull_s, f.plain_pull_s, "");
    line("encrypted store: insert one row per record", f.records, f.encrypted_pull_s,
         f.plain_pull_s, "plain SQLite");
    line("fresh device pulls every record", f.records, f.pull_s, f.plain_pull_s, "plain SQLite");
    line("", f.records, f.pull_s, f.encrypted_pull_s, "encrypted inserts");
    line("  ... through the JSON wire form", f.records, f.pull_json_s, f.plain_pull_s,
         "plain SQLite");
    std::printf("a case worker's first pull, 30 of 2,000 clients: %zu records; walking the log "
                "%.3f s, looking their keys up %.3f s (%.2fx)\n",
                f.caseload_records, f.caseload_walk_s, f.caseload_by_key_s,
                f.caseload_by_key_s / f.caseload_walk_s);
    std::printf("the caseload handed to a second worker (its records found and given fresh lines): "
                "%.3f s; a scan of every record per client, alone: %.3f s (%.2fx)\n",
                f.grant_s, f.grant_scan_s, f.grant_s / f.grant_scan_s);
    std::printf("compaction in %zu slices of 500 records: %.3f s, the longest slice %.1f ms; %zu history "
                "entries and %zu filed lines purged; one read of every record's state, alone: %.3f s (%.2fx)\n",
                f.compact_slices, f.compact_s, f.compact_slice_max_s * 1000, f.compact_history_purged,
                f.compact_filed_purged, f.compact_scan_s, f.compact_s / f.compact_scan_s);
    std::printf("peak RSS %ld MB (the generated workload included); while pulling %ld MB\n",
                f.rss_mb, f.pull_rss_mb);
    if (json) {
        const Json out = {
            {"changes", f.changes},
            {"records", f.records},
            {"apply_s", f.apply_s},
            {"apply_cpu_s", f.apply_cpu_s},
            {"apply_changes_per_s", static_cast<double>(f.changes) / f.apply_s},
            {"plain_apply_s", f.plain_apply_s},
            {"encrypted_apply_s", f.encrypted_apply_s},
            {"plain_upsert_s", f.plain_upsert_s},
            {"encrypted_upsert_s", f.encrypted_upsert_s},
            {"apply_ratio", f.apply_s / f.plain_apply_s},
            {"apply_vs_encrypted_ratio", f.apply_s / f.encrypted_apply_s},
            {"apply_vs_upsert_ratio", f.apply_s / f.plain_upsert_s},
            {"apply_vs_encrypted_upsert_ratio", f.apply_s / f.encrypted_upsert_s},
            {"pull_s", f.pull_s},
            {"pull_records_per_s", static_cast<double>(f.records) / f.pull_s},
            {"pull_json_s", f.pull_json_s},
            {"plain_pull_s", f.plain_pull_s},
            {"encrypted_pull_s", f.encrypted_pull_s},
            {"pull_ratio", f.pull_s / f.plain_pull_s},
            {"pull_vs_encrypted_ratio", f.pull_s / f.encrypted_pull_s},
            {"pull_json_ratio", f.pull_json_s / f.plain_pull_s},
            {"encryption_ratio", f.encrypted_apply_s / f.plain_apply_s},
            {"caseload_records", f.caseload_records},
            {"caseload_walk_s", f.caseload_walk_s},
            {"caseload_by_key_s", f.caseload_by_key_s},
            {"caseload_by_key_ratio", f.caseload_by_key_s / f.caseload_walk_s},
            {"grant_s", f.grant_s},
            {"grant_scan_s", f.grant_scan_s},
            {"grant_vs_scan_ratio", f.grant_s / f.grant_scan_s},
            {"compact_s", f.compact_s},
            {"compact_slices", f.compact_slices},
            {"compact_slice_max_ms", f.compact_slice_max_s * 1000},
            {"compact_history_purged", f.compact_history_purged},
            {"compact_filed_purged", f.compact_filed_purged},
            {"compact_scan_s", f.compact_scan_s},
            {"compact_vs_scan_ratio", f.compact_s / f.compact_scan_s},
            {"rss_mb", f.rss_mb},
            {"pull_rss_mb", f.pull_rss_mb},
        };
        std::printf("%s\n", out.dump().c_str());
    }
    return 0;
}
