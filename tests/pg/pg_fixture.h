// A connection to a fresh database on a temporary PostgreSQL cluster, for one test.
#pragma once

#include <catch2/catch.hpp>

#include "pg/pg.h"
#include "support/postgres_cluster.h"

namespace tsunagu::testing {

inline pg::Connection connect_ok(const std::string& conninfo) {
    auto c = pg::Connection::open(conninfo);
    INFO(c.status().to_string());
    REQUIRE(c.is_ok());
    return std::move(*c);
}

template <typename T>
T value_ok(Result<T> r) {
    INFO(r.status().to_string());
    REQUIRE(r.is_ok());
    return std::move(*r);
}

inline void ok(const Status& s) {
    INFO(s.to_string());
    REQUIRE(s.is_ok());
}

}  // namespace tsunagu::testing
