// What a caller hands the device library that it cannot use (a home folder the operating system
// cannot look into, text that is not UTF-8) is refused with a Status naming it, never thrown.
#include <unistd.h>

#include <fstream>

#include "fake_server.h"

using namespace tsunagu;
using namespace tsunagu::testing;
using nlohmann::json;

TEST_CASE("a home folder whose name is too long or loops is refused as an I/O error, never thrown") {
    TempDir dir("tsunagu-home");
    const std::string too_long = dir.file(std::string(5000, 'h'));
    const std::string loop = dir.file("loop");
    REQUIRE(::symlink(loop.c_str(), loop.c_str()) == 0);  // a link to itself: ELOOP
    const std::string damaged = dir.file("damaged");  // holds a replica file, for salvage to look past
    std::filesystem::create_directories(damaged);
    std::ofstream(damaged + "/replica.db") << "not a replica";
    for (const std::string& home : {too_long, loop + "/home"}) {
        INFO(home.substr(0, 80));
        Result<client::Device> opened = Status(ErrorCode::internal, "not run");
        REQUIRE_NOTHROW(opened = client::Device::open(home, "aoi passphrase", test_options()));
        CHECK(opened.status().code() == ErrorCode::io_error);
        CHECK_THAT(opened.status().message(), Catch::Contains("cannot look into the replica's home folder"));

        Result<SalvageReport> salvaged = Status(ErrorCode::internal, "not run");
        REQUIRE_NOTHROW(salvaged = client::Device::salvage(home, dir.file("new-home"), "aoi passphrase", test_options()));
        CHECK(salvaged.status().code() == ErrorCode::io_error);
        REQUIRE_NOTHROW(salvaged = client::Device::salvage(damaged, home, "aoi passphrase", test_options()));
        CHECK(salvaged.status().code() == ErrorCode::io_error);
        CHECK_THAT(salvaged.status().message(), Catch::Contains("cannot look into the new home folder"));
    }
}

TEST_CASE("a field value that is not UTF-8 is refused naming the field, never thrown") {
    TempDir dir("tsunagu-utf8");
    auto device = open_with(dir, [&] {
        return std::make_unique<FakeServer>("", nullptr, 200, sign_in_answer(std::string(32, 'e'), std::string(32, 'd')));
    });
    REQUIRE(device.sign_in("https://tsunagu.example.org", "aoi", "aoi-password-1").is_ok());
    const std::string client = created(device, "client", {{"pseudonym", "K-303"}, {"area", "kita"}});
    auto notes = visit(client);
    notes["observations"] = std::string("\x93\xfa");  // Shift_JIS, not UTF-8

    Result<std::string> made = Status(ErrorCode::internal, "not run");
    REQUIRE_NOTHROW(made = device.create("home_visit", notes));
    CHECK(made.status().code() == ErrorCode::invalid_argument);
    CHECK_THAT(made.status().message(), Catch::Contains("\"observations\"") && Catch::Contains("UTF-8"));

    Status updated;
    REQUIRE_NOTHROW(updated = device.update(client, {{"pseudonym", std::string("K-\xff")}}));
    CHECK(updated.code() == ErrorCode::invalid_argument);
    CHECK_THAT(updated.message(), Catch::Contains("\"pseudonym\""));
    REQUIRE_NOTHROW(updated = device.update(client, {{std::string("\xc3"), "x"}}));
    CHECK(updated.code() == ErrorCode::invalid_argument);
    CHECK(device.status()->pending == 1);  // the client alone
}
