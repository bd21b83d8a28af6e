// The C API (include/tsunagu.h) over the device library: every entry point catches everything, so
// no C++ exception crosses into Swift, Kotlin or C; outputs are malloc'd copies freed by tsunagu_free.
#include "tsunagu.h"

#include <cstdlib>
#include <cstring>
#include <new>
#include <string>

#include "clients/device.h"
#include "sync/protocol.h"

struct tsunagu_device {
    tsunagu::client::Device device;
};

namespace {

using tsunagu::ErrorCode;
using tsunagu::Status;
using tsunagu::sync::Json;

char* copy_out(const std::string& text) {
    char* out = static_cast<char*>(std::malloc(text.size() + 1));
    if (out) std::memcpy(out, text.c_str(), text.size() + 1);
    return out;
}

tsunagu_code fail(tsunagu_error* err, ErrorCode code, const std::string& message) {
    if (err) {
        err->code = static_cast<tsunagu_code>(code);
        err->message = copy_out(message);
    }
    return static_cast<tsunagu_code>(code);
}

tsunagu_code report(tsunagu_error* err, const Status& status) {
    if (status.is_ok()) return TSUNAGU_OK;
    return fail(err, status.code(), status.message());
}

void clear(tsunagu_error* err) {
    if (err) {
        err->code = TSUNAGU_OK;
        err->message = nullptr;
    }
}

// Runs `body` with everything caught: an exception is a bug reported as TSUNAGU_INTERNAL.
template <typename Body>
tsunagu_code guarded(tsunagu_error* err, Body&& body) {
    clear(err);
    try {
        return body();
    } catch (const std::bad_alloc&) {
        return fail(err, ErrorCode::internal, "out of memory");  // (short enough to need no allocation)
    } catch (const std::exception& e) {
        // Nothing may leave an extern "C" function: the message built here may fail to allocate.
        try {
            return fail(err, ErrorCode::internal, "internal error: " + tsunagu::sync::exception_text(e));
        } catch (...) {
            return fail(err, ErrorCode::internal, "internal error");
        }
    } catch (...) {
        return fail(err, ErrorCode::internal, "internal error");
    }
}

tsunagu_code missing(tsunagu_error* err, const char* what) {
    return fail(err, ErrorCode::invalid_argument, std::string(what) + " must not be NULL");
}

// Parses caller JSON, naming the argument when it is malformed or names a member twice (a
// document would keep the last of the two without a word).
bool parse_json(const char* text, const char* what, Json& out, tsunagu_error* err) {
    // Refused before it is a document: copying one thousands of levels deep would recurse past
    // the end of a phone thread's stack. Records nest two levels (a list in a field).
    constexpr int kMaxDepth = 24;
    if (tsunagu::sync::json_nests_deeper_than(text, kMaxDepth)) {
        fail(err, ErrorCode::invalid_argument, std::string(what) + ": " + tsunagu::sync::json_depth_error(kMaxDepth));
        return false;
    }
    out = Json::parse(text, nullptr, false);
    if (out.is_discarded()) {
        fail(err, ErrorCode::invalid_argument, std::string(what) + " is not valid JSON");
        return false;
    }
    if (std::string repeated = tsunagu::sync::json_repeated_member_error(text); !repeated.empty()) {
        fail(err, ErrorCode::invalid_argument, std::string(what) + ": " + repeated);
        return false;
    }
    return true;
}

template <typename T>
tsunagu_code emit(const T& value, char** out, tsunagu_error* err) {
    Json j = value;
    *out = copy_out(j.dump());
    if (!*out) return fail(err, ErrorCode::internal, "out of memory");
    return TSUNAGU_OK;
}

}  // namespace

extern "C" {

const char* tsunagu_code_name(tsunagu_code code) {
    if (code < TSUNAGU_OK || code > TSUNAGU_STORAGE_FULL) return "unknown";
    return tsunagu::error_code_name(static_cast<ErrorCode>(code));
}

void tsunagu_free(void* buffer) { std::free(buffer); }

tsunagu_device* tsunagu_open(const char* home, const char* passphrase, tsunagu_error* err) {
    tsunagu_device* opened = nullptr;
    guarded(err, [&]() -> tsunagu_code {
        if (!home) return missing(err, "home");
        if (!passphrase) return missing(err, "passphrase");
        tsunagu::client::DeviceOptions options;  // named: GCC 12 misreads a defaulted one as uninitialised
        auto device = tsunagu::client::Device::open(home, passphrase, std::move(options));
        if (!device) return report(err, device.status());
        opened = new tsunagu_device{std::move(*device)};
        return TSUNAGU_OK;
    });
    return opened;
}

tsunagu_code tsunagu_salvage(const char* damaged_home, const char* new_home, const char* passphrase,
                             char** report_json_out, tsunagu_error* err) {
    if (report_json_out) *report_json_out = nullptr;
    return guarded(err, [&]() -> tsunagu_code {
        if (!damaged_home || !new_home) return missing(err, "damaged_home and new_home");
        if (!passphrase) return missing(err, "passphrase");
        tsunagu::client::DeviceOptions options;  // named: GCC 12 misreads a defaulted one as uninitialised
        auto salvaged = tsunagu::client::Device::salvage(damaged_home, new_home, passphrase, std::move(options));
        if (!salvaged) return report(err, salvaged.status());
        if (report_json_out) return emit(*salvaged, report_json_out, err);
        return TSUNAGU_OK;
    });
}

tsunagu_code tsunagu_change_passphrase(tsunagu_device* device, const char* current, const char* next,
                                       tsunagu_error* err) {
    return guarded(err, [&]() -> tsunagu_code {
        if (!device) return missing(err, "device");
        if (!current || !next) return missing(err, "current and next");
        return report(err, device->device.change_passphrase(current, next));
    });
}

tsunagu_code tsunagu_change_password(tsunagu_device* device, const char* current, const char* next,
                                     tsunagu_error* err) {
    return guarded(err, [&]() -> tsunagu_code {
        if (!device) return missing(err, "device");
        if (!current || !next) return missing(err, "current and next");
        return report(err, device->device.change_password(current, next));
    });
}

void tsunagu_close(tsunagu_device* device) {
    try {
        delete device;
    } catch (...) {
        // Destructors do not throw; nothing may cross the boundary regardless.
    }
}

tsunagu_code tsunagu_sign_in(tsunagu_device* device, const char* server_url, const char* username,
                             const char* password, const char* device_name, tsunagu_error* err) {
    return guarded(err, [&]() -> tsunagu_code {
        if (!device) return missing(err, "device");
        if (!server_url || !username || !password) return missing(err, "server_url, username and password");
        return report(err, device->device.sign_in(server_url, username, password,
                                                  device_name ? device_name : "tsunagu device"));
    });
}

tsunagu_code tsunagu_create(tsunagu_device* device, const char* collection, const char* fields_json,
                            char** id_out, tsunagu_error* err) {
    if (id_out) *id_out = nullptr;
    return guarded(err, [&]() -> tsunagu_code {
        if (!device || !collection || !fields_json || !id_out) {
            return missing(err, "device, collection, fields_json and id_out");
        }
        Json fields;
        if (!parse_json(fields_json, "fields_json", fields, err)) return TSUNAGU_INVALID_ARGUMENT;
        auto id = device->device.create(collection, fields);
        if (!id) return report(err, id.status());
        *id_out = copy_out(*id);
        if (!*id_out) {
            return fail(err, ErrorCode::internal,
                        "out of memory for the new record's id: the record was saved (tsunagu_list finds it)");
        }
        return TSUNAGU_OK;
    });
}

tsunagu_code tsunagu_update(tsunagu_device* device, const char* id, const char* fields_json,
                            tsunagu_error* err) {
    return guarded(err, [&]() -> tsunagu_code {
        if (!device || !id || !fields_json) return missing(err, "device, id and fields_json");
        Json fields;
        if (!parse_json(fields_json, "fields_json", fields, err)) return TSUNAGU_INVALID_ARGUMENT;
        return report(err, device->device.update(id, fields));
    });
}

tsunagu_code tsunagu_delete(tsunagu_device* device, const char* id, tsunagu_error* err) {
    return guarded(err, [&]() -> tsunagu_code {
        if (!device || !id) return missing(err, "device and id");
        return report(err, device->device.remove(id));
    });
}

namespace {
// `as_read_json` (tsunagu_get's answer) as tsunagu::sync::AsRead; false (with `err` set) when it is not one.
bool parse_as_read(const char* as_read_json, tsunagu::sync::AsRead& out, tsunagu_error* err) {
    Json record;
    if (!parse_json(as_read_json, "as_read_json", record, err)) return false;
    auto read = tsunagu::sync::AsRead::parse(record);
    if (!read) {
        report(err, read.status());
        return false;
    }
    out = std::move(*read);
    return true;
}
}  // namespace

tsunagu_code tsunagu_update_as_read(tsunagu_device* device, const char* id, const char* fields_json,
                                    const char* as_read_json, tsunagu_error* err) {
    return guarded(err, [&]() -> tsunagu_code {
        if (!device || !id || !fields_json || !as_read_json) return missing(err, "device, id, fields_json and as_read_json");
        Json fields;
        if (!parse_json(fields_json, "fields_json", fields, err)) return TSUNAGU_INVALID_ARGUMENT;
        tsunagu::sync::AsRead as_read;
        if (!parse_as_read(as_read_json, as_read, err)) return TSUNAGU_INVALID_ARGUMENT;
        return report(err, device->device.update(id, fields, as_read));
    });
}

tsunagu_code tsunagu_delete_as_read(tsunagu_device* device, const char* id, const char* as_read_json,
                                    tsunagu_error* err) {
    return guarded(err, [&]() -> tsunagu_code {
        if (!device || !id || !as_read_json) return missing(err, "device, id and as_read_json");
        tsunagu::sync::AsRead as_read;
        if (!parse_as_read(as_read_json, as_read, err)) return TSUNAGU_INVALID_ARGUMENT;
        return report(err, device->device.remove(id, as_read));
    });
}

tsunagu_code tsunagu_resolve_as_read(tsunagu_device* device, const char* id, const char* field, const char* value_json,
                                     const char* as_read_json, tsunagu_error* err) {
    return guarded(err, [&]() -> tsunagu_code {
        if (!device || !id || !field || !value_json || !as_read_json) {
            return missing(err, "device, id, field, value_json and as_read_json");
        }
        Json value;
        if (!parse_json(value_json, "value_json", value, err)) return TSUNAGU_INVALID_ARGUMENT;
        tsunagu::sync::AsRead as_read;
        if (!parse_as_read(as_read_json, as_read, err)) return TSUNAGU_INVALID_ARGUMENT;
        return report(err, device->device.resolve(id, field, value, as_read));
    });
}

tsunagu_code tsunagu_get(tsunagu_device* device, const char* id, char** record_json_out, tsunagu_error* err) {
    if (record_json_out) *record_json_out = nullptr;
    return guarded(err, [&]() -> tsunagu_code {
        if (!device || !id || !record_json_out) return missing(err, "device, id and record_json_out");
        auto record = device->device.get(id);
        if (!record) return report(err, record.status());
        return emit(*record, record_json_out, err);
    });
}

tsunagu_code tsunagu_list(tsunagu_device* device, const char* collection, const char* filter_json,
                          char** records_json_out, tsunagu_error* err) {
    if (records_json_out) *records_json_out = nullptr;
    return guarded(err, [&]() -> tsunagu_code {
        if (!device || !collection || !records_json_out) return missing(err, "device, collection and records_json_out");
        Json filter = Json::object();
        if (filter_json && !parse_json(filter_json, "filter_json", filter, err)) return TSUNAGU_INVALID_ARGUMENT;
        auto records = device->device.list(collection, filter);
        if (!records) return report(err, records.status());
        return emit(*records, records_json_out, err);
    });
}

tsunagu_code tsunagu_sync(tsunagu_device* device, tsunagu_progress_fn progress, void* user_data,
                          char** report_json_out, tsunagu_error* err) {
    if (report_json_out) *report_json_out = nullptr;
    return guarded(err, [&]() -> tsunagu_code {
        if (!device) return missing(err, "device");
        tsunagu::client::ProgressCallback callback;
        if (progress) {
            callback = [progress, user_data](const tsunagu::client::SyncProgress& p) {
                progress(p.phase == tsunagu::client::SyncProgress::Phase::push ? "push" : "pull", p.done, p.total,
                         user_data);
            };
        }
        auto result = device->device.sync(callback);
        if (!result) return report(err, result.status());
        if (report_json_out) {
            const tsunagu_code emitted = emit(*result, report_json_out, err);
            if (emitted != TSUNAGU_OK) return emitted;
        }
        if (result->wiped) {
            // Never an OK an app could take for a sync: the replica, and any unsent work, is gone.
            return fail(err, ErrorCode::forbidden,
                        "this device was revoked by an administrator and its replica erased, with " +
                            tsunagu::client::unsent_changes_text(result->wiped_unsent) +
                            " the server did not have; close it, and ask the supervisor");
        }
        return TSUNAGU_OK;
    });
}

tsunagu_code tsunagu_retry_refused(tsunagu_device* device, size_t* count_out, tsunagu_error* err) {
    if (count_out) *count_out = 0;
    return guarded(err, [&]() -> tsunagu_code {
        if (!device) return missing(err, "device");
        auto count = device->device.retry_refused();
        if (!count) return report(err, count.status());
        if (count_out) *count_out = *count;
        return TSUNAGU_OK;
    });
}

tsunagu_code tsunagu_refused(tsunagu_device* device, char** refused_json_out, tsunagu_error* err) {
    if (refused_json_out) *refused_json_out = nullptr;
    return guarded(err, [&]() -> tsunagu_code {
        if (!device || !refused_json_out) return missing(err, "device and refused_json_out");
        auto refused = device->device.refused();
        if (!refused) return report(err, refused.status());
        return emit(*refused, refused_json_out, err);
    });
}

tsunagu_code tsunagu_refused_on_server(tsunagu_device* device, int dismissed, char** refused_json_out,
                                       tsunagu_error* err) {
    if (refused_json_out) *refused_json_out = nullptr;
    return guarded(err, [&]() -> tsunagu_code {
        if (!device || !refused_json_out) return missing(err, "device and refused_json_out");
        auto kept = device->device.refused_on_server(dismissed != 0);
        if (!kept) return report(err, kept.status());
        return emit(*kept, refused_json_out, err);
    });
}

tsunagu_code tsunagu_discard_refused(tsunagu_device* device, const char* id, size_t* count_out,
                                     tsunagu_error* err) {
    if (count_out) *count_out = 0;
    return guarded(err, [&]() -> tsunagu_code {
        if (!device) return missing(err, "device");
        if (!id) return missing(err, "id");
        auto count = device->device.discard_refused(id);
        if (!count) return report(err, count.status());
        if (count_out) *count_out = *count;
        return TSUNAGU_OK;
    });
}

tsunagu_code tsunagu_conflicts(tsunagu_device* device, char** conflicts_json_out, tsunagu_error* err) {
    if (conflicts_json_out) *conflicts_json_out = nullptr;
    return guarded(err, [&]() -> tsunagu_code {
        if (!device || !conflicts_json_out) return missing(err, "device and conflicts_json_out");
        auto conflicts = device->device.conflicts();
        if (!conflicts) return report(err, conflicts.status());
        return emit(*conflicts, conflicts_json_out, err);
    });
}

tsunagu_code tsunagu_resolve(tsunagu_device* device, const char* id, const char* field, const char* value_json,
                             tsunagu_error* err) {
    return guarded(err, [&]() -> tsunagu_code {
        if (!device || !id || !field || !value_json) return missing(err, "device, id, field and value_json");
        Json value;
        if (!parse_json(value_json, "value_json", value, err)) return TSUNAGU_INVALID_ARGUMENT;
        return report(err, device->device.resolve(id, field, value));
    });
}

tsunagu_code tsunagu_resolve_deletion(tsunagu_device* device, const char* id, const char* resolution,
                                      tsunagu_error* err) {
    return guarded(err, [&]() -> tsunagu_code {
        if (!device || !id || !resolution) return missing(err, "device, id and resolution");
        const std::string_view chosen = resolution;
        if (chosen != "keep_deleted" && chosen != "restore") {
            return report(err, Status(ErrorCode::invalid_argument,
                                      "resolution: \"keep_deleted\" or \"restore\", not \"" + std::string(chosen) + "\""));
        }
        return report(err, device->device.resolve_deletion(id, chosen == "restore" ? tsunagu::sync::DeletionResolution::restore
                                                                                  : tsunagu::sync::DeletionResolution::keep_deleted));
    });
}

tsunagu_code tsunagu_status(tsunagu_device* device, char** status_json_out, tsunagu_error* err) {
    if (status_json_out) *status_json_out = nullptr;
    return guarded(err, [&]() -> tsunagu_code {
        if (!device || !status_json_out) return missing(err, "device and status_json_out");
        auto status = device->device.status();
        if (!status) return report(err, status.status());
        return emit(*status, status_json_out, err);
    });
}

}  // extern "C"
