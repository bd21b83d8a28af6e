// The replica's lock, through the device library: an open Device holds it shared, and what
// replaces or erases the replica file waits for no one and is refused while another has it open.
// Two Devices of this process stand for two processes here (each holds the lock through an open of
// its own, as another process would); cli_replica_lock_test.cpp has the real second processes.
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include "field_org.h"
#include "support/mounted_dir.h"

using namespace tsunagu;
using namespace tsunagu::testing;
using nlohmann::json;

namespace {

// Whether another open of `home`'s lock file could take the lock in `operation` (LOCK_SH or
// LOCK_EX) now, as another process would see it. Taken and let go at once.
bool lockable(const std::string& home, int operation) {
    const int fd = ::open((home + "/replica.lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    REQUIRE(fd >= 0);
    const bool taken = ::flock(fd, operation | LOCK_NB) == 0;
    ::close(fd);
    return taken;
}

// The lock file at `path` held as another process holds it, until destroyed.
struct HeldLock {
    int fd = -1;
    HeldLock(const std::string& path, int operation) {
        fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        REQUIRE(fd >= 0);
        REQUIRE(::flock(fd, operation | LOCK_NB) == 0);
    }
    HeldLock(const HeldLock&) = delete;
    HeldLock& operator=(const HeldLock&) = delete;
    ~HeldLock() { ::close(fd); }
};

std::unique_ptr<client::Device> opened(const std::string& home, const std::string& passphrase) {
    auto device = client::Device::open(home, passphrase, test_options());
    INFO(device.status().to_string());
    REQUIRE(device.is_ok());
    return std::make_unique<client::Device>(std::move(*device));
}

}  // namespace

TEST_CASE("an open device holds its replica's lock shared from open until it is closed") {
    TempDir dir;
    const std::string home = dir.file("home");
    auto device = opened(home, "a passphrase for aoi");
    CHECK(lockable(home, LOCK_SH));        // others may open the replica too
    CHECK_FALSE(lockable(home, LOCK_EX));  // but none may replace it
    client::Device moved = std::move(*device);
    device.reset();
    CHECK_FALSE(lockable(home, LOCK_EX));  // the lock goes with the replica
    { client::Device closing = std::move(moved); }
    CHECK(lockable(home, LOCK_EX));
}

TEST_CASE("a passphrase change is refused while another device has the replica open and loses nothing") {
    FieldOrganisation org;
    auto aoi = org.device("aoi");
    const std::string home = aoi->home();
    const auto before = created(*aoi, "client", {{"pseudonym", "K-410"}, {"area", "kita"}});
    auto app = opened(home, "aoi passphrase");  // the app, while a command changes the passphrase
    const std::string replica = read_bytes(aoi->database_path());

    const Status refused = aoi->change_passphrase("aoi passphrase", "a new passphrase for aoi");
    CHECK(refused.code() == ErrorCode::busy);
    CHECK_THAT(refused.message(), Catch::Contains("cannot change the passphrase: the replica in " +
                                                  home + " is open in another process"));
    CHECK_THAT(refused.message(), Catch::Contains("close it, then try again. Nothing was changed"));
    CHECK(read_bytes(aoi->database_path()) == replica);
    const auto during = created(*app, "client", {{"pseudonym", "K-411"}, {"area", "kita"}});
    app.reset();

    // The refusal kept this device's own hold: nobody else may replace the replica under it.
    CHECK_FALSE(lockable(home, LOCK_EX));
    REQUIRE(aoi->change_passphrase("aoi passphrase", "a new passphrase for aoi").is_ok());
    CHECK(holds(*aoi, during));
    aoi.reset();
    auto renewed = opened(home, "a new passphrase for aoi");
    CHECK(holds(*renewed, before));
    CHECK(holds(*renewed, during));
    CHECK(renewed->status()->pending == 2);
}

TEST_CASE("a passphrase change is refused while another process is taking the replica to replace it") {
    TempDir dir;
    const std::string home = dir.file("home");
    auto device = opened(home, "a passphrase for aoi");
    const std::string replica = read_bytes(home + "/replica.db");
    {
        // The gate, held by another process while it converts its shared lock to an exclusive one:
        // a conversion lets the shared lock go first, so two at once could each find the other's
        // gone and one replace the replica under the other.
        HeldLock converting(home + "/replica.lock.gate", LOCK_EX);
        const Status refused =
            device->change_passphrase("a passphrase for aoi", "another passphrase for aoi");
        CHECK(refused.code() == ErrorCode::busy);
        CHECK_THAT(refused.message(),
                   Catch::Contains("cannot change the passphrase: another process is changing "
                                   "the replica in " +
                                   home + " as a whole"));
        CHECK(read_bytes(home + "/replica.db") == replica);
    }
    CHECK(device->change_passphrase("a passphrase for aoi", "another passphrase for aoi").is_ok());
}

TEST_CASE("while the replica is replaced another open is refused busy and changes nothing") {
    TempDir dir;
    const std::string home = dir.file("home");
    opened(home, "a passphrase for aoi").reset();
    const std::string replica = read_bytes(home + "/replica.db");
    {
        // As a passphrase change in another process holds it.
        HeldLock changing(home + "/replica.lock", LOCK_EX);
        auto refused = client::Device::open(home, "a passphrase for aoi", test_options());
        REQUIRE_FALSE(refused.is_ok());
        CHECK(refused.status().code() == ErrorCode::busy);
        CHECK_THAT(
            refused.status().message(),
            Catch::Contains("another process is changing the replica in " + home + " as a whole"));
        CHECK_THAT(refused.status().message(), Catch::Contains("try again once that has finished"));
        CHECK(read_bytes(home + "/replica.db") == replica);
    }
    CHECK(client::Device::open(home, "a passphrase for aoi", test_options()).is_ok());
}

TEST_CASE("a revoked device's replica is erased only once no other device has it open") {
    FieldOrganisation org;
    auto aoi = org.device("aoi");
    const std::string db = aoi->database_path();
    created(*aoi, "client", {{"pseudonym", "K-412"}, {"area", "kita"}});
    auto app = opened(aoi->home(), "aoi passphrase");
    REQUIRE(
        org.admin->post("/v1/admin/devices/" + aoi->status()->device_id + "/revoke", json::object())
            .status == 200);

    auto refused = aoi->sync();
    REQUIRE_FALSE(refused.is_ok());
    CHECK(refused.status().code() == ErrorCode::busy);
    CHECK_THAT(refused.status().message(),
               Catch::Contains("the server revoked this device, but its replica in " + aoi->home() +
                               " cannot be erased yet"));
    CHECK_THAT(refused.status().message(),
               Catch::Contains("Close that, then sync again, which erases it"));
    CHECK_FALSE(aoi->wiped());
    CHECK(std::filesystem::exists(db));
    created(*app, "client",
            {{"pseudonym", "K-413"}, {"area", "kita"}});  // not lost unseen: counted below
    app.reset();

    const auto report = synced(*aoi);
    CHECK(report.wiped);
    CHECK(report.wiped_unsent == 2);
    CHECK_FALSE(std::filesystem::exists(db));
}

TEST_CASE("a salvage is refused while the new home's replica is open elsewhere and makes nothing there") {
    FieldOrganisation org;
    const DamagedReplica crashed(org, FrameVersion::superseded);
    const std::string home = org.new_home("aoi");
    std::filesystem::create_directories(home);
    {
        // As a Device that opened the new home in another process holds it.
        HeldLock opening(home + "/replica.lock", LOCK_SH);
        auto refused =
            client::Device::salvage(crashed.home, home, "aoi passphrase", test_options());
        REQUIRE_FALSE(refused.is_ok());
        CHECK(refused.status().code() == ErrorCode::busy);
        CHECK_THAT(refused.status().message(), Catch::Contains("cannot salvage into " + home));
        CHECK_FALSE(std::filesystem::exists(home + "/replica.db"));
    }
    {
        // The damaged replica, still open in the app.
        HeldLock reading(crashed.home + "/replica.lock", LOCK_SH);
        auto refused =
            client::Device::salvage(crashed.home, home, "aoi passphrase", test_options());
        REQUIRE_FALSE(refused.is_ok());
        CHECK(refused.status().code() == ErrorCode::busy);
        CHECK_THAT(refused.status().message(),
                   Catch::Contains("cannot salvage the replica in " + crashed.home));
        CHECK_FALSE(std::filesystem::exists(home + "/replica.db"));
    }
    auto salvaged = client::Device::salvage(crashed.home, home, "aoi passphrase", test_options());
    INFO(salvaged.status().to_string());
    REQUIRE(salvaged.is_ok());
    CHECK(holds(*opened(home, "aoi passphrase"), crashed.visit));
}

TEST_CASE("a replica on a read-only filesystem is salvaged without a lock, which nobody could take there") {
    FieldOrganisation org;
    const DamagedReplica crashed(org, FrameVersion::superseded);
    const MountedDir copy(ReadOnlyBind{crashed.home});  // a phone's files, mounted read-only
    const std::string home = org.new_home("aoi");
    auto salvaged = client::Device::salvage(copy.path(), home, "aoi passphrase", test_options());
    INFO(salvaged.status().to_string());
    REQUIRE(salvaged.is_ok());
    CHECK(holds(*opened(home, "aoi passphrase"), crashed.visit));
    CHECK_FALSE(std::filesystem::exists(copy.path() + "/replica.lock"));
}
