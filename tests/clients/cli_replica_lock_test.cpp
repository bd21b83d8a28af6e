// The replica's lock between real processes: a `tsunagu` command that has the replica open (here
// `record COLLECTION -`, which opens it and then waits for its standard input, as while a worker
// types a visit's notes) keeps every other from replacing or erasing it under it.
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include "cli_driver.h"
#include "field_org.h"
#include "support/running_program.h"

using namespace tsunagu;
using namespace tsunagu::testing;
using nlohmann::json;

namespace {

constexpr const char* kNewPassphrase = "cli new passphrase";

// `tsunagu record client -` started for `cli`, once it has the replica open (its own open holds
// the lock then, before the store's file is opened).
std::unique_ptr<RunningProgram> recording_client(const Cli& cli) {
    auto holder = std::make_unique<RunningProgram>(
        TSUNAGU_CLI_PATH, std::vector<std::string>{"--json", "record", "client", "-"},
        cli.environment());
    REQUIRE(holder->wait_until_open(cli.home + "/replica.db"));
    return holder;
}

// `tsunagu passphrase` from `cli`'s passphrase to kNewPassphrase.
ProgramRun change_passphrase(const Cli& cli) {
    auto env = cli.environment();
    env["TSUNAGU_NEW_PASSPHRASE"] = kNewPassphrase;
    return run_program(TSUNAGU_CLI_PATH, {"passphrase"}, env);
}

// `cli` after a passphrase change that must succeed: the same replica, under kNewPassphrase.
Cli changed_passphrase(const Cli& cli) {
    auto changed = change_passphrase(cli);
    INFO(changed.out << changed.err);
    REQUIRE(changed.exit_code == 0);
    Cli renewed = cli;
    renewed.passphrase = kNewPassphrase;
    return renewed;
}

// Aoi's command line signed in with one client recorded, and a `record client -` of hers that
// has the replica open.
struct HeldReplica {
    FieldOrganisation org;
    Cli cli{org, org.new_home("cli")};
    std::unique_ptr<RunningProgram> holder;

    HeldReplica() {
        REQUIRE(cli({"init", "--server", org.server.url(), "--user", "aoi"}).exit_code == 0);
        REQUIRE(cli({"record", "client", "pseudonym=K-420", "area=kita"}).exit_code == 0);
        holder = recording_client(cli);
    }
};

}  // namespace

TEST_CASE("a passphrase change is refused while another command has the replica open and loses nothing") {
    HeldReplica held;
    const Cli& cli = held.cli;

    auto refused = change_passphrase(cli);
    INFO(refused.out << refused.err);
    CHECK(refused.exit_code == 1);
    CHECK(refused.err.find("cannot change the passphrase: the replica in " + cli.home +
                           " is open in another process (the app, or another tsunagu command)") !=
          std::string::npos);
    CHECK(refused.err.find("close it, then try again. Nothing was changed") != std::string::npos);

    // The other command's work, committed after the refusal, is in the replica: with a change
    // made meanwhile it would have gone into the file renamed away, and vanished.
    auto recorded = held.holder->finish("pseudonym=K-421\narea=kita\n");
    INFO(recorded.out << recorded.err);
    REQUIRE(recorded.exit_code == 0);
    CHECK(cli.as_json({"list", "client"}).size() == 2);  // under the passphrase it had

    const Cli renewed = changed_passphrase(cli);
    CHECK(renewed.as_json({"list", "client"}).size() == 2);
    CHECK(renewed.as_json({"status"})["pending"] == 2);
}

TEST_CASE("a command killed with SIGKILL while it has the replica open holds it no more") {
    HeldReplica held;
    CHECK(change_passphrase(held.cli).exit_code == 1);

    // A crash: no destructor runs, nothing is closed by the program itself.
    CHECK(held.holder->kill().exit_code == 128 + SIGKILL);
    CHECK(changed_passphrase(held.cli).as_json({"list", "client"}).size() == 1);
}

TEST_CASE("a command is refused while another process replaces the replica and changes nothing") {
    FieldOrganisation org;
    Cli cli{org, org.new_home("cli")};
    REQUIRE(cli({"init", "--server", org.server.url(), "--user", "aoi"}).exit_code == 0);
    {
        // Held as a passphrase change in another process holds it while it renames the new file in.
        const int fd =
            ::open((cli.home + "/replica.lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        REQUIRE(fd >= 0);
        REQUIRE(::flock(fd, LOCK_EX | LOCK_NB) == 0);
        auto refused = cli({"record", "client", "pseudonym=K-423", "area=kita"});
        ::close(fd);
        INFO(refused.out << refused.err);
        CHECK(refused.exit_code == 1);
        CHECK(refused.err.find("another process is changing the replica in " + cli.home +
                               " as a whole") != std::string::npos);
        CHECK(refused.err.find("try again once that has finished") != std::string::npos);
    }
    CHECK(cli.as_json({"list", "client"}).empty());
    CHECK(cli({"record", "client", "pseudonym=K-423", "area=kita"}).exit_code == 0);
}

TEST_CASE("a revoked device is erased only once no other command has its replica open, its work counted") {
    HeldReplica held;
    const Cli& cli = held.cli;
    const std::string device = cli.as_json({"status"})["device_id"];
    const std::string revoke = "/v1/admin/devices/" + device + "/revoke";
    REQUIRE(held.org.admin->post(revoke, json::object()).status == 200);

    auto refused = cli({"sync"});
    INFO(refused.out << refused.err);
    CHECK(refused.exit_code == 1);
    CHECK(refused.err.find("the server revoked this device, but its replica in " + cli.home +
                           " cannot be erased yet") != std::string::npos);
    CHECK(refused.err.find("Close that, then sync again, which erases it") != std::string::npos);
    REQUIRE(held.holder->finish("pseudonym=K-425\narea=kita\n").exit_code == 0);

    auto erased = cli({"sync"});
    INFO(erased.out << erased.err);
    CHECK(erased.exit_code == 5);
    CHECK(erased.err.find("was erased, with 2 change(s) the server did not have") !=
          std::string::npos);
}
