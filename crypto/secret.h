// Secrets: key material and passphrases kept in libsodium's guarded memory and wiped when dropped.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace tsunagu {

// Makes sure libsodium is initialised; safe to call from any thread, any number of times.
// Aborts the process if libsodium cannot start (no entropy source): nothing secure could run.
void ensure_sodium();

// Owns `size` bytes of sodium_malloc'd memory (guard pages, mlock'd where the OS allows), wiped
// and freed on destruction. Move-only: a secret is never copied by accident.
class Secret {
public:
    Secret() = default;
    explicit Secret(std::size_t size);  // zero-filled
    static Secret random(std::size_t size);
    static Secret copy_of(std::span<const std::uint8_t> bytes);
    static Secret copy_of(std::string_view text);
    // Moves a secret that arrived in a std::string (a password in a parsed request, a token in an
    // answer) into guarded memory: copied, then wiped from `text` in place (see wipe()).
    static Secret take(std::string& text);

    Secret(Secret&& other) noexcept;
    Secret& operator=(Secret&& other) noexcept;
    Secret(const Secret&) = delete;
    Secret& operator=(const Secret&) = delete;
    ~Secret();

    std::uint8_t* data() noexcept { return data_; }
    const std::uint8_t* data() const noexcept { return data_; }
    std::size_t size() const noexcept { return size_; }
    bool empty() const noexcept { return size_ == 0; }
    std::span<const std::uint8_t> bytes() const noexcept { return {data_, size_}; }
    std::string_view view() const noexcept {
        return {reinterpret_cast<const char*>(data_), size_};
    }

private:
    std::uint8_t* data_ = nullptr;
    std::size_t size_ = 0;
};

// Overwrites a string's bytes with zeros, in a way the compiler may not elide: for the transient
// copies of a secret that an interface forces into a std::string (an HTTP header, a request body
// carrying a password, an answer carrying a token). Its size is left unchanged.
void wipe(std::string& text) noexcept;

// For a program that holds decrypted pages, keys and tokens in its memory (the server, the device
// CLI): no core dump of it is written (RLIMIT_CORE 0), and it is not dumpable (PR_SET_DUMPABLE 0:
// another process of the same user cannot read its memory through ptrace or /proc/PID/mem). Call
// first thing in main. False, with errno, if the kernel refused either.
bool keep_memory_private() noexcept;

// Constant-time equality of two byte strings of equal length (false if lengths differ).
bool constant_time_equal(std::span<const std::uint8_t> a, std::span<const std::uint8_t> b) noexcept;

}  // namespace tsunagu
