// The commands: open the replica, do one thing, print it for people (or as JSON with --json).
// Nothing here prints a passphrase, a password or a token.
#include "clients/cli/commands.h"

#include <cstdlib>
#include <cstdio>
#include <ctime>
#include <iostream>

#include "clients/cli/field_values.h"
#include "clients/cli/input_words.h"
#include "clients/cli/terminal.h"
#include "clients/device.h"

namespace tsunagu::cli {
namespace {

using client::Device;
using sync::Json;

int exit_code_for(const Status& status) {
    switch (status.code()) {
        case ErrorCode::wrong_key: return kExitWrongKey;
        case ErrorCode::unavailable: return kExitUnavailable;
        default: return kExitFailed;
    }
}

int fail(const Invocation& inv, const Status& status) {
    if (inv.json) {
        // (A message may quote bytes that are not UTF-8: shown replaced, never a throw.)
        std::cout << Json{{"error", error_code_name(status.code())}, {"message", status.message()}}.dump(
                         -1, ' ', false, Json::error_handler_t::replace)
                  << "\n";
    }
    std::cerr << "tsunagu: " << status.message() << "\n";
    return exit_code_for(status);
}

int usage(const Invocation& inv, const std::string& message) {
    (void)fail(inv, Status(ErrorCode::invalid_argument, message + " (see tsunagu --help)"));
    return kExitUsage;
}

// How a command opens the replica: one it makes (the passphrase asked twice), or one that must be
// there (signed in, unless it is `init` signing in again).
enum class Opening { create, existing, existing_to_sign_in };

// Opens the replica with the passphrase from TSUNAGU_PASSPHRASE or the terminal (twice when
// creating it); `passphrase_used`, when given, receives it (to change it).
Result<Device> open_replica(const Invocation& inv, Opening opening, Secret* passphrase_used = nullptr) {
    const bool creating = opening == Opening::create;
    if (!creating) {
        // Before the passphrase is asked for: opening would make a replica, sealed under whatever
        // was typed, in a folder that holds none.
        auto exists = Device::exists(inv.home);
        if (!exists) return exists.status();
        if (!*exists) {
            return Status(ErrorCode::invalid_argument,
                          "no device in " + inv.home + " yet: run tsunagu init --server URL --user NAME first");
        }
    }
    const std::string prompt = creating                                 ? "New passphrase for this device's replica: "
                               : opening == Opening::existing_to_sign_in ? "Passphrase of the replica in " + inv.home + ": "
                                                                         : "Passphrase: ";
    auto passphrase = read_secret("TSUNAGU_PASSPHRASE", prompt);
    if (!passphrase || passphrase->empty()) {
        return Status(ErrorCode::invalid_argument,
                      "a passphrase is needed: type it at the prompt or set TSUNAGU_PASSPHRASE");
    }
    if (creating && !confirmed_secret("TSUNAGU_PASSPHRASE", "Repeat the passphrase: ", *passphrase)) {
        return Status(ErrorCode::invalid_argument, "the two passphrases differ; run tsunagu init again");
    }
    client::DeviceOptions options;  // named: GCC 12 misreads a defaulted one as uninitialised
    auto device = Device::open(inv.home, passphrase->view(), std::move(options));
    if (!device) return device.status();
    if (opening == Opening::existing) {
        auto status = device->status();
        if (status && !status->signed_in) {
            return Status(ErrorCode::invalid_argument,
                          "no device in " + inv.home + " yet: run tsunagu init --server URL --user NAME first");
        }
    }
    if (passphrase_used) *passphrase_used = std::move(*passphrase);
    return device;
}

std::string format_time(std::int64_t ms) {
    if (ms == 0) return "never";
    std::time_t seconds = static_cast<std::time_t>(ms / 1000);
    std::tm local{};
    localtime_r(&seconds, &local);
    char buf[64];
    std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &local);
    return buf;
}

// What the worker can do about a refused change, by the server's word for its cause ("" when the
// server sent none, or a word this version does not know).
const char* advice_for(const client::RefusedChange& r) {
    if (r.cause == "outside_scope") return "the client is not in your caseload now: ask your supervisor";
    if (r.cause == "rule") return "the server's rules refuse it (an approved record is locked): ask your supervisor";
    if (r.cause == "invalid_value") return "the server does not accept a value: check the app is up to date";
    if (r.cause == "held_behind") return "it waits behind an earlier refused change to the same record";
    if (r.cause == "no_record") return "the record is no longer on the server (deleted there): discard the change";
    if (r.cause == "wrong_collection" || r.cause == "malformed" || r.cause == "not_yours" ||
        r.cause == "already_exists") {
        return "this app sent something the server cannot take: report it to your administrator";
    }
    return "";
}

// One refused change as a line: record, the server's reason and what to do.
std::string refused_line(const client::RefusedChange& r) {
    std::string line = r.collection + " " + r.record + ": " + r.reason;
    if (const char* advice = advice_for(r); *advice != '\0') line += " (" + std::string(advice) + ")";
    return line;
}

// A duration, coarsely: "3 days 2 hours", "5 hours 10 minutes", "4 minutes".
std::string rough_duration(std::int64_t ms) {
    const std::int64_t minutes = ms / 60'000, hours = minutes / 60, days = hours / 24;
    auto part = [](std::int64_t n, const char* unit) {
        return std::to_string(n) + " " + unit + (n == 1 ? "" : "s");
    };
    if (days > 0) return part(days, "day") + (hours % 24 ? " " + part(hours % 24, "hour") : "");
    if (hours > 0) return part(hours, "hour") + (minutes % 60 ? " " + part(minutes % 60, "minute") : "");
    return part(minutes, "minute");
}

// This device's clock against the server's (`offset_ms`: how far the server's is ahead).
std::string clock_line(std::int64_t offset_ms) {
    if (std::llabs(offset_ms) < 60'000) return "right (within a minute of the server's)";
    return rough_duration(std::llabs(offset_ms)) + (offset_ms < 0 ? " ahead of" : " behind") +
           " the server's: set this device's clock (meanwhile your changes are stamped with the server's time)";
}

std::string summary(const sync::Record& r) {
    std::string line = r.id + "  " + r.collection;
    int shown = 0;
    for (const auto& [name, value] : r.fields.items()) {
        if (shown++ == 5) {
            line += " ...";
            break;
        }
        line += "  " + name + "=" + display_value(value);
    }
    return line;
}

const sync::CollectionSchema* collection_of(Device& device, const std::string& name, Status& error) {
    const auto* c = device.schema().find(name);
    if (!c) {
        std::string names;
        for (const auto& known : device.schema().collections) names += (names.empty() ? "" : ", ") + known.name;
        error = Status(ErrorCode::invalid_argument,
                       "unknown collection " + word_as_shown(name, 0) + " (known: " + names + ")");
    }
    return c;
}

int cmd_init(const Invocation& inv) {
    auto server = inv.options.find("server");
    auto user = inv.options.find("user");
    if (server == inv.options.end() || user == inv.options.end()) {
        return usage(inv, "init needs --server URL and --user NAME");
    }
    // Signing in again (a session ended, a sign-in cut off) opens the replica that is there, with
    // its passphrase asked once: asked for a new one, a worker would type one that does not open it.
    auto exists = Device::exists(inv.home);
    if (!exists) return fail(inv, exists.status());
    auto device = open_replica(inv, *exists ? Opening::existing_to_sign_in : Opening::create);
    if (!device) return fail(inv, device.status());
    auto password = read_secret("TSUNAGU_PASSWORD", "Password for " + user->second + ": ");
    if (!password || password->empty()) {
        return fail(inv, Status(ErrorCode::invalid_argument,
                                "a password is needed: type it at the prompt or set TSUNAGU_PASSWORD"));
    }
    auto name = inv.options.count("device-name") ? inv.options.at("device-name") : "tsunagu cli";
    if (Status s = device->sign_in(server->second, user->second, password->view(), name); !s) return fail(inv, s);
    auto status = device->status();
    if (!status) return fail(inv, status.status());
    if (inv.json) {
        std::cout << Json(*status).dump() << "\n";
    } else {
        std::cout << "signed in as " << status->username << " (" << status->role << ") on " << status->server_url
                  << "\nreplica: " << inv.home << "\nnext: tsunagu sync\n";
    }
    return kExitOk;
}

int cmd_record(const Invocation& inv) {
    if (inv.words.empty()) {
        return usage(inv, "record needs a collection, then field=value words (or -: read from standard input)");
    }
    auto device = open_replica(inv, Opening::existing);
    if (!device) return fail(inv, device.status());
    Status error;
    const auto* collection = collection_of(*device, inv.words[0], error);
    if (!collection) return fail(inv, error);
    auto fields = parse_assignments(*collection, assignment_words(inv, 1));
    if (!fields) return fail(inv, fields.status());
    auto id = device->create(collection->name, *fields);
    if (!id) return fail(inv, id.status());
    if (inv.json) std::cout << Json{{"id", *id}, {"collection", collection->name}}.dump() << "\n";
    else std::cout << "recorded " << collection->name << " " << *id << " (sends on the next tsunagu sync)\n";
    return kExitOk;
}

int cmd_edit(const Invocation& inv) {
    if (inv.words.size() < 2) {
        return usage(inv, "edit needs a record id, then field=value words (or -: read from standard input)");
    }
    auto device = open_replica(inv, Opening::existing);
    if (!device) return fail(inv, device.status());
    auto record = device->get(inv.words[0]);
    if (!record) return fail(inv, record.status());
    Status error;
    const auto* collection = collection_of(*device, record->collection, error);
    if (!collection) return fail(inv, error);
    auto fields = parse_assignments(*collection, assignment_words(inv, 1));
    if (!fields) return fail(inv, fields.status());
    if (Status s = device->update(record->id, *fields); !s) return fail(inv, s);
    if (inv.json) std::cout << Json{{"id", record->id}, {"updated", fields->size()}}.dump() << "\n";
    else std::cout << "edited " << record->collection << " " << record->id << "\n";
    return kExitOk;
}

int cmd_delete(const Invocation& inv) {
    if (inv.words.size() != 1) return usage(inv, "delete needs one record id");
    auto device = open_replica(inv, Opening::existing);
    if (!device) return fail(inv, device.status());
    if (Status s = device->remove(inv.words[0]); !s) return fail(inv, s);
    if (inv.json) std::cout << Json{{"id", inv.words[0]}, {"deleted", true}}.dump() << "\n";
    else std::cout << "deleted " << inv.words[0] << "\n";
    return kExitOk;
}

int cmd_list(const Invocation& inv) {
    if (inv.words.empty()) {
        return usage(inv, "list needs a collection, then optional field=value filters (or -: read from standard input)");
    }
    auto device = open_replica(inv, Opening::existing);
    if (!device) return fail(inv, device.status());
    Status error;
    const auto* collection = collection_of(*device, inv.words[0], error);
    if (!collection) return fail(inv, error);
    auto filter = parse_assignments(*collection, assignment_words(inv, 1));
    if (!filter) return fail(inv, filter.status());
    // A one-item list filter means "contains the item".
    for (auto& [name, value] : filter->items()) {
        if (value.is_array() && value.size() == 1) value = value[0];
    }
    auto records = device->list(collection->name, *filter);
    if (!records) return fail(inv, records.status());
    if (inv.json) {
        std::cout << Json(*records).dump() << "\n";
    } else {
        for (const auto& r : *records) std::cout << summary(r) << "\n";
        std::cout << records->size() << " " << collection->name << " record(s)\n";
    }
    return kExitOk;
}

int cmd_show(const Invocation& inv) {
    if (inv.words.size() != 1) return usage(inv, "show needs one record id");
    auto device = open_replica(inv, Opening::existing);
    if (!device) return fail(inv, device.status());
    auto record = device->get(inv.words[0]);
    if (!record) return fail(inv, record.status());
    if (inv.json) {
        std::cout << Json(*record).dump() << "\n";
        return kExitOk;
    }
    std::cout << record->collection << " " << record->id << (record->deleted ? " (deleted)" : "") << "\n";
    for (const auto& [name, value] : record->fields.items()) std::cout << "  " << name << ": " << display_value(value) << "\n";
    for (const auto& c : record->conflicts) {
        std::cout << "  conflict on " << c.field << ": " << display_value(c.current.value) << " (in force) vs "
                  << display_value(c.losing.value) << "; settle with tsunagu resolve " << record->id << " "
                  << c.field << " VALUE\n";
    }
    return kExitOk;
}

int cmd_sync(const Invocation& inv) {
    auto device = open_replica(inv, Opening::existing);
    if (!device) return fail(inv, device.status());
    ProgressBar bar;
    const bool show_bar = !inv.json && stdout_is_terminal();
    auto report = device->sync([&](const client::SyncProgress& p) {
        if (show_bar) bar.draw(p.phase == client::SyncProgress::Phase::push ? "push" : "pull", p.done, p.total);
    });
    bar.finish();
    if (!report) return fail(inv, report.status());
    if (inv.json) std::cout << Json(*report).dump() << "\n";
    if (report->wiped) {
        std::cerr << "tsunagu: this device was revoked by an administrator; its replica in " << inv.home
                  << " was erased, with " << client::unsent_changes_text(report->wiped_unsent)
                  << " the server did not have. Ask your supervisor, then run tsunagu init again.\n";
        return kExitWiped;
    }
    if (!inv.json) {
        std::cout << "synced: pushed " << report->pushed << ", received " << report->pulled << ", removed "
                  << report->evicted << " no longer in your caseload\n";
        if (report->resent > 0) {
            std::cout << report->resent << " change(s) sent again: the server was restored from a backup, and now"
                      << (report->refused.empty() ? " has all your work again\n"
                                                  : " has all your work again but what it refused (below)\n");
        }
        if (report->recovered > 0) {
            std::cout << report->recovered
                      << " value(s) the restored server had lost, kept on this device only, sent again as your"
                         " change(s)\n";
        }
        if (!report->evicted_pending.empty()) {
            std::cout << report->evicted_pending.size()
                      << " unsent change(s) of records no longer in your caseload are kept on this device (held):"
                         " they are sent if the record is yours again; your supervisor can ask for them\n";
        }
        if (!report->new_conflicts.empty()) {
            std::cout << report->new_conflicts.size() << " new conflict(s): see tsunagu conflicts\n";
        }
        for (const auto& r : report->refused) {
            std::cout << "refused " << refused_line(r)
                      << "\n  kept on this device and, for your supervisor, on the server; sent again when the"
                         " record changes on the server, or with tsunagu retry; tsunagu discard "
                      << r.record << " takes the server's version\n";
        }
    }
    return kExitOk;
}

// tsunagu password: the worker's password on the server, changed (the way out of one an
// administrator set, which opens nothing else until then). Needs the network.
int cmd_password(const Invocation& inv) {
    if (!inv.words.empty()) return usage(inv, "password takes no arguments");
    auto device = open_replica(inv, Opening::existing);
    if (!device) return fail(inv, device.status());
    auto current = read_secret("TSUNAGU_PASSWORD", "Current password: ");
    if (!current || current->empty()) {
        return fail(inv, Status(ErrorCode::invalid_argument,
                                "the current password is needed: type it at the prompt or set TSUNAGU_PASSWORD"));
    }
    auto next = read_secret("TSUNAGU_NEW_PASSWORD", "New password: ");
    if (!next || next->empty()) {
        return fail(inv, Status(ErrorCode::invalid_argument,
                                "a new password is needed: type it at the prompt or set TSUNAGU_NEW_PASSWORD"));
    }
    if (!confirmed_secret("TSUNAGU_NEW_PASSWORD", "Repeat the new password: ", *next)) {
        return fail(inv, Status(ErrorCode::invalid_argument,
                                "the two new passwords differ; nothing was changed, run tsunagu password again"));
    }
    Status changed = device->change_password(current->view(), next->view());
    if (!changed) {
        const int code = fail(inv, changed);
        return device->wiped() ? kExitWiped : code;  // revoked: the replica, and its unsent work, is gone
    }
    if (inv.json) std::cout << Json{{"changed", true}}.dump() << "\n";
    else std::cout << "password changed: sign in with the new one on your other devices\n";
    return kExitOk;
}

// tsunagu passphrase: from now on the replica opens with a new passphrase, under a new data key
// (Device::change_passphrase).
int cmd_passphrase(const Invocation& inv) {
    if (!inv.words.empty()) return usage(inv, "passphrase takes no arguments");
    Secret current;
    auto device = open_replica(inv, Opening::existing, &current);
    if (!device) return fail(inv, device.status());
    auto next = read_secret("TSUNAGU_NEW_PASSPHRASE", "New passphrase: ");
    if (!next || next->empty()) {
        return fail(inv, Status(ErrorCode::invalid_argument,
                                "a new passphrase is needed: type it at the prompt or set TSUNAGU_NEW_PASSPHRASE"));
    }
    if (!confirmed_secret("TSUNAGU_NEW_PASSPHRASE", "Repeat the new passphrase: ", *next)) {
        return fail(inv, Status(ErrorCode::invalid_argument,
                                "the two new passphrases differ; nothing was changed, run tsunagu passphrase again"));
    }
    Status changed = device->change_passphrase(current.view(), next->view());
    if (!changed) return fail(inv, changed);
    if (inv.json) std::cout << Json{{"changed", true}}.dump() << "\n";
    else std::cout << "passphrase changed: the replica opens with the new passphrase only\n";
    return kExitOk;
}

// tsunagu --home NEW salvage DAMAGED: the replica open refuses as damaged, rebuilt in NEW.
int cmd_salvage(const Invocation& inv) {
    if (inv.words.size() != 1) return usage(inv, "salvage needs the damaged replica's home folder");
    const std::string& damaged = inv.words[0];
    auto passphrase = read_secret("TSUNAGU_PASSPHRASE", "Passphrase of the damaged replica: ");
    if (!passphrase || passphrase->empty()) {
        return fail(inv, Status(ErrorCode::invalid_argument,
                                "a passphrase is needed: type it at the prompt or set TSUNAGU_PASSPHRASE"));
    }
    client::DeviceOptions options;
    auto report = Device::salvage(damaged, inv.home, passphrase->view(), std::move(options));
    if (!report) return fail(inv, report.status());
    if (inv.json) {
        Json out = *report;
        out["home"] = inv.home;
        std::cout << out.dump() << "\n";
    } else {
        std::cout << "salvaged " << damaged << " into " << inv.home << ": " << report->summary() << "\n"
                  << (report->complete() ? "" : "the next sync pulls everything again from the server\n")
                  << "the damaged files are unchanged; next: tsunagu --home " << inv.home << " sync\n";
    }
    return kExitOk;
}

int cmd_retry(const Invocation& inv) {
    if (!inv.words.empty()) return usage(inv, "retry takes no arguments");
    auto device = open_replica(inv, Opening::existing);
    if (!device) return fail(inv, device.status());
    auto count = device->retry_refused();
    if (!count) return fail(inv, count.status());
    if (inv.json) std::cout << Json{{"retried", *count}}.dump() << "\n";
    else std::cout << *count << " refused change(s) will be sent again at the next tsunagu sync\n";
    return kExitOk;
}

// tsunagu refused --on-server [--dismissed]: what the server keeps of this worker's refused work,
// from all her devices (on a new phone, what the old one left behind).
int refused_on_server(const Invocation& inv, client::Device& device) {
    const bool dismissed = inv.options.count("dismissed") > 0;
    auto kept = device.refused_on_server(dismissed);
    if (!kept) {
        const int code = fail(inv, kept.status());
        return device.wiped() ? kExitWiped : code;
    }
    if (inv.json) {
        std::cout << Json(*kept).dump() << "\n";
        return kExitOk;
    }
    std::size_t elsewhere = 0;
    for (const auto& k : *kept) {
        if (!k.this_device) ++elsewhere;
        client::RefusedChange as_refused{k.change_id, k.record, k.collection, k.code, k.reason, k.cause};
        std::cout << refused_line(as_refused) << "\n  " << (k.this_device ? "from this device" : "from another device")
                  << ", last refused " << format_time(k.last_refused_at * 1000);
        if (k.dismissed && !k.comment.empty()) std::cout << "; your supervisor dismissed it: " << k.comment;
        std::cout << "\n";
    }
    std::cout << kept->size() << (dismissed ? " dismissed" : " open") << " refused change(s) kept on the server, "
              << elsewhere << " of them from your other devices"
              << (dismissed || elsewhere == 0 ? "" : "; your supervisor can apply those once the cause is gone")
              << "\n";
    return kExitOk;
}

int cmd_refused(const Invocation& inv) {
    if (!inv.words.empty()) return usage(inv, "refused takes no arguments (but --on-server [--dismissed])");
    if (inv.options.count("dismissed") && !inv.options.count("on-server")) {
        return usage(inv, "--dismissed lists what the server keeps: use it with --on-server");
    }
    auto device = open_replica(inv, Opening::existing);
    if (!device) return fail(inv, device.status());
    if (inv.options.count("on-server")) return refused_on_server(inv, *device);
    auto refused = device->refused();
    if (!refused) return fail(inv, refused.status());
    if (inv.json) {
        std::cout << Json(*refused).dump() << "\n";
        return kExitOk;
    }
    for (const auto& r : *refused) {
        std::cout << refused_line(r) << "\n";
    }
    std::cout << refused->size() << " refused change(s), kept on this device and for your supervisor on the server"
              << (refused->empty() ? "" : "; send them again with tsunagu retry, or take the server's version of"
                                          " a record with tsunagu discard ID")
              << "\n";
    return kExitOk;
}

int cmd_discard(const Invocation& inv) {
    if (inv.words.size() != 1) return usage(inv, "discard takes one record id");
    auto device = open_replica(inv, Opening::existing);
    if (!device) return fail(inv, device.status());
    auto count = device->discard_refused(inv.words[0]);
    if (!count) return fail(inv, count.status());
    if (inv.json) {
        std::cout << Json{{"discarded", *count}, {"record", inv.words[0]}}.dump() << "\n";
    } else {
        std::cout << *count << " refused change(s) to " << inv.words[0]
                  << " discarded on this device (the server keeps them for your supervisor); the record"
                     " returns to the server's version at the next tsunagu sync\n";
    }
    return kExitOk;
}

int cmd_conflicts(const Invocation& inv) {
    auto device = open_replica(inv, Opening::existing);
    if (!device) return fail(inv, device.status());
    auto conflicts = device->conflicts();
    if (!conflicts) return fail(inv, conflicts.status());
    if (inv.json) {
        std::cout << Json(*conflicts).dump() << "\n";
        return kExitOk;
    }
    for (const auto& c : *conflicts) {
        std::cout << c.collection << " " << c.record << " " << c.field << ": " << display_value(c.current.value)
                  << " (in force) vs " << display_value(c.losing.value) << " (" << conflict_kind_name(c.kind) << ")\n";
    }
    std::cout << conflicts->size() << " open conflict(s)"
              << (conflicts->empty() ? "" : "; settle one with tsunagu resolve ID FIELD VALUE (or -: VALUE read from standard input)") << "\n";
    return kExitOk;
}

int cmd_resolve(const Invocation& inv) {
    if (inv.words.size() != 3) {
        return usage(inv, "resolve needs a record id, a field and a value (or -: read from standard input)");
    }
    auto device = open_replica(inv, Opening::existing);
    if (!device) return fail(inv, device.status());
    auto record = device->get(inv.words[0]);
    if (!record) return fail(inv, record.status());
    Status error;
    const auto* collection = collection_of(*device, record->collection, error);
    if (!collection) return fail(inv, error);
    const auto* field = collection->find(inv.words[1]);
    if (!field) {
        return fail(inv, Status(ErrorCode::validation, "field " + word_as_shown(inv.words[1], 1) + ": " +
                                                           collection->name + " has no such field"));
    }
    auto text = value_word(inv, 2, "resolve " + record->id + " " + field->name);
    if (!text) return fail(inv, text.status());
    auto value = parse_field_value(*field, *text);
    if (!value) return fail(inv, value.status());
    if (Status s = device->resolve(record->id, field->name, *value); !s) return fail(inv, s);
    if (inv.json) std::cout << Json{{"id", record->id}, {"field", field->name}, {"resolved", true}}.dump() << "\n";
    else std::cout << "resolved " << field->name << " of " << record->id << "; tsunagu sync sends it\n";
    return kExitOk;
}

int cmd_status(const Invocation& inv) {
    auto device = open_replica(inv, Opening::existing);
    if (!device) return fail(inv, device.status());
    auto status = device->status();
    if (!status) return fail(inv, status.status());
    if (inv.json) {
        std::cout << Json(*status).dump() << "\n";
        return kExitOk;
    }
    std::cout << "signed in as " << status->username << " (" << status->role << ") on " << status->server_url
              << "\ndevice: " << status->device_id << "\npending changes: " << status->pending
              << "\nrefused changes: " << status->refused
              << "\nheld changes (records no longer in your caseload): " << status->held
              << "\nopen conflicts: " << status->conflicts
              << "\nlast sync: " << format_time(status->last_sync_ms) << "\n";
    if (status->clock_offset_ms) std::cout << "clock: " << clock_line(*status->clock_offset_ms) << "\n";
    return kExitOk;
}

}  // namespace

int run_command(const Invocation& inv) {
    if (inv.command == "init") return cmd_init(inv);
    if (inv.command == "record") return cmd_record(inv);
    if (inv.command == "edit") return cmd_edit(inv);
    if (inv.command == "delete") return cmd_delete(inv);
    if (inv.command == "list") return cmd_list(inv);
    if (inv.command == "show") return cmd_show(inv);
    if (inv.command == "sync") return cmd_sync(inv);
    if (inv.command == "conflicts") return cmd_conflicts(inv);
    if (inv.command == "resolve") return cmd_resolve(inv);
    if (inv.command == "status") return cmd_status(inv);
    if (inv.command == "retry") return cmd_retry(inv);
    if (inv.command == "passphrase") return cmd_passphrase(inv);
    if (inv.command == "password") return cmd_password(inv);
    if (inv.command == "discard") return cmd_discard(inv);
    if (inv.command == "refused") return cmd_refused(inv);
    if (inv.command == "salvage") return cmd_salvage(inv);
    return usage(inv, "unknown command \"" + inv.command + "\"");
}

}  // namespace tsunagu::cli
