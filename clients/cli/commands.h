// The commands of `tsunagu`, each on the device library. Exit codes: see kUsage in main.cpp.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace tsunagu::cli {

enum ExitCode {
    kExitOk = 0,
    kExitFailed = 1,       // the operation failed; the message says why and what to do
    kExitUsage = 2,        // the command line is wrong
    kExitWrongKey = 3,     // wrong passphrase
    kExitUnavailable = 4,  // the server could not be reached: nothing lost, sync later
    kExitWiped = 5,        // the device was revoked and its replica erased
};

struct Invocation {
    std::string home;     // the replica's folder
    bool json = false;    // --json
    std::string command;  // "init", "record", ...
    std::vector<std::string> words;              // positional arguments after the command
    std::map<std::string, std::string> options;  // --server, --user, --device-name
};

int run_command(const Invocation& invocation);

}  // namespace tsunagu::cli
