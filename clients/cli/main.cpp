// tsunagu: the command-line client of the device library, for scripting, demos and load tests.
#include <cstdlib>
#include <iostream>
#include <string>

#include "clients/cli/commands.h"
#include "clients/cli/terminal.h"
#include "crypto/secret.h"
#include "sync/protocol.h"

namespace {

constexpr const char* kUsage = R"(usage: tsunagu [--home DIR] [--json] COMMAND ...

  init --server URL --user NAME [--device-name NAME]
                              create this device's encrypted replica and sign in
  record COLLECTION field=value ...   record offline (lists: a,b,c; empty value clears)
  record COLLECTION -         the same, the field=value lines read from standard input
  edit ID field=value ...     change fields of a record (or edit ID -, as record)
  delete ID                   delete a record
  list COLLECTION [field=value ...]   records, optionally filtered
  list COLLECTION -           the same, the filters' field=value lines read from standard input
  show ID                     one record, with its conflicts
  sync                        send pending changes and receive updates
  conflicts                   open conflicts
  resolve ID FIELD VALUE      settle a conflict with VALUE
  resolve ID FIELD -          the same, VALUE read from standard input (one line)
  status                      pending changes, last sync
  refused                     the changes the server refused, and why
  refused --on-server [--dismissed]
                              what the server keeps of your refused work, from all your devices
  retry                       send the changes the server refused again at the next sync
  discard ID                  give up the refused changes to a record: take the server's version
  passphrase                  change the replica's passphrase (asked twice, or TSUNAGU_NEW_PASSPHRASE)
  password                    change your password on the server (the current one, then the new
                              one twice, or TSUNAGU_PASSWORD and TSUNAGU_NEW_PASSWORD)
  salvage DAMAGED_HOME        rebuild a replica refused as damaged into --home (a new folder), with
                              every commit its files still hold; they are only read

The replica lives in --home DIR, else $TSUNAGU_HOME, else ~/.tsunagu. The passphrase and the
password are asked at the terminal without echo, or read from TSUNAGU_PASSPHRASE and
TSUNAGU_PASSWORD (taken out of the environment as the command starts). Give record content,
filters and resolved values on standard input (-) rather than as words: other users of the
machine read a command's words, and the shell keeps them in its history. --json prints one JSON
value per command. A passphrase change is refused while the replica is open in another process
(the app, another tsunagu command): close that first.
Exit codes: 0 ok, 1 failed, 2 wrong command line, 3 wrong passphrase, 4 server unreachable
(nothing lost, sync later), 5 device revoked and erased.
)";

// The variables that may hand the command a secret (see kUsage).
constexpr std::initializer_list<const char*> kSecretVariables = {"TSUNAGU_PASSPHRASE", "TSUNAGU_PASSWORD",
                                                                 "TSUNAGU_NEW_PASSPHRASE", "TSUNAGU_NEW_PASSWORD"};

std::string default_home() {
    if (const char* home = std::getenv("TSUNAGU_HOME"); home && *home) return home;
    if (const char* user_home = std::getenv("HOME"); user_home && *user_home) return std::string(user_home) + "/.tsunagu";
    return ".tsunagu";
}

}  // namespace

int main(int argc, char** argv) {
    // A core dump would hold decrypted pages, the passphrase and the session token: none is
    // written, whatever the shell's limit or a piped core handler (which ignores RLIMIT_CORE).
    (void)tsunagu::keep_memory_private();
    tsunagu::cli::take_secrets_from_environment(kSecretVariables);
    tsunagu::cli::filter_control_characters(std::cerr);
    tsunagu::cli::Invocation inv;
    inv.home = default_home();
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        auto value = [&](const char* name) -> const char* {
            if (i + 1 >= argc) {
                std::cerr << "tsunagu: " << name << " needs a value (see tsunagu --help)\n";
                std::exit(tsunagu::cli::kExitUsage);
            }
            return argv[++i];
        };
        if (arg == "--help" || arg == "-h") {
            std::cout << kUsage;
            return 0;
        } else if (arg == "--json") {
            inv.json = true;
        } else if (arg == "--home") {
            inv.home = value("--home");
        } else if (arg == "--on-server" || arg == "--dismissed") {
            inv.options[arg.substr(2)] = "yes";
        } else if (arg == "--server" || arg == "--user" || arg == "--device-name") {
            inv.options[arg.substr(2)] = value(arg.c_str());
        } else if (arg.rfind("--", 0) == 0) {
            std::cerr << "tsunagu: unknown option " << arg << " (see tsunagu --help)\n";
            return tsunagu::cli::kExitUsage;
        } else if (inv.command.empty()) {
            inv.command = arg;
        } else {
            inv.words.push_back(arg);
        }
    }
    if (inv.command.empty()) {
        std::cerr << kUsage;
        return tsunagu::cli::kExitUsage;
    }
    if (!inv.json) tsunagu::cli::filter_control_characters(std::cout);  // (JSON is for programs)
    try {
        return tsunagu::cli::run_command(inv);
    } catch (const std::exception& e) {
        std::cerr << "tsunagu: internal error: " << tsunagu::sync::exception_text(e) << "\n";
        return tsunagu::cli::kExitFailed;
    }
}
