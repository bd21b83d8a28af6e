/*
 * tsunagu.h: the stable C API of the Tsunagu device library, for Swift, Kotlin (JNI) and C.
 *
 * Conventions
 *  - Handles are opaque. A tsunagu_device is used from one thread at a time.
 *  - Strings in and out are UTF-8, NUL-terminated. Structured data travels as JSON text.
 *  - Every fallible function returns a tsunagu_code (TSUNAGU_OK = 0) and, when `err` is not NULL,
 *    fills it: err->code is the same code, err->message a human-readable sentence saying what
 *    happened and what to do next (NULL on success). Messages never contain passphrases,
 *    passwords, tokens or record contents.
 *  - Every `char**` output and err->message is allocated by the library and owned by the caller,
 *    who frees it with tsunagu_free(). On failure outputs are set to NULL. Each call sets
 *    err->message anew without freeing what it held: free it after each failing call.
 *  - No C++ exception crosses this API: failures, including unexpected ones, become codes.
 *
 * A typical session (show_and_free shows err.message, then frees it and sets it to NULL):
 *     tsunagu_error err = {0};
 *     tsunagu_device* dev = tsunagu_open("/data/app/tsunagu", passphrase, &err);
 *     if (!dev) { show_and_free(&err); return; }
 *     if (tsunagu_sign_in(dev, "https://tsunagu.example.org", "aoi", password, "aoi's phone", &err))
 *         show_and_free(&err);
 *     char* id = NULL;
 *     if (tsunagu_create(dev, "client", "{\"pseudonym\":\"K-001\",\"area\":\"kita\"}", &id, &err))
 *         show_and_free(&err);
 *     char* report = NULL;
 *     if (tsunagu_sync(dev, NULL, NULL, &report, &err)) show_and_free(&err);
 *     tsunagu_free(id); tsunagu_free(report);
 *     tsunagu_close(dev);
 */
#ifndef TSUNAGU_H
#define TSUNAGU_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Error codes. Stable: values never change, new ones are only appended. */
typedef enum tsunagu_code {
    TSUNAGU_OK = 0,
    TSUNAGU_INVALID_ARGUMENT = 1, /* malformed input; the message names it */
    TSUNAGU_NOT_FOUND = 2,        /* no such record */
    TSUNAGU_ALREADY_EXISTS = 3,
    TSUNAGU_WRONG_KEY = 4,        /* wrong passphrase: nothing was changed */
    TSUNAGU_CORRUPT = 5,          /* the replica failed authentication (tampered or damaged) */
    TSUNAGU_NOT_A_STORE = 6,
    TSUNAGU_IO_ERROR = 7,
    TSUNAGU_BUSY = 8,
    TSUNAGU_CONSTRAINT = 9,
    TSUNAGU_VALIDATION = 10,      /* a value does not satisfy the schema; the message names the field */
    TSUNAGU_FORBIDDEN = 11,       /* wrong credentials, expired session, revoked device, other user */
    TSUNAGU_CONFLICT = 12,
    TSUNAGU_UNAVAILABLE = 13,     /* the server could not be reached after retries: sync again later */
    TSUNAGU_INTERNAL = 14,        /* a bug; please report it */
    TSUNAGU_STORAGE_FULL = 15     /* this device's storage is full: nothing was written (the record
                                   * was NOT saved); free space and try again. (A server whose disk
                                   * is full answers a sync with TSUNAGU_UNAVAILABLE: sync later) */
} tsunagu_code;

typedef struct tsunagu_error {
    tsunagu_code code;
    char* message; /* caller-owned: free with tsunagu_free (NULL when code is TSUNAGU_OK) */
} tsunagu_error;

typedef struct tsunagu_device tsunagu_device;

/* Stable lower-case name of a code ("wrong_key"). Static storage: do not free. */
const char* tsunagu_code_name(tsunagu_code code);

/* Frees anything the library handed out (strings, err->message). NULL is ignored. */
void tsunagu_free(void* buffer);

/* Opens the replica in folder `home` (created if missing), creating it on first use with a key
 * wrapped under `passphrase` (Argon2id). Wrong passphrase: NULL with TSUNAGU_WRONG_KEY, nothing
 * changed on disk. Returns NULL on failure. The handle holds the replica's lock (home/replica.lock)
 * shared until tsunagu_close, or until the process dies: several handles and processes may have a
 * replica open, but what replaces the replica file (a passphrase change, a revoked device's erasure,
 * a salvage) is refused with TSUNAGU_BUSY, changing nothing, while another has it open; and an open
 * during such a change answers TSUNAGU_BUSY (try again after). */
tsunagu_device* tsunagu_open(const char* home, const char* passphrase, tsunagu_error* err);

/* Rebuilds the replica in `damaged_home`, which tsunagu_open refuses as damaged (TSUNAGU_CORRUPT),
 * into a new replica in `new_home` (which must hold none), with every commit its files still hold:
 * the session and the work not yet synced come along. The damaged files are only read. Then open
 * `new_home` and sync; where pages fell back to older versions ("complete": false), that sync pulls
 * everything again from the server. `*report_json_out` (may be NULL) receives
 *   {"complete","pages","damaged_versions","older_versions":[...],"summary", ...}.
 * Wrong passphrase: TSUNAGU_WRONG_KEY; no consistent replica left in the files: TSUNAGU_CORRUPT
 * naming the pages (nothing is created); either home's replica open elsewhere: TSUNAGU_BUSY. */
tsunagu_code tsunagu_salvage(const char* damaged_home, const char* new_home, const char* passphrase,
                             char** report_json_out, tsunagu_error* err);

/* Changes the replica's passphrase from `current` to `next`, under a new data key (the replica is
 * re-encrypted, so the old passphrase with an old copy of its key header opens nothing it holds
 * from then on). A wrong `current`: TSUNAGU_WRONG_KEY, nothing changed. Works offline. While
 * another handle or process has the replica open: TSUNAGU_BUSY, nothing changed (it would go on
 * with the old file and lose what it records); close it, then change. */
tsunagu_code tsunagu_change_passphrase(tsunagu_device* device, const char* current, const char* next,
                                       tsunagu_error* err);

/* Changes the signed-in worker's password on the server from `current` to `next`: the way out of a
 * password an administrator set, which opens nothing else (tsunagu_sync answers TSUNAGU_FORBIDDEN
 * saying so) until it is changed. A wrong `current`: TSUNAGU_FORBIDDEN, nothing changed (it counts
 * as a failed sign-in). Needs the network. */
tsunagu_code tsunagu_change_password(tsunagu_device* device, const char* current, const char* next,
                                     tsunagu_error* err);

/* Closes the handle (NULL is ignored). Pending changes stay in the replica for the next sync. */
void tsunagu_close(tsunagu_device* device);

/* Signs in to `server_url` as `username` and registers this device. The session token is kept
 * inside the encrypted replica; `password` is not stored. `device_name` may be NULL. */
tsunagu_code tsunagu_sign_in(tsunagu_device* device, const char* server_url, const char* username,
                             const char* password, const char* device_name, tsunagu_error* err);

/* Creates a record of `collection` from a JSON object of fields, offline. `*id_out` receives the
 * new record's id (32 hex characters). */
tsunagu_code tsunagu_create(tsunagu_device* device, const char* collection, const char* fields_json,
                            char** id_out, tsunagu_error* err);

/* Sets the given fields of record `id` (a JSON object; null clears a field), offline. */
tsunagu_code tsunagu_update(tsunagu_device* device, const char* id, const char* fields_json,
                            tsunagu_error* err);

/* Deletes record `id`, offline. */
tsunagu_code tsunagu_delete(tsunagu_device* device, const char* id, tsunagu_error* err);

/* The same edits made from the record as the person read it: `as_read_json` is tsunagu_get's
 * answer for `id`, kept while the form (or the conflict) was on screen. What a sync brought since
 * is not overwritten unseen: a value stays beside the update as a conflict, an edit beside the
 * delete, a competing value beside the resolution; an update or a resolution from a reading taken
 * before a delete arrived stays beside that delete as a conflict (TSUNAGU_CONFLICT for a reading of the deleted
 * record). An app that shows a record and saves it later uses these; the ones without act on the
 * record as the replica holds it when they run. */
tsunagu_code tsunagu_update_as_read(tsunagu_device* device, const char* id, const char* fields_json,
                                    const char* as_read_json, tsunagu_error* err);
tsunagu_code tsunagu_delete_as_read(tsunagu_device* device, const char* id, const char* as_read_json,
                                    tsunagu_error* err);
tsunagu_code tsunagu_resolve_as_read(tsunagu_device* device, const char* id, const char* field,
                                     const char* value_json, const char* as_read_json, tsunagu_error* err);

/* The record as JSON: {"id","collection","owner","deleted","fields":{...},"conflicts":[...], ...}.
 * TSUNAGU_NOT_FOUND when this device does not hold it. */
tsunagu_code tsunagu_get(tsunagu_device* device, const char* id, char** record_json_out,
                         tsunagu_error* err);

/* The records of `collection` as a JSON array. `filter_json` (may be NULL) is a JSON object of
 * field values a record must equal (for list fields: contain). */
tsunagu_code tsunagu_list(tsunagu_device* device, const char* collection, const char* filter_json,
                          char** records_json_out, tsunagu_error* err);

/* Progress of a sync: `phase` is "push" or "pull"; `total` is exact for push and an estimate
 * (done plus one more page while more follow) for pull. Called on the syncing thread. */
typedef void (*tsunagu_progress_fn)(const char* phase, size_t done, size_t total, void* user_data);

/* Pushes the outbox, pulls until up to date, applies evictions. Retries network failures with
 * backoff; TSUNAGU_UNAVAILABLE when they persist (nothing is lost: sync again later).
 * `*report_json_out` (may be NULL to ignore) receives
 *   {"pushed","pulled","evicted","retries","wiped","wiped_unsent","refused":[...],"new_conflicts":[...]}.
 * When the server revoked this device, the replica was destroyed, with the changes it had not yet
 * pushed ("wiped_unsent" of them; null when they could not be counted): the call answers TSUNAGU_FORBIDDEN (the report, when asked
 * for, is still given, "wiped" true), and the handle refuses everything after that; close it.
 * Not while another handle or process has the replica open (what it recorded would vanish
 * unseen): TSUNAGU_BUSY then, nothing erased; close the other, then sync again. */
tsunagu_code tsunagu_sync(tsunagu_device* device, tsunagu_progress_fn progress, void* user_data,
                          char** report_json_out, tsunagu_error* err);

/* Open conflicts on this replica as a JSON array of
 * {"record","collection","field","kind","current":{"value",...},"losing":{"value",...}}. */
tsunagu_code tsunagu_conflicts(tsunagu_device* device, char** conflicts_json_out, tsunagu_error* err);

/* Settles the conflict on `field` of record `id` with `value_json` (any JSON value). */
tsunagu_code tsunagu_resolve(tsunagu_device* device, const char* id, const char* field,
                             const char* value_json, tsunagu_error* err);

/* Settles a conflict between an edit and a deletion of record `id` (kind "edit_vs_delete" or
 * "delete_vs_restore" in tsunagu_conflicts): `resolution` "keep_deleted" (the concurrent edits are
 * discarded knowingly) or "restore" (the record comes back with its current values). A record in
 * such a conflict takes no tsunagu_resolve of a field before this. */
tsunagu_code tsunagu_resolve_deletion(tsunagu_device* device, const char* id, const char* resolution,
                                      tsunagu_error* err);

/* Makes every change the server refused due again at the next sync (after the server was upgraded,
 * or the client of a refused record joined this worker's caseload); `*count_out` (may be NULL)
 * receives how many. A change refused for a record the server has changed since is due again on
 * its own. */
tsunagu_code tsunagu_retry_refused(tsunagu_device* device, size_t* count_out, tsunagu_error* err);

/* The changes the server refused that this device keeps, oldest first, as a JSON array of
 * {"change","record","collection","code","reason","cause"} in `*refused_json_out` (free with
 * tsunagu_free). "reason" is the server's, in English; "cause" is a word to explain it by in the
 * reader's language ("outside_scope", "rule", "invalid_value", "held_behind", ...; a newer server
 * may send others, an older one ""). */
tsunagu_code tsunagu_refused(tsunagu_device* device, char** refused_json_out, tsunagu_error* err);

/* This worker's refused changes the server keeps, from all her devices, newest first (open ones,
 * or dismissed ones when `dismissed` is non-zero): on a new phone, what the old one left behind
 * (her supervisor can apply it once the cause is gone). Needs the network. A JSON array of
 * {"change","record","collection","device","this_device","code","cause","reason",
 *  "first_refused_at","last_refused_at","times","status","comment"}, never the change's content,
 * in `*refused_json_out` (free with tsunagu_free). A revoked device is erased, as by tsunagu_sync. */
tsunagu_code tsunagu_refused_on_server(tsunagu_device* device, int dismissed, char** refused_json_out,
                                       tsunagu_error* err);

/* Gives up this device's refused changes to record `id` and takes the server's version at the next
 * sync (the server keeps what was refused for the worker's supervisors); `*count_out` (may be
 * NULL) receives how many changes were discarded. TSUNAGU_NOT_FOUND when the record has no
 * refused change. */
tsunagu_code tsunagu_discard_refused(tsunagu_device* device, const char* id, size_t* count_out,
                                     tsunagu_error* err);

/* {"signed_in","server","username","role","device_id","pending","refused","held","conflicts",
 *  "cursor","last_sync_ms","clock_offset_ms"}. Never contains the token. "clock_offset_ms" is how
 * far the server's clock is ahead of this device's (negative: behind), null before the first
 * sync: an app can ask the worker to set the clock right (no work is lost meanwhile). */
tsunagu_code tsunagu_status(tsunagu_device* device, char** status_json_out, tsunagu_error* err);

#ifdef __cplusplus
}
#endif

#endif /* TSUNAGU_H */
