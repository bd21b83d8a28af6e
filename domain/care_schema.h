// The care domain's record types (../shared/DOMAIN.md) as a sync schema: client, peer-support
// dispatch, home visit, discharge-support case, post-discharge plan, meeting, training course.
// Records about a client are scoped to "client:<id>", so they travel with the client's caseload;
// meetings and trainings are scoped to their author.
#pragma once

#include <string>

#include "sync/schema.h"

namespace tsunagu::domain {

// The schema, checked. Aborts on a malformed embedded schema (a build defect, caught by tests).
const sync::Schema& care_schema();
// Its published JSON form (domain/care_schema.json).
const std::string& care_schema_json();

}  // namespace tsunagu::domain
