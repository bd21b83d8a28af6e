// Plain HTTP only on the machine itself (sync::is_loopback_url): the host must be written as a
// loopback address, never a name that merely starts like one.
#include <catch2/catch.hpp>

#include "sync/protocol.h"

using tsunagu::sync::is_loopback_url;

TEST_CASE("a loopback address written as one is loopback") {
    for (const char* url : {"http://127.0.0.1:8080", "http://127.0.0.1", "http://127.9.8.7:1/v1/sync?x=1",
                            "http://localhost:8080/", "http://LOCALHOST", "http://[::1]:8443", "http://[::1]/",
                            "https://127.0.0.1:8443"}) {
        INFO(url);
        CHECK(is_loopback_url(url));
    }
}

TEST_CASE("any other host is not loopback even one that reads like it") {
    for (const char* url : {"http://127.lan:8080",              // a name: /etc/hosts or DNS could map it anywhere
                            "http://127.0.0.1.example.org/",     // the same
                            "http://127.0.0.1@192.0.2.10:8080",  // user information: the host is after the @
                            "http://localhost@192.0.2.10/", "http://192.0.2.10:8080", "http://0.0.0.0:18999",
                            "http://[::ffff:192.0.2.10]:80", "http://[::1", "http://[::1]x", "http://127.0.0.1:80x",
                            "http://localhost.example.org", "ftp://127.0.0.1", "127.0.0.1:8080", ""}) {
        INFO(url);
        CHECK_FALSE(is_loopback_url(url));
    }
}
