// Runs an operator's shell command on one file: what copies each new backup off the machine
// (--backup-copy-command). The command is the operator's, given at start-up; the file is the
// server's own, passed as $1 (never spliced into the command text).
//
// Contract: /bin/sh -c COMMAND runs in a process group of its own, with stdin from /dev/null,
// stdout discarded, no file descriptor of the server but its stderr pipe, default signal
// dispositions and no blocked signals. It succeeds when it exits 0. Otherwise the reason names the
// exit status and the last line it wrote to stderr (the operator's tool's own words, for the log).
// When it outlasts `timeout`, or `cancel` turns true (the server stopping), it is killed (SIGKILL)
// and waited for. Nothing it started outlives it, whether it ends, times out or is stopped: not
// its process group, nor what left the group (setsid, a daemon's double fork), as long as /proc
// lists a process's children (Linux with CONFIG_PROC_CHILDREN, as Debian's kernels are built).
// Blocks the calling thread until all that is done.
#pragma once

#include <atomic>
#include <chrono>
#include <string>

#include "crypto/status.h"

namespace tsunagu::api {

Status run_shell_command(const std::string& command, const std::string& file, std::chrono::milliseconds timeout,
                         const std::atomic<bool>& cancel);

}  // namespace tsunagu::api
