// The connection pool (see connection_pool.h).
#include "api/src/connection_pool.h"

namespace tsunagu::api {

Result<ConnectionPool::Lease> ConnectionPool::borrow() {
    {
        std::lock_guard lock(mutex_);
        while (!idle_.empty()) {
            auto c = std::move(idle_.back());
            idle_.pop_back();
            if (c->store.healthy()) return Lease(*this, std::move(c));
        }
    }
    auto opened = open_(Use::reading);
    if (!opened) return opened.status();
    return Lease(*this, std::move(*opened));
}

void ConnectionPool::give_back(std::unique_ptr<ServerConnection> c) {
    if (c->store.healthy() && c->store.in_transaction()) (void)c->store.rollback();  // never hand on an open transaction
    std::lock_guard lock(mutex_);
    if (!c->store.healthy()) {
        // Lost: the database went away or ended its sessions (a restart, an administrator). The
        // idle ones most likely went with it; each is opened anew when next needed.
        idle_.clear();
        return;
    }
    idle_.push_back(std::move(c));
}

void ConnectionPool::close_all() {
    std::lock_guard lock(mutex_);
    idle_.clear();
}

}  // namespace tsunagu::api
