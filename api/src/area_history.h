// Which area (team) a client, or a worker, was in on a given day. Reports of past years count a
// record in the area its client was in on the record's date, and a record about no client (a
// meeting, a training course) in the area its author was in then: moving a client or a worker
// today leaves last year's figures where they were.
//
// Every change of area is dated by the local date it took effect (YYYY-MM-DD in the care schema's
// offset, sync::local_date) in a table of its own: client_area_since(client_id, since, team_id)
// and account_team_since(user_id, since, team_id); team_id '' is no area. A subject's first row
// says since always (since ''): the area it had before the first dated change, or its first one.
// A subject with no rows has been in its current area (client_area, account.team_id) every day.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "crypto/store.h"

namespace tsunagu::api {

enum class AreaOf { client, worker };

// Dates a change of `id`'s area from `before` to `after` on the local date `today`, in the
// caller's transaction. A change is never dated before the last one (a clock set back since):
// it then takes effect on that day, replacing it.
Status date_area_change(Store& store, AreaOf subject, const std::string& id, const std::string& before,
                        const std::string& after, std::string today);

class AreaHistory {
public:
    // Every dated change of clients' (or workers') areas, and the current area of the others.
    static Result<AreaHistory> read(Store& store, AreaOf subject);
    // The area `id` was in on `date` ("YYYY-MM-DD"); "" when in none, or unknown.
    std::string area_on(const std::string& id, const std::string& date) const;

private:
    // Per subject, (first day, area) by first day; the first entry's day is "" (since always).
    std::map<std::string, std::vector<std::pair<std::string, std::string>>> spans_;
};

}  // namespace tsunagu::api
