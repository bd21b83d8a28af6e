// Walking the rows of a statement: the one loop every query of the engine needs.
#pragma once

#include <type_traits>

#include "crypto/store.h"

namespace tsunagu::sync::detail {

// Steps `statement` to its end, calling `row(statement)` for each row; `row` returns nothing or a
// Status (a failure stops the walk and is returned). The statement is reset either way.
template <typename Row>
Status each_row(Statement& statement, Row&& row) {
    Status outcome;
    while (true) {
        auto more = statement.step();
        if (!more) {
            outcome = more.status();
            break;
        }
        if (!*more) break;
        if constexpr (std::is_void_v<std::invoke_result_t<Row&, const Statement&>>) {
            row(static_cast<const Statement&>(statement));
        } else {
            outcome = row(static_cast<const Statement&>(statement));
            if (!outcome) break;
        }
    }
    statement.reset();
    return outcome;
}

}  // namespace tsunagu::sync::detail
