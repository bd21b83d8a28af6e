// Random 128-bit ids and the names of the sync enums.
#include <sodium.h>

#include "crypto/secret.h"
#include "sync/change.h"
#include "sync/protocol.h"
#include "sync/src/names.h"

namespace tsunagu::sync {

std::string new_id() {
    ensure_sodium();
    unsigned char bytes[16];
    randombytes_buf(bytes, sizeof bytes);
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out(32, '0');
    for (int i = 0; i < 16; ++i) {
        out[2 * i] = kHex[bytes[i] >> 4];
        out[2 * i + 1] = kHex[bytes[i] & 15];
    }
    return out;
}

bool is_id(std::string_view text) {
    if (text.size() != 32) return false;
    for (char c : text) {
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
    }
    return true;
}

std::string Record::text(std::string_view field) const {
    const auto it = fields.find(field);
    return it != fields.end() && it->is_string() ? it->get<std::string>() : std::string();
}

bool ChangeSet::deletes() const {
    auto it = set.find(kDeletedField);
    return it != set.end() && *it == Json(true);
}

bool ChangeSet::restores() const {
    auto it = set.find(kDeletedField);
    return it != set.end() && *it == Json(false);
}

const char* conflict_kind_name(ConflictKind kind) noexcept {
    switch (kind) {
        case ConflictKind::concurrent_edit:
            return "concurrent_edit";
        case ConflictKind::edit_vs_delete:
            return "edit_vs_delete";
        case ConflictKind::delete_vs_restore:
            return "delete_vs_restore";
    }
    return "unknown";
}

const char* change_kind_name(ChangeKind kind) noexcept {
    switch (kind) {
        case ChangeKind::create:
            return "create";
        case ChangeKind::edit:
            return "edit";
        case ChangeKind::remove:
            return "delete";
        case ChangeKind::restore:
            return "restore";
        case ChangeKind::resolve:
            return "resolve";
    }
    return "unknown";
}

const char* push_status_name(PushStatus status) noexcept {
    switch (status) {
        case PushStatus::accepted:
            return "accepted";
        case PushStatus::duplicate:
            return "duplicate";
        case PushStatus::refused:
            return "refused";
    }
    return "unknown";
}

}  // namespace tsunagu::sync
