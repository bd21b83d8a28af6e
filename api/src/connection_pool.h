// The server's database connections: each a Store with the sync engine's upstream over it,
// pooled and borrowed one per request (or per commit group).
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "crypto/store.h"
#include "sync/engine.h"

namespace tsunagu::api {

// One connection to the server's database with the sync engine's upstream over it.
struct ServerConnection {
    explicit ServerConnection(Store s) : store(std::move(s)) {}
    Store store;
    std::optional<sync::Upstream> upstream;
};

// A pool of open connections to the server's database, one borrowed per request. Each holds
// its own Store and Upstream: SQLite serialises writers, and the engine re-reads shared state in
// each transaction, so connections never share mutable state in memory.
class ConnectionPool {
public:
    // Opens a connection for reading requests (pooled), or for the one writer (dedicated).
    enum class Use { reading, writing };
    using Opener = std::function<Result<std::unique_ptr<ServerConnection>>(Use)>;
    explicit ConnectionPool(Opener open) : open_(std::move(open)) {}
    class Lease {
    public:
        Lease(ConnectionPool& pool, std::unique_ptr<ServerConnection> c) : pool_(&pool), c_(std::move(c)) {}
        Lease(Lease&&) = default;
        ~Lease() {
            if (c_) pool_->give_back(std::move(c_));
        }
        ServerConnection& operator*() { return *c_; }
        ServerConnection* operator->() { return c_.get(); }

    private:
        ConnectionPool* pool_;
        std::unique_ptr<ServerConnection> c_;
    };
    // An idle connection, or a new one. A connection given back lost (Store::healthy) is closed,
    // with every idle one: a lost connection says the database went away or ended its sessions,
    // and the next borrow() connects anew.
    Result<Lease> borrow();
    // A connection of its own for one long-lived user (the writers' group), outside the pool.
    Result<std::unique_ptr<ServerConnection>> open_dedicated() { return open_(Use::writing); }
    void close_all();

private:
    void give_back(std::unique_ptr<ServerConnection> c);
    Opener open_;
    std::mutex mutex_;
    std::vector<std::unique_ptr<ServerConnection>> idle_;
};

}  // namespace tsunagu::api
