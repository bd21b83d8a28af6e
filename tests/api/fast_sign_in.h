// A sign-in policy whose Argon2id runs at its cheapest (1 pass, 8 MiB), for tests that sign in
// often; the policy's other rules (waits, locks, session lifetime) stay as the server's.
#pragma once

#include "api/src/accounts.h"

namespace tsunagu::testing {

inline api::SignInPolicy fast_hashing() {
    api::SignInPolicy policy;
    policy.pwhash_ops = 1;
    policy.pwhash_mem = 8192;
    return policy;
}

}  // namespace tsunagu::testing
