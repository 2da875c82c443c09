/*
 * test_s2s_dialback.c - dialback keys (XEP-0185): the published example
 * vector, and that every input and the secret change the key.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "s2s_internal.h"

static void test_xep_0185_example(void **state)
{
    char *key = s2s_dialback_key_with_secret("s3cr3tf0rd14lb4ck", "xmpp.example.com", "example.org",
                                             "D60000229F");

    assert_string_equal(key, "37c69b1cf07a3f67c04a5ef5902fa5114f2c76fe4a2686482ba5b89323075643");
    free(key);
}

static void test_every_input_matters(void **state)
{
    char *base = s2s_dialback_key_with_secret("secret", "a.example", "b.example", "id1");
    char *keys[] = {
        s2s_dialback_key_with_secret("secret2", "a.example", "b.example", "id1"),
        s2s_dialback_key_with_secret("secret", "b.example", "a.example", "id1"),
        s2s_dialback_key_with_secret("secret", "a.example", "b.example", "id2"),
    };

    assert_int_equal(strlen(base), 64);
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        assert_string_not_equal(base, keys[i]);
        free(keys[i]);
    }
    free(base);
}

static void test_process_secret_is_random(void **state)
{
    s2s_dialback_init();
    char *first = s2s_dialback_key("a.example", "b.example", "id");
    char *again = s2s_dialback_key("a.example", "b.example", "id");
    s2s_dialback_init(); /* a restart: keys issued before no longer verify */
    char *after = s2s_dialback_key("a.example", "b.example", "id");

    assert_string_equal(first, again);
    assert_string_not_equal(first, after);
    free(first);
    free(again);
    free(after);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_xep_0185_example),
        cmocka_unit_test(test_every_input_matters),
        cmocka_unit_test(test_process_secret_is_random),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
