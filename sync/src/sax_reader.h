// The bookkeeping shared by the engine's SAX readers (push answers, pull pages), which fill its
// structs from JSON text without building a document: the nesting depth, the skipping of values
// a newer peer added, and the first error.
#pragma once

#include <string>

#include "sync/change.h"
#include "sync/protocol.h"

namespace tsunagu::sync::detail {

class SaxReader : public nlohmann::json_sax<Json> {
  public:
    std::string error;  // why reading stopped; empty while the text reads well

    // Names the byte and, through where(), the member being read; never the text around the
    // error (nlohmann's own message quotes it: a record's fields).
    bool parse_error(std::size_t position, const std::string&,
                     const nlohmann::detail::exception& e) override {
        return fail(json_body_error(position, e) + where());
    }

  protected:
    // Where reading stopped, for a parse error's message (" in record 3, member \"fields\""), or
    // "": names of members only, never values.
    virtual std::string where() const { return ""; }

    int depth_ = 0;       // open arrays and objects
    int skip_below_ = 0;  // > 0: skipping an unknown value opened at this depth

    bool skipping() const { return skip_below_ > 0 && depth_ >= skip_below_; }
    bool skip_from(int depth) {
        skip_below_ = depth;
        return true;
    }
    // Closes an array or object (ending a skip that began with it).
    bool leave() {
        if (skip_below_ == depth_) skip_below_ = 0;
        --depth_;
        return true;
    }
    bool fail(std::string what) {
        error = std::move(what);
        return false;
    }
};

}  // namespace tsunagu::sync::detail
