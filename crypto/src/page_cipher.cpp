// Page sealing with libsodium's XChaCha20-Poly1305-IETF or AES-256-GCM (detached: nonce and tag
// in the reserve). Random 192-bit nonces need no counter that a crash could rewind, and stay safe
// for any number of page writes under one key. AES-GCM's own 96-bit random nonces would not, at
// server scale: so each AES-GCM write uses a subkey derived from 128 bits of its nonce, as
// XChaCha20 itself does (HChaCha20), and the other 64 bits as GCM's nonce.
#include "crypto/src/page_cipher.h"

#include <pthread.h>
#include <sodium.h>

#include <cstring>

namespace tsunagu::crypto_detail {
namespace {

// Random nonces drawn from the system generator in batches: one getrandom(2) per 64 pages
// instead of one per page (a tenth of the cost of sealing a page). Nonces are public, so the
// batch needs no guarded memory; it must only never be used twice. Each thread has its own, and
// a forked child drops the copy it inherited, so parent and child never seal with one nonce.
struct NonceBatch {
    std::uint8_t bytes[kNonceBytes * 64];
    std::size_t used = sizeof bytes;
};
thread_local NonceBatch nonce_batch;

void drop_inherited_nonces() {
    nonce_batch.used = sizeof nonce_batch.bytes;
}

void draw_nonce(std::uint8_t* nonce) {
    static const int registered = pthread_atfork(nullptr, nullptr, drop_inherited_nonces);
    if (registered != 0) {  // cannot guard against fork: draw every nonce afresh
        randombytes_buf(nonce, kNonceBytes);
        return;
    }
    if (nonce_batch.used == sizeof nonce_batch.bytes) {
        randombytes_buf(nonce_batch.bytes, sizeof nonce_batch.bytes);
        nonce_batch.used = 0;
    }
    std::memcpy(nonce, nonce_batch.bytes + nonce_batch.used, kNonceBytes);
    nonce_batch.used += kNonceBytes;
}

void put_be32(std::uint8_t* p, std::uint32_t v) {
    p[0] = static_cast<std::uint8_t>(v >> 24);
    p[1] = static_cast<std::uint8_t>(v >> 16);
    p[2] = static_cast<std::uint8_t>(v >> 8);
    p[3] = static_cast<std::uint8_t>(v);
}

PageBinding make_binding(std::uint8_t domain, std::uint32_t page_number) {
    PageBinding b{};
    b.bytes[0] = domain;
    put_be32(b.bytes + 1, page_number);
    b.size = 5;
    return b;
}

// AES-256-GCM state for one page write: the subkey's expanded round keys, wiped on every exit.
class GcmPageState {
public:
    GcmPageState(const std::uint8_t* key, const std::uint8_t* nonce) {
        std::uint8_t subkey[crypto_aead_aes256gcm_KEYBYTES];
        crypto_core_hchacha20(subkey, nonce, key, nullptr);
        crypto_aead_aes256gcm_beforenm(&state_, subkey);
        sodium_memzero(subkey, sizeof subkey);
        std::memcpy(gcm_nonce_, nonce + kSubkeyInput, kNonceBytes - kSubkeyInput);
    }
    ~GcmPageState() { sodium_memzero(&state_, sizeof state_); }
    GcmPageState(const GcmPageState&) = delete;
    GcmPageState& operator=(const GcmPageState&) = delete;

    const crypto_aead_aes256gcm_state* state() const { return &state_; }
    const std::uint8_t* nonce() const { return gcm_nonce_; }

private:
    static constexpr std::size_t kSubkeyInput = crypto_core_hchacha20_INPUTBYTES;  // 16
    static_assert(kNonceBytes - kSubkeyInput + 4 == crypto_aead_aes256gcm_NPUBBYTES);
    crypto_aead_aes256gcm_state state_;
    std::uint8_t gcm_nonce_[crypto_aead_aes256gcm_NPUBBYTES] = {};  // last 4 bytes stay zero
};

}  // namespace

PageBinding PageBinding::main_page(std::uint32_t page_number) {
    return make_binding('D', page_number);
}

PageBinding PageBinding::journal_page(std::uint32_t page_number) {
    return make_binding('J', page_number);
}

PageBinding PageBinding::wal_frame(std::uint32_t page_number) {
    return make_binding('W', page_number);
}

bool page_cipher_runs_here(PageCipher cipher) {
    switch (cipher) {
        case PageCipher::xchacha20_poly1305: return true;
        case PageCipher::aes256gcm: return crypto_aead_aes256gcm_is_available() == 1;
    }
    return false;
}

PageCipher fastest_page_cipher() {
    return page_cipher_runs_here(PageCipher::aes256gcm) ? PageCipher::aes256gcm
                                                        : PageCipher::xchacha20_poly1305;
}

const char* page_cipher_name(PageCipher cipher) {
    switch (cipher) {
        case PageCipher::xchacha20_poly1305: return "XChaCha20-Poly1305";
        case PageCipher::aes256gcm: return "AES-256-GCM";
    }
    return "an unknown cipher";
}

void seal_page(const PageKey& key, const std::uint8_t* in, std::uint8_t* out,
               const PageBinding& binding) {
    std::uint8_t* nonce = out + kUsableBytes;
    std::uint8_t* tag = nonce + kNonceBytes;
    std::uint8_t fresh_nonce[kNonceBytes];
    draw_nonce(fresh_nonce);
    if (key.cipher == PageCipher::aes256gcm) {
        const GcmPageState gcm(key.key, fresh_nonce);
        crypto_aead_aes256gcm_encrypt_detached_afternm(out, tag, nullptr, in, kUsableBytes,
                                                       binding.bytes, binding.size, nullptr,
                                                       gcm.nonce(), gcm.state());
    } else {
        crypto_aead_xchacha20poly1305_ietf_encrypt_detached(out, tag, nullptr, in, kUsableBytes,
                                                            binding.bytes, binding.size, nullptr,
                                                            fresh_nonce, key.key);
    }
    std::memcpy(nonce, fresh_nonce, kNonceBytes);
}

bool open_page(const PageKey& key, const std::uint8_t* in, std::uint8_t* out,
               const PageBinding& binding) {
    std::uint8_t nonce[kNonceBytes];
    std::uint8_t tag[kTagBytes];
    std::memcpy(nonce, in + kUsableBytes, kNonceBytes);
    std::memcpy(tag, in + kUsableBytes + kNonceBytes, kTagBytes);
    int rc = -1;
    if (key.cipher == PageCipher::aes256gcm) {
        const GcmPageState gcm(key.key, nonce);
        rc = crypto_aead_aes256gcm_decrypt_detached_afternm(out, nullptr, in, kUsableBytes, tag,
                                                            binding.bytes, binding.size,
                                                            gcm.nonce(), gcm.state());
    } else {
        rc = crypto_aead_xchacha20poly1305_ietf_decrypt_detached(
            out, nullptr, in, kUsableBytes, tag, binding.bytes, binding.size, nonce, key.key);
    }
    std::memset(out + kUsableBytes, 0, kReservedBytes);
    if (rc != 0) {
        std::memset(out, 0, kPageSize);
        return false;
    }
    return true;
}

}  // namespace tsunagu::crypto_detail
