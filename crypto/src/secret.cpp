// Secret: guarded, wiped memory for keys and passphrases.
#include "crypto/secret.h"

#include <sodium.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>

namespace tsunagu {

void ensure_sodium() {
    static const bool ready = [] {
        if (sodium_init() < 0) {
            std::fputs("tsunagu: libsodium failed to initialise (no entropy source?)\n", stderr);
            std::abort();
        }
        return true;
    }();
    (void)ready;
}

Secret::Secret(std::size_t size) {
    if (size == 0) return;
    ensure_sodium();
    data_ = static_cast<std::uint8_t*>(sodium_malloc(size));
    if (data_ == nullptr) throw std::bad_alloc();
    sodium_memzero(data_, size);
    size_ = size;
}

Secret Secret::random(std::size_t size) {
    Secret s(size);
    if (size) randombytes_buf(s.data_, size);
    return s;
}

void wipe(std::string& text) noexcept {
    if (!text.empty()) sodium_memzero(text.data(), text.size());
}

Secret Secret::copy_of(std::span<const std::uint8_t> bytes) {
    Secret s(bytes.size());
    if (!bytes.empty()) std::memcpy(s.data_, bytes.data(), bytes.size());
    return s;
}

Secret Secret::copy_of(std::string_view text) {
    return copy_of(std::span<const std::uint8_t>(
        reinterpret_cast<const std::uint8_t*>(text.data()), text.size()));
}

Secret Secret::take(std::string& text) {
    Secret secret = copy_of(text);
    wipe(text);
    return secret;
}

Secret::Secret(Secret&& other) noexcept : data_(other.data_), size_(other.size_) {
    other.data_ = nullptr;
    other.size_ = 0;
}

Secret& Secret::operator=(Secret&& other) noexcept {
    if (this != &other) {
        if (data_) sodium_free(data_);  // sodium_free wipes before releasing
        data_ = other.data_;
        size_ = other.size_;
        other.data_ = nullptr;
        other.size_ = 0;
    }
    return *this;
}

Secret::~Secret() {
    if (data_) sodium_free(data_);
}

bool constant_time_equal(std::span<const std::uint8_t> a, std::span<const std::uint8_t> b) noexcept {
    if (a.size() != b.size()) return false;
    if (a.empty()) return true;
    return sodium_memcmp(a.data(), b.data(), a.size()) == 0;
}

bool keep_memory_private() noexcept {
    const rlimit none{0, 0};
    const bool no_core = ::setrlimit(RLIMIT_CORE, &none) == 0;
    const bool private_memory = ::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == 0;
    return no_core && private_memory;
}

}  // namespace tsunagu
