// The device library against the real server: offline work, convergence, conflicts, evictions,
// revocation and the encrypted replica's passphrase.
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "field_org.h"
#include "support/run_program.h"
#include "tests/crypto/store_files.h"

using namespace tsunagu;
using namespace tsunagu::testing;
using nlohmann::json;

namespace {

std::string file_bytes(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream out;
    out << in.rdbuf();
    return out.str();
}

// Aoi's client, and Ben's visit to them synced from his phone: refused, since the client is not in
// his caseload, and kept on his phone and on the server.
struct BenRefused {
    FieldOrganisation org;
    std::unique_ptr<client::Device> aoi, ben;
    std::string client, visit_id;

    explicit BenRefused(const std::string& pseudonym) {
        aoi = org.device("aoi");
        client = created(*aoi, "client", {{"pseudonym", pseudonym}, {"area", "kita"}});
        synced(*aoi);
        ben = org.device("ben");
        visit_id = created(*ben, "home_visit", visit(client));
        REQUIRE(synced(*ben).refused.size() == 1);
    }
};

// The server's disk dies; `backup` is restored and served at the same address, under the same key.
std::unique_ptr<ServerProcess> restored_in_place(FieldOrganisation& org, const std::string& backup) {
    const std::string key = org.dir.file("data") + "/tsunagu.key";
    const int port = org.server.port();
    org.server.stop(SIGTERM);
    const std::string restored = org.dir.file("restored");
    REQUIRE(run_program(TSUNAGU_SERVER_PATH, {"restore", "--from", backup, "--data", restored, "--key-file", key})
                .exit_code == 0);
    auto again = std::make_unique<ServerProcess>(TSUNAGU_SERVER_PATH, restored, org.dir.file("restored.log"));
    again->start({"--key-file", key}, port);
    return again;
}

// Aoi's visit to her client, whose caseload Ben then shares: both phones hold it, synced.
struct SharedVisit {
    FieldOrganisation org;
    std::unique_ptr<client::Device> aoi, ben;
    std::string client, v;

    explicit SharedVisit(const std::string& pseudonym) {
        aoi = org.device("aoi");
        client = created(*aoi, "client", {{"pseudonym", pseudonym}, {"area", "kita"}});
        v = created(*aoi, "home_visit", visit(client));
        synced(*aoi);
        org.assign(client, {"aoi", "ben"});
        ben = org.device("ben");
        synced(*ben);
        REQUIRE(holds(*ben, v));
    }
};

}  // namespace

TEST_CASE("two workers edit one visit offline and converge whichever reconnects first, and the supervisor sees the overwritten value") {
    SharedVisit shared("K-101");
    FieldOrganisation& org = shared.org;
    auto& aoi = shared.aoi;
    auto& ben = shared.ben;
    const std::string& v = shared.v;

    REQUIRE(aoi->update(v, {{"duration_min", 60}}).is_ok());
    REQUIRE(ben->update(v, {{"duration_min", 90}}).is_ok());
    const bool aoi_first = GENERATE(true, false);
    client::Device& first = aoi_first ? *aoi : *ben;
    client::Device& second = aoi_first ? *ben : *aoi;
    synced(first);
    const auto late = synced(second);
    synced(first);

    const json a = aoi->get(v)->fields["duration_min"];
    const json b = ben->get(v)->fields["duration_min"];
    CHECK(a == b);
    CHECK((a == 60 || a == 90));
    CHECK(late.new_conflicts.size() == 1);
    REQUIRE(aoi->conflicts()->size() == 1);
    REQUIRE(ben->conflicts()->size() == 1);

    ApiClient sato(org.server.url());
    REQUIRE(sato.sign_in("sato", FieldOrganisation::password_of("sato")).status == 200);
    json conflicts = sato.get("/v1/conflicts").body["conflicts"];
    REQUIRE(conflicts.size() == 1);
    CHECK(conflicts[0]["record"] == v);
    CHECK(conflicts[0]["field"] == "duration_min");
    CHECK(conflicts[0]["losing"]["value"] == (a == 60 ? 90 : 60));
    CHECK(conflicts[0]["current"]["value"] == a);

    SECTION("a worker's resolution clears the conflict everywhere") {
        REQUIRE(ben->resolve(v, "duration_min", 75).is_ok());
        synced(*ben);
        synced(*aoi);
        CHECK(aoi->get(v)->fields["duration_min"] == 75);
        CHECK(aoi->conflicts()->empty());
        CHECK(sato.get("/v1/conflicts").body["conflicts"].empty());
    }
}

TEST_CASE("a visit one worker deleted while another edited it comes back on the phone that settles the conflict, everywhere") {
    SharedVisit shared("K-102");
    auto& aoi = shared.aoi;
    auto& ben = shared.ben;
    const std::string& v = shared.v;

    REQUIRE(aoi->remove(v).is_ok());                               // offline, she deletes it
    REQUIRE(ben->update(v, {{"duration_min", 80}}).is_ok());       // offline, he corrects it
    synced(*aoi);
    synced(*ben);
    auto conflicts = ben->conflicts();
    REQUIRE(conflicts);
    REQUIRE(conflicts->size() == 1);
    CHECK((*conflicts)[0].kind == sync::ConflictKind::edit_vs_delete);
    // A field cannot be settled first; the deletion can, on his phone.
    Status field_first = ben->resolve(v, "duration_min", 80);
    CHECK(field_first.code() == ErrorCode::conflict);
    CHECK_THAT(field_first.message(), Catch::Contains("settle the deletion first"));
    REQUIRE(ben->resolve_deletion(v, sync::DeletionResolution::restore).is_ok());
    synced(*ben);
    synced(*aoi);
    for (client::Device* phone : {aoi.get(), ben.get()}) {
        auto back = phone->get(v);
        REQUIRE(back);
        CHECK(back->fields["duration_min"] == 80);
        CHECK(phone->conflicts()->empty());
    }
}

TEST_CASE("a week of offline work arrives once in one sync, with progress reported") {
    FieldOrganisation org;
    auto options = test_options();
    options.push_batch = 64;
    auto aoi = org.device("aoi", options);
    const auto client = created(*aoi, "client", {{"pseudonym", "K-102"}, {"area", "kita"}});
    std::set<std::string> visits;
    for (int i = 0; i < 300; ++i) visits.insert(created(*aoi, "home_visit", visit(client, i)));
    REQUIRE(aoi->status()->pending == 301);

    std::vector<client::SyncProgress> seen;
    const auto report = synced(*aoi, [&](const client::SyncProgress& p) { seen.push_back(p); });
    CHECK(report.pushed == 301);
    CHECK(report.refused.empty());
    CHECK(aoi->status()->pending == 0);
    CHECK(aoi->status()->last_sync_ms > 0);
    std::size_t last_push = 0;
    std::size_t pushes = 0;
    for (const auto& p : seen) {
        if (p.phase != client::SyncProgress::Phase::push) continue;
        CHECK(p.total == 301);
        CHECK(p.done >= last_push);
        last_push = p.done;
        ++pushes;
    }
    CHECK(last_push == 301);
    CHECK(pushes >= 5);  // 301 changes in batches of 64, each reported

    auto sato = org.device("sato");
    const auto pulled = synced(*sato);
    CHECK(pulled.pulled == 301);
    auto held = sato->list("home_visit");
    REQUIRE(held.is_ok());
    std::set<std::string> ids;
    for (const auto& r : *held) ids.insert(r.id);
    CHECK(held->size() == 300);
    CHECK(ids == visits);
    CHECK(synced(*aoi).pushed == 0);
}

TEST_CASE("after the server is restored from an older backup, a phone's next sync sends again what the server lost") {
    FieldOrganisation org;
    auto aoi = org.device("aoi");
    const auto client = created(*aoi, "client", {{"pseudonym", "K-207"}, {"area", "kita"}});
    std::set<std::string> visits;
    for (int i = 0; i < 5; ++i) visits.insert(created(*aoi, "home_visit", visit(client, i)));
    synced(*aoi);
    const std::string backup = org.dir.file("nightly.db");
    REQUIRE(run_program(TSUNAGU_SERVER_PATH, {"backup", "--data", org.dir.file("data"), "--to", backup}).exit_code == 0);
    for (int i = 5; i < 8; ++i) visits.insert(created(*aoi, "home_visit", visit(client, i)));
    CHECK(synced(*aoi).pushed == 3);  // acknowledged by the server about to be lost

    const auto again = restored_in_place(org, backup);

    // The restore ended every session: the phone is told to sign in again, and loses nothing.
    const auto refused = aoi->sync();
    REQUIRE_FALSE(refused.is_ok());
    CHECK(refused.status().code() == ErrorCode::forbidden);
    CHECK_THAT(refused.status().message(), Catch::Contains("sign in again") && Catch::Contains("nothing on this device is lost"));
    REQUIRE(aoi->sign_in(again->url(), "aoi", FieldOrganisation::password_of("aoi"), "aoi's phone"));
    const auto report = synced(*aoi);
    // Everything it still journals goes back to its outbox. The pull from the start that a
    // restored server brings asks after them: the client and 5 visits, which the backup held, are
    // answered there; the 3 visits lost with the server are pushed.
    CHECK(report.resent == 9);
    CHECK(report.pushed == 3);
    CHECK(aoi->status()->pending == 0);
    auto sato = org.device("sato");
    synced(*sato);
    auto held = sato->list("home_visit");
    REQUIRE(held.is_ok());
    std::set<std::string> ids;
    for (const auto& r : *held) ids.insert(r.id);
    CHECK(ids == visits);  // nothing Aoi did is lost
    CHECK(synced(*aoi).resent == 0);  // once only
}

TEST_CASE("after the server is restored from an older backup, a client given to a worker after it leaves her phone") {
    FieldOrganisation org;
    auto ben = org.device("ben");
    const auto client = created(*ben, "client", {{"pseudonym", "K-311"}, {"area", "kita"}});
    const auto v = created(*ben, "home_visit", visit(client));
    synced(*ben);
    const std::string backup = org.dir.file("nightly.db");
    REQUIRE(run_program(TSUNAGU_SERVER_PATH, {"backup", "--data", org.dir.file("data"), "--to", backup}).exit_code == 0);
    org.assign(client, {"aoi"});
    auto aoi = org.device("aoi");
    synced(*aoi);
    REQUIRE(holds(*aoi, client));
    REQUIRE(holds(*aoi, v));

    const auto again = restored_in_place(org, backup);
    REQUIRE(aoi->sign_in(again->url(), "aoi", FieldOrganisation::password_of("aoi"), "aoi's phone"));
    // In the backup's caseloads the client is Ben's alone, and the server holds every version of
    // what her phone has of it: the sync that pulls everything again asks, and lets it go.
    CHECK(synced(*aoi).evicted == 2);
    CHECK_FALSE(holds(*aoi, client));
    CHECK_FALSE(holds(*aoi, v));
    const std::string plain =
        decrypted_files(aoi->database_path(), KeySource::passphrase("aoi passphrase", KdfParams::fast_for_tests()));
    CHECK(plain.find("K-311") == std::string::npos);
    REQUIRE(ben->sign_in(again->url(), "ben", FieldOrganisation::password_of("ben"), "ben's phone"));
    synced(*ben);
    CHECK(holds(*ben, v));
}

TEST_CASE("a home visit recorded without a visitor names whoever recorded it and one naming another keeps that one") {
    FieldOrganisation org;
    auto aoi = org.device("aoi");
    const std::string aoi_id = aoi->status()->user_id;
    const auto client = created(*aoi, "client", {{"pseudonym", "K-121"}, {"area", "kita"}});
    const auto own = created(*aoi, "home_visit", visit(client));
    CHECK(aoi->get(own)->fields["visitor"] == aoi_id);
    nlohmann::json accompanied = visit(client, 2);
    accompanied["visitor"] = std::string(32, '7');
    const auto other = created(*aoi, "home_visit", accompanied);
    synced(*aoi);
    // As the server took them (its own checks ask for a visitor from schema v3 on).
    auto sato = org.device("sato");
    synced(*sato);
    CHECK(sato->get(own)->fields["visitor"] == aoi_id);
    CHECK(sato->get(other)->fields["visitor"] == std::string(32, '7'));
}

TEST_CASE("a client reassigned to another worker is evicted from the first worker's device on its next sync") {
    FieldOrganisation org;
    auto aoi = org.device("aoi");
    const auto client = created(*aoi, "client", {{"pseudonym", "K-103"}, {"area", "kita"}});
    const auto v = created(*aoi, "home_visit", visit(client));
    synced(*aoi);
    org.assign(client, {"ben"});
    const auto report = synced(*aoi);
    CHECK(report.evicted >= 2);
    CHECK_FALSE(holds(*aoi, client));
    CHECK_FALSE(holds(*aoi, v));
    CHECK(aoi->list("home_visit")->empty());
    // Nor is anything of them left in the replica's files for whoever knows its passphrase and
    // decrypts every page: deleted content is zeroed and the WAL's older frames are gone.
    const std::string wal = aoi->database_path() + "-wal";
    CHECK((!std::filesystem::exists(wal) || std::filesystem::file_size(wal) == 0));
    const std::string plain =
        decrypted_files(aoi->database_path(), KeySource::passphrase("aoi passphrase", KdfParams::fast_for_tests()));
    CHECK(plain.find("K-103") == std::string::npos);
    CHECK(plain.find(visit(client)["observations"].get<std::string>()) == std::string::npos);
    auto ben = org.device("ben");
    synced(*ben);
    CHECK(holds(*ben, v));
}

TEST_CASE("a WAL another reader kept from being emptied after an eviction is emptied at the next sync") {
    FieldOrganisation org;
    auto aoi = org.device("aoi");
    const auto client = created(*aoi, "client", {{"pseudonym", "K-113"}, {"area", "kita"}});
    synced(*aoi);
    const std::string db = aoi->database_path();
    const KeySource key = KeySource::passphrase("aoi passphrase", KdfParams::fast_for_tests());
    org.assign(client, {"ben"});
    {
        // Another connection in the middle of a read (the app showing a list) as the sync ends.
        auto reader = Store::open(db, key);
        REQUIRE(reader.is_ok());
        REQUIRE(reader->exec("BEGIN"));
        auto reading = reader->prepare("SELECT name FROM client_session");
        REQUIRE(reading.is_ok());
        REQUIRE(*reading->step());
        const auto report = synced(*aoi);
        CHECK(report.evicted >= 1);
        CHECK_FALSE(holds(*aoi, client));
        CHECK(std::filesystem::file_size(db + "-wal") > 0);  // its older frames are still there
        reading->reset();
        REQUIRE(reader->exec("ROLLBACK"));
    }
    // The worker signs in again meanwhile (her session had ended): what is owed stays owed.
    REQUIRE(aoi->sign_in(org.server.url(), "aoi", FieldOrganisation::password_of("aoi"), "aoi's phone").is_ok());
    // The next sync evicts nothing, and empties the WAL all the same.
    const auto report = synced(*aoi);
    CHECK(report.evicted == 0);
    CHECK((!std::filesystem::exists(db + "-wal") || std::filesystem::file_size(db + "-wal") == 0));
    CHECK(decrypted_files(db, key).find("K-113") == std::string::npos);
    // Owed no more: a sync after that leaves the WAL to SQLite as usual.
    created(*aoi, "client", {{"pseudonym", "K-114"}, {"area", "kita"}});
    synced(*aoi);
    CHECK(std::filesystem::file_size(db + "-wal") > 0);
}

TEST_CASE("a revoked device is wiped on its next sync and its files are gone") {
    FieldOrganisation org;
    auto aoi = org.device("aoi");
    created(*aoi, "client", {{"pseudonym", "K-104"}, {"area", "kita"}});
    synced(*aoi);
    const std::string db = aoi->database_path();
    REQUIRE(std::filesystem::exists(db));
    const std::string device_id = aoi->status()->device_id;
    REQUIRE(org.admin->post("/v1/admin/devices/" + device_id + "/revoke", json::object()).status == 200);

    created(*aoi, "client", {{"pseudonym", "K-105"}, {"area", "kita"}});
    const auto report = synced(*aoi);
    CHECK(report.wiped);
    CHECK(report.wiped_unsent == 1);  // K-105 went with it, and the report says so
    CHECK(client::unsent_changes_text(report.wiped_unsent) == "1 change(s)");
    // A replica too damaged to count its outbox is erased all the same, and never said to hold none.
    CHECK(client::unsent_changes_text(std::nullopt).find("unknown") != std::string::npos);
    client::SyncReport uncounted;
    uncounted.wiped = true;
    uncounted.wiped_unsent = std::nullopt;
    CHECK(sync::Json(uncounted)["wiped_unsent"].is_null());
    CHECK_FALSE(std::filesystem::exists(db));
    CHECK_FALSE(std::filesystem::exists(db + "-wal"));
    CHECK_FALSE(std::filesystem::exists(db + "-journal"));
    auto after = aoi->list("client");
    REQUIRE_FALSE(after.is_ok());
    CHECK(after.status().code() == ErrorCode::forbidden);
    CHECK_FALSE(aoi->sync().is_ok());
}

TEST_CASE("a revoked device that changes its password is wiped too and says how much went unsent") {
    FieldOrganisation org;
    auto aoi = org.device("aoi");
    created(*aoi, "client", {{"pseudonym", "K-106"}, {"area", "kita"}});
    synced(*aoi);
    const std::string db = aoi->database_path();
    REQUIRE(org.admin->post("/v1/admin/devices/" + aoi->status()->device_id + "/revoke", json::object()).status == 200);
    created(*aoi, "client", {{"pseudonym", "K-107"}, {"area", "kita"}});
    // Its first request after the revocation is a password change, not a sync: told to wipe all
    // the same, it does.
    const Status changed = aoi->change_password("aoi-password-1", "aoi-new-password-2");
    CHECK(changed.code() == ErrorCode::forbidden);
    CHECK_THAT(changed.message(), Catch::Contains("revoked") && Catch::Contains("1 change(s)"));
    CHECK_FALSE(std::filesystem::exists(db));
    CHECK_FALSE(aoi->list("client").is_ok());
}

TEST_CASE("a replica is made only under a passphrase of 8 characters or more (counted as characters) and at most 1024 bytes") {
    TempDir dir;
    for (const char* passphrase : {"1234", "kita-01", "見守り記録"}) {  // the last: 5 characters, 15 bytes
        INFO(passphrase);
        const std::string home = dir.file(std::string("home-") + std::to_string(std::strlen(passphrase)));
        auto refused = client::Device::open(home, passphrase, test_options());
        REQUIRE_FALSE(refused.is_ok());
        CHECK(refused.status().code() == ErrorCode::invalid_argument);
        CHECK_THAT(refused.status().message(), Catch::Contains("at least 8 characters"));
        CHECK_FALSE(std::filesystem::exists(home));  // nothing made
    }
    const std::string home = dir.file("home-ok");
    {
        auto made = client::Device::open(home, "見守り記録の合言葉", test_options());  // 9 characters
        INFO(made.status().to_string());
        REQUIRE(made.is_ok());
        const Status short_next = made->change_passphrase("見守り記録の合言葉", "1234");
        CHECK(short_next.code() == ErrorCode::invalid_argument);
        CHECK_THAT(short_next.message(), Catch::Contains("at least 8 characters"));
        // Nor longer than the command line's prompt reads.
        const Status long_next = made->change_passphrase("見守り記録の合言葉", std::string(1025, 'k'));
        CHECK(long_next.code() == ErrorCode::invalid_argument);
        CHECK_THAT(long_next.message(), Catch::Contains("at most 1024 bytes"));
        CHECK(made->change_passphrase("見守り記録の合言葉", std::string(1024, 'k')).is_ok());
        CHECK(made->change_passphrase(std::string(1024, 'k'), "見守り記録の合言葉").is_ok());
    }
    CHECK(client::Device::open(home, "見守り記録の合言葉", test_options()).is_ok());  // unchanged
    // An existing replica answers a short passphrase as a wrong one, not as too short.
    auto wrong = client::Device::open(home, "1234", test_options());
    REQUIRE_FALSE(wrong.is_ok());
    CHECK(wrong.status().code() == ErrorCode::wrong_key);
}

TEST_CASE("a wrong passphrase is refused with wrong_key and changes nothing") {
    FieldOrganisation org;
    std::string home, db, id;
    {
        auto aoi = org.device("aoi");
        id = created(*aoi, "client", {{"pseudonym", "K-106"}, {"area", "kita"}});
        home = aoi->home();
        db = aoi->database_path();
    }
    const std::string before = file_bytes(db);
    auto wrong = client::Device::open(home, "not aoi's passphrase", test_options());
    REQUIRE_FALSE(wrong.is_ok());
    CHECK(wrong.status().code() == ErrorCode::wrong_key);
    CHECK(wrong.status().message().find("passphrase") != std::string::npos);
    CHECK(file_bytes(db) == before);
    auto right = client::Device::open(home, "aoi passphrase", test_options());
    REQUIRE(right.is_ok());
    CHECK(holds(*right, id));
    CHECK(right->status()->signed_in);
    CHECK(right->status()->pending == 1);
}

TEST_CASE("a damaged replica is refused naming its folder, and the worker is told to keep it and go on in a new one") {
    FieldOrganisation org;
    std::string home, db;
    {
        auto aoi = org.device("aoi");
        created(*aoi, "client", {{"pseudonym", "K-107"}, {"area", "kita"}});
        home = aoi->home();
        db = aoi->database_path();
    }
    flip_byte(db, page_offset(1) + 100);  // inside page 1, which every open reads
    const std::string before = file_bytes(db);
    auto damaged = client::Device::open(home, "aoi passphrase", test_options());
    REQUIRE_FALSE(damaged.is_ok());
    CHECK(damaged.status().code() == ErrorCode::corrupt);
    CHECK_THAT(damaged.status().message(), Catch::Contains("the replica in " + home + " is damaged") &&
                                               Catch::Contains("corrupt page 1") &&
                                               Catch::Contains("Do not delete") && Catch::Contains("new home folder") &&
                                               Catch::Contains("salvage " + home));
    CHECK(file_bytes(db) == before);
}

TEST_CASE(
    "a damaged replica is salvaged into a new home folder: the work not yet synced comes along, and "
    "what its damage cost comes back from the server") {
    FieldOrganisation org;
    const auto kind = GENERATE(FrameVersion::superseded, FrameVersion::last_with_older);
    INFO((kind == FrameVersion::superseded ? "a frame a later one replaced" : "the last version of a page"));
    const DamagedReplica crashed(org, kind);
    const std::string db = crashed.home + "/replica.db";
    REQUIRE(client::Device::open(crashed.home, "aoi passphrase", test_options()).status().code() == ErrorCode::corrupt);
    const std::string damaged_wal = file_bytes(db + "-wal");

    const std::string home = org.new_home("aoi");
    auto report = client::Device::salvage(crashed.home, home, "aoi passphrase", test_options());
    INFO(report.status().to_string());
    REQUIRE(report.is_ok());
    CHECK(report->complete() == (kind == FrameVersion::superseded));
    CHECK(file_bytes(db + "-wal") == damaged_wal);  // only read

    auto saved = client::Device::open(home, "aoi passphrase", test_options());
    REQUIRE(saved.is_ok());
    // Complete, it goes on from where it was; else it pulls everything again.
    CHECK((report->complete() ? saved->status()->cursor > 0 : saved->status()->cursor == 0));
    const auto synced_report = synced(*saved);
    CHECK(synced_report.pushed == 1);  // her visit, not synced before the damage
    CHECK(synced_report.refused.empty());
    CHECK(holds(*saved, crashed.client));
    CHECK(holds(*saved, crashed.visit));
    CHECK(saved->status()->pending == 0);
    // Sato, her supervisor, sees the visit on the server.
    auto sato = org.device("sato");
    synced(*sato);
    CHECK(holds(*sato, crashed.visit));
}

TEST_CASE("a salvaged replica cut short before it was told to pull everything again does it at its next open") {
    FieldOrganisation org;
    const DamagedReplica crashed(org, FrameVersion::last_with_older);
    const std::string home = org.new_home("aoi");
    // As a salvage killed just after its rebuilt replica appeared leaves the new home: the
    // replica, and the mark the salvage made before it.
    REQUIRE(client::Device::salvage(crashed.home, home, "aoi passphrase", test_options()).is_ok());
    {
        auto saved = client::Device::open(home, "aoi passphrase", test_options());
        REQUIRE(saved.is_ok());
        REQUIRE(synced(*saved).pushed == 1);
        REQUIRE(saved->status()->cursor > 0);
    }
    std::ofstream(home + "/resync-needed").close();
    auto reopened = client::Device::open(home, "aoi passphrase", test_options());
    REQUIRE(reopened.is_ok());
    CHECK(reopened->status()->cursor == 0);  // everything again, from the start
    CHECK_FALSE(std::filesystem::exists(home + "/resync-needed"));
    synced(*reopened);
    CHECK(holds(*reopened, crashed.client));
    CHECK(holds(*reopened, crashed.visit));
}

TEST_CASE("a worker changes her replica's passphrase: only the new one opens it, and her work and session stay") {
    FieldOrganisation org;
    std::string home, db, id;
    auto aoi = org.device("aoi");
    id = created(*aoi, "client", {{"pseudonym", "K-107"}, {"area", "kita"}});
    home = aoi->home();
    db = aoi->database_path();

    SECTION("the current passphrase is checked first, and a change to nothing or to itself is refused") {
        const std::string before = file_bytes(db);
        Status wrong = aoi->change_passphrase("not aoi's passphrase", "a new passphrase for aoi");
        CHECK(wrong.code() == ErrorCode::wrong_key);
        CHECK(wrong.message().find("current passphrase") != std::string::npos);
        CHECK(aoi->change_passphrase("aoi passphrase", "").code() == ErrorCode::invalid_argument);
        CHECK(aoi->change_passphrase("aoi passphrase", "aoi passphrase").code() == ErrorCode::invalid_argument);
        CHECK(file_bytes(db) == before);
        aoi.reset();
        CHECK(client::Device::open(home, "aoi passphrase", test_options()).is_ok());
    }
    SECTION("after the change, the old passphrase is refused and the new one opens the work and syncs it") {
        REQUIRE(aoi->change_passphrase("aoi passphrase", "a new passphrase for aoi").is_ok());
        CHECK(holds(*aoi, id));  // the open replica goes on
        aoi.reset();
        auto old_one = client::Device::open(home, "aoi passphrase", test_options());
        REQUIRE_FALSE(old_one.is_ok());
        CHECK(old_one.status().code() == ErrorCode::wrong_key);
        auto reopened = client::Device::open(home, "a new passphrase for aoi", test_options());
        REQUIRE(reopened.is_ok());
        CHECK(holds(*reopened, id));
        CHECK(reopened->status()->pending == 1);
        auto report = reopened->sync();  // the session kept inside the replica still works
        REQUIRE(report.is_ok());
        CHECK(report->pushed == 1);
        for (const auto& entry : std::filesystem::directory_iterator(home)) {
            const std::string bytes = file_bytes(entry.path().string());
            CHECK(bytes.find("a new passphrase for aoi") == std::string::npos);
            CHECK(bytes.find("K-107") == std::string::npos);
        }
    }
}

namespace {

// How many of the main file's pages at `path` open under the data key that `header` (a copy of a
// key header) wraps for `key`: what whoever kept that copy and knows that key can read.
std::size_t pages_readable_with(const std::string& path, const std::string& header, const KeySource& key) {
    const UnwrappedKey data_key = unwrapped_data_key(header, path, key);
    const crypto_detail::PageKey page_key = data_key.page_key();
    const std::string bytes = file_bytes(path);
    const auto* base = reinterpret_cast<const std::uint8_t*>(bytes.data());
    std::vector<std::uint8_t> page(kPageBytes);
    std::size_t readable = 0;
    for (std::uint32_t n = 1; page_offset(n + 1) <= bytes.size(); ++n) {
        readable += crypto_detail::open_page(page_key, base + page_offset(n), page.data(),
                                             crypto_detail::PageBinding::main_page(n));
    }
    return readable;
}

}  // namespace

TEST_CASE("after a passphrase change the old passphrase with an old copy of the key header opens nothing") {
    FieldOrganisation org;
    auto aoi = org.device("aoi");
    const std::string home = aoi->home(), db = aoi->database_path();
    const auto before = created(*aoi, "client", {{"pseudonym", "K-108"}, {"area", "kita"}});
    const std::string old_header = file_bytes(db).substr(0, kKeyHeaderBytes);  // in a backup of the phone
    REQUIRE(aoi->change_passphrase("aoi passphrase", "a new passphrase for aoi").is_ok());
    const auto after = created(*aoi, "client", {{"pseudonym", "K-109"}, {"area", "kita"}});
    aoi.reset();
    {
        auto renewed = client::Device::open(home, "a new passphrase for aoi", test_options());
        REQUIRE(renewed.is_ok());
        CHECK(holds(*renewed, before));
        CHECK(holds(*renewed, after));
    }
    const KeySource old_passphrase = KeySource::passphrase("aoi passphrase", KdfParams::fast_for_tests());
    CHECK(pages_readable_with(db, old_header, old_passphrase) == 0);  // every page sealed under a new data key

    // The old header spliced back over the new one, the replica opened with the old passphrase.
    std::string spliced = file_bytes(db);
    spliced.replace(0, kKeyHeaderBytes, old_header);
    write_bytes(db, spliced);
    auto opened = client::Device::open(home, "aoi passphrase", test_options());
    INFO((opened.is_ok() ? "opened, K-109 readable: " + std::to_string(holds(*opened, after)) : "refused"));
    REQUIRE_FALSE(opened.is_ok());
    CHECK(opened.status().code() == ErrorCode::corrupt);
}

TEST_CASE("the session token is kept inside the encrypted replica, never in plain text on disk") {
    FieldOrganisation org;
    std::string home;
    {
        auto aoi = org.device("aoi");
        home = aoi->home();
        synced(*aoi);
    }
    REQUIRE(std::filesystem::exists(home + "/replica.db"));
    for (const auto& entry : std::filesystem::directory_iterator(home)) {
        const std::string bytes = file_bytes(entry.path().string());
        CHECK(bytes.find("aoi-password-1") == std::string::npos);
        CHECK(bytes.find(org.server.url()) == std::string::npos);
        CHECK(bytes.find(org.ids["aoi"]) == std::string::npos);
        CHECK(bytes.find("\"token\"") == std::string::npos);
    }
    // Reopened, the replica syncs with the stored session: no password needed.
    auto again = client::Device::open(home, "aoi passphrase", test_options());
    REQUIRE(again.is_ok());
    CHECK(again->sync().is_ok());
}

TEST_CASE("a change the server refuses is reported and kept in the outbox") {
    FieldOrganisation org;
    auto aoi = org.device("aoi");
    const auto client = created(*aoi, "client", {{"pseudonym", "K-107"}, {"area", "kita"}});
    synced(*aoi);
    auto ben = org.device("ben");  // not in this client's caseload
    const auto v = created(*ben, "home_visit", visit(client));
    const auto report = synced(*ben);
    REQUIRE(report.refused.size() == 1);
    CHECK(report.refused[0].record == v);
    CHECK(report.refused[0].code == ErrorCode::forbidden);
    CHECK(report.refused[0].cause == "outside_scope");  // for the app to explain in Japanese
    CHECK(ben->status()->refused == 1);
    CHECK(synced(*ben).refused.empty());  // reported once, still kept
    CHECK(ben->status()->refused == 1);
    // The client joins ben's caseload: asked to, the device sends the kept change again.
    org.assign(client, {"aoi", "ben"});
    CHECK(synced(*ben).pushed == 0);  // not on its own: the visit never reached the server
    auto retried = ben->retry_refused();
    REQUIRE(retried.is_ok());
    CHECK(*retried == 1);
    const auto again = synced(*ben);
    CHECK(again.pushed == 1);
    CHECK(again.refused.empty());
    CHECK(ben->status()->refused == 0);
    CHECK(ben->status()->pending == 0);
}

TEST_CASE("a worker's new phone lists the refused work the server keeps from her other phone") {
    BenRefused r("K-112");
    auto& [org, aoi, ben, client, v] = r;
    auto mine = ben->refused_on_server();
    REQUIRE(mine.is_ok());
    REQUIRE(mine->size() == 1);
    CHECK((*mine)[0].this_device);

    auto new_phone = org.device("ben");
    synced(*new_phone);
    CHECK(new_phone->refused()->empty());  // nothing of it on the new phone itself
    auto kept = new_phone->refused_on_server();
    REQUIRE(kept.is_ok());
    REQUIRE(kept->size() == 1);
    const client::KeptRefusal& k = (*kept)[0];
    CHECK(k.record == v);
    CHECK(k.collection == "home_visit");
    CHECK_FALSE(k.this_device);
    CHECK(k.code == ErrorCode::forbidden);
    CHECK(k.cause == "outside_scope");
    CHECK(k.reason.find("scope") != std::string::npos);
    CHECK(k.times == 1);
    CHECK_FALSE(k.dismissed);
    CHECK(aoi->refused_on_server()->empty());  // only her own

    // Dismissed by the supervisor: it moves to the dismissed list, with the comment for her.
    ApiClient sato(org.server.url());
    REQUIRE(sato.sign_in("sato", FieldOrganisation::password_of("sato")).status == 200);
    REQUIRE(sato.post("/v1/refused/" + k.change_id + "/dismiss", {{"comment", "Aoi visits K-112"}}).status == 200);
    CHECK(new_phone->refused_on_server()->empty());
    auto dismissed = new_phone->refused_on_server(true);
    REQUIRE(dismissed.is_ok());
    REQUIRE(dismissed->size() == 1);
    CHECK((*dismissed)[0].dismissed);
    CHECK((*dismissed)[0].comment == "Aoi visits K-112");

    // A revoked phone asking is erased, as by a sync.
    REQUIRE(org.admin->post("/v1/admin/devices/" + ben->status()->device_id + "/revoke", json::object()).status == 200);
    auto revoked = ben->refused_on_server();
    CHECK(revoked.status().code() == ErrorCode::forbidden);
    CHECK(revoked.status().message().find("erased") != std::string::npos);
    CHECK_FALSE(ben->status().is_ok());
}

TEST_CASE("a worker discards a refused change: it leaves the device, and the server keeps it for the supervisor") {
    BenRefused r("K-110");
    auto& [org, aoi, ben, client, v] = r;
    auto listed = ben->refused();
    REQUIRE(listed.is_ok());
    REQUIRE(listed->size() == 1);
    CHECK((*listed)[0].record == v);
    CHECK((*listed)[0].code == ErrorCode::forbidden);
    CHECK((*listed)[0].reason.find("scope") != std::string::npos);
    CHECK((*listed)[0].cause == "outside_scope");
    CHECK(ben->discard_refused(client).status().code() == ErrorCode::not_found);
    auto discarded = ben->discard_refused(v);
    REQUIRE(discarded.is_ok());
    CHECK(*discarded == 1);
    CHECK(ben->status()->refused == 0);
    CHECK(ben->refused()->empty());
    synced(*ben);
    CHECK(ben->get(v).status().code() == ErrorCode::not_found);  // the server never had it for ben
    CHECK(ben->status()->pending == 0);
}

TEST_CASE("a refused change holds back its record's later changes even when the next batch was prepared in advance") {
    FieldOrganisation org;
    auto aoi = org.device("aoi");
    const auto client = created(*aoi, "client", {{"pseudonym", "K-108"}, {"area", "kita"}});
    synced(*aoi);
    auto options = test_options();
    options.push_batch = 1;  // every batch's successor is prepared while it is in flight
    auto ben = org.device("ben", options);  // not in this client's caseload
    const auto v = created(*ben, "home_visit", visit(client));
    REQUIRE(ben->update(v, {{"duration_min", 50}}).is_ok());  // prepared next, then held back
    const auto own = created(*ben, "client", {{"pseudonym", "K-109"}, {"area", "kita"}});
    created(*ben, "home_visit", visit(own));
    const auto report = synced(*ben);
    REQUIRE(report.refused.size() == 1);  // the update never reached the server
    CHECK(report.refused[0].record == v);
    CHECK(report.pushed == 2);
    CHECK(ben->status()->refused == 1);
    const auto again = synced(*ben);
    CHECK(again.refused.empty());
    CHECK(again.pushed == 0);
}

TEST_CASE("a phone whose clock runs a day ahead keeps the real time of its offline edits") {
    FieldOrganisation org;
    const auto real_now = [] {
        return std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::system_clock::now().time_since_epoch())
            .count();
    };
    constexpr std::int64_t kDay = 24 * 3'600'000;
    client::DeviceOptions options = test_options();
    options.wall = [real_now] { return real_now() + kDay; };
    auto aoi = org.device("aoi", options);
    const auto client = created(*aoi, "client", {{"pseudonym", "K-120"}, {"area", "kita"}});
    const std::int64_t edited_at = real_now();
    std::this_thread::sleep_for(std::chrono::milliseconds(2500));  // offline a while
    synced(*aoi);

    ApiClient sato(org.server.url());
    REQUIRE(sato.sign_in("sato", FieldOrganisation::password_of("sato")).status == 200);
    Reply read = sato.get("/v1/records/" + client);
    REQUIRE(read.status == 200);
    const auto stamp = sync::Hlc::parse(read.body["history"][0]["hlc"].get<std::string>());
    REQUIRE(stamp);
    // Not a day ahead (it would win every later edit), and not the time of the sync either: the
    // push carries the phone's clock reading, the server measures the skew from it and takes it
    // off, so the edit keeps its real time.
    CHECK(stamp->wall_ms >= edited_at - 1000);
    CHECK(stamp->wall_ms <= edited_at + 1000);

    // The phone knows its clock is a day ahead, and says so with its next push: the administrator
    // sees which phone's clock to set right.
    const auto offset = aoi->status()->clock_offset_ms;
    REQUIRE(offset);
    CHECK(std::llabs(*offset + kDay) < 5000);
    created(*aoi, "client", {{"pseudonym", "K-121"}, {"area", "kita"}});
    synced(*aoi);
    json devices = org.admin->get("/v1/admin/devices").body["devices"];
    bool seen = false;
    for (const auto& d : devices) {
        if (d["id"] != aoi->status()->device_id) continue;
        seen = true;
        CHECK(std::llabs(d["clock_ahead_ms"].get<std::int64_t>() - kDay) < 5000);
        CHECK(d["clock_read_at"].get<std::int64_t>() > 0);
    }
    CHECK(seen);
}

TEST_CASE("records cannot be made before signing in, and another worker cannot take over a replica") {
    FieldOrganisation org;
    const std::string home = org.new_home("aoi");
    {
        auto fresh = client::Device::open(home, "aoi passphrase", test_options());
        REQUIRE(fresh.is_ok());
        auto id = fresh->create("client", {{"pseudonym", "K-108"}, {"area", "kita"}});
        REQUIRE_FALSE(id.is_ok());
        CHECK(id.status().message().find("sign in") != std::string::npos);
        CHECK_FALSE(fresh->sync().is_ok());
        REQUIRE(fresh->sign_in(org.server.url(), "aoi", FieldOrganisation::password_of("aoi")).is_ok());
        Status other = fresh->sign_in(org.server.url(), "ben", FieldOrganisation::password_of("ben"));
        CHECK(other.code() == ErrorCode::forbidden);
        Status bad = fresh->sign_in(org.server.url(), "aoi", "wrong-password-1");
        CHECK(bad.code() == ErrorCode::forbidden);
        CHECK_THAT(bad.message(), Catch::Contains("password"));
        CHECK(fresh->status()->username == "aoi");
        // The session it had goes on: a record made now syncs with it.
        CHECK(fresh->create("client", {{"pseudonym", "K-10A"}, {"area", "kita"}}).is_ok());
        auto after = fresh->sync();
        INFO(after.status().to_string());
        CHECK(after.is_ok());
        CHECK(fresh->status()->pending == 0);
    }
    auto reopened = client::Device::open(home, "aoi passphrase", test_options());
    REQUIRE(reopened.is_ok());
    CHECK(reopened->status()->username == "aoi");
    CHECK(reopened->create("client", {{"pseudonym", "K-109"}, {"area", "kita"}}).is_ok());
}

TEST_CASE("invalid records are refused offline naming the field") {
    FieldOrganisation org;
    auto aoi = org.device("aoi");
    const auto client = created(*aoi, "client", {{"pseudonym", "K-110"}, {"area", "kita"}});
    json bad = visit(client);
    bad["duration_min"] = 5000;
    auto id = aoi->create("home_visit", bad);
    REQUIRE_FALSE(id.is_ok());
    CHECK(id.status().code() == ErrorCode::validation);
    CHECK(id.status().message().find("duration_min") != std::string::npos);
    CHECK(aoi->status()->pending == 1);
    auto filtered = aoi->list("client", {{"pseudonym", "K-110"}});
    REQUIRE(filtered.is_ok());
    CHECK(filtered->size() == 1);
    CHECK(aoi->list("client", {{"pseudonym", "nobody"}})->empty());
}
