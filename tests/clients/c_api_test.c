/* The C API end to end, compiled as C11: open, sign in, record, edit, query, sync, delete.
 * Usage: clients_c_api_program SERVER_URL USERNAME PASSWORD HOME
 *        clients_c_api_program salvage DAMAGED_HOME PASSPHRASE NEW_HOME
 * (the second: a replica open refuses as damaged, salvaged into NEW_HOME, which then opens).
 * Prints one line per step and "c api ok" at the end; exits non-zero at the first failure. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tsunagu.h"

static int failures = 0;

static int expect(int condition, const char* what, tsunagu_error* err) {
    if (condition) {
        printf("ok: %s\n", what);
    } else {
        printf("FAILED: %s (%s: %s)\n", what, err ? tsunagu_code_name(err->code) : "-",
               err && err->message ? err->message : "");
        ++failures;
    }
    if (err) {
        tsunagu_free(err->message);
        err->message = NULL;
    }
    return condition;
}

static void on_progress(const char* phase, size_t done, size_t total, void* user_data) {
    size_t* calls = (size_t*)user_data;
    ++*calls;
    if (done > total && strcmp(phase, "push") == 0) printf("FAILED: push progress %zu of %zu\n", done, total);
}

static int finish(void) {
    if (failures) {
        printf("%d failure(s)\n", failures);
        return 1;
    }
    printf("c api ok\n");
    return 0;
}

static int salvage_steps(const char* damaged, const char* passphrase, const char* new_home) {
    tsunagu_error err = {TSUNAGU_OK, NULL};
    tsunagu_device* dev = tsunagu_open(damaged, passphrase, &err);
    expect(dev == NULL && err.code == TSUNAGU_CORRUPT, "a damaged replica is refused as TSUNAGU_CORRUPT", &err);
    char* report = NULL;
    expect(tsunagu_salvage(damaged, new_home, "not the passphrase", &report, &err) == TSUNAGU_WRONG_KEY &&
               report == NULL,
           "salvage with a wrong passphrase is TSUNAGU_WRONG_KEY", &err);
    expect(tsunagu_salvage(damaged, new_home, passphrase, &report, &err) == TSUNAGU_OK && report != NULL &&
               strstr(report, "\"complete\":true") != NULL,
           "salvage rebuilds it, every commit", &err);
    tsunagu_free(report);
    dev = tsunagu_open(new_home, passphrase, &err);
    expect(dev != NULL, "the salvaged replica opens", &err);
    char* listed = NULL;
    expect(tsunagu_list(dev, "home_visit", NULL, &listed, &err) == TSUNAGU_OK && strstr(listed, "\"id\"") != NULL,
           "with the visit not synced before the damage", &err);
    tsunagu_free(listed);
    char* sync_report = NULL;
    expect(tsunagu_sync(dev, NULL, NULL, &sync_report, &err) == TSUNAGU_OK && sync_report != NULL &&
               strstr(sync_report, "\"pushed\":1") != NULL,
           "and it syncs from there", &err);
    tsunagu_free(sync_report);
    tsunagu_close(dev);
    return finish();
}

/* A replica whose device an administrator revoked, holding one change not yet pushed. */
static int revoked_steps(const char* home, const char* passphrase) {
    tsunagu_error err = {TSUNAGU_OK, NULL};
    tsunagu_device* dev = tsunagu_open(home, passphrase, &err);
    if (!expect(dev != NULL, "the revoked device's replica opens offline", &err)) return 1;
    char* report = NULL;
    expect(tsunagu_sync(dev, NULL, NULL, &report, &err) == TSUNAGU_FORBIDDEN && err.message != NULL &&
               strstr(err.message, "revoked") != NULL && strstr(err.message, "with 1 change(s)") != NULL,
           "a sync that wiped the replica is no TSUNAGU_OK, and says how much unsent work went", &err);
    expect(report != NULL && strstr(report, "\"wiped\":true") != NULL && strstr(report, "\"wiped_unsent\":1") != NULL,
           "its report too", &err);
    tsunagu_free(report);
    char* listed = NULL;
    expect(tsunagu_list(dev, "client", NULL, &listed, &err) == TSUNAGU_FORBIDDEN && listed == NULL,
           "and the handle refuses everything after", &err);
    tsunagu_close(dev);
    return finish();
}

int main(int argc, char** argv) {
    if (argc == 5 && strcmp(argv[1], "salvage") == 0) return salvage_steps(argv[2], argv[3], argv[4]);
    if (argc == 4 && strcmp(argv[1], "revoked") == 0) return revoked_steps(argv[2], argv[3]);
    if (argc != 5) {
        fprintf(stderr, "usage: %s SERVER_URL USERNAME PASSWORD HOME\n       %s salvage DAMAGED_HOME PASSPHRASE NEW_HOME\n",
                argv[0], argv[0]);
        return 2;
    }
    const char* url = argv[1];
    const char* user = argv[2];
    const char* password = argv[3];
    const char* home = argv[4];
    tsunagu_error err = {TSUNAGU_OK, NULL};

    tsunagu_device* dev = tsunagu_open(home, "a long passphrase", &err);
    if (!expect(dev != NULL, "open creates the replica", &err)) return 1;
    expect(strcmp(tsunagu_code_name(TSUNAGU_STORAGE_FULL), "storage_full") == 0 &&
               strcmp(tsunagu_code_name((tsunagu_code)16), "unknown") == 0,
           "the codes' names, up to the last one", &err);
    tsunagu_device* wrong = tsunagu_open(home, "not the passphrase", &err);
    expect(wrong == NULL && err.code == TSUNAGU_WRONG_KEY && err.message != NULL,
           "a wrong passphrase is TSUNAGU_WRONG_KEY with a message", &err);

    char* id = NULL;
    expect(tsunagu_create(dev, "client", "{\"pseudonym\":\"C-1\",\"area\":\"kita\"}", &id, &err) != TSUNAGU_OK &&
               id == NULL,
           "records need a signed-in replica", &err);
    expect(tsunagu_sign_in(dev, url, user, password, "c phone", &err) == TSUNAGU_OK, "sign in", &err);

    char* client_id = NULL;
    expect(tsunagu_create(dev, "client", "{\"pseudonym\":\"C-1\",\"area\":\"kita\"}", &client_id, &err) ==
                   TSUNAGU_OK &&
               client_id && strlen(client_id) == 32,
           "create a client", &err);
    char fields[512];
    snprintf(fields, sizeof fields,
             "{\"client\":\"%s\",\"date\":\"2020-06-01\",\"duration_min\":45,\"purpose\":\"check_in\","
             "\"risk_flags\":[\"housing\"]}",
             client_id);
    char* visit_id = NULL;
    expect(tsunagu_create(dev, "home_visit", fields, &visit_id, &err) == TSUNAGU_OK, "create a home visit", &err);

    char* none = NULL;
    tsunagu_code code = tsunagu_create(dev, "home_visit", "{\"date\":\"2020-02-30\"}", &none, &err);
    expect(code == TSUNAGU_VALIDATION && err.code == TSUNAGU_VALIDATION && err.message &&
               strstr(err.message, "date") != NULL && none == NULL,
           "an invalid visit is TSUNAGU_VALIDATION naming the field", &err);
    expect(tsunagu_create(dev, "home_visit", "{not json", &none, &err) == TSUNAGU_INVALID_ARGUMENT,
           "malformed JSON is TSUNAGU_INVALID_ARGUMENT", &err);
    expect(tsunagu_create(NULL, "client", "{}", &none, &err) == TSUNAGU_INVALID_ARGUMENT,
           "a NULL handle is TSUNAGU_INVALID_ARGUMENT", &err);
    {
        /* {"notes": [[[[...]]]]} 100,000 levels deep: refused before it is a document, never a crash. */
        const size_t depth = 100000;
        char* deep = (char*)malloc(2 * depth + 16);
        size_t at = 0;
        at += (size_t)sprintf(deep, "{\"notes\":");
        for (size_t i = 0; i < depth; ++i) deep[at++] = '[';
        for (size_t i = 0; i < depth; ++i) deep[at++] = ']';
        deep[at++] = '}';
        deep[at] = '\0';
        code = tsunagu_update(dev, visit_id, deep, &err);
        expect(code == TSUNAGU_INVALID_ARGUMENT && err.message && strstr(err.message, "fields_json") != NULL &&
                   strstr(err.message, "deep") != NULL,
               "JSON nested 100,000 deep is TSUNAGU_INVALID_ARGUMENT", &err);
        free(deep);
    }
    code = tsunagu_update(dev, visit_id, "{\"duration_min\":50,\"duration_min\":55}", &err);
    expect(code == TSUNAGU_INVALID_ARGUMENT && err.message && strstr(err.message, "fields_json") != NULL &&
               strstr(err.message, "\"duration_min\" appears twice") != NULL,
           "a field named twice is TSUNAGU_INVALID_ARGUMENT, not read as one of the two", &err);

    expect(tsunagu_update(dev, visit_id, "{\"duration_min\":50}", &err) == TSUNAGU_OK, "edit the visit", &err);
    char* record = NULL;
    expect(tsunagu_get(dev, visit_id, &record, &err) == TSUNAGU_OK && record &&
               strstr(record, "\"duration_min\":50") != NULL,
           "get returns the edited visit as JSON", &err);
    tsunagu_free(record);
    char* missing = NULL;
    expect(tsunagu_get(dev, "00000000000000000000000000000000", &missing, &err) == TSUNAGU_NOT_FOUND &&
               missing == NULL,
           "get of an unknown record is TSUNAGU_NOT_FOUND", &err);

    char* listed = NULL;
    expect(tsunagu_list(dev, "home_visit", "{\"purpose\":\"check_in\"}", &listed, &err) == TSUNAGU_OK && listed &&
               strstr(listed, visit_id) != NULL,
           "list with a filter finds the visit", &err);
    tsunagu_free(listed);
    expect(tsunagu_list(dev, "home_visit", "{\"purpose\":\"crisis_follow_up\"}", &listed, &err) == TSUNAGU_OK &&
               listed && strcmp(listed, "[]") == 0,
           "list with a filter that matches nothing is []", &err);
    tsunagu_free(listed);

    char* status = NULL;
    expect(tsunagu_status(dev, &status, &err) == TSUNAGU_OK && strstr(status, "\"pending\":3") != NULL &&
               strstr(status, "token") == NULL,
           "status shows three pending changes and no token", &err);
    tsunagu_free(status);

    size_t calls = 0;
    char* report = NULL;
    expect(tsunagu_sync(dev, on_progress, &calls, &report, &err) == TSUNAGU_OK && report &&
               strstr(report, "\"pushed\":3") != NULL && strstr(report, "\"wiped\":false") != NULL,
           "sync pushes the three changes", &err);
    expect(calls >= 2, "sync reports progress", NULL);
    printf("report: %s\n", report ? report : "(none)");
    tsunagu_free(report);

    expect(tsunagu_status(dev, &status, &err) == TSUNAGU_OK && strstr(status, "\"pending\":0") != NULL,
           "nothing pending after sync", &err);
    tsunagu_free(status);
    char* conflicts = NULL;
    expect(tsunagu_conflicts(dev, &conflicts, &err) == TSUNAGU_OK && strcmp(conflicts, "[]") == 0,
           "no conflicts", &err);
    tsunagu_free(conflicts);
    size_t retried = 99;
    expect(tsunagu_retry_refused(dev, &retried, &err) == TSUNAGU_OK && retried == 0,
           "nothing refused to send again", &err);
    expect(tsunagu_retry_refused(NULL, &retried, &err) == TSUNAGU_INVALID_ARGUMENT, "retry needs a device", &err);
    char* refused = NULL;
    expect(tsunagu_refused(dev, &refused, &err) == TSUNAGU_OK && strcmp(refused, "[]") == 0, "nothing refused", &err);
    tsunagu_free(refused);
    refused = NULL;
    expect(tsunagu_refused_on_server(dev, 0, &refused, &err) == TSUNAGU_OK && strcmp(refused, "[]") == 0,
           "nothing refused kept on the server", &err);
    tsunagu_free(refused);
    refused = NULL;
    expect(tsunagu_refused_on_server(dev, 1, &refused, &err) == TSUNAGU_OK && strcmp(refused, "[]") == 0,
           "nothing dismissed on the server", &err);
    tsunagu_free(refused);
    expect(tsunagu_refused_on_server(dev, 0, NULL, &err) == TSUNAGU_INVALID_ARGUMENT,
           "listing needs somewhere to put the list", &err);
    size_t discarded = 99;
    expect(tsunagu_discard_refused(dev, visit_id, &discarded, &err) == TSUNAGU_NOT_FOUND && discarded == 0,
           "nothing refused to discard", &err);
    expect(tsunagu_discard_refused(dev, NULL, &discarded, &err) == TSUNAGU_INVALID_ARGUMENT, "discard needs an id", &err);
    expect(tsunagu_resolve(dev, visit_id, "duration_min", "{bad", &err) == TSUNAGU_INVALID_ARGUMENT,
           "resolve with malformed JSON is refused", &err);
    expect(tsunagu_resolve_deletion(dev, visit_id, "forget it", &err) == TSUNAGU_INVALID_ARGUMENT &&
               strstr(err.message, "keep_deleted") != NULL,
           "a deletion is settled as keep_deleted or restore, and the error says so", &err);
    expect(tsunagu_resolve_deletion(dev, visit_id, "restore", &err) == TSUNAGU_CONFLICT,
           "a record with no deletion conflict has none to settle", &err);
    expect(tsunagu_resolve_deletion(dev, NULL, "restore", &err) == TSUNAGU_INVALID_ARGUMENT,
           "settling a deletion needs an id", &err);

    /* Edits made from the record as read: tsunagu_get's answer, kept while a form was open. */
    char* as_read = NULL;
    expect(tsunagu_get(dev, visit_id, &as_read, &err) == TSUNAGU_OK && as_read && strstr(as_read, "\"heads\"") != NULL,
           "get names the versions in force, for an edit made from it", &err);
    expect(tsunagu_update_as_read(dev, visit_id, "{\"duration_min\":60}", as_read, &err) == TSUNAGU_OK,
           "an edit made from the record as read", &err);
    expect(tsunagu_update_as_read(dev, visit_id, "{\"duration_min\":61}", "{\"fields\":{}}", &err) ==
                   TSUNAGU_INVALID_ARGUMENT &&
               err.message && strstr(err.message, "heads") != NULL,
           "a record as read without its heads is refused, and the error says what to give", &err);
    expect(tsunagu_update_as_read(dev, visit_id, "{\"duration_min\":61}", "{bad", &err) == TSUNAGU_INVALID_ARGUMENT &&
               err.message && strstr(err.message, "as_read_json") != NULL,
           "a record as read that is not JSON is refused", &err);
    expect(tsunagu_update_as_read(dev, visit_id, "{\"duration_min\":61}", NULL, &err) == TSUNAGU_INVALID_ARGUMENT,
           "an edit made from a reading needs the reading", &err);
    expect(tsunagu_resolve_as_read(dev, visit_id, "duration_min", "62", as_read, &err) == TSUNAGU_CONFLICT,
           "a field with no conflict has none to settle, from a reading as without", &err);
    expect(tsunagu_delete_as_read(dev, visit_id, NULL, &err) == TSUNAGU_INVALID_ARGUMENT,
           "a delete made from a reading needs the reading", &err);
    tsunagu_free(as_read);
    as_read = NULL;
    expect(tsunagu_get(dev, visit_id, &as_read, &err) == TSUNAGU_OK, "read the visit again", &err);
    expect(tsunagu_delete_as_read(dev, visit_id, as_read, &err) == TSUNAGU_OK, "delete the visit, from what was read",
           &err);
    tsunagu_free(as_read);
    expect(tsunagu_sync(dev, NULL, NULL, NULL, &err) == TSUNAGU_OK, "sync the delete", &err);
    tsunagu_close(dev);

    dev = tsunagu_open(home, "a long passphrase", &err);
    expect(dev != NULL, "reopen with the passphrase", &err);
    expect(tsunagu_list(dev, "home_visit", NULL, &listed, &err) == TSUNAGU_OK && strcmp(listed, "[]") == 0,
           "the deleted visit is gone after reopening", &err);
    tsunagu_free(listed);
    expect(tsunagu_list(dev, "client", NULL, &listed, &err) == TSUNAGU_OK && strstr(listed, client_id) != NULL,
           "the client is still there after reopening", &err);
    tsunagu_free(listed);

    expect(tsunagu_change_passphrase(dev, "not the passphrase", "a new long passphrase", &err) == TSUNAGU_WRONG_KEY,
           "changing the passphrase needs the current one", &err);
    expect(tsunagu_change_passphrase(dev, "a long passphrase", NULL, &err) == TSUNAGU_INVALID_ARGUMENT,
           "changing the passphrase needs a new one", &err);
    tsunagu_device* app = tsunagu_open(home, "a long passphrase", &err);
    expect(app != NULL, "a second handle opens the replica too", &err);
    expect(tsunagu_change_passphrase(dev, "a long passphrase", "a new long passphrase", &err) == TSUNAGU_BUSY,
           "no passphrase change while another handle has the replica open", &err);
    tsunagu_close(app);
    expect(tsunagu_change_passphrase(dev, "a long passphrase", "a new long passphrase", &err) == TSUNAGU_OK,
           "change the passphrase", &err);
    tsunagu_close(dev);
    wrong = tsunagu_open(home, "a long passphrase", &err);
    expect(wrong == NULL && err.code == TSUNAGU_WRONG_KEY, "the old passphrase no longer opens the replica", &err);
    dev = tsunagu_open(home, "a new long passphrase", &err);
    expect(dev != NULL, "the new passphrase opens it", &err);
    expect(tsunagu_list(dev, "client", NULL, &listed, &err) == TSUNAGU_OK && strstr(listed, client_id) != NULL,
           "the client is still there under the new passphrase", &err);
    tsunagu_free(listed);
    printf("client: %s\n", client_id);
    tsunagu_free(client_id);
    tsunagu_free(visit_id);
    tsunagu_close(dev);
    tsunagu_close(NULL);
    tsunagu_free(NULL);

    return finish();
}
