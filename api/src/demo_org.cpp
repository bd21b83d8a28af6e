// The demo organisation (see demo_org.h). Every record goes through the engine as its author would
// make it: a worker creates and submits it, the area's supervisor approves (or returns) it, so the
// records' histories show the review workflow too.
#include "api/src/demo_org.h"

#include <sodium.h>

#include <array>
#include <ctime>
#include <filesystem>
#include <memory>
#include <optional>
#include <utility>

#include "api/src/caseload.h"
#include "api/src/reports.h"
#include "api/src/worker_push.h"
#include "domain/care_schema.h"

namespace tsunagu::api {
namespace {

using sync::Json;

constexpr int kClientsPerArea = 50;

struct AreaName {
    const char* name;
    const char* slug;
};
constexpr std::array<AreaName, 6> kAreas = {{{"北区中央", "kita-chuo"},
                                             {"北区北", "kita-kita"},
                                             {"中区", "naka"},
                                             {"東区", "higashi"},
                                             {"南区西", "minami-nishi"},
                                             {"南区南", "minami-minami"}}};

struct DemoArea {
    std::string team_id;
    std::string name;
    User supervisor;
    std::array<User, 2> peers;
    User visitor;
    User staff;
    std::vector<std::string> clients;        // all of the area's
    std::vector<std::string> peer_clients;   // also assigned to a peer supporter
    std::vector<std::string> staff_clients;  // also assigned to the staff member
};

// A date of fiscal year 2020 by month index (0 = April 2020 ... 11 = March 2021) and day.
std::string fy2020(int month_index, int day) {
    const int month = (month_index + 3) % 12 + 1;
    const int year = month >= 4 ? 2020 : 2021;
    char text[16];
    std::snprintf(text, sizeof text, "%04d-%02d-%02d", year, month, day);
    return text;
}

// The month index of the i-th of n events spread over the year.
int spread(int i, int n) { return i * 12 / n; }

enum class Outcome { draft, submitted, approved, returned };

class DemoBuilder {
public:
    DemoBuilder(Store& store, Accounts& accounts, sync::Upstream& upstream, std::string& next_id)
        : store_(store), accounts_(accounts), upstream_(upstream), next_id_(next_id) {}

    Status people();
    Status clients();
    Status fiscal_year_2020();
    Status records_that_do_not_count();
    Status targets();
    Status conflicting_edits(const std::string& scratch_dir);

    DemoOrganisation result;

private:
    Result<User> person(const std::string& username, const std::string& display, Role role,
                        const std::string& team_id, const std::string& area);
    Result<std::string> record(const User& author, const DemoArea& area, const char* collection, Json fields,
                               Outcome outcome);
    Result<std::string> approved(const User& author, const DemoArea& area, const char* collection, Json fields) {
        return record(author, area, collection, std::move(fields), Outcome::approved);
    }

    Store& store_;
    Accounts& accounts_;
    sync::Upstream& upstream_;
    std::string& next_id_;
    std::vector<DemoArea> areas_;
};

Result<User> DemoBuilder::person(const std::string& username, const std::string& display, Role role,
                                 const std::string& team_id, const std::string& area) {
    const std::string password = random_password();
    auto user = accounts_.create_user(username, display, role, team_id, password);
    if (!user) return user.status();
    result.accounts.push_back({username, role_name(role), area, password});
    return user;
}

Status DemoBuilder::people() {
    for (const auto& [name, slug] : kAreas) {
        DemoArea area;
        area.name = name;
        auto team = accounts_.create_team(name);
        TSUNAGU_TRY(team);
        area.team_id = *team;
        const std::string s = slug;
        auto sup = person(s + ".supervisor", std::string(name) + " スーパーバイザー", Role::supervisor, *team, name);
        TSUNAGU_TRY(sup);
        area.supervisor = *sup;
        for (int i = 0; i < 2; ++i) {
            auto peer = person(s + ".peer" + std::to_string(i + 1),
                               std::string(name) + " ピアサポーター" + std::to_string(i + 1), Role::peer_supporter,
                               *team, name);
            TSUNAGU_TRY(peer);
            area.peers[static_cast<std::size_t>(i)] = *peer;
        }
        auto visitor = person(s + ".visitor", std::string(name) + " 訪問員", Role::home_visitor, *team, name);
        TSUNAGU_TRY(visitor);
        area.visitor = *visitor;
        auto staff = person(s + ".staff", std::string(name) + " 保健センター職員", Role::staff, *team, name);
        TSUNAGU_TRY(staff);
        area.staff = *staff;
        areas_.push_back(std::move(area));
    }
    return Status::ok();
}

// Each client is assigned to the area's home visitor, every second one also to a peer supporter,
// every third one also to the staff member. The caseload comes first, so the client's author
// holds the client's scope when creating it (as a client created on a device joins its author's
// caseload before its push).
Status DemoBuilder::clients() {
    for (std::size_t a = 0; a < areas_.size(); ++a) {
        DemoArea& area = areas_[a];
        for (int i = 0; i < kClientsPerArea; ++i) {
            const std::string id = sync::new_id();
            Caseload caseload{id, area.team_id, {area.visitor.id}};
            if (i % 2 == 0) caseload.worker_ids.push_back(area.peers[static_cast<std::size_t>(i / 2 % 2)].id);
            if (i % 3 == 0) caseload.worker_ids.push_back(area.staff.id);
            TSUNAGU_TRY(Caseloads::assign(store_, upstream_, caseload, std::time(nullptr)));
            char pseudonym[32];
            std::snprintf(pseudonym, sizeof pseudonym, "C-%d%03d", static_cast<int>(a) + 1, i + 1);
            next_id_ = id;
            auto created = upstream_.create(area.visitor.id, "client",
                                            {{"pseudonym", pseudonym},
                                             {"area", area.name},
                                             {"status", "active"},
                                             {"long_term_inpatient", i % 10 == 0 ? "yes" : "no"}});
            TSUNAGU_TRY(created);
            area.clients.push_back(id);
            if (i % 2 == 0) area.peer_clients.push_back(id);
            if (i % 3 == 0) area.staff_clients.push_back(id);
            ++result.clients;
        }
    }
    return Status::ok();
}

Result<std::string> DemoBuilder::record(const User& author, const DemoArea& area, const char* collection,
                                        Json fields, Outcome outcome) {
    fields["review_status"] = outcome == Outcome::draft ? "draft" : "submitted";
    auto id = upstream_.create(author.id, collection, fields);
    if (!id) return id.status();
    ++result.records;
    if (outcome == Outcome::approved) {
        TSUNAGU_TRY(upstream_.update(area.supervisor.id, *id, {{"review_status", "approved"}}));
    } else if (outcome == Outcome::returned) {
        TSUNAGU_TRY(upstream_.update(area.supervisor.id, *id,
                                     {{"review_status", "returned"},
                                      {"review_comment", "派遣時間を確認してください / please check the duration"}}));
    }
    return id;
}

Status DemoBuilder::fiscal_year_2020() {
    // Peer-support dispatch requests: 56 (target 88). Group requests from hospitals fell during
    // COVID-19; one-to-one requests at home and through community support providers rose.
    struct Kind {
        const char* source;
        const char* format;
        int count;
    };
    const Kind kinds[] = {{"医療機関", "group", 12},         {"医療機関", "individual", 4},
                          {"地域援助事業者", "individual", 14}, {"地域援助事業者", "online", 4},
                          {"本人・在宅", "individual", 18},     {"本人・在宅", "online", 4}};
    int n = 0;
    for (const Kind& kind : kinds) {
        for (int i = 0; i < kind.count; ++i, ++n) {
            const DemoArea& area = areas_[static_cast<std::size_t>(n) % areas_.size()];
            const User& peer = area.peers[static_cast<std::size_t>(n / 6 % 2)];
            Json fields = {{"date", fy2020(spread(n, 56), 3 + n % 25)},
                           {"duration_min", 60 + 15 * (n % 5)},
                           {"peer_supporters", Json::array({peer.id})},
                           {"format", kind.format},
                           {"request_source", kind.source}};
            if (std::string(kind.format) != "group") {
                // The peer supporter's own clients: index i/2%2 picked peers[0] or peers[1].
                const auto& mine = area.peer_clients;
                std::vector<std::string> theirs;
                for (std::size_t c = 0; c < mine.size(); ++c) {
                    if (c % 2 == static_cast<std::size_t>(n / 6 % 2)) theirs.push_back(mine[c]);
                }
                fields["client"] = theirs[static_cast<std::size_t>(n) % theirs.size()];
            }
            if (n == 30) {
                // Returned once, corrected and resubmitted, then approved: counted once.
                auto id = record(peer, area, "peer_support_dispatch", fields, Outcome::returned);
                TSUNAGU_TRY(id);
                TSUNAGU_TRY(upstream_.update(peer.id, *id, {{"duration_min", 90}, {"review_status", "submitted"}}));
                TSUNAGU_TRY(upstream_.update(area.supervisor.id, *id, {{"review_status", "approved"}}));
                continue;
            }
            TSUNAGU_TRY(approved(peer, area, "peer_support_dispatch", fields));
        }
    }

    // Meetings, held by the centre's staff (area 0) unless said otherwise.
    const DemoArea& centre = areas_[0];
    auto meeting = [&](const DemoArea& area, const char* kind, const std::string& date, int orgs,
                       int people) -> Status {
        return approved(area.staff, area, "meeting",
                        {{"kind", kind},
                         {"date", date},
                         {"organisations", orgs},
                         {"participants", people},
                         {"format", "in_person"}})
            .status();
    };
    for (int m = 0, held = 0; m < 12 && held < 10; ++m) {
        if (m == 4 || m == 8) continue;  // no subcommittee in August and December
        TSUNAGU_TRY(meeting(centre, "subcommittee", fy2020(m, 20), 12, 18));
        ++held;
    }
    // 関係実務者連携会議, held once under the subcommittee; other liaison meetings do not count.
    TSUNAGU_TRY(meeting(centre, "practitioner_liaison", fy2020(10, 9), 9, 15));
    for (int i = 0; i < 25; ++i) {  // working groups ran in two areas
        TSUNAGU_TRY(meeting(areas_[static_cast<std::size_t>(i % 2)], "working_group", fy2020(spread(i, 25), 6 + i % 20),
                            6, 10));
    }
    TSUNAGU_TRY(meeting(centre, "council", fy2020(11, 12), 15, 20));
    TSUNAGU_TRY(meeting(centre, "post_discharge_liaison", fy2020(7, 17), 14, 28));
    for (int i = 0; i < 10; ++i) {
        TSUNAGU_TRY(meeting(areas_[static_cast<std::size_t>(i) % areas_.size()], "regional_liaison",
                            fy2020(spread(i, 10), 15), 20, 35));
    }

    // The peer-supporter training course: 10 places (COVID-19), 8 completed (target 20).
    TSUNAGU_TRY(approved(centre.staff, centre, "training_course",
                         {{"course", "ピアサポーター養成講座 2020"},
                          {"course_kind", "peer_supporter_training"},
                          {"start_date", "2020-09-01"},
                          {"end_date", "2020-12-15"},
                          {"enrolled", 10},
                          {"completed", 8}})
                    .status());

    // Discharge support for long-term inpatients (in hospital since 2017, so a year or more at
    // their outcome): 7 reached community transition support (target 6), one of whom has since
    // been discharged (FY2021: the case's outcome moved on, the year's count stays), and 4 are
    // still in progress.
    for (int i = 0; i < 11; ++i) {
        const DemoArea& area = areas_[static_cast<std::size_t>(i) % areas_.size()];
        const std::string& client = area.staff_clients[static_cast<std::size_t>(i / 6)];
        Json fields = {{"client", client},
                       {"hospital", "市内精神科病院 " + std::string(1, static_cast<char>('A' + i % 5))},
                       {"admitted_since", "2017-0" + std::to_string(1 + i % 9) + "-10"},
                       {"barriers", Json::array({"住居の確保", "家族の受け入れ"})}};
        if (i < 6) {
            fields["outcome"] = "community_transition_support";
            fields["outcome_date"] = fields["transition_date"] = fy2020(2 + i, 14);
        } else if (i == 6) {
            fields["outcome"] = "discharged";
            fields["outcome_date"] = "2021-05-20";
            fields["transition_date"] = fy2020(2 + i, 14);
        } else {
            fields["outcome"] = "ongoing";
        }
        TSUNAGU_TRY(approved(area.staff, area, "discharge_support_case", fields).status());
    }

    // Post-discharge support plans after involuntary admission, and a year of home visits.
    for (std::size_t a = 0; a < areas_.size(); ++a) {
        const DemoArea& area = areas_[a];
        TSUNAGU_TRY(approved(area.staff, area, "post_discharge_plan",
                             {{"client", area.staff_clients.back()},
                              {"admission", "措置入院"},
                              {"start_date", fy2020(static_cast<int>(a) + 1, 8)},
                              {"plan_items", Json::array({"服薬の継続", "生活リズムの安定"})},
                              {"agencies", Json::array({"保健センター", "相談支援事業所"})},
                              {"review_dates", Json::array({fy2020(static_cast<int>(a) + 4, 8)})}})
                        .status());
        const char* purposes[] = {"post_discharge_support", "crisis_follow_up", "check_in"};
        for (int i = 0; i < 22; ++i) {
            TSUNAGU_TRY(record(area.visitor, area, "home_visit",
                               {{"client", area.clients[static_cast<std::size_t>(i) % area.clients.size()]},
                                {"visitor", area.visitor.id},
                                {"date", fy2020(spread(i, 22), 1 + (i * 5) % 27)},
                                {"duration_min", 30 + 10 * (i % 4)},
                                {"purpose", purposes[i % 3]}},
                               i < 20 ? Outcome::approved : Outcome::submitted)
                            .status());
        }
    }
    return Status::ok();
}

Status DemoBuilder::records_that_do_not_count() {
    const DemoArea& area = areas_[1];
    const User& peer = area.peers[0];
    auto dispatch = [&](const std::string& date, Outcome outcome) {
        return record(peer, area, "peer_support_dispatch",
                      {{"date", date},
                       {"duration_min", 60},
                       {"format", "group"},
                       {"request_source", "医療機関"},
                       {"peer_supporters", Json::array({peer.id})}},
                      outcome);
    };
    TSUNAGU_TRY(dispatch("2020-03-31", Outcome::approved).status());  // the last day of FY2019
    TSUNAGU_TRY(dispatch("2021-04-01", Outcome::approved).status());  // the first day of FY2021
    TSUNAGU_TRY(dispatch("2021-03-20", Outcome::submitted).status());  // awaiting review
    TSUNAGU_TRY(dispatch("2021-03-22", Outcome::draft).status());
    TSUNAGU_TRY(dispatch("2021-01-12", Outcome::returned).status());
    auto removed = dispatch("2020-10-05", Outcome::submitted);  // entered twice, then deleted
    TSUNAGU_TRY(removed);
    TSUNAGU_TRY(upstream_.remove(peer.id, *removed));
    const DemoArea& centre = areas_[0];
    TSUNAGU_TRY(record(centre.staff, centre, "meeting", {{"kind", "subcommittee"}, {"date", "2021-03-29"}},
                       Outcome::draft)
                    .status());
    // その他の連絡会: approved, but not a 関係実務者連携会議.
    TSUNAGU_TRY(approved(centre.staff, centre, "meeting",
                         {{"kind", "liaison"}, {"date", "2020-12-03"}, {"organisations", 5}, {"participants", 8}})
                    .status());
    // Reached community transition support after less than a year in hospital: not long-term.
    TSUNAGU_TRY(approved(centre.staff, centre, "discharge_support_case",
                         {{"client", centre.staff_clients[4]},
                          {"hospital", "市内精神科病院 C"},
                          {"admitted_since", "2020-03-02"},
                          {"outcome", "community_transition_support"},
                          {"outcome_date", "2020-11-20"},
                          {"transition_date", "2020-11-20"}})
                    .status());
    // A follow-up course for peer supporters already trained: not more peer supporters trained.
    TSUNAGU_TRY(approved(centre.staff, centre, "training_course",
                         {{"course", "ピアサポーター フォローアップ研修 2020"},
                          {"course_kind", "follow_up"},
                          {"start_date", "2020-11-05"},
                          {"end_date", "2020-11-05"},
                          {"enrolled", 6},
                          {"completed", 6}})
                    .status());
    TSUNAGU_TRY(approved(centre.staff, centre, "training_course",
                         {{"course", "ピアサポーター養成講座 2019"},
                          {"course_kind", "peer_supporter_training"},
                          {"start_date", "2019-10-01"},
                          {"end_date", "2020-01-31"},
                          {"enrolled", 15},
                          {"completed", 12}})
                    .status());
    return approved(centre.staff, centre, "discharge_support_case",
                    {{"client", centre.staff_clients[3]},
                     {"hospital", "市内精神科病院 B"},
                     {"admitted_since", "2016-05-10"},
                     {"outcome", "community_transition_support"},
                     {"outcome_date", "2020-02-14"},
                     {"transition_date", "2020-02-14"}})
        .status();
}

Status DemoBuilder::targets() {
    return Targets::set(store_, 2020,
                        {{"subcommittee_meetings", 10},
                         {"working_group_meetings", 15},
                         {"council_meetings", 1},
                         {"peer_supporters_trained", 20},
                         {"dispatch_requests", 88},
                         {"community_transition", 6},
                         {"post_discharge_liaison_meetings", 1},
                         {"regional_liaison_meetings", 10}});
}

// Two workers sharing a client each edit the same home visit on their phones, offline; both
// sync. The later edit wins the field, and the other stays visible as a conflict for the
// supervisor. In the first area the visitor also adds to a visit already approved: the server
// refuses it (approved records are locked) and keeps it for the supervisor. Real device replicas
// make the edits, in `scratch_dir`, removed afterwards.
Status DemoBuilder::conflicting_edits(const std::string& scratch_dir) {
    std::error_code ec;
    std::filesystem::create_directories(scratch_dir, ec);
    if (ec) return Status(ErrorCode::io_error, "cannot create " + scratch_dir + ": " + ec.message());
    struct Cleanup {
        std::string dir;
        ~Cleanup() {
            std::error_code ignored;
            std::filesystem::remove_all(dir, ignored);
        }
    } cleanup{scratch_dir};

    // The device keeps a reference to its store: the store lives on the heap, never moved.
    struct DemoDevice {
        std::unique_ptr<Store> store;
        std::optional<sync::Device> device;
    };
    auto open_device = [&](const User& user, const std::string& name) -> Result<DemoDevice> {
        std::array<std::uint8_t, 32> key{};
        randombytes_buf(key.data(), key.size());
        auto source = KeySource::raw_key(key);
        sodium_memzero(key.data(), key.size());
        if (!source) return source.status();
        auto store = Store::open((std::filesystem::path(scratch_dir) / name).string(), *source);
        if (!store) return store.status();
        DemoDevice out{std::make_unique<Store>(std::move(*store)), std::nullopt};
        sync::DeviceOptions options;
        options.user = user.id;
        auto device = sync::Device::open(*out.store, domain::care_schema(), options);
        if (!device) return device.status();
        out.device.emplace(std::move(*device));
        return out;
    };
    auto sync_device = [&](sync::Device& device) -> Status {
        for (int round = 0; round < 100; ++round) {
            auto batch = device.prepare_push();
            TSUNAGU_TRY(batch);
            if (batch->changes.empty()) break;
            auto pushed = upstream_.push(*batch);
            TSUNAGU_TRY(pushed);
            TSUNAGU_TRY(device.apply_push_result(*pushed));
        }
        for (int round = 0; round < 100; ++round) {
            auto request = device.prepare_pull();
            TSUNAGU_TRY(request);
            auto page = upstream_.pull(*request);
            TSUNAGU_TRY(page);
            TSUNAGU_TRY(device.apply_pull(*page));
            if (!page->more) return Status::ok();
        }
        return Status(ErrorCode::internal, "demo device did not finish syncing");
    };

    const char* observations[][2] = {
        {"表情は穏やか。服薬は継続できている。", "服薬を忘れることがあると本人から。家族と相談予定。"},
        {"日中は作業所に通所。睡眠は安定。", "夜間に不安が強く眠れない日がある。"},
        {"次回は保健センターで面談予定。", "次回は自宅訪問を希望。"},
    };
    for (std::size_t i = 0; i < 3; ++i) {
        DemoArea& area = areas_[i];
        const std::string& client = area.staff_clients[1];  // assigned to the visitor and the staff
        auto visit = record(area.visitor, area, "home_visit",
                            {{"client", client},
                             {"visitor", area.visitor.id},
                             {"date", fy2020(11, 18)},
                             {"duration_min", 45},
                             {"purpose", "check_in"},
                             {"observations", "訪問を実施。"}},
                            Outcome::submitted);
        TSUNAGU_TRY(visit);
        std::string locked;
        if (i == 0) {
            auto approved_visit = approved(area.visitor, area, "home_visit",
                                           {{"client", client},
                                            {"visitor", area.visitor.id},
                                            {"date", fy2020(10, 7)},
                                            {"duration_min", 30},
                                            {"purpose", "check_in"},
                                            {"observations", "体調は安定。"}});
            TSUNAGU_TRY(approved_visit);
            locked = *approved_visit;
        }
        auto first = open_device(area.visitor, "visitor-" + std::to_string(i) + ".db");
        TSUNAGU_TRY(first);
        auto second = open_device(area.staff, "staff-" + std::to_string(i) + ".db");
        TSUNAGU_TRY(second);
        TSUNAGU_TRY(sync_device(*first->device));
        TSUNAGU_TRY(sync_device(*second->device));
        TSUNAGU_TRY(first->device->update(*visit, {{"observations", observations[i][0]}}));
        TSUNAGU_TRY(second->device->update(*visit, {{"observations", observations[i][1]}}));
        TSUNAGU_TRY(sync_device(*first->device));
        TSUNAGU_TRY(sync_device(*second->device));
        if (!locked.empty()) {
            TSUNAGU_TRY(first->device->update(locked, {{"observations", "体調は安定。帰り際に、来月から就労支援を受けたいと話があった。"}}));
            auto batch = first->device->prepare_push();
            TSUNAGU_TRY(batch);
            // As POST /v1/sync/push applies it: the review lock refuses it, and it is kept.
            auto pushed = apply_worker_push(store_, upstream_, area.visitor, *batch, std::time(nullptr));
            TSUNAGU_TRY(pushed);
            TSUNAGU_TRY(first->device->apply_push_result(pushed->result));
            result.refused += pushed->refusals.kept;
        }
        TSUNAGU_TRY(upstream_.forget_replica(first->device->replica_id()));
        TSUNAGU_TRY(upstream_.forget_replica(second->device->replica_id()));
        ++result.conflicts;
    }
    return Status::ok();
}

}  // namespace

Result<bool> holds_demo_organisation(Store& store) {
    TSUNAGU_TRY(store.exec("CREATE TABLE IF NOT EXISTS demo_organisation(created_at INTEGER NOT NULL)"));
    auto& q = store.cached("SELECT count(*) FROM demo_organisation");
    auto row = q.step();
    if (!row) return row.status();
    const bool found = *row && q.column_int(0) > 0;
    (void)q.step();
    return found;
}

Result<DemoOrganisation> create_demo_organisation(Store& store, Accounts& accounts, const std::string& scratch_dir) {
    auto teams = accounts.list_teams();
    if (!teams) return teams.status();
    if (!teams->empty()) {
        return Status(ErrorCode::already_exists,
                      "the demo organisation needs a new data folder; this store already has teams");
    }
    // The demo chooses each client's id before creating the client (see clients()).
    std::string next_id;
    sync::UpstreamOptions options;
    options.ids = [&next_id] { return next_id.empty() ? sync::new_id() : std::exchange(next_id, std::string()); };
    auto upstream = sync::Upstream::open(store, domain::care_schema(), options);
    if (!upstream) return upstream.status();
    DemoBuilder builder(store, accounts, *upstream, next_id);
    Status built = with_transaction(store, [&]() -> Status {
        TSUNAGU_TRY(builder.people());
        TSUNAGU_TRY(builder.clients());
        TSUNAGU_TRY(builder.fiscal_year_2020());
        TSUNAGU_TRY(builder.records_that_do_not_count());
        TSUNAGU_TRY(builder.targets());
        TSUNAGU_TRY(builder.conflicting_edits(scratch_dir));
        TSUNAGU_TRY(holds_demo_organisation(store).status());
        auto& mark = store.cached("INSERT INTO demo_organisation(created_at) VALUES (strftime('%s','now'))");
        return mark.run();
    });
    TSUNAGU_TRY(built);
    return std::move(builder.result);
}

}  // namespace tsunagu::api
