/*
 * test_jid.c - JID parsing and normalisation (RFC 7622, PRECIS profiles).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "vestnik/jid.h"

/* Normalises str and compares with the expected canonical form (NULL:
 * expected to be rejected). */
static void check_normalize(const char *str, const char *expected)
{
    char *got = vn_jid_normalize(str);

    if (expected) {
        if (!got)
            fail_msg("\"%s\" rejected, expected \"%s\"", str, expected);
        assert_string_equal(got, expected);
    } else if (got) {
        fail_msg("\"%s\" accepted as \"%s\", expected rejection", str, got);
    }
    free(got);
}

/* n copies of unit followed by suffix, malloc'd. */
static char *repeat(const char *unit, size_t n, const char *suffix)
{
    size_t unit_len = strlen(unit), suffix_len = strlen(suffix);
    char *s = malloc(unit_len * n + suffix_len + 1);

    assert_non_null(s);
    for (size_t i = 0; i < n; i++)
        memcpy(s + i * unit_len, unit, unit_len);
    memcpy(s + unit_len * n, suffix, suffix_len + 1);
    return s;
}

static void test_parts(void **state)
{
    vn_jid *jid = vn_jid_parse("juliet@example.com/balcony");

    assert_non_null(jid);
    assert_string_equal(jid->local, "juliet");
    assert_string_equal(jid->domain, "example.com");
    assert_string_equal(jid->resource, "balcony");
    assert_string_equal(jid->bare, "juliet@example.com");
    assert_string_equal(jid->full, "juliet@example.com/balcony");
    vn_jid_free(jid);

    jid = vn_jid_parse("example.com");
    assert_non_null(jid);
    assert_null(jid->local);
    assert_null(jid->resource);
    assert_string_equal(jid->domain, "example.com");
    assert_string_equal(jid->bare, "example.com");
    assert_string_equal(jid->full, "example.com");
    vn_jid_free(jid);

    jid = vn_jid_parse("example.com/res");
    assert_non_null(jid);
    assert_null(jid->local);
    assert_string_equal(jid->resource, "res");
    assert_string_equal(jid->full, "example.com/res");
    vn_jid_free(jid);
}

static void test_resource_may_hold_at_and_slash(void **state)
{
    vn_jid *jid = vn_jid_parse("juliet@example.com/foo@bar/baz");

    assert_non_null(jid);
    assert_string_equal(jid->local, "juliet");
    assert_string_equal(jid->domain, "example.com");
    assert_string_equal(jid->resource, "foo@bar/baz");
    vn_jid_free(jid);

    jid = vn_jid_parse("example.com/user@host");
    assert_non_null(jid);
    assert_null(jid->local);
    assert_string_equal(jid->domain, "example.com");
    assert_string_equal(jid->resource, "user@host");
    vn_jid_free(jid);

    /* The localpart ends at the first '@': the domain may not hold one. */
    check_normalize("a@b@example.com", NULL);
}

static void test_empty_parts(void **state)
{
    check_normalize("", NULL);
    check_normalize("@example.com", NULL);
    check_normalize("juliet@", NULL);
    check_normalize("juliet@/res", NULL);
    check_normalize("example.com/", NULL);
    check_normalize("juliet@example.com/", NULL);
    check_normalize("/res", NULL);
    check_normalize(".", NULL);
    assert_null(vn_jid_parse(NULL));
}

static void test_part_lengths(void **state)
{
    char *s;

    s = repeat("a", 1023, "@example.com");
    check_normalize(s, s);
    free(s);
    s = repeat("a", 1024, "@example.com");
    check_normalize(s, NULL);
    free(s);

    s = repeat("r", 1023, "");
    char *jid = malloc(strlen(s) + 32);
    assert_non_null(jid);
    sprintf(jid, "example.com/%s", s);
    check_normalize(jid, jid);
    strcat(jid, "r");
    check_normalize(jid, NULL);
    free(jid);
    free(s);

    /* Domains: 16 labels of 63 letters plus dots = 1023 bytes; one more
     * label is too long. */
    s = repeat("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.", 16, "");
    s[1023] = '\0';
    check_normalize(s, s);
    free(s);
    s = repeat("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.", 16, "a");
    check_normalize(s, NULL);
    free(s);
    /* A DNS label is at most 63 bytes. */
    s = repeat("a", 64, ".example");
    check_normalize(s, NULL);
    free(s);

    /* The limit applies to the normalised form: 1023 fullwidth letters are
     * 3069 bytes on the wire but 1023 after width mapping. */
    s = repeat("\xef\xbd\x81", 1023, "@example.com"); /* U+FF41 FULLWIDTH a */
    char *expected = repeat("a", 1023, "@example.com");
    check_normalize(s, expected);
    free(s);
    free(expected);
}

static void test_localpart_prohibited(void **state)
{
    static const char *const bad[] = {
        "ju\"liet@example.com",
        "ju&liet@example.com",
        "ju'liet@example.com",
        "ju:liet@example.com",
        "ju<liet@example.com",
        "ju>liet@example.com",
        "ju liet@example.com",
        "ju\tliet@example.com",
        "ju\x7fliet@example.com",
        /* U+3000 IDEOGRAPHIC SPACE */
        "ju\xe3\x80\x80liet@example.com",
        /* U+2665 BLACK HEART SUIT: a symbol */
        "\xe2\x99\xa5@example.com",
        /* U+FB01 LATIN SMALL LIGATURE FI: has a compatibility mapping */
        "\xef\xac\x81@example.com",
        /* U+00A0 NO-BREAK SPACE */
        "ju\xc2\xa0liet@example.com",
        /* U+200B ZERO WIDTH SPACE: default ignorable */
        "ju\xe2\x80\x8bliet@example.com",
        /* U+00B7 MIDDLE DOT outside l·l */
        "a\xc2\xb7"
        "b@example.com",
        /* invalid UTF-8 */
        "ju\xc3liet@example.com",
        "\xed\xa0\x80@example.com", /* an encoded surrogate */
        /* Bidi rule: left-to-right then Hebrew */
        "abc\xd7\xa2\xd7\x91\xd7\xa8\xd7\x99\xd7\xaa@example.com",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        check_normalize(bad[i], NULL);
    assert_null(vn_jid_prep_local("a/b"));
    assert_null(vn_jid_prep_local("a@b"));
    assert_null(vn_jid_prep_local(""));
    assert_null(vn_jid_prep_local(NULL));
}

static void test_localpart_allowed(void **state)
{
    check_normalize("juliet+romeo_1.x-y@example.com", "juliet+romeo_1.x-y@example.com");
    /* l·l is the one context where U+00B7 is allowed */
    check_normalize("l\xc2\xb7l@example.com", "l\xc2\xb7l@example.com");
    /* Hebrew, right to left, alone */
    check_normalize("\xd7\xa2\xd7\x91\xd7\xa8\xd7\x99\xd7\xaa@example.com",
                    "\xd7\xa2\xd7\x91\xd7\xa8\xd7\x99\xd7\xaa@example.com");
    /* U+00DF LATIN SMALL LETTER SHARP S stays (an exception, PVALID) */
    check_normalize("stra\xc3\x9f"
                    "e@example.com",
                    "stra\xc3\x9f"
                    "e@example.com");
}

static void test_case_mapping(void **state)
{
    /* The localpart and domain are lower-cased, the resource is not. */
    check_normalize("JuLiEt@EXAMPLE.com/BalCony", "juliet@example.com/BalCony");
    /* Non-ASCII: U+00C9 -> U+00E9, Greek capitals with final sigma. */
    check_normalize("\xc3\x89lodie@example.com", "\xc3\xa9lodie@example.com");
    check_normalize("M\xc3\x9cNCHEN@example.com", "m\xc3\xbcnchen@example.com");
    check_normalize("example.com/\xc3\x89", "example.com/\xc3\x89");
    /* NFC: e + U+0301 COMBINING ACUTE composes to U+00E9 in every part */
    check_normalize("e\xcc\x81@example.com/e\xcc\x81", "\xc3\xa9@example.com/\xc3\xa9");
}

static void test_fullwidth(void **state)
{
    /* UsernameCaseMapped maps fullwidth letters to ASCII ... */
    check_normalize("\xef\xbc\xaa\xef\xbd\x95\xef\xbd\x8c@example.com", "jul@example.com");
    /* ... and halfwidth katakana to the normal ones (U+FF76 -> U+30AB) */
    check_normalize("\xef\xbd\xb6@example.com", "\xe3\x82\xab@example.com");
    /* OpaqueString keeps them. */
    check_normalize("example.com/\xef\xbc\xaa", "example.com/\xef\xbc\xaa");
}

static void test_resource(void **state)
{
    check_normalize("example.com/ a b ", "example.com/ a b ");
    /* Non-ASCII spaces become U+0020: U+3000 and U+00A0. */
    check_normalize("example.com/a\xe3\x80\x80"
                    "b\xc2\xa0"
                    "c",
                    "example.com/a b c");
    /* Symbols and compatibility characters are fine in the FreeformClass. */
    check_normalize("example.com/\xe2\x99\xa5\xef\xac\x81", "example.com/\xe2\x99\xa5\xef\xac\x81");
    /* Control characters are not. */
    check_normalize("example.com/a\tb", NULL);
    check_normalize("example.com/a\x7f", NULL);
    check_normalize("example.com/a\xc2\x85", NULL);    /* U+0085 NEL */
    check_normalize("example.com/\xef\xbf\xbf", NULL); /* U+FFFF noncharacter */
}

static void test_domain(void **state)
{
    check_normalize("juliet@example.com.", "juliet@example.com");
    check_normalize("example.com./r", "example.com/r");
    check_normalize("example.com..", NULL);
    check_normalize("example..com", NULL);
    check_normalize(".example.com", NULL);
    check_normalize("-example.com", NULL);
    check_normalize("example-.com", NULL);
    check_normalize("exa_mple.com", NULL);
    check_normalize("exa mple.com", NULL);
    check_normalize("localhost", "localhost");
    check_normalize("a-b.c0", "a-b.c0");
    check_normalize("192.0.2.1", "192.0.2.1");
    check_normalize("u@[2001:DB8::0:1]/r", "u@[2001:db8::1]/r");
    check_normalize("[::1]", "[::1]");
    check_normalize("[::1", NULL);
    check_normalize("[example.com]", NULL);
}

static void test_idn_domain(void **state)
{
    /* U-labels are kept, lower-cased and NFC ... */
    check_normalize("juliet@B\xc3\x9c"
                    "CHER.example",
                    "juliet@b\xc3\xbc"
                    "cher.example");
    check_normalize("bu\xcc\x88"
                    "cher.example",
                    "b\xc3\xbc"
                    "cher.example");
    /* ... A-labels are converted to them ... */
    check_normalize("juliet@xn--bcher-kva.example", "juliet@b\xc3\xbc"
                                                    "cher.example");
    check_normalize("XN--BCHER-KVA.example.", "b\xc3\xbc"
                                              "cher.example");
    /* ... and IDNA2008 applies (U+00DF stays, non-transitional). */
    check_normalize("fa\xc3\x9f.de", "fa\xc3\x9f.de");
    check_normalize("xn--a.example", NULL);
    check_normalize("\xe2\x99\xa5.example", NULL); /* symbols are not allowed */
    check_normalize("a\xc3.example", NULL);        /* invalid UTF-8 */

    char *domain = vn_jid_prep_domain("B\xc3\x9c"
                                      "CHER.example.");
    assert_string_equal(domain, "b\xc3\xbc"
                                "cher.example");
    free(domain);
}

static void test_make(void **state)
{
    vn_jid *jid = vn_jid_make("Romeo", "Example.COM", "Orchard");

    assert_non_null(jid);
    assert_string_equal(jid->full, "romeo@example.com/Orchard");
    vn_jid_free(jid);

    jid = vn_jid_make(NULL, "example.com", NULL);
    assert_non_null(jid);
    assert_string_equal(jid->full, "example.com");
    vn_jid_free(jid);

    assert_null(vn_jid_make("a b", "example.com", NULL));
    assert_null(vn_jid_make("a", NULL, NULL));
    assert_null(vn_jid_make("a", "example.com", ""));
}

static void test_copy_and_equality(void **state)
{
    vn_jid *a = vn_jid_parse("Juliet@Example.com/Balcony");
    vn_jid *b = vn_jid_parse("juliet@example.com./Balcony");
    vn_jid *c = vn_jid_parse("juliet@example.com/balcony");
    vn_jid *d = vn_jid_parse("romeo@example.com/Balcony");

    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(c);
    assert_non_null(d);
    assert_true(vn_jid_equal(a, b));
    assert_false(vn_jid_equal(a, c)); /* resources are case-sensitive */
    assert_true(vn_jid_bare_equal(a, c));
    assert_false(vn_jid_bare_equal(a, d));

    vn_jid *copy = vn_jid_copy(a);
    assert_true(vn_jid_equal(a, copy));
    assert_ptr_not_equal(copy->full, a->full);
    vn_jid *bare = vn_jid_bare_copy(a);
    assert_null(bare->resource);
    assert_string_equal(bare->full, "juliet@example.com");
    assert_true(vn_jid_bare_equal(a, bare));
    assert_false(vn_jid_equal(a, bare));

    assert_true(vn_jid_equal(NULL, NULL));
    assert_false(vn_jid_equal(a, NULL));

    vn_jid_free(a);
    vn_jid_free(b);
    vn_jid_free(c);
    vn_jid_free(d);
    vn_jid_free(copy);
    vn_jid_free(bare);
    vn_jid_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parts),
        cmocka_unit_test(test_resource_may_hold_at_and_slash),
        cmocka_unit_test(test_empty_parts),
        cmocka_unit_test(test_part_lengths),
        cmocka_unit_test(test_localpart_prohibited),
        cmocka_unit_test(test_localpart_allowed),
        cmocka_unit_test(test_case_mapping),
        cmocka_unit_test(test_fullwidth),
        cmocka_unit_test(test_resource),
        cmocka_unit_test(test_domain),
        cmocka_unit_test(test_idn_domain),
        cmocka_unit_test(test_make),
        cmocka_unit_test(test_copy_and_equality),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
