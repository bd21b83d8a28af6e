// The real `tsunagu` binary run as a person would, with its replica in a temporary TSUNAGU_HOME,
// against the FieldOrganisation's server: for the command line's tests.
#pragma once

#include <catch2/catch.hpp>

#include <map>
#include <string>
#include <vector>

#include "field_org.h"
#include "support/run_program.h"

namespace tsunagu::testing {

// A worker's `tsunagu`: each call runs one command with her home, passphrase and password, and
// checks that nothing it prints carries one of her secrets.
struct Cli {
    FieldOrganisation& org;
    std::string home;
    std::string passphrase = "cli passphrase for aoi";
    std::string password = FieldOrganisation::password_of("aoi");

    ProgramRun operator()(const std::vector<std::string>& args) const {
        auto run = run_program(TSUNAGU_CLI_PATH, args,
                               {{"TSUNAGU_HOME", home},
                                {"TSUNAGU_PASSPHRASE", passphrase},
                                {"TSUNAGU_PASSWORD", password}});
        // Nothing the command prints may carry a secret.
        CHECK(run.out.find(passphrase) == std::string::npos);
        CHECK(run.err.find(passphrase) == std::string::npos);
        CHECK(run.out.find(password) == std::string::npos);
        CHECK(run.err.find(password) == std::string::npos);
        CHECK(run.out.find("token") == std::string::npos);
        return run;
    }
    nlohmann::json as_json(const std::vector<std::string>& args) const {
        auto with_json = args;
        with_json.insert(with_json.begin(), "--json");
        auto run = (*this)(with_json);
        INFO(run.out << run.err);
        REQUIRE(run.exit_code == 0);
        nlohmann::json j = nlohmann::json::parse(run.out, nullptr, false);
        REQUIRE_FALSE(j.is_discarded());
        return j;
    }

    // The environment a command of this replica runs with (no password: it is for init).
    std::map<std::string, std::string> environment() const {
        return {{"TSUNAGU_HOME", home}, {"TSUNAGU_PASSPHRASE", passphrase}};
    }
};

}  // namespace tsunagu::testing
