// The server's own tables (accounts and devices, audit, caseloads, refused changes, targets, web
// sessions) carry a version, as the sync engine's do (sync/src/tables.h), so that an upgraded
// server opens the data of an older one in place.
//
// Contract: each table's CREATE statement (its create_schema) is frozen as version 1; every later
// change is a step here, from one version to the next, only adding (columns with defaults,
// tables, indexes) or mending rows an older build wrote wrongly. At start, after the CREATE statements, migrate_server_tables() applies the
// steps a store lacks in one transaction with its new version (all or nothing: a failed step
// leaves the store as it was, and the server does not start), fresh and old stores alike. A store
// of a newer version than this server's is refused, never written. Runs once per start, on one
// connection (under PostgreSQL's start-up lock, so servers starting together apply each step once).
#pragma once

#include "crypto/store.h"

namespace tsunagu::api {

inline constexpr int kServerSchemaVersion = 5;

Status migrate_server_tables(Store& store);

// Every table's create_schema: the server's tables at version 1 (the steps come after), as a
// server made them before versions existed.
Status create_version_1_tables(Store& store);

// The server's tables at kServerSchemaVersion, whatever the store held: create_version_1_tables,
// then migrate_server_tables(). What a server runs at start, and tests too.
Status create_server_tables(Store& store);

// The version the store's server tables are at (1 before the first step was applied).
Result<int> server_schema_version(Store& store);

}  // namespace tsunagu::api
