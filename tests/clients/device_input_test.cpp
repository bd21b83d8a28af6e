// What a caller hands the device library that it cannot use (a home folder the operating system
// cannot look into, text that is not UTF-8) is refused with a Status naming it, never thrown.
#include <unistd.h>

#include <array>
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

TEST_CASE("a username, password or device name that is not UTF-8 is refused naming which, never thrown or shown") {
    TempDir dir("tsunagu-utf8-sign-in");
    auto device = open_with(dir, [&] {
        return std::make_unique<FakeServer>("", nullptr, 200, sign_in_answer(std::string(32, 'e'), std::string(32, 'd')));
    });
    const std::string shift_jis = "\x93\xfa\x96\x7b";  // 日本 in Shift_JIS
    const std::pair<std::array<std::string, 3>, const char*> cases[] = {
        {{shift_jis, "aoi-password-1", "phone"}, "the username"},
        {{"aoi", "pass-" + shift_jis, "phone"}, "the password"},
        {{"aoi", "aoi-password-1", shift_jis + "のPC"}, "the device name"},
    };
    for (const auto& [given, named] : cases) {
        INFO(named);
        Status signed_in;
        REQUIRE_NOTHROW(signed_in = device.sign_in("https://tsunagu.example.org", given[0], given[1], given[2]));
        CHECK(signed_in.code() == ErrorCode::invalid_argument);
        CHECK_THAT(signed_in.message(), Catch::StartsWith(named) && Catch::Contains("UTF-8"));
        CHECK(signed_in.message().find(shift_jis) == std::string::npos);
        CHECK_FALSE(device.status()->signed_in);
    }
    REQUIRE(device.sign_in("https://tsunagu.example.org", "aoi", "aoi-password-1").is_ok());
    Status changed;
    REQUIRE_NOTHROW(changed = device.change_password("aoi-password-1", "new-" + shift_jis));
    CHECK(changed.code() == ErrorCode::invalid_argument);
    CHECK_THAT(changed.message(), Catch::StartsWith("the new password"));
}
