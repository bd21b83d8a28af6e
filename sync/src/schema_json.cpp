// Schemas as JSON, so the upstream can publish the schema its peers validate with.
#include "sync/schema.h"

#include "sync/protocol.h"

namespace tsunagu::sync {
namespace {

constexpr std::pair<FieldType, const char*> kTypes[] = {
    {FieldType::string, "string"}, {FieldType::integer, "integer"},
    {FieldType::date, "date"},     {FieldType::enumeration, "enumeration"},
    {FieldType::text, "text"},     {FieldType::reference, "reference"},
    {FieldType::list, "list"},
};

constexpr std::pair<ScopeRule::Kind, const char*> kScopes[] = {
    {ScopeRule::Kind::owner, "owner"},
    {ScopeRule::Kind::field, "field"},
    {ScopeRule::Kind::self, "self"},
};

std::optional<FieldType> type_named(const std::string& name) {
    for (auto [type, text] : kTypes) {
        if (name == text) return type;
    }
    return std::nullopt;
}

void labels_to_json(Json& out, const Labels& label) {
    if (!label.ja.empty()) out["label_ja"] = label.ja;
    if (!label.en.empty()) out["label_en"] = label.en;
}

Labels labels_from_json(const Json& in) {
    return {in.value("label_ja", std::string()), in.value("label_en", std::string())};
}

Json field_to_json(const FieldSchema& f) {
    Json out = {{"name", f.name}, {"type", field_type_name(f.type)}};
    labels_to_json(out, f.label);
    if (f.required) out["required"] = true;
    if (f.min) out["min"] = *f.min;
    if (f.max) out["max"] = *f.max;
    if (!f.choices.empty()) out["choices"] = f.choices;
    if (!f.target.empty()) out["target"] = f.target;
    if (f.type == FieldType::list) out["item"] = field_type_name(f.item);
    if (f.since != 1) out["since"] = f.since;
    if (f.required_since != 0) out["required_since"] = f.required_since;
    if (f.future) out["future"] = true;
    if (f.defaults_to_author) out["default"] = "author";
    if (!f.choice_labels.empty()) {
        Json choices = Json::object();
        for (const auto& [choice, label] : f.choice_labels) {
            choices[choice] = {{"ja", label.ja}, {"en", label.en}};
        }
        out["choice_labels"] = std::move(choices);
    }
    return out;
}

FieldSchema field_from_json(const Json& in) {
    FieldSchema f;
    f.name = in.at("name").get<std::string>();
    auto type = type_named(in.at("type").get<std::string>());
    if (!type) throw std::invalid_argument("field \"" + f.name + "\": unknown type");
    f.type = *type;
    f.required = in.value("required", false);
    if (in.contains("min")) f.min = in["min"].get<std::int64_t>();
    if (in.contains("max")) f.max = in["max"].get<std::int64_t>();
    f.choices = in.value("choices", std::vector<std::string>{});
    f.target = in.value("target", std::string());
    if (in.contains("item")) {
        auto item = type_named(in["item"].get<std::string>());
        if (!item) throw std::invalid_argument("field \"" + f.name + "\": unknown item type");
        f.item = *item;
    }
    f.since = in.value("since", 1);
    f.required_since = in.value("required_since", 0);
    f.future = in.value("future", false);
    if (in.contains("default")) {
        if (in["default"] != "author") {
            throw std::invalid_argument("field \"" + f.name + "\": unknown default (\"author\" is the one there is)");
        }
        f.defaults_to_author = true;
    }
    f.label = labels_from_json(in);
    if (in.contains("choice_labels")) {
        for (const auto& item : in["choice_labels"].items()) {
            f.choice_labels[item.key()] = {item.value().value("ja", std::string()),
                                           item.value().value("en", std::string())};
        }
    }
    return f;
}

constexpr std::pair<RecordRule::Kind, const char*> kRules[] = {
    {RecordRule::Kind::at_most, "at_most"},
    {RecordRule::Kind::not_before, "not_before"},
    {RecordRule::Kind::required_with, "required_with"},
};

// {"field": "completed", "at_most": "enrolled"}: the rule's kind is the key naming the other field.
Json rule_to_json(const RecordRule& rule) {
    Json out = {{"field", rule.field}};
    for (auto [kind, name] : kRules) {
        if (kind == rule.kind) out[name] = rule.other;
    }
    if (!rule.unless.empty()) out["unless"] = rule.unless;
    if (!rule.when.empty()) out["when"] = rule.when;
    if (rule.since != 1) out["since"] = rule.since;
    return out;
}

RecordRule rule_from_json(const Json& in) {
    RecordRule rule;
    rule.field = in.at("field").get<std::string>();
    int kinds = 0;
    for (auto [kind, name] : kRules) {
        if (in.contains(name)) {
            rule.kind = kind;
            rule.other = in[name].get<std::string>();
            ++kinds;
        }
    }
    if (kinds != 1) {
        throw std::invalid_argument("rule on \"" + rule.field +
                                    "\": give exactly one of at_most, not_before, required_with");
    }
    rule.unless = in.value("unless", std::vector<std::string>{});
    rule.when = in.value("when", std::vector<std::string>{});
    rule.since = in.value("since", 1);
    return rule;
}

}  // namespace

void to_json(Json& out, const Schema& schema) {
    Json collections = Json::array();
    for (const auto& c : schema.collections) {
        Json fields = Json::array();
        for (const auto& f : c.fields) fields.push_back(field_to_json(f));
        Json scope = Json::object();
        for (auto [kind, name] : kScopes) {
            if (kind == c.scope.kind) scope["kind"] = name;
        }
        if (!c.scope.field.empty()) scope["field"] = c.scope.field;
        if (!c.scope.prefix.empty()) scope["prefix"] = c.scope.prefix;
        Json entry = {{"name", c.name}, {"fields", std::move(fields)}, {"scope", std::move(scope)}};
        labels_to_json(entry, c.label);
        if (c.since != 1) entry["since"] = c.since;
        if (!c.rules.empty()) {
            Json rules = Json::array();
            for (const auto& rule : c.rules) rules.push_back(rule_to_json(rule));
            entry["rules"] = std::move(rules);
        }
        collections.push_back(std::move(entry));
    }
    out = {{"version", schema.version}, {"collections", std::move(collections)}};
    if (schema.utc_offset_minutes) out["utc_offset_minutes"] = *schema.utc_offset_minutes;
}

Result<Schema> schema_from_json(const Json& in) {
    Schema schema;
    try {
        schema.version = in.at("version").get<int>();
        if (in.contains("utc_offset_minutes")) schema.utc_offset_minutes = in["utc_offset_minutes"].get<int>();
        for (const Json& c : in.at("collections")) {
            CollectionSchema collection;
            collection.name = c.at("name").get<std::string>();
            collection.since = c.value("since", 1);
            collection.label = labels_from_json(c);
            for (const Json& f : c.at("fields")) collection.fields.push_back(field_from_json(f));
            if (c.contains("rules")) {
                for (const Json& r : c["rules"]) collection.rules.push_back(rule_from_json(r));
            }
            if (c.contains("scope")) {
                const Json& scope = c["scope"];
                const std::string kind = scope.value("kind", std::string("owner"));
                bool known = false;
                for (auto [k, name] : kScopes) {
                    if (kind == name) {
                        collection.scope.kind = k;
                        known = true;
                    }
                }
                if (!known)
                    throw std::invalid_argument("collection \"" + collection.name +
                                                "\": unknown scope kind");
                collection.scope.field = scope.value("field", std::string());
                collection.scope.prefix = scope.value("prefix", std::string());
            }
            schema.collections.push_back(std::move(collection));
        }
    } catch (const std::exception& e) {
        return Status(ErrorCode::invalid_argument, "malformed schema: " + exception_text(e));
    }
    TSUNAGU_TRY(schema.check());
    return schema;
}

}  // namespace tsunagu::sync
