// The indicators: which approved records each one counts, and how.
#include "domain/indicators.h"

#include <algorithm>

#include <tuple>

namespace tsunagu::domain {
namespace {

// How one indicator is measured: the records of `collection` whose `match_field` equals
// `match_value` (when given) and that `selects` accepts (when set), dated by `date_field` (or
// `fallback_date_field` when unset; or by `date_of` when set), counted, or summed over
// `sum_field`, or counted once per distinct `distinct_field` value; only records that `qualifies`
// (when set) accepts.
struct Measure {
    IndicatorDefinition definition;
    std::string collection;
    std::string match_field;
    std::string match_value;
    bool (*selects)(const sync::Record&) = nullptr;
    std::string date_field;
    std::string fallback_date_field;
    const std::string* (*date_of)(const sync::Record&) = nullptr;
    std::string sum_field;
    std::string distinct_field;
    bool (*qualifies)(const sync::Record&) = nullptr;
};

const std::string* string_field(const sync::Record& r, const std::string& name) {
    if (name.empty()) return nullptr;
    auto it = r.fields.find(name);
    if (it == r.fields.end() || !it->is_string()) return nullptr;
    return &it->get_ref<const std::string&>();
}

// When a discharge-support case's person started community transition support (地域移行支援の
// 利用開始): the case's transition_date (schema v4), kept when the outcome later moves on (to
// "discharged", say), so that a closed year's count does not change. A case written before v4
// has none; its outcome_date is the date while its outcome is still community_transition_support.
const std::string* transition_date(const sync::Record& r) {
    if (const std::string* date = string_field(r, "transition_date")) return date;
    const std::string* outcome = string_field(r, "outcome");
    return outcome && *outcome == "community_transition_support" ? string_field(r, "outcome_date") : nullptr;
}

// A case whose outcome went back to "ongoing" (a mistake corrected) has not reached it, whatever
// date it kept.
bool reached_transition_support(const sync::Record& r) {
    const std::string* outcome = string_field(r, "outcome");
    return outcome && *outcome != "ongoing" && transition_date(r) != nullptr;
}

// A long-term inpatient (長期入院患者) is, as the city's survey of inpatients counts them
// (１年以上長期入院患者), someone hospitalised for one year or more. The discharge-support case
// carries the admission that its support ended, so the rule reads the case, not the client's
// long_term_inpatient flag (a current status, edited at any time and tied to no admission): the
// case's admitted_since is at least one year before the transition date (admitted 2019-06-01:
// long-term from 2020-06-01 on). A case without an admission date does not count; the schema
// requires one once an outcome is recorded.
bool long_term_at_transition(const sync::Record& r) {
    const std::string* admitted = string_field(r, "admitted_since");
    const std::string* reached = transition_date(r);
    if (!admitted || !reached || admitted->size() != 10 || !fiscal_year_of(*admitted)) return false;
    const std::string anniversary = std::to_string(std::stoi(admitted->substr(0, 4)) + 1) + admitted->substr(4);
    return *reached >= anniversary;  // "YYYY-MM-DD" orders as text
}

// ピアサポーター養成者数 counts those who completed the peer-supporter training course itself,
// not a follow-up or another course (course_kind, schema v4). A course written before v4 has no
// kind and counts, as it did when it was written.
bool trains_peer_supporters(const sync::Record& r) {
    const std::string* kind = string_field(r, "course_kind");
    return !kind || *kind == "peer_supporter_training";
}

// Whether `r` is one of the records `m` is about (whatever its date and review status).
bool is_about(const Measure& m, const sync::Record& r) {
    if (r.collection != m.collection) return false;
    if (!m.match_field.empty()) {
        const std::string* value = string_field(r, m.match_field);
        if (!value || *value != m.match_value) return false;
    }
    return !m.selects || m.selects(r);
}

const std::string* date_of(const Measure& m, const sync::Record& r) {
    if (m.date_of) return m.date_of(r);
    const std::string* date = string_field(r, m.date_field);
    return date ? date : string_field(r, m.fallback_date_field);
}

// Builders, so that the table below reads as what each indicator counts.
Measure count(IndicatorDefinition d, std::string collection, std::string date_field,
              std::string match_field = {}, std::string match_value = {}) {
    Measure m;
    m.definition = std::move(d);
    m.collection = std::move(collection);
    m.date_field = std::move(date_field);
    m.match_field = std::move(match_field);
    m.match_value = std::move(match_value);
    return m;
}

Measure meetings(IndicatorDefinition d, std::string kind) {
    return count(std::move(d), "meeting", "date", "kind", std::move(kind));
}

Measure dispatches(IndicatorDefinition d, std::string field = {}, std::string value = {}) {
    return count(std::move(d), "peer_support_dispatch", "date", std::move(field), std::move(value));
}

Measure summed(Measure m, std::string field) {
    m.sum_field = std::move(field);
    return m;
}

const std::vector<Measure>& measures() {
    static const std::vector<Measure> all = [] {
        std::vector<Measure> v;
        v.push_back(meetings({"subcommittee_meetings", "精神保健福祉部会 定例会議", "Subcommittee regular meetings"},
                             "subcommittee"));
        v.push_back(meetings({"practitioner_liaison_meetings", "関係実務者連携会議",
                              "Practitioners' liaison meetings"},
                             "practitioner_liaison"));
        v.push_back(meetings({"working_group_meetings", "地域移行支援促進ワーキング",
                              "Community-transition working group meetings"},
                             "working_group"));
        v.push_back(meetings({"council_meetings", "精神保健福祉審議会", "Council meetings"}, "council"));
        Measure trained = summed(count({"peer_supporters_trained", "ピアサポーター養成者数", "Peer supporters trained"},
                                       "training_course", "end_date"),
                                 "completed");
        trained.fallback_date_field = "start_date";
        trained.selects = trains_peer_supporters;
        v.push_back(std::move(trained));
        v.push_back(dispatches({"dispatch_requests", "ピアサポーター派遣依頼件数", "Peer-support dispatch requests"}));
        v.push_back(dispatches({"dispatch_requests_medical", "派遣依頼件数(医療機関から)",
                                "Dispatch requests from medical institutions"},
                               "request_source", "医療機関"));
        v.push_back(dispatches({"dispatch_requests_provider", "派遣依頼件数(地域援助事業者から)",
                                "Dispatch requests from community support providers"},
                               "request_source", "地域援助事業者"));
        v.push_back(dispatches({"dispatch_requests_home", "派遣依頼件数(本人・在宅)",
                                "Dispatch requests from people at home"},
                               "request_source", "本人・在宅"));
        v.push_back(dispatches({"dispatch_group", "派遣(集団)", "Dispatches, group"}, "format", "group"));
        v.push_back(dispatches({"dispatch_individual", "派遣(個別)", "Dispatches, individual"}, "format", "individual"));
        v.push_back(dispatches({"dispatch_online", "派遣(オンライン)", "Dispatches, online"}, "format", "online"));
        Measure transition = count({"community_transition", "退院支援により地域移行支援の利用に至った長期入院患者数",
                                    "Long-term inpatients who reached community transition support"},
                                   "discharge_support_case", {});
        transition.selects = reached_transition_support;
        transition.date_of = transition_date;
        transition.distinct_field = "client";
        transition.qualifies = long_term_at_transition;
        v.push_back(std::move(transition));
        v.push_back(meetings({"post_discharge_liaison_meetings", "退院後支援担当者連絡会",
                              "Post-discharge liaison meetings"},
                             "post_discharge_liaison"));
        v.push_back(summed(meetings({"post_discharge_liaison_organisations", "退院後支援担当者連絡会 参加機関数",
                                     "Post-discharge liaison meetings: organisations"},
                                    "post_discharge_liaison"),
                           "organisations"));
        v.push_back(summed(meetings({"post_discharge_liaison_participants", "退院後支援担当者連絡会 参加者数",
                                     "Post-discharge liaison meetings: participants"},
                                    "post_discharge_liaison"),
                           "participants"));
        v.push_back(meetings({"regional_liaison_meetings", "地域精神保健福祉連絡会 定例会議",
                              "Regional liaison regular meetings"},
                             "regional_liaison"));
        return v;
    }();
    return all;
}

bool is_approved(const sync::Record& r) {
    const std::string* status = string_field(r, "review_status");
    return !r.deleted && status && *status == "approved";
}

// The month's index in the fiscal year: April 0 ... March 11.
int fiscal_month(std::string_view date) {
    const int month = (date[5] - '0') * 10 + (date[6] - '0');
    return (month + 8) % 12;
}

}  // namespace

std::optional<int> fiscal_year_of(std::string_view date) {
    if (date.size() != 10 || date[4] != '-' || date[7] != '-') return std::nullopt;
    for (std::size_t i : {0, 1, 2, 3, 5, 6, 8, 9}) {
        if (date[i] < '0' || date[i] > '9') return std::nullopt;
    }
    const int year = std::stoi(std::string(date.substr(0, 4)));
    const int month = (date[5] - '0') * 10 + (date[6] - '0');
    if (month < 1 || month > 12) return std::nullopt;
    return month >= 4 ? year : year - 1;
}

const std::vector<IndicatorDefinition>& indicator_definitions() {
    static const std::vector<IndicatorDefinition> all = [] {
        std::vector<IndicatorDefinition> out;
        for (const auto& m : measures()) out.push_back(m.definition);
        return out;
    }();
    return all;
}

const IndicatorDefinition* find_indicator(std::string_view id) {
    for (const auto& d : indicator_definitions()) {
        if (d.id == id) return &d;
    }
    return nullptr;
}

std::vector<std::string> summed_fields_missing(const sync::Record& record) {
    std::vector<std::string> missing;
    for (const Measure& m : measures()) {
        if (m.sum_field.empty() || !is_about(m, record)) continue;
        const auto it = record.fields.find(m.sum_field);
        const bool given = it != record.fields.end() && it->is_number_integer();
        if (!given && std::find(missing.begin(), missing.end(), m.sum_field) == missing.end()) {
            missing.push_back(m.sum_field);
        }
    }
    return missing;
}

std::vector<std::string> not_countable_yet(const sync::Record& record, std::string_view today) {
    std::vector<std::string> gaps;
    if (record.collection == "training_course" && trains_peer_supporters(record)) {
        const std::string* end = string_field(record, "end_date");
        if (!end) {
            gaps.push_back("end_date: the course counts in the year it ends; give its last day");
        } else if (*end > today) {
            gaps.push_back("end_date " + *end + " is after today: approve once the course has ended and its "
                           "trainees completed are known");
        }
    }
    if (record.collection == "discharge_support_case") {
        const std::string* outcome = string_field(record, "outcome");
        if (reached_transition_support(record) && !string_field(record, "admitted_since")) {
            gaps.push_back("admitted_since: whether the person was a long-term inpatient depends on it");
        }
        if (outcome && *outcome == "community_transition_support" && !transition_date(record)) {
            gaps.push_back("transition_date: the day community transition support started");
        }
    }
    return gaps;
}

std::string IndicatorReport::first_day() const { return std::to_string(fiscal_year) + "-04-01"; }
std::string IndicatorReport::last_day() const { return std::to_string(fiscal_year + 1) + "-03-31"; }

const IndicatorRow* IndicatorReport::row(std::string_view id) const {
    for (const auto& r : rows) {
        if (r.definition.id == id) return &r;
    }
    return nullptr;
}

IndicatorReport compute_indicators(const std::vector<sync::Record>& records, const ReportInputs& inputs) {
    IndicatorReport report;
    report.fiscal_year = inputs.fiscal_year;
    report.areas = inputs.areas;
    for (const Measure& m : measures()) {
        IndicatorRow row;
        row.definition = m.definition;
        if (auto t = inputs.targets.find(m.definition.id); t != inputs.targets.end()) row.target = t->second;
        // A person counts once in the year, in the month and area of their first qualifying
        // record of the year (the earliest date, then the smallest id), so that the months and
        // the areas add up to the year.
        std::map<std::string, std::pair<std::string, const sync::Record*>> first_of_person;
        for (const sync::Record& r : records) {
            if (!is_about(m, r) || !is_approved(r)) continue;
            const std::string* date = date_of(m, r);
            if (!date || fiscal_year_of(*date) != inputs.fiscal_year) continue;
            if (m.qualifies && !m.qualifies(r)) continue;
            row.in_conflict += r.conflicts.empty() ? 0 : 1;
            if (!m.distinct_field.empty()) {
                const std::string* key = string_field(r, m.distinct_field);
                auto [it, added] = first_of_person.try_emplace(key ? *key : r.id, *date, &r);
                if (!added && std::tie(*date, r.id) < std::tie(it->second.first, it->second.second->id)) {
                    it->second = {*date, &r};
                }
                continue;
            }
            std::int64_t amount = 1;
            if (!m.sum_field.empty()) {
                auto it = r.fields.find(m.sum_field);
                amount = it != r.fields.end() && it->is_number_integer() ? it->get<std::int64_t>() : 0;
            }
            row.actual += amount;
            row.by_area[inputs.area_of ? inputs.area_of(r, *date) : std::string()] += amount;
            row.by_month[static_cast<std::size_t>(fiscal_month(*date))] += amount;
        }
        for (const auto& [person, first] : first_of_person) {
            row.actual += 1;
            row.by_area[inputs.area_of ? inputs.area_of(*first.second, first.first) : std::string()] += 1;
            row.by_month[static_cast<std::size_t>(fiscal_month(first.first))] += 1;
        }
        if (row.target && *row.target > 0) {
            row.rate = static_cast<double>(row.actual) / static_cast<double>(*row.target);
        }
        report.rows.push_back(std::move(row));
    }
    // Records that count in no area still show in the breakdown, so its columns add up.
    for (const auto& row : report.rows) {
        if (auto it = row.by_area.find(""); it != row.by_area.end() && it->second != 0) {
            report.areas.push_back({"", "地域未設定 (no area)"});
            break;
        }
    }
    return report;
}

}  // namespace tsunagu::domain
