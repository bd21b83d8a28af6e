// build_change: the base each kind of edit records, and what each refuses.
#include "sync/src/authoring.h"

#include <set>

#include "sync/src/json_writer.h"

namespace tsunagu::sync::detail {
namespace {

Status refuse(ErrorCode code, const Edit& edit, const std::string& what) {
    return Status(code, "record " + edit.record + ": " + what);
}

ChangeSet blank(const EditContext& context, const std::string& collection,
                const std::string& record) {
    ChangeSet change;
    change.id = context.ids();
    change.collection = collection;
    change.record = record;
    change.hlc = context.hlc;
    change.replica = context.replica;
    change.user = context.user;
    change.schema_version = context.schema.version;
    return change;
}

// The value of `field` as read: null when it was not set.
Json value_read(const AsRead& as_read, const std::string& field) {
    const auto read = as_read.fields.find(field);
    return read == as_read.fields.end() ? Json() : *read;
}

// Made from what was read (AsRead): the versions of `field` an update supersedes. Those in force
// with the value read (the current one then, any of an equal value, and one that set it again
// since: the person saw that value), and those read that are no longer in force (something
// superseded them since: naming them too is harmless). Not a version of another value that
// arrived since, which stays beside the update as a conflict, nor one a conflict opposed to the
// value read (an update settles no conflict).
std::vector<std::string> read_base(const RecordState& state, const AsRead& as_read, const std::string& field) {
    std::set<std::string> base;
    const Json seen = value_read(as_read, field);
    const auto now = state.fields.find(field);
    std::set<std::string> in_force;
    if (now != state.fields.end()) {
        for (const Head& head : now->second) {
            const std::string& id = state.version_of(head).change_id;
            in_force.insert(id);
            if (!seen.is_null() && head.value.json() == seen) base.insert(id);
        }
    }
    if (const auto read = as_read.heads.find(field); read != as_read.heads.end()) {
        for (const std::string& id : read->second) {
            if (!in_force.contains(id)) base.insert(id);
        }
    }
    return {base.begin(), base.end()};
}

// Every version of `field` that was read: what a resolution made from the reading settles.
std::vector<std::string> read_heads(const AsRead& as_read, const std::string& field) {
    const auto read = as_read.heads.find(field);
    return read == as_read.heads.end() ? std::vector<std::string>{} : read->second;
}

// Every version of every field that was read: what a delete made from the reading has seen.
std::vector<std::string> all_read(const AsRead& as_read) {
    std::set<std::string> ids;
    for (const auto& [field, heads] : as_read.heads) ids.insert(heads.begin(), heads.end());
    return {ids.begin(), ids.end()};
}

bool has_deletion_conflict(const RecordState& state) {
    for (const Conflict& c : conflicts_of(state, {}, {})) {
        if (c.kind != ConflictKind::concurrent_edit) return true;
    }
    return false;
}

// Text must be UTF-8 (the change is stored and sent as JSON): refused up front, naming the field
// and never its bytes, rather than failing, or throwing, once the change is written.
Status check_utf8(const Edit& edit, const std::string& field, const Json& value) {
    if (!is_utf8(field)) {
        return refuse(ErrorCode::invalid_argument, edit,
                      "a field name is not valid UTF-8 text; names and values must be UTF-8");
    }
    if (holds_invalid_utf8(value)) {
        return refuse(ErrorCode::invalid_argument, edit,
                      "field \"" + field + "\": the value is not valid UTF-8 text; send text as UTF-8");
    }
    return Status::ok();
}

Status check_fields_object(const Edit& edit) {
    if (!edit.fields.is_object()) {
        return refuse(ErrorCode::invalid_argument, edit,
                      "fields must be a JSON object of field values");
    }
    for (const auto& item : edit.fields.items()) {
        TSUNAGU_TRY(check_utf8(edit, item.key(), item.value()));
        if (!item.key().empty() && item.key()[0] == '_') {
            return refuse(ErrorCode::validation, edit, "field \"" + item.key() + "\" is reserved");
        }
    }
    return Status::ok();
}

// Values, then the rules between fields, then event dates: what a receiving peer checks too.
Status validate_made(const EditContext& context, const ChangeSet& change, const RecordState* state) {
    TSUNAGU_TRY(validate_change(context.schema, change));
    TSUNAGU_TRY(validate_rules(context.schema, change, rule_values(context.schema, change.collection, state)));
    return validate_event_dates(context.schema, change, context.latest_event_date);
}

}  // namespace

Json rule_values(const Schema& schema, std::string_view collection, const RecordState* state) {
    Json out = Json::object();
    const CollectionSchema* declared = schema.find(collection);
    if (!declared || !state) return out;
    for (const RecordRule& rule : declared->rules) {
        for (const std::string* name : {&rule.field, &rule.other}) {
            if (const Head* head = state->winner(*name)) out[*name] = head->value.json();
        }
    }
    return out;
}

Edit Edit::create(std::string_view collection, const Json& fields) {
    Edit edit;
    edit.kind = Kind::create;
    edit.collection = collection;
    edit.fields = fields;
    return edit;
}

Edit Edit::update(std::string_view record, const Json& fields) {
    Edit edit;
    edit.record = record;
    edit.fields = fields;
    return edit;
}

Edit Edit::remove(std::string_view record) {
    Edit edit;
    edit.kind = Kind::remove;
    edit.record = record;
    return edit;
}

Edit Edit::resolve(std::string_view record, std::string_view field, const Json& value) {
    Edit edit;
    edit.kind = Kind::resolve;
    edit.record = record;
    edit.field = field;
    edit.value = value;
    return edit;
}

Edit Edit::resolve_deletion(std::string_view record, DeletionResolution resolution) {
    Edit edit;
    edit.kind = Kind::resolve_deletion;
    edit.record = record;
    edit.resolution = resolution;
    return edit;
}

Result<std::optional<ChangeSet>> build_change(const EditContext& context, const Edit& edit,
                                              const EditTarget& target) {
    using Kind = Edit::Kind;
    if (edit.kind == Kind::create) {
        if (!is_utf8(edit.collection)) {
            return refuse(ErrorCode::invalid_argument, edit, "the collection name is not valid UTF-8 text");
        }
        TSUNAGU_TRY(check_fields_object(edit));
        ChangeSet change = blank(context, edit.collection, context.ids());
        change.create = true;
        for (const auto& item : edit.fields.items()) {
            if (!item.value().is_null()) change.set[item.key()] = item.value();
        }
        if (const CollectionSchema* collection = context.schema.find(edit.collection)) {
            for (const FieldSchema& field : collection->fields) {
                if (field.defaults_to_author && is_id(context.user) && !change.set.contains(field.name))
                    change.set[field.name] = context.user;
            }
        }
        TSUNAGU_TRY(validate_made(context, change, nullptr));
        return std::optional<ChangeSet>(std::move(change));
    }

    if (!is_id(edit.record)) {
        return refuse(ErrorCode::invalid_argument, edit,
                      "is not a record id (32 lower-case hex characters)");
    }
    if (!target.state) return refuse(ErrorCode::not_found, edit, "no such record on this replica");
    if (edit.as_read && edit.as_read->record != edit.record) {
        return refuse(ErrorCode::invalid_argument, edit,
                      "the record as read is " + (edit.as_read->record.empty() ? std::string("no record") : edit.as_read->record) +
                          ": give this record's reading");
    }
    const RecordState& state = *target.state;
    ChangeSet change = blank(context, *target.collection, edit.record);
    const bool deleted = state.deleted();

    switch (edit.kind) {
        case Kind::update:
            TSUNAGU_TRY(check_fields_object(edit));
            // Made from a reading of the record before the delete arrived, the edit is concurrent
            // with it: kept beside it as an edit_vs_delete conflict (the delete did not see it).
            if (deleted && !(edit.as_read && edit.as_read->deleted == false)) {
                return refuse(ErrorCode::conflict, edit, "was deleted; it cannot be edited");
            }
            for (const auto& item : edit.fields.items()) {
                // Unchanged: as read, when made from a reading (a form sends back the fields it did
                // not touch, which must not put back what a sync brought since); else as it stands.
                const Head* current = state.winner(item.key());
                const bool unchanged = edit.as_read ? value_read(*edit.as_read, item.key()) == item.value()
                                       : current    ? current->value.json() == item.value()
                                                    : item.value().is_null();
                if (unchanged) continue;
                change.set[item.key()] = item.value();
                auto base = edit.as_read ? read_base(state, *edit.as_read, item.key()) : current_base(state, item.key());
                if (!base.empty()) change.base[item.key()] = std::move(base);
            }
            if (change.set.empty()) return std::optional<ChangeSet>();
            break;
        case Kind::remove:
            if (deleted) return refuse(ErrorCode::conflict, edit, "is already deleted");
            change.set[kDeletedField] = true;
            change.base[kDeletedField] = head_ids(state, kDeletedField);
            change.seen = edit.as_read ? all_read(*edit.as_read) : all_field_head_ids(state);
            break;
        case Kind::resolve: {
            TSUNAGU_TRY(check_utf8(edit, edit.field, edit.value));
            // As an update: made from a reading of the record before the delete arrived, the
            // resolution is concurrent with it and kept beside it (edit_vs_delete).
            if (deleted && !(edit.as_read && edit.as_read->deleted == false)) {
                return refuse(ErrorCode::conflict, edit,
                              "is deleted: settle the deletion first (resolve_deletion, tsunagu_resolve_deletion: keep it "
                              "deleted or restore it), then its fields");
            }
            auto heads = edit.as_read ? read_heads(*edit.as_read, edit.field) : head_ids(state, edit.field);
            // Made from a reading, it settles the conflict that was read: refused when none was;
            // one settled or joined since stays beside the resolution as a conflict.
            bool open = edit.as_read && heads.size() >= 2;
            if (!edit.as_read) {
                for (const Conflict& c : conflicts_of(state, {}, {})) open |= c.field == edit.field;
            }
            if (!open) {
                return refuse(ErrorCode::conflict, edit,
                              "field \"" + edit.field + "\" " + (edit.as_read ? "had" : "has") + " no conflict to resolve");
            }
            change.set[edit.field] = edit.value;
            change.base[edit.field] = std::move(heads);
            break;
        }
        case Kind::resolve_deletion:
            if (!has_deletion_conflict(state)) {
                return refuse(ErrorCode::conflict, edit,
                              "has no conflict between a delete and an edit or restore");
            }
            change.set[kDeletedField] = edit.resolution == DeletionResolution::keep_deleted;
            change.base[kDeletedField] = head_ids(state, kDeletedField);
            if (edit.resolution == DeletionResolution::keep_deleted)
                change.seen = edit.as_read ? all_read(*edit.as_read) : all_field_head_ids(state);
            break;
        case Kind::create:
            break;
    }
    TSUNAGU_TRY(validate_made(context, change, &state));
    return std::optional<ChangeSet>(std::move(change));
}

}  // namespace tsunagu::sync::detail
