// Runs the C test program (c_api_test.c, compiled as C) against a real server.
#include "field_org.h"
#include "support/run_program.h"

using namespace tsunagu;
using namespace tsunagu::testing;

TEST_CASE("the C API program records, edits, queries, syncs and deletes against a real server") {
    FieldOrganisation org;
    const auto run = run_program(TSUNAGU_C_PROGRAM_PATH,
                                 {org.server.url(), "aoi", FieldOrganisation::password_of("aoi"), org.new_home("c")});
    INFO(run.out << run.err);
    CHECK(run.exit_code == 0);
    CHECK(run.out.find("c api ok") != std::string::npos);
    CHECK(run.out.find("FAILED") == std::string::npos);
    const auto at = run.out.find("client: ");
    REQUIRE(at != std::string::npos);
    const std::string client = run.out.substr(at + 8, 32);
    auto sato = org.device("sato");
    synced(*sato);
    CHECK(holds(*sato, client));
    CHECK(sato->list("home_visit")->empty());
}

TEST_CASE("the C API answers a sync that wiped a revoked device as forbidden, counting the unsent work lost") {
    FieldOrganisation org;
    std::string home;
    {
        auto aoi = org.device("aoi");
        created(*aoi, "client", {{"pseudonym", "K-106"}, {"area", "kita"}});
        synced(*aoi);
        created(*aoi, "client", {{"pseudonym", "K-107"}, {"area", "kita"}});  // offline, never pushed
        home = aoi->home();
        REQUIRE(org.admin->post("/v1/admin/devices/" + aoi->status()->device_id + "/revoke", nlohmann::json::object()).status ==
                200);
    }
    const auto run = run_program(TSUNAGU_C_PROGRAM_PATH, {"revoked", home, "aoi passphrase"});
    INFO(run.out << run.err);
    CHECK(run.exit_code == 0);
    CHECK(run.out.find("c api ok") != std::string::npos);
    CHECK(run.out.find("FAILED") == std::string::npos);
}

TEST_CASE("the C API salvages a damaged replica, which then opens and syncs") {
    FieldOrganisation org;
    const std::string damaged = DamagedReplica(org, FrameVersion::superseded).home;
    const auto run = run_program(TSUNAGU_C_PROGRAM_PATH, {"salvage", damaged, "aoi passphrase", org.new_home("c")});
    INFO(run.out << run.err);
    CHECK(run.exit_code == 0);
    CHECK(run.out.find("c api ok") != std::string::npos);
    CHECK(run.out.find("FAILED") == std::string::npos);
}
