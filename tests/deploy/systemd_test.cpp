// deploy/tsunagu-server.service: installed with the binaries by `cmake --install`, accepted by
// systemd's own checker, sandboxed, and its command line one this server starts with.
#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/wait.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "../api/api_client.h"
#include "support/run_program.h"
#include "support/server_process.h"
#include "support/temp_dir.h"

using namespace tsunagu::testing;
namespace fs = std::filesystem;

namespace {

std::string replaced(std::string text, const std::string& from, const std::string& to) {
    for (auto at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size())) {
        text.replace(at, from.size(), to);
    }
    return text;
}

// The words of the unit's ExecStart= line.
std::vector<std::string> exec_start_of(const std::string& unit) {
    std::istringstream lines(unit);
    for (std::string line; std::getline(lines, line);) {
        if (line.rfind("ExecStart=", 0) != 0) continue;
        std::istringstream words(line.substr(10));
        std::vector<std::string> command;
        for (std::string word; words >> word;) command.push_back(word);
        return command;
    }
    return {};
}

}  // namespace

TEST_CASE("the systemd unit installs with the server, passes systemd-analyze verify, and its command line serves") {
    TempDir dir("tsunagu-systemd");
    const std::string prefix = dir.file("prefix");
    const ProgramRun installed = run_program(TSUNAGU_CMAKE, {"--install", TSUNAGU_BINARY_DIR, "--prefix", prefix});
    INFO(installed.out << installed.err);
    REQUIRE(installed.exit_code == 0);
    for (const char* file : {"bin/tsunagu-server", "bin/tsunagu", "lib/systemd/system/tsunagu-server.service",
                             "share/doc/tsunagu/README.md"}) {
        CHECK(fs::exists(prefix + "/" + file));
    }
    const std::string unit = slurp(prefix + "/lib/systemd/system/tsunagu-server.service");

    // systemd's checker, with the unit pointing at this installation instead of /usr/local.
    const std::string here = dir.file("tsunagu-server.service");
    std::ofstream(here) << replaced(unit, "/usr/local/bin/", prefix + "/bin/");
    const ProgramRun verified = run_program("/usr/bin/systemd-analyze", {"verify", here});
    INFO(verified.err);
    CHECK(verified.exit_code == 0);
    CHECK(verified.err.empty());

    // Secrets stay in the process, and it runs sandboxed as its own user.
    for (const char* line : {"User=tsunagu", "LimitCORE=0", "UMask=0077", "NoNewPrivileges=yes", "ProtectSystem=strict",
                             "PrivateTmp=yes", "MemoryDenyWriteExecute=yes", "CapabilityBoundingSet=\n",
                             "Restart=on-failure"}) {
        CHECK(unit.find(line) != std::string::npos);
    }

    // Its command line, in folders of this test's and on a free port, starts the installed server.
    std::vector<std::string> command = exec_start_of(unit);
    REQUIRE(command.size() >= 5);
    CHECK(command[0] == "/usr/local/bin/tsunagu-server");
    REQUIRE(command[1] == "--data");
    CHECK(command[2] == "/var/lib/tsunagu");
    REQUIRE(command[3] == "--listen");
    CHECK(command[4] == "http://127.0.0.1:8080");
    std::vector<std::string> rest(command.begin() + 5, command.end());
    for (auto& word : rest) word = replaced(word, "/var/backups/tsunagu", dir.file("backups"));
    ServerProcess server{prefix + "/bin/tsunagu-server", dir.file("data"), dir.file("server.log")};
    server.start(rest);
    ApiClient client(server.url());
    CHECK(client.get("/healthz").status == 200);
    CHECK(ApiClient(server.url()).sign_in("admin", server.admin_password()).status == 200);
    const int status = server.stop(SIGTERM);
    CHECK((WIFEXITED(status) && WEXITSTATUS(status) == 0));
    CHECK(fs::exists(dir.file("backups")));  // its backups, from --backup-dir
}
