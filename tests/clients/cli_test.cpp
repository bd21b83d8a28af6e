// The real `tsunagu` binary, with its replica in a temporary TSUNAGU_HOME, against a real server.
#include <sys/stat.h>
#include <unistd.h>

#include <csignal>
#include <cstring>
#include <filesystem>
#include <sstream>
#include <thread>

#include "cli_driver.h"
#include "field_org.h"
#include "support/run_program.h"
#include "support/running_program.h"

using namespace tsunagu;
using namespace tsunagu::testing;
using nlohmann::json;

namespace {

// The address space a `tsunagu` command is given where a test caps it (prlimit --as).
constexpr std::size_t kMemoryCap = 128u << 20;

}  // namespace

TEST_CASE("the command line signs in, records offline, lists, syncs and reports status") {
    FieldOrganisation org;
    Cli cli{org, org.new_home("cli")};
    auto init = cli({"init", "--server", org.server.url(), "--user", "aoi"});
    INFO(init.out << init.err);
    REQUIRE(init.exit_code == 0);
    CHECK(init.out.find("signed in as aoi") != std::string::npos);

    const std::string client = cli.as_json({"record", "client", "pseudonym=K-301", "area=kita"})["id"];
    auto recorded = cli({"record", "home_visit", "client=" + client, "date=2020-06-01", "duration_min=45",
                         "purpose=check_in", "risk_flags=housing,isolation"});
    INFO(recorded.out << recorded.err);
    REQUIRE(recorded.exit_code == 0);
    CHECK(recorded.out.find("recorded home_visit") != std::string::npos);

    json visits = cli.as_json({"list", "home_visit"});
    REQUIRE(visits.size() == 1);
    CHECK(visits[0]["fields"]["duration_min"] == 45);
    CHECK(visits[0]["fields"]["risk_flags"] == json::array({"housing", "isolation"}));
    CHECK(cli.as_json({"list", "home_visit", "purpose=crisis_follow_up"}).empty());
    CHECK(cli.as_json({"list", "home_visit", "risk_flags=isolation"}).size() == 1);
    const std::string visit = visits[0]["id"];

    auto edited = cli({"edit", visit, "duration_min=50"});
    CHECK(edited.exit_code == 0);
    auto shown = cli({"show", visit});
    CHECK(shown.exit_code == 0);
    CHECK(shown.out.find("duration_min: 50") != std::string::npos);
    CHECK(shown.out.find("risk_flags: housing,isolation") != std::string::npos);

    json before = cli.as_json({"status"});
    CHECK(before["pending"] == 3);
    CHECK(before["last_sync_ms"] == 0);
    CHECK(before["username"] == "aoi");
    CHECK(before["clock_offset_ms"].is_null());  // not known before the first sync
    auto human_status = cli({"status"});
    CHECK(human_status.out.find("pending changes: 3") != std::string::npos);
    CHECK(human_status.out.find("held changes (records no longer in your caseload): 0") != std::string::npos);
    CHECK(human_status.out.find("last sync: never") != std::string::npos);

    auto synced_run = cli({"sync"});
    INFO(synced_run.out << synced_run.err);
    REQUIRE(synced_run.exit_code == 0);
    CHECK(synced_run.out.find("pushed 3") != std::string::npos);
    CHECK(synced_run.out.find('[') == std::string::npos);  // no progress bar when not a terminal
    json after = cli.as_json({"status"});
    CHECK(after["pending"] == 0);
    CHECK(after["last_sync_ms"] > 0);
    CHECK(after["clock_offset_ms"].is_number_integer());
    CHECK(cli({"status"}).out.find("clock: right (within a minute of the server's)") != std::string::npos);
    CHECK(cli.as_json({"sync"})["pushed"] == 0);
    CHECK(cli.as_json({"conflicts"}).empty());
    CHECK(cli.as_json({"retry"})["retried"] == 0);
    CHECK(cli({"retry"}).out.find("0 refused change(s) will be sent again") != std::string::npos);
    CHECK(cli({"retry", "now"}).exit_code == 2);
    CHECK(cli({"discard"}).exit_code == 2);
    CHECK(cli.as_json({"refused"}).empty());
    CHECK(cli({"refused"}).out.find("0 refused change(s)") != std::string::npos);
    auto nothing_to_discard = cli({"discard", visit});
    CHECK(nothing_to_discard.exit_code == 1);
    CHECK(nothing_to_discard.err.find("no refused change") != std::string::npos);

    auto sato = org.device("sato");
    synced(*sato);
    CHECK(sato->get(visit)->fields["duration_min"] == 50);

    auto deleted = cli({"delete", visit});
    CHECK(deleted.exit_code == 0);
    CHECK(cli.as_json({"list", "home_visit"}).empty());
}

TEST_CASE("status counts a long outbox without reading it and new work is saved in bounded memory") {
    FieldOrganisation org;
    Cli cli{org, org.new_home("cli")};
    REQUIRE(cli({"init", "--server", org.server.url(), "--user", "aoi"}).exit_code == 0);
    const std::string notes(2000, 'n');
    REQUIRE(cli({"record", "client", "pseudonym=K-307", "area=kita", "notes=" + notes}).exit_code == 0);
    // Weeks offline: 60,000 more changes with 2,000-character notes (120 MB), copied in SQL rather
    // than recorded one by one (in a rollback journal, which takes a large transaction faster than
    // the WAL; the command goes back to the WAL as it opens the replica).
    constexpr int kCopies = 60'000, kPerTransaction = 10'000;
    {
        StoreOptions rollback;
        rollback.journal_mode = JournalMode::rollback;
        auto store = Store::open(cli.home + "/replica.db", KeySource::passphrase(cli.passphrase), rollback);
        REQUIRE(store.is_ok());
        auto first = store->prepare("SELECT min(pos) FROM sync_outbox");
        REQUIRE(first.is_ok());
        auto found = first->step();
        REQUIRE((found.is_ok() && *found));
        const std::string recorded = std::to_string(first->column_int(0));
        for (int copied = 0; copied < kCopies; copied += kPerTransaction) {
            REQUIRE(store
                        ->exec("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < " +
                               std::to_string(kPerTransaction) +
                               ") INSERT INTO sync_outbox(change_id, record_id, state, hlc, raw_wall_ms, cursor,"
                               " change) SELECT randomblob(16), record_id, state, hlc, raw_wall_ms, cursor, change"
                               " FROM n, sync_outbox WHERE pos = " + recorded)
                        .is_ok());
        }
    }
    // The command's address space is capped well below what reading those changes takes (the
    // passphrase's Argon2id needs 64 MiB of it; the command needs under 84 MiB in all, and over
    // 200 MiB when it read the outbox to count it).
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    // A sanitizer reserves terabytes of shadow memory at start, which no cap leaves room for: under
    // one the commands run uncapped, and only the release suite measures the bound.
    constexpr bool kCapped = false;
#else
    constexpr bool kCapped = true;
#endif
    const auto capped = [&](std::vector<std::string> args) {
        args.insert(args.begin(), "--json");
        std::string program = TSUNAGU_CLI_PATH;
        if (kCapped) {
            args.insert(args.begin(), {"--as=" + std::to_string(kMemoryCap), program});
            program = "/usr/bin/prlimit";
        }
        auto run = run_program(program, args, cli.environment());
        INFO(run.out << run.err);
        REQUIRE(run.exit_code == 0);
        return json::parse(run.out);
    };
    CHECK(capped({"status"})["pending"] == kCopies + 1);
    CHECK(capped({"record", "client", "pseudonym=K-308", "area=kita"})["collection"] == "client");
    CHECK(capped({"status"})["pending"] == kCopies + 2);
}

TEST_CASE("the command line says why the server refused a change and what the worker can do") {
    FieldOrganisation org;
    auto aoi = org.device("aoi");
    const auto client = created(*aoi, "client", {{"pseudonym", "K-311"}, {"area", "kita"}});
    synced(*aoi);
    Cli cli{org, org.new_home("cli")};
    cli.password = FieldOrganisation::password_of("ben");  // not in this client's caseload
    REQUIRE(cli({"init", "--server", org.server.url(), "--user", "ben"}).exit_code == 0);
    const std::string visit = cli.as_json({"record", "home_visit", "client=" + client, "date=2020-06-01",
                                           "duration_min=30", "purpose=check_in"})["id"];

    auto run = cli({"sync"});
    INFO(run.out << run.err);
    CHECK(run.exit_code == 0);
    CHECK(run.out.find("refused home_visit " + visit + ": ") != std::string::npos);
    CHECK(run.out.find("(the client is not in your caseload now: ask your supervisor)") != std::string::npos);
    CHECK(run.out.find("tsunagu discard " + visit + " takes the server's version") != std::string::npos);
    auto listed = cli({"refused"});
    CHECK(listed.out.find("home_visit " + visit + ": ") != std::string::npos);
    CHECK(listed.out.find("ask your supervisor") != std::string::npos);
    CHECK(listed.out.find("1 refused change(s)") != std::string::npos);
    json refused = cli.as_json({"refused"});
    REQUIRE(refused.size() == 1);
    CHECK(refused[0]["record"] == visit);
    CHECK(refused[0]["cause"] == "outside_scope");
    CHECK(refused[0]["code"] == "forbidden");
    // What the server keeps of it, as a new phone would ask.
    auto on_server = cli({"refused", "--on-server"});
    INFO(on_server.out << on_server.err);
    CHECK(on_server.exit_code == 0);
    CHECK(on_server.out.find("home_visit " + visit + ": ") != std::string::npos);
    CHECK(on_server.out.find("from this device") != std::string::npos);
    CHECK(on_server.out.find("1 open refused change(s) kept on the server, 0 of them from your other devices") !=
          std::string::npos);
    json kept = cli.as_json({"refused", "--on-server"});
    REQUIRE(kept.size() == 1);
    CHECK(kept[0]["this_device"] == true);
    CHECK(kept[0]["cause"] == "outside_scope");
    CHECK_FALSE(kept[0].contains("set"));  // never the content
    CHECK(cli.as_json({"refused", "--on-server", "--dismissed"}).empty());
    CHECK(cli({"refused", "--dismissed"}).exit_code == 2);
}

TEST_CASE("the command line says when a sync removes a client taken from the worker and keeps her unsent edit") {
    FieldOrganisation org;
    Cli cli{org, org.new_home("cli")};
    REQUIRE(cli({"init", "--server", org.server.url(), "--user", "aoi"}).exit_code == 0);
    const std::string client = cli.as_json({"record", "client", "pseudonym=K-321", "area=kita"})["id"];
    const std::string visit = cli.as_json({"record", "home_visit", "client=" + client, "date=2020-06-01",
                                           "duration_min=30", "purpose=check_in"})["id"];
    REQUIRE(cli({"sync"}).exit_code == 0);
    REQUIRE(cli({"edit", visit, "duration_min=40"}).exit_code == 0);  // offline
    org.assign(client, {"ben"});  // the client is given to another worker meanwhile

    auto run = cli({"sync"});
    INFO(run.out << run.err);
    CHECK(run.exit_code == 0);
    CHECK(run.out.find("removed 2 no longer in your caseload") != std::string::npos);
    CHECK(run.out.find("1 unsent change(s) of records no longer in your caseload are kept on this device (held)") !=
          std::string::npos);
    CHECK(run.out.find("duration") == std::string::npos);  // never the content
    CHECK(cli.as_json({"list", "home_visit"}).empty());
    // The edit, kept: sent before the pull told of the change, it was refused as outside her caseload.
    json status = cli.as_json({"status"});
    CHECK(status["refused"] == 1);
    CHECK(status["pending"] == 0);
}

TEST_CASE("record and edit read field values from standard input so that content stays off the command line") {
    FieldOrganisation org;
    Cli cli{org, org.new_home("cli")};
    REQUIRE(cli({"init", "--server", org.server.url(), "--user", "aoi"}).exit_code == 0);
    const auto env = cli.environment();
    const auto with_input = [&](const std::vector<std::string>& args, const std::string& input) {
        auto run = run_program(TSUNAGU_CLI_PATH, args, env, std::chrono::milliseconds::zero(), input);
        INFO(run.out << run.err);
        REQUIRE(run.exit_code == 0);
        return json::parse(run.out);
    };
    const std::string notes = "lives alone; worried = the winter, talks of her daughter";
    const std::string id =
        with_input({"--json", "record", "client", "-"}, "pseudonym=K-309\r\narea=kita\n\nnotes=" + notes + "\n")["id"];
    json shown = cli.as_json({"show", id});
    CHECK(shown["fields"]["pseudonym"] == "K-309");
    CHECK(shown["fields"]["area"] == "kita");
    CHECK(shown["fields"]["notes"] == notes);  // spaces, ";" and "=" kept

    // A value holding what a terminal acts on (to clear the screen, return the cursor, or C1's
    // CSI) is shown with those replaced, so a record cannot rewrite the screen; JSON escapes them.
    const std::string sly = "a\x1b[2J\rsynced \xc2\x9b" "31m ok\xc2\xa0" "end";
    const std::string sly_id = with_input({"--json", "record", "client", "-"}, "pseudonym=K-320\narea=kita\nnotes=" + sly + "\n")["id"];
    CHECK(cli.as_json({"show", sly_id})["fields"]["notes"] == sly);
    const ProgramRun text = cli({"show", sly_id});
    CHECK(text.out.find("notes: a?[2J?synced ?31m ok\xc2\xa0" "end") != std::string::npos);  // (a no-break space is kept)
    CHECK(text.out.find('\x1b') == std::string::npos);
    CHECK(text.out.find('\r') == std::string::npos);

    CHECK(with_input({"--json", "edit", id, "-"}, "area=minami\nnotes=\n")["updated"] == 2);
    shown = cli.as_json({"show", id});
    CHECK(shown["fields"]["area"] == "minami");
    CHECK(shown["fields"]["notes"].is_null());  // an empty value clears, as on the command line

    auto bad = run_program(TSUNAGU_CLI_PATH, {"record", "client", "-"}, env, std::chrono::milliseconds::zero(),
                           "pseudonym=K-310\nnotes: mother reports CONTENT-MARKER\n");
    CHECK(bad.exit_code == 1);
    CHECK(bad.err.find("item 2: expected field=value") != std::string::npos);
    CHECK(bad.err.find("CONTENT-MARKER") == std::string::npos);  // what a line says is never shown back
    CHECK(cli.as_json({"list", "client"}).size() == 2);  // nothing half recorded
    // A field given twice is refused: keeping the last would lose the first without a word.
    auto twice = run_program(TSUNAGU_CLI_PATH, {"record", "client", "-"}, env, std::chrono::milliseconds::zero(),
                             "pseudonym=K-311\narea=kita\nnotes=first half\nnotes=second half\n");
    CHECK(twice.exit_code == 1);
    CHECK(twice.err.find("field \"notes\" is given twice (item 3 and item 4)") != std::string::npos);
    CHECK(cli.as_json({"list", "client"}).size() == 2);
    auto unknown = run_program(TSUNAGU_CLI_PATH, {"--json", "record", "client", "-"}, env,
                               std::chrono::milliseconds::zero(), "pseudonym=K-312\nsaid she would CONTENT-MARKER=x\n");
    CHECK(unknown.exit_code == 1);
    CHECK(unknown.err.find("item 2: client has no such field") != std::string::npos);
    CHECK(unknown.out.find("CONTENT-MARKER") == std::string::npos);
    CHECK(unknown.err.find("CONTENT-MARKER") == std::string::npos);
}

TEST_CASE("resolve and list read their values from standard input so that content stays off the command line") {
    FieldOrganisation org;
    Cli cli{org, org.new_home("cli")};
    REQUIRE(cli({"init", "--server", org.server.url(), "--user", "aoi"}).exit_code == 0);
    const auto with_input = [&](const std::vector<std::string>& args, const std::string& input) {
        return run_program(TSUNAGU_CLI_PATH, args, cli.environment(), std::chrono::milliseconds::zero(), input);
    };
    const std::string id = cli.as_json({"record", "client", "pseudonym=K-312", "area=kita"})["id"];
    REQUIRE(cli({"record", "client", "pseudonym=K-313", "area=minami"}).exit_code == 0);

    SECTION("list COLLECTION - takes its filters as field=value lines") {
        auto kita = with_input({"--json", "list", "client", "-"}, "area=kita\r\n\npseudonym=K-312\n");
        INFO(kita.out << kita.err);
        REQUIRE(kita.exit_code == 0);
        json listed = json::parse(kita.out);
        REQUIRE(listed.size() == 1);
        CHECK(listed[0]["id"] == id);
        CHECK(json::parse(with_input({"--json", "list", "client", "-"}, "area=minami\n").out).size() == 1);
        CHECK(json::parse(with_input({"--json", "list", "client", "-"}, "\n").out).size() == 2);  // no filter
        auto bad = with_input({"list", "client", "-"}, "area kita\n");
        CHECK(bad.exit_code == 1);
        CHECK(bad.err.find("expected field=value") != std::string::npos);
    }

    SECTION("resolve ID FIELD - takes the value as standard input's one line") {
        // A conflict on the client's notes: her other phone and this command line both changed them.
        REQUIRE(cli({"sync"}).exit_code == 0);
        auto phone = org.device("aoi");
        synced(*phone);
        REQUIRE(phone->update(id, {{"notes", "noted on her phone"}}).is_ok());
        synced(*phone);
        REQUIRE(with_input({"edit", id, "-"}, "notes=noted at the command line\n").exit_code == 0);
        REQUIRE(cli({"sync"}).exit_code == 0);
        REQUIRE(cli.as_json({"conflicts"}).size() == 1);
        CHECK(cli({"conflicts"}).out.find("tsunagu resolve ID FIELD VALUE (or -: VALUE read from standard input)") !=
              std::string::npos);

        auto nothing = with_input({"resolve", id, "notes", "-"}, "");  // nothing piped in: no value made up
        CHECK(nothing.exit_code == 1);
        CHECK(nothing.err.find("resolve " + id + " notes -: nothing on standard input") != std::string::npos);
        auto several = with_input({"resolve", id, "notes", "-"}, "one line\nand another\n");
        CHECK(several.exit_code == 1);
        CHECK(several.err.find("several lines; give the value on one line") != std::string::npos);
        CHECK(cli.as_json({"conflicts"}).size() == 1);  // neither settled it

        const std::string settled = "both: lives alone = worried about the winter; talks of her daughter";
        auto resolved = with_input({"--json", "resolve", id, "notes", "-"}, settled + "\r\n");
        INFO(resolved.out << resolved.err);
        REQUIRE(resolved.exit_code == 0);
        CHECK(json::parse(resolved.out)["resolved"] == true);
        CHECK(cli.as_json({"show", id})["fields"]["notes"] == settled);  // spaces, ";", "=" and ": " kept
        CHECK(cli.as_json({"conflicts"}).empty());
    }
}

TEST_CASE("the command line refuses a bad value naming the field and says what to do") {
    FieldOrganisation org;
    Cli cli{org, org.new_home("cli")};
    REQUIRE(cli({"init", "--server", org.server.url(), "--user", "aoi"}).exit_code == 0);
    const std::string client = cli.as_json({"record", "client", "pseudonym=K-302", "area=kita"})["id"];

    auto not_number = cli({"record", "home_visit", "client=" + client, "date=2020-06-01", "duration_min=abc",
                           "purpose=check_in"});
    CHECK(not_number.exit_code == 1);
    CHECK(not_number.err.find("duration_min") != std::string::npos);
    CHECK(not_number.err.find("whole number") != std::string::npos);

    auto out_of_range = cli({"record", "home_visit", "client=" + client, "date=2020-06-01", "duration_min=5000",
                             "purpose=check_in"});
    CHECK(out_of_range.exit_code == 1);
    CHECK(out_of_range.err.find("duration_min") != std::string::npos);

    auto unknown_field = cli({"record", "client", "pseudonym=K-303", "area=kita", "colour=blue"});
    CHECK(unknown_field.exit_code == 1);
    CHECK(unknown_field.err.find("colour") != std::string::npos);
    CHECK(unknown_field.err.find("pseudonym") != std::string::npos);  // lists the fields there are

    auto missing_required = cli({"--json", "record", "home_visit", "client=" + client});
    CHECK(missing_required.exit_code == 1);
    json error = json::parse(missing_required.out, nullptr, false);
    REQUIRE_FALSE(error.is_discarded());
    CHECK(error["error"] == "validation");

    auto unknown_collection = cli({"list", "visits"});
    CHECK(unknown_collection.exit_code == 1);
    CHECK(unknown_collection.err.find("home_visit") != std::string::npos);
    CHECK(unknown_collection.err.find("\"visits\"") != std::string::npos);  // a name is shown back

    // Content typed where a collection or a field belongs is named by its place, never shown back.
    auto content_as_collection = cli({"record", "hears voices at night", "area=kita"});
    CHECK(content_as_collection.exit_code == 1);
    CHECK(content_as_collection.err.find("hears voices") == std::string::npos);
    CHECK(content_as_collection.err.find("item 1") != std::string::npos);
    auto content_as_field = cli({"resolve", client, "hears voices at night", "x"});
    CHECK(content_as_field.exit_code == 1);
    CHECK(content_as_field.err.find("hears voices") == std::string::npos);
    CHECK(content_as_field.err.find("item 2") != std::string::npos);

    auto usage = cli({"frobnicate"});
    CHECK(usage.exit_code == 2);
    CHECK(usage.err.find("--help") != std::string::npos);
    CHECK(cli.as_json({"status"})["pending"] == 1);
}

TEST_CASE("the command line reports a wrong passphrase, a missing init and an unreachable server with distinct exit codes") {
    FieldOrganisation org;
    const std::string home = org.new_home("cli");
    Cli cli{org, home};
    auto before_init = cli({"status"});
    CHECK(before_init.exit_code == 1);
    CHECK(before_init.err.find("tsunagu init") != std::string::npos);
    // No replica was made under the passphrase given to status: init may choose another.
    CHECK_FALSE(std::filesystem::exists(home + "/replica.db"));

    REQUIRE(cli({"init", "--server", org.server.url(), "--user", "aoi"}).exit_code == 0);
    Cli wrong = cli;
    wrong.passphrase = "some other passphrase";
    auto refused = wrong({"status"});
    CHECK(refused.exit_code == 3);
    CHECK(refused.err.find("wrong passphrase") != std::string::npos);

    auto asked = run_program(TSUNAGU_CLI_PATH, {"status"}, {{"TSUNAGU_HOME", cli.home}});
    CHECK(asked.exit_code == 1);
    CHECK(asked.err.find("TSUNAGU_PASSPHRASE") != std::string::npos);

    REQUIRE(cli({"record", "client", "pseudonym=K-304", "area=kita"}).exit_code == 0);
    org.server.stop(SIGKILL);
    auto offline = cli({"sync"});
    CHECK(offline.exit_code == 4);
    CHECK(offline.err.find("nothing is lost") != std::string::npos);
    CHECK(cli.as_json({"status"})["pending"] == 1);
}

TEST_CASE("the command line says a revoked device was erased, with how much unsent work, and exits 5") {
    FieldOrganisation org;
    Cli syncing{org, org.new_home("cli-sync")};
    Cli listing{org, org.new_home("cli-list")};
    Cli changing{org, org.new_home("cli-password")};
    for (Cli* cli : {&syncing, &listing, &changing}) {
        REQUIRE((*cli)({"init", "--server", org.server.url(), "--user", "aoi"}).exit_code == 0);
        REQUIRE((*cli)({"record", "client", "pseudonym=K-305", "area=kita"}).exit_code == 0);  // never pushed
        const std::string device = cli->as_json({"status"})["device_id"];
        REQUIRE(org.admin->post("/v1/admin/devices/" + device + "/revoke", json::object()).status == 200);
    }
    auto synced = syncing({"sync"});
    CHECK(synced.exit_code == 5);
    CHECK(synced.err.find("was erased, with 1 change(s) the server did not have") != std::string::npos);
    // Asking the server for refused work meets the same wipe, and says it the same way.
    auto listed = listing({"refused", "--on-server"});
    CHECK(listed.exit_code == 5);
    CHECK(listed.err.find("erased, with 1 change(s) the server did not have") != std::string::npos);
    CHECK(listing({"status"}).exit_code == 1);  // nothing left to open
    // So does a password change, whatever the command.
    auto changed = run_program(TSUNAGU_CLI_PATH, {"password"},
                               {{"TSUNAGU_HOME", changing.home}, {"TSUNAGU_PASSPHRASE", changing.passphrase},
                                {"TSUNAGU_PASSWORD", changing.password}, {"TSUNAGU_NEW_PASSWORD", "aoi-password-2"}});
    INFO(changed.err);
    CHECK(changed.exit_code == 5);
    CHECK(changed.err.find("erased, with 1 change(s) the server did not have") != std::string::npos);
}

TEST_CASE("a passphrase typed at the terminal is asked twice, even with TSUNAGU_PASSPHRASE set but empty") {
    TempDir home("tsunagu-cli-tty");
    // An empty variable counts as unset, for the confirmation as for the first reading: a typo
    // in a passphrase typed once would lock the worker out of her own replica.
    const std::map<std::string, std::string> env = {{"TSUNAGU_HOME", home.path().string()}, {"TSUNAGU_PASSPHRASE", ""},
                                                    {"TSUNAGU_PASSWORD", "not used"}};
    auto typo = run_in_terminal(TSUNAGU_CLI_PATH, {"init", "--server", "http://127.0.0.1:9", "--user", "aoi"}, env,
                                {{"New passphrase for this device's replica: ", "a passphrase for aoi"},
                                 {"Repeat the passphrase: ", "a passphrase for ao"}});
    INFO(typo.out);
    CHECK(typo.exit_code == 1);
    CHECK(typo.out.find("the two passphrases differ") != std::string::npos);
    CHECK(typo.out.find("a passphrase for") == std::string::npos);  // never echoed
}

TEST_CASE("init on a replica that is there asks for its passphrase once, not for a new one, and signs in with it") {
    // The way back from an ended session is `tsunagu init` again: asked for a "new" passphrase, a
    // worker would type one that does not open her replica, with her unsent work inside it.
    FieldOrganisation org;
    const std::string home = org.new_home("cli-again");
    Cli cli{org, home};
    REQUIRE(cli({"init", "--server", org.server.url(), "--user", "aoi"}).exit_code == 0);
    REQUIRE(cli({"record", "client", "pseudonym=K-305", "area=kita"}).exit_code == 0);
    const std::map<std::string, std::string> env = {{"TSUNAGU_HOME", home}, {"TSUNAGU_PASSPHRASE", ""},
                                                    {"TSUNAGU_PASSWORD", cli.password}};
    auto again = run_in_terminal(TSUNAGU_CLI_PATH, {"init", "--server", org.server.url(), "--user", "aoi"}, env,
                                 {{"Passphrase of the replica in " + home + ": ", cli.passphrase}});
    INFO(again.out);
    CHECK(again.exit_code == 0);
    CHECK(again.out.find("New passphrase") == std::string::npos);
    CHECK(again.out.find("Repeat") == std::string::npos);
    CHECK(again.out.find("signed in as aoi") != std::string::npos);
    CHECK(cli.as_json({"status"})["pending"] == 1);  // the unsent work is there, under the same passphrase
}

TEST_CASE("the command line takes secrets out of its environment and can dump no core") {
    TempDir home("tsunagu-cli-secrets");
    const std::map<std::string, std::string> env = {
        {"TSUNAGU_HOME", home.path().string()}, {"TSUNAGU_PASSPHRASE", ""},  // typed at the prompt
        {"TSUNAGU_PASSWORD", "password in the environment"},
        {"TSUNAGU_NEW_PASSWORD", "new password in the environment"},
        {"TSUNAGU_NEW_PASSPHRASE", "new passphrase in the environment"}};
    // Under a core limit to lift (where this test may set one), and not as root: the kernel shows
    // a process that cannot dump core by giving its /proc files to root.
    std::vector<std::string> command = {"init", "--server", "http://127.0.0.1:9", "--user", "aoi"};
    std::string program = TSUNAGU_CLI_PATH;
    TempDir reachable("tsunagu-cli-binary");
    if (::geteuid() == 0) {
        // A copy uid 65534 can run, wherever the build tree is (one under /root is closed to it),
        // and a home folder it may look into (init checks for a replica there before it asks).
        std::filesystem::permissions(reachable.path(), std::filesystem::perms(0755));
        std::filesystem::permissions(home.path(), std::filesystem::perms(0777));
        const std::string copy = reachable.file("tsunagu");
        std::filesystem::copy_file(TSUNAGU_CLI_PATH, copy);
        command.insert(command.begin(), {"--core=unlimited", "/usr/bin/setpriv", "--reuid=65534", "--regid=65534",
                                         "--clear-groups", copy});
        program = "/usr/bin/prlimit";
    }
    bool looked = false;
    auto run = run_in_terminal(
        program, command, env, {{"New passphrase for this device's replica: ", ""}}, std::chrono::seconds(20),
        [&](pid_t pid) {
            looked = true;
            const std::string proc = "/proc/" + std::to_string(pid);
            if (::geteuid() == 0) {  // only root reads the environment of a process that cannot dump core
                const std::string environment = slurp(proc + "/environ");
                CHECK(environment.find("TSUNAGU_HOME=") != std::string::npos);
                for (const auto& [name, value] : env) {
                    if (name != "TSUNAGU_HOME" && !value.empty()) CHECK(environment.find(value) == std::string::npos);
                }
            }
            const std::string limits = slurp(proc + "/limits");
            const auto core = limits.find("Max core file size");
            REQUIRE(core != std::string::npos);
            std::istringstream fields(limits.substr(core + std::strlen("Max core file size")));
            std::string soft, hard;
            fields >> soft >> hard;
            CHECK(soft == "0");
            CHECK(hard == "0");
            struct stat owner {};
            REQUIRE(::stat((proc + "/status").c_str(), &owner) == 0);
            CHECK(owner.st_uid == 0);  // not dumpable (it runs as 65534, or as this test's user)
        });
    INFO(run.out);
    CHECK(looked);
    CHECK(run.exit_code == 1);  // no passphrase typed
}

TEST_CASE("the command line changes the worker's password on the server, the way out of one an administrator set") {
    FieldOrganisation org;
    Cli cli{org, org.new_home("cli")};
    REQUIRE(cli({"init", "--server", org.server.url(), "--user", "aoi"}).exit_code == 0);
    REQUIRE(cli({"record", "client", "pseudonym=K-306", "area=kita"}).exit_code == 0);
    REQUIRE(org.admin->patch("/v1/admin/users/" + org.ids["aoi"], {{"password", "aoi one-time 2020"}}).status == 200);
    cli.password = "aoi one-time 2020";
    REQUIRE(cli({"init", "--server", org.server.url(), "--user", "aoi"}).exit_code == 0);  // signed in again
    auto refused = cli({"sync"});
    CHECK(refused.exit_code == 1);
    CHECK(refused.err.find("tsunagu password") != std::string::npos);
    auto changed = run_program(TSUNAGU_CLI_PATH, {"password"},
                               {{"TSUNAGU_HOME", cli.home}, {"TSUNAGU_PASSPHRASE", cli.passphrase},
                                {"TSUNAGU_PASSWORD", "aoi one-time 2020"}, {"TSUNAGU_NEW_PASSWORD", "aoi-password-2"}});
    INFO(changed.out << changed.err);
    CHECK(changed.exit_code == 0);
    CHECK(changed.out.find("password changed") != std::string::npos);
    CHECK(changed.out.find("aoi-password-2") == std::string::npos);
    auto synced_run = cli({"sync"});
    INFO(synced_run.err);
    CHECK(synced_run.exit_code == 0);
    CHECK(synced_run.out.find("pushed 1") != std::string::npos);
}

TEST_CASE("a sync killed with SIGKILL at any moment loses nothing and the next one completes") {
    FieldOrganisation org;
    // Aoi's caseload, made on another phone: her new one pulls it all.
    constexpr int kVisits = 20000;
    auto tablet = org.device("aoi");
    const auto client = created(*tablet, "client", {{"pseudonym", "K-308"}, {"area", "kita"}});
    for (int i = 0; i < kVisits; ++i) created(*tablet, "home_visit", visit(client, i));
    synced(*tablet);

    Cli cli{org, org.new_home("cli")};
    REQUIRE(cli({"init", "--server", org.server.url(), "--user", "aoi"}).exit_code == 0);
    std::vector<std::string> made;
    for (int i = 0; i < 3; ++i) {
        made.push_back(cli.as_json({"record", "meeting", "kind=case_conference", "date=2020-10-0" + std::to_string(i + 1),
                                    "participants=3"})["id"]);
    }
    // Killed once it has the replica open, after 0 to 800 ms more: pushing, pulling pages,
    // applying them, or done.
    int cut = 0;
    for (int after_ms : {0, 100, 200, 400, 800}) {
        INFO("killed " << after_ms << " ms after it opened the replica");
        RunningProgram sync(TSUNAGU_CLI_PATH, {"sync"}, {{"TSUNAGU_HOME", cli.home}, {"TSUNAGU_PASSPHRASE", cli.passphrase}});
        // A sync with little left to do may open the replica and exit before it is seen open.
        if (sync.wait_until_open(cli.home + "/replica.db")) {
            std::this_thread::sleep_for(std::chrono::milliseconds(after_ms));
            if (sync.kill().exit_code == 128 + SIGKILL) ++cut;
        } else {
            const auto ended = sync.finish();
            INFO(ended.err);
            CHECK(ended.exit_code == 0);
        }
        // The replica opens, whole, with the work not yet known to be sent still counted.
        const json status = cli.as_json({"status"});
        CHECK(status["pending"].get<int>() <= 3);
    }
    WARN(cut << " of 5 kills landed before the sync ended");
    CHECK(cut >= 2);  // some kills did land in the middle of a sync

    auto finished = cli({"sync"});
    INFO(finished.out << finished.err);
    REQUIRE(finished.exit_code == 0);
    CHECK(cli.as_json({"status"})["pending"] == 0);
    CHECK(cli.as_json({"list", "home_visit"}).size() == static_cast<std::size_t>(kVisits));
    // Each of her meetings reached the server once.
    ApiClient sato(org.server.url());
    REQUIRE(sato.sign_in("sato", FieldOrganisation::password_of("sato")).status == 200);
    for (const auto& id : made) {
        Reply read = sato.get("/v1/records/" + id);
        REQUIRE(read.status == 200);
        CHECK(read.body["history"].size() == 1);
    }
}

TEST_CASE("the command line refuses a wrong password at sign-in and at a password change and keeps its work") {
    FieldOrganisation org;
    Cli cli{org, org.new_home("cli")};
    Cli mistyped = cli;
    mistyped.password = "not-her-password";
    auto refused = mistyped({"init", "--server", org.server.url(), "--user", "aoi"});
    INFO(refused.out << refused.err);
    CHECK(refused.exit_code == 1);
    CHECK_THAT(refused.err, Catch::Contains("password"));
    CHECK(refused.err.find("not-her-password") == std::string::npos);

    REQUIRE(cli({"init", "--server", org.server.url(), "--user", "aoi"}).exit_code == 0);
    REQUIRE(cli({"record", "client", "pseudonym=K-307", "area=kita"}).exit_code == 0);
    auto unchanged = run_program(TSUNAGU_CLI_PATH, {"password"},
                                 {{"TSUNAGU_HOME", cli.home}, {"TSUNAGU_PASSPHRASE", cli.passphrase},
                                  {"TSUNAGU_PASSWORD", "not-her-password"}, {"TSUNAGU_NEW_PASSWORD", "aoi-password-3"}});
    INFO(unchanged.out << unchanged.err);
    CHECK(unchanged.exit_code == 1);
    CHECK_THAT(unchanged.err, Catch::Contains("password"));
    CHECK(unchanged.out.find("password changed") == std::string::npos);
    // Her password and her session are as they were: the record syncs, and she signs in as before.
    auto synced_run = cli({"sync"});
    INFO(synced_run.err);
    CHECK(synced_run.exit_code == 0);
    CHECK(synced_run.out.find("pushed 1") != std::string::npos);
    ApiClient again(org.server.url());
    CHECK(again.sign_in("aoi", FieldOrganisation::password_of("aoi")).status == 200);
}

TEST_CASE("the command line changes the replica's passphrase, asking for the current one first") {
    FieldOrganisation org;
    Cli cli{org, org.new_home("cli")};
    REQUIRE(cli({"init", "--server", org.server.url(), "--user", "aoi"}).exit_code == 0);
    REQUIRE(cli({"record", "client", "pseudonym=K-305", "area=kita"}).exit_code == 0);

    auto run_with = [&](const std::string& current, const std::string& next) {
        std::map<std::string, std::string> env = {{"TSUNAGU_HOME", cli.home}, {"TSUNAGU_PASSPHRASE", current}};
        if (!next.empty()) env["TSUNAGU_NEW_PASSPHRASE"] = next;
        auto run = run_program(TSUNAGU_CLI_PATH, {"passphrase"}, env);
        CHECK(run.out.find(next.empty() ? current : next) == std::string::npos);
        CHECK(run.err.find(next.empty() ? current : next) == std::string::npos);
        return run;
    };
    CHECK(run_with("some other passphrase", "cli new passphrase").exit_code == 3);
    auto no_new = run_with(cli.passphrase, "");  // no terminal to ask at
    CHECK(no_new.exit_code == 1);
    CHECK(no_new.err.find("TSUNAGU_NEW_PASSPHRASE") != std::string::npos);

    auto changed = run_with(cli.passphrase, "cli new passphrase");
    INFO(changed.err);
    REQUIRE(changed.exit_code == 0);
    CHECK(changed.out.find("passphrase changed") != std::string::npos);
    CHECK(cli({"status"}).exit_code == 3);  // the old one
    Cli renewed = cli;
    renewed.passphrase = "cli new passphrase";
    CHECK(renewed.as_json({"status"})["pending"] == 1);
    CHECK(renewed({"sync"}).exit_code == 0);
}

TEST_CASE("the command line salvages a damaged replica into a new home folder, and its work syncs from there") {
    FieldOrganisation org;
    const std::string crashed = DamagedReplica(org, FrameVersion::superseded).home;
    Cli cli{org, org.new_home("cli")};
    cli.passphrase = "aoi passphrase";

    auto opened = cli({"--home", crashed, "status"});
    CHECK(opened.exit_code == 1);
    CHECK(opened.err.find("salvage " + crashed) != std::string::npos);

    Cli wrong = cli;
    wrong.passphrase = "not aoi's passphrase";
    auto refused = wrong({"salvage", crashed});
    CHECK(refused.exit_code == 3);
    CHECK(refused.err.find("wrong passphrase") != std::string::npos);
    CHECK_FALSE(std::filesystem::exists(cli.home + "/replica.db"));

    auto salvaged = cli({"salvage", crashed});
    INFO(salvaged.out << salvaged.err);
    REQUIRE(salvaged.exit_code == 0);
    CHECK(salvaged.out.find("nothing was lost") != std::string::npos);
    CHECK(salvaged.out.find("tsunagu --home " + cli.home + " sync") != std::string::npos);
    CHECK(cli.as_json({"status"})["pending"] == 1);
    auto sync = cli({"sync"});
    INFO(sync.out << sync.err);
    CHECK(sync.exit_code == 0);
    CHECK(cli.as_json({"status"})["pending"] == 0);

    auto again = cli({"salvage", crashed});  // into a home that holds a replica now
    CHECK(again.exit_code == 1);
    CHECK(again.err.find("already holds a replica") != std::string::npos);
}
