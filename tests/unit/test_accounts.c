/*
 * test_accounts.c - accounts on a real LMDB store: create, passwords,
 * credentials, enumeration, deletion, and the stored document format.
 */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "accounts.h"
#include "store_backend.h"

#define HOST "example.com"
#define ITERATIONS 4096

typedef struct fixture {
    char dir[64];
    char path[128];
    vn_store *s;
} fixture;

static void remove_tree(const char *path)
{
    DIR *d = opendir(path);
    struct dirent *e;

    if (!d)
        return;
    while ((e = readdir(d))) {
        char child[512];
        struct stat sb;
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(child, sizeof child, "%s/%s", path, e->d_name);
        if (lstat(child, &sb) == 0 && S_ISDIR(sb.st_mode))
            remove_tree(child);
        else
            unlink(child);
    }
    closedir(d);
    rmdir(path);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    vn_buf err;

    if (!f)
        return -1;
    snprintf(f->dir, sizeof f->dir, "/tmp/vn-accounts-XXXXXX");
    if (!mkdtemp(f->dir)) {
        free(f);
        return -1;
    }
    snprintf(f->path, sizeof f->path, "%s/db", f->dir);
    vn_store_options opts = {.backend = "lmdb", .path = f->path, .map_size_mb = 16};
    vn_buf_init(&err);
    f->s = vn_store_open(&opts, &err);
    if (!f->s)
        print_error("open %s: %s\n", f->path, err.data);
    vn_buf_free(&err);
    *state = f;
    return f->s ? 0 : -1;
}

static int teardown(void **state)
{
    fixture *f = *state;

    vn_store_close(f->s);
    remove_tree(f->dir);
    free(f);
    return 0;
}

static void test_create(void **state)
{
    vn_store *s = ((fixture *)*state)->s;

    assert_int_equal(vn_accounts_create(s, HOST, "juliet", "balcony", ITERATIONS), 0);
    assert_int_equal(vn_accounts_create(s, HOST, "juliet", "other", ITERATIONS), 1);
    /* The username is normalised: this is the same account. */
    assert_int_equal(vn_accounts_create(s, HOST, "JuLiEt", "other", ITERATIONS), 1);
    assert_int_equal(vn_accounts_create(s, HOST,
                                        "\xef\xbc\xaa"
                                        "uliet",
                                        "other", ITERATIONS),
                     1); /* fullwidth J */
    /* Invalid usernames and passwords */
    assert_int_equal(vn_accounts_create(s, HOST, "ju liet", "x", ITERATIONS), -1);
    assert_int_equal(vn_accounts_create(s, HOST, "a@b", "x", ITERATIONS), -1);
    assert_int_equal(vn_accounts_create(s, HOST, "", "x", ITERATIONS), -1);
    assert_int_equal(vn_accounts_create(s, HOST, "romeo", "", ITERATIONS), -1);
    assert_int_equal(vn_accounts_create(s, HOST, "romeo", "a\tb", ITERATIONS), -1);
    assert_int_equal(vn_accounts_create(s, HOST, "romeo", "x", 0), -1);
    assert_false(vn_accounts_exists(s, HOST, "romeo"));

    /* The old password was kept by the refused creates. */
    assert_int_equal(vn_accounts_check_password(s, HOST, "juliet", "balcony"), 0);
}

static void test_exists(void **state)
{
    vn_store *s = ((fixture *)*state)->s;

    assert_false(vn_accounts_exists(s, HOST, "juliet"));
    assert_int_equal(vn_accounts_create(s, HOST, "Juliet", "balcony", ITERATIONS), 0);
    assert_true(vn_accounts_exists(s, HOST, "juliet"));
    assert_true(vn_accounts_exists(s, HOST, "JULIET"));
    assert_false(vn_accounts_exists(s, HOST, "romeo"));
    assert_false(vn_accounts_exists(s, "other.example", "juliet"));
    assert_false(vn_accounts_exists(s, HOST, "not valid"));
}

static void test_check_password(void **state)
{
    vn_store *s = ((fixture *)*state)->s;

    assert_int_equal(vn_accounts_create(s, HOST, "juliet", "balcony", ITERATIONS), 0);
    assert_int_equal(vn_accounts_check_password(s, HOST, "juliet", "balcony"), 0);
    assert_int_equal(vn_accounts_check_password(s, HOST, "JULIET", "balcony"), 0);
    assert_int_equal(vn_accounts_check_password(s, HOST, "juliet", "Balcony"), 1);
    assert_int_equal(vn_accounts_check_password(s, HOST, "juliet", ""), 1);
    assert_int_equal(vn_accounts_check_password(s, HOST, "romeo", "balcony"), 1);
    assert_int_equal(vn_accounts_check_password(s, "other.example", "juliet", "balcony"), 1);

    /* Passwords go through OpaqueString: U+3000 IDEOGRAPHIC SPACE is a
     * space, and NFC composes e + U+0301. */
    assert_int_equal(vn_accounts_create(s, HOST, "romeo", "my\xe3\x80\x80pass\xc3\xa9", ITERATIONS),
                     0);
    assert_int_equal(vn_accounts_check_password(s, HOST, "romeo", "my passe\xcc\x81"), 0);
    assert_int_equal(vn_accounts_check_password(s, HOST, "romeo", "mypass\xc3\xa9"), 1);
}

static void test_set_password(void **state)
{
    vn_store *s = ((fixture *)*state)->s;

    assert_int_equal(vn_accounts_set_password(s, HOST, "juliet", "new", ITERATIONS), 1);
    assert_false(vn_accounts_exists(s, HOST, "juliet"));
    assert_int_equal(vn_accounts_create(s, HOST, "juliet", "balcony", ITERATIONS), 0);
    assert_int_equal(vn_accounts_set_password(s, HOST, "Juliet", "orchard", 5000), 0);
    assert_int_equal(vn_accounts_check_password(s, HOST, "juliet", "balcony"), 1);
    assert_int_equal(vn_accounts_check_password(s, HOST, "juliet", "orchard"), 0);
    assert_int_equal(vn_accounts_set_password(s, HOST, "juliet", "", ITERATIONS), -1);
    assert_int_equal(vn_accounts_check_password(s, HOST, "juliet", "orchard"), 0);

    vn_scram_creds creds;
    assert_int_equal(vn_accounts_get_creds(s, HOST, "juliet", VN_SCRAM_SHA1, &creds), 0);
    assert_int_equal(creds.iterations, 5000);
}

static void test_get_creds(void **state)
{
    vn_store *s = ((fixture *)*state)->s;
    vn_scram_creds sha1, sha256;

    assert_int_equal(vn_accounts_get_creds(s, HOST, "juliet", VN_SCRAM_SHA1, &sha1), 1);
    assert_int_equal(vn_accounts_create(s, HOST, "juliet", "balcony", ITERATIONS), 0);

    assert_int_equal(vn_accounts_get_creds(s, HOST, "JULIET", VN_SCRAM_SHA1, &sha1), 0);
    assert_int_equal(sha1.hash, VN_SCRAM_SHA1);
    assert_int_equal(sha1.key_len, 20);
    assert_int_equal(sha1.iterations, ITERATIONS);
    assert_int_equal(sha1.salt_len, 16);
    assert_true(vn_scram_creds_check(&sha1, "balcony"));
    assert_false(vn_scram_creds_check(&sha1, "orchard"));

    assert_int_equal(vn_accounts_get_creds(s, HOST, "juliet", VN_SCRAM_SHA256, &sha256), 0);
    assert_int_equal(sha256.hash, VN_SCRAM_SHA256);
    assert_int_equal(sha256.key_len, 32);
    assert_true(vn_scram_creds_check(&sha256, "balcony"));
    /* Each hash has its own salt. */
    assert_memory_not_equal(sha1.salt, sha256.salt, 16);

    assert_int_equal(vn_accounts_get_creds(s, HOST, "not valid", VN_SCRAM_SHA1, &sha1), 1);
}

static void test_document_format(void **state)
{
    vn_store *s = ((fixture *)*state)->s;
    vn_buf doc;
    char mech[32], salt[64], stored[64], server[64];
    unsigned iterations;

    assert_int_equal(vn_accounts_create(s, HOST, "juliet", "balcony", ITERATIONS), 0);
    vn_buf_init(&doc);
    assert_int_equal(vn_store_get(s, HOST, "juliet", "accounts", "scram", &doc), VN_STORE_OK);
    assert_memory_equal(doc.data, "v1\nSCRAM-SHA-1 4096 ", 20);
    const char *second = strchr(doc.data + 3, '\n') + 1;
    assert_int_equal(
        sscanf(second, "%31s %u %63s %63s %63s", mech, &iterations, salt, stored, server), 5);
    assert_string_equal(mech, "SCRAM-SHA-256");
    assert_int_equal(iterations, 4096);
    assert_int_equal(strlen(stored), 44); /* 32 bytes in base64 */
    assert_int_equal(doc.data[doc.len - 1], '\n');
    /* No trace of the password. */
    assert_null(strstr(doc.data, "balcony"));

    /* Records of unknown mechanisms are skipped. */
    vn_buf extended;
    vn_buf_init(&extended);
    vn_buf_append_str(&extended, "v1\nSCRAM-SHA-512 4096 AAAA AAAA AAAA\n");
    vn_buf_append_str(&extended, doc.data + 3);
    assert_int_equal(
        vn_store_put(s, HOST, "juliet", "accounts", "scram", extended.data, extended.len),
        VN_STORE_OK);
    assert_int_equal(vn_accounts_check_password(s, HOST, "juliet", "balcony"), 0);
    vn_buf_free(&extended);
    vn_buf_free(&doc);
}

static void test_corrupt_document(void **state)
{
    static const char *const corrupt[] = {
        "",
        "v2\nSCRAM-SHA-1 4096 AAAA AAAAAAAAAAAAAAAAAAAAAAAAAAA= AAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
        "v1\n",
        "v1\nSCRAM-SHA-256 4096 AAAA short short\n",
        "v1\nSCRAM-SHA-256 0 AAAA AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= "
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
        "v1\nSCRAM-SHA-256 -1 AAAA AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= "
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
        "v1\nSCRAM-SHA-256 4096 AAAA AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
        "v1\nSCRAM-SHA-256 4096 AAAA AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= "
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= extra\n",
    };
    vn_store *s = ((fixture *)*state)->s;
    vn_scram_creds creds;

    for (size_t i = 0; i < sizeof corrupt / sizeof corrupt[0]; i++) {
        assert_int_equal(
            vn_store_put(s, HOST, "juliet", "accounts", "scram", corrupt[i], strlen(corrupt[i])),
            VN_STORE_OK);
        if (vn_accounts_get_creds(s, HOST, "juliet", VN_SCRAM_SHA256, &creds) != -1)
            fail_msg("document %zu read as valid", i);
        assert_int_equal(vn_accounts_check_password(s, HOST, "juliet", "x"), -1);
    }
    /* The well-formed record passes the same parser. */
    static const char valid[] = "v1\nSCRAM-SHA-256 4096 AAAA "
                                "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= "
                                "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n";
    assert_int_equal(vn_store_put(s, HOST, "juliet", "accounts", "scram", valid, strlen(valid)),
                     VN_STORE_OK);
    assert_int_equal(vn_accounts_get_creds(s, HOST, "juliet", VN_SCRAM_SHA256, &creds), 0);
    assert_int_equal(creds.salt_len, 3);
    assert_int_equal(vn_accounts_check_password(s, HOST, "juliet", "x"), 1);
}

/* Credentials put as they came (a XEP-0227 import): an account with
 * SCRAM-SHA-1 alone has no SCRAM-SHA-256 (SASL says not-authorized) and
 * checks PLAIN passwords against SCRAM-SHA-1. */
static void test_put_creds(void **state)
{
    vn_store *s = ((fixture *)*state)->s;
    vn_scram_creds sha1, out;

    assert_int_equal(vn_scram_creds_make(VN_SCRAM_SHA1, "balcony", 4096, &sha1), 0);
    assert_int_equal(vn_accounts_put_creds(s, HOST, "Juliet", &sha1, 1), 0);
    assert_true(vn_accounts_exists(s, HOST, "juliet"));
    assert_int_equal(vn_accounts_get_creds(s, HOST, "juliet", VN_SCRAM_SHA1, &out), 0);
    assert_memory_equal(out.stored_key, sha1.stored_key, sha1.key_len);
    assert_int_equal(vn_accounts_get_creds(s, HOST, "juliet", VN_SCRAM_SHA256, &out), 1);
    assert_int_equal(vn_accounts_check_password(s, HOST, "juliet", "balcony"), 0);
    assert_int_equal(vn_accounts_check_password(s, HOST, "juliet", "garden"), 1);
    assert_int_equal(vn_accounts_put_creds(s, HOST, "juliet", &sha1, 0), -1);
    /* A new password gives both hashes again. */
    assert_int_equal(vn_accounts_set_password(s, HOST, "juliet", "garden", 4096), 0);
    assert_int_equal(vn_accounts_get_creds(s, HOST, "juliet", VN_SCRAM_SHA256, &out), 0);
}

typedef struct user_list {
    char names[8][32];
    size_t count;
    size_t stop_after;
} user_list;

static bool collect(const char *user, void *ud)
{
    user_list *list = ud;

    assert_true(list->count < 8);
    snprintf(list->names[list->count++], sizeof list->names[0], "%s", user);
    return list->count != list->stop_after;
}

static void test_foreach(void **state)
{
    vn_store *s = ((fixture *)*state)->s;
    user_list list = {.count = 0};

    assert_int_equal(vn_accounts_foreach(s, HOST, collect, &list), 0);
    assert_int_equal(list.count, 0);

    assert_int_equal(vn_accounts_create(s, HOST, "carol", "x", 1000), 0);
    assert_int_equal(vn_accounts_create(s, HOST, "Alice", "x", 1000), 0);
    assert_int_equal(vn_accounts_create(s, HOST, "bob", "x", 1000), 0);
    assert_int_equal(vn_accounts_create(s, "other.example", "dave", "x", 1000), 0);
    /* Data of a user without an account is not an account. */
    assert_int_equal(vn_store_put(s, HOST, "eve", "roster", "r", "x", 1), VN_STORE_OK);

    assert_int_equal(vn_accounts_foreach(s, HOST, collect, &list), 0);
    assert_int_equal(list.count, 3);
    assert_string_equal(list.names[0], "alice");
    assert_string_equal(list.names[1], "bob");
    assert_string_equal(list.names[2], "carol");

    list = (user_list){.stop_after = 2};
    assert_int_equal(vn_accounts_foreach(s, HOST, collect, &list), 0);
    assert_int_equal(list.count, 2);
}

static void test_delete(void **state)
{
    vn_store *s = ((fixture *)*state)->s;
    vn_buf value;

    assert_int_equal(vn_accounts_delete(s, HOST, "juliet"), 1);
    assert_int_equal(vn_accounts_create(s, HOST, "juliet", "balcony", 1000), 0);
    assert_int_equal(vn_accounts_create(s, HOST, "romeo", "orchard", 1000), 0);
    assert_int_equal(vn_store_put(s, HOST, "juliet", "roster", "romeo@example.com", "x", 1),
                     VN_STORE_OK);
    assert_int_equal(vn_store_put(s, HOST, "romeo", "roster", "juliet@example.com", "y", 1),
                     VN_STORE_OK);

    assert_int_equal(vn_accounts_delete(s, HOST, "JULIET"), 0);
    assert_false(vn_accounts_exists(s, HOST, "juliet"));
    assert_int_equal(vn_accounts_check_password(s, HOST, "juliet", "balcony"), 1);
    vn_buf_init(&value);
    /* All the user's data went with the account ... */
    assert_int_equal(vn_store_get(s, HOST, "juliet", "roster", "romeo@example.com", &value),
                     VN_STORE_NOT_FOUND);
    /* ... and nobody else's. */
    assert_int_equal(vn_store_get(s, HOST, "romeo", "roster", "juliet@example.com", &value),
                     VN_STORE_OK);
    assert_true(vn_accounts_exists(s, HOST, "romeo"));
    vn_buf_free(&value);

    assert_int_equal(vn_accounts_delete(s, HOST, "juliet"), 1);
    assert_int_equal(vn_accounts_delete(s, HOST, "not valid"), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_create, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exists, setup, teardown),
        cmocka_unit_test_setup_teardown(test_check_password, setup, teardown),
        cmocka_unit_test_setup_teardown(test_set_password, setup, teardown),
        cmocka_unit_test_setup_teardown(test_get_creds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_document_format, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_document, setup, teardown),
        cmocka_unit_test_setup_teardown(test_put_creds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_foreach, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
