/*
 * test_hooks.c - the hook registry (order, chain stop, changes during a
 * run) and the disco registry (refcounting, sorting, identities).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "hooks.h"
#include "vestnik/module.h"

/* Every handler appends its tag to this trace, so a test can assert on
 * exactly which handlers ran and in which order. */
static char trace[64];

typedef struct probe {
    char tag;
    vn_hook_result result;
    void (*action)(struct probe *self); /* run inside the handler, or NULL */
    struct probe *other;                /* the handler the action acts on */
} probe;

static vn_hook_result probe_handler(vn_event *ev, void *ud)
{
    probe *p = ud;
    size_t len = strlen(trace);

    trace[len] = p->tag;
    trace[len + 1] = '\0';
    if (p->action)
        p->action(p);
    return p->result;
}

static const char *run(const char *name)
{
    vn_event ev = {0};

    trace[0] = '\0';
    vn_hook_run(name, &ev);
    return trace;
}

static int teardown(void **state)
{
    vn_hooks_clear();
    vn_disco_clear();
    return 0;
}

static void test_priority_order(void **state)
{
    probe a = {'a', VN_PASS, NULL, NULL}, b = {'b', VN_PASS, NULL, NULL},
          c = {'c', VN_PASS, NULL, NULL};

    vn_hook_add("ev", 0, probe_handler, &a);
    vn_hook_add("ev", 10, probe_handler, &b);
    vn_hook_add("ev", -5, probe_handler, &c);
    assert_string_equal(run("ev"), "bac");
}

static void test_same_priority_keeps_registration_order(void **state)
{
    probe a = {'a', VN_PASS, NULL, NULL}, b = {'b', VN_PASS, NULL, NULL},
          c = {'c', VN_PASS, NULL, NULL}, d = {'d', VN_PASS, NULL, NULL};

    vn_hook_add("ev", 1, probe_handler, &a);
    vn_hook_add("ev", 1, probe_handler, &b);
    vn_hook_add("ev", 2, probe_handler, &c);
    vn_hook_add("ev", 1, probe_handler, &d);
    assert_string_equal(run("ev"), "cabd");
}

static void test_handled_stops_chain(void **state)
{
    probe a = {'a', VN_PASS, NULL, NULL}, b = {'b', VN_HANDLED, NULL, NULL},
          c = {'c', VN_PASS, NULL, NULL};
    vn_event ev = {0};

    vn_hook_add("ev", 3, probe_handler, &a);
    vn_hook_add("ev", 2, probe_handler, &b);
    vn_hook_add("ev", 1, probe_handler, &c);
    trace[0] = '\0';
    assert_int_equal(vn_hook_run("ev", &ev), VN_HANDLED);
    assert_string_equal(trace, "ab");

    b.result = VN_PASS;
    trace[0] = '\0';
    assert_int_equal(vn_hook_run("ev", &ev), VN_PASS);
    assert_string_equal(trace, "abc");
}

static void test_run_unknown_hook_passes(void **state)
{
    vn_event ev = {0};

    assert_int_equal(vn_hook_run("nobody-listens", &ev), VN_PASS);
}

static void test_hooks_are_separate(void **state)
{
    probe a = {'a', VN_PASS, NULL, NULL}, b = {'b', VN_PASS, NULL, NULL};

    vn_hook_add("one", 0, probe_handler, &a);
    vn_hook_add("two", 0, probe_handler, &b);
    assert_string_equal(run("one"), "a");
    assert_string_equal(run("two"), "b");
}

static void remove_self(probe *self)
{
    vn_hook_remove("ev", probe_handler, self);
}

static void test_remove_self_during_run(void **state)
{
    probe a = {'a', VN_PASS, remove_self, NULL}, b = {'b', VN_PASS, NULL, NULL};

    vn_hook_add("ev", 2, probe_handler, &a);
    vn_hook_add("ev", 1, probe_handler, &b);
    assert_string_equal(run("ev"), "ab");
    assert_string_equal(run("ev"), "b");
}

static void remove_other(probe *self)
{
    vn_hook_remove("ev", probe_handler, self->other);
}

static void test_remove_later_handler_during_run(void **state)
{
    probe c = {'c', VN_PASS, NULL, NULL}, b = {'b', VN_PASS, NULL, NULL};
    probe a = {'a', VN_PASS, remove_other, &b};

    vn_hook_add("ev", 3, probe_handler, &a);
    vn_hook_add("ev", 2, probe_handler, &b);
    vn_hook_add("ev", 1, probe_handler, &c);
    /* b was removed before its turn: it must not run, even in this run. */
    assert_string_equal(run("ev"), "ac");
    assert_string_equal(run("ev"), "ac");
}

static void remove_only_handler(probe *self)
{
    vn_hook_remove("solo", probe_handler, self);
}

static void test_remove_last_handler_during_run(void **state)
{
    probe a = {'a', VN_PASS, remove_only_handler, NULL};

    vn_hook_add("solo", 0, probe_handler, &a);
    assert_string_equal(run("solo"), "a");
    assert_string_equal(run("solo"), "");
}

static void add_other(probe *self)
{
    vn_hook_add("ev", 100, probe_handler, self->other);
    self->action = NULL; /* only once */
}

static void test_add_during_run(void **state)
{
    probe n = {'n', VN_PASS, NULL, NULL}, b = {'b', VN_PASS, NULL, NULL};
    probe a = {'a', VN_PASS, add_other, &n};

    vn_hook_add("ev", 2, probe_handler, &a);
    vn_hook_add("ev", 1, probe_handler, &b);
    /* The new handler takes part from the next run on, in priority order. */
    assert_string_equal(run("ev"), "ab");
    assert_string_equal(run("ev"), "nab");
}

static probe many[20];

static void add_many(probe *self)
{
    for (size_t i = 0; i < 20; i++) {
        many[i] = (probe){(char)('A' + i), VN_PASS, NULL, NULL};
        vn_hook_add("ev", -1, probe_handler, &many[i]);
    }
    self->action = NULL;
}

static void test_many_adds_during_run(void **state)
{
    probe a = {'a', VN_PASS, add_many, NULL}, b = {'b', VN_PASS, NULL, NULL};

    /* The adds grow the handler array under the run (ASan checks that the
     * run does not keep a stale pointer into it). */
    vn_hook_add("ev", 2, probe_handler, &a);
    vn_hook_add("ev", 1, probe_handler, &b);
    assert_string_equal(run("ev"), "ab");
    assert_string_equal(run("ev"), "abABCDEFGHIJKLMNOPQRST");
}

static void add_then_remove_other(probe *self)
{
    vn_hook_add("ev", 0, probe_handler, self->other);
    vn_hook_remove("ev", probe_handler, self->other);
}

static void test_add_and_remove_during_run(void **state)
{
    probe n = {'n', VN_PASS, NULL, NULL};
    probe a = {'a', VN_PASS, add_then_remove_other, &n};

    vn_hook_add("ev", 1, probe_handler, &a);
    assert_string_equal(run("ev"), "a");
    a.action = NULL;
    assert_string_equal(run("ev"), "a");
}

static void run_nested(probe *self)
{
    self->action = NULL; /* recurse once */
    vn_event ev = {0};
    vn_hook_run("ev", &ev);
}

static void test_nested_run(void **state)
{
    probe b = {'b', VN_PASS, remove_self, NULL};
    probe a = {'a', VN_PASS, run_nested, NULL};

    vn_hook_add("ev", 2, probe_handler, &a);
    vn_hook_add("ev", 1, probe_handler, &b);
    /* outer a, inner a (no action now), inner b removes itself; the outer
     * run then skips b. */
    assert_string_equal(run("ev"), "aab");
    assert_string_equal(run("ev"), "a");
}

static void test_remove_unknown_is_harmless(void **state)
{
    probe a = {'a', VN_PASS, NULL, NULL}, stranger = {'s', VN_PASS, NULL, NULL};

    vn_hook_remove("no-such-hook", probe_handler, &a);
    vn_hook_add("ev", 0, probe_handler, &a);
    vn_hook_remove("ev", probe_handler, &stranger);
    assert_string_equal(run("ev"), "a");
}

static void test_remove_takes_one_registration(void **state)
{
    probe a = {'a', VN_PASS, NULL, NULL};

    vn_hook_add("ev", 0, probe_handler, &a);
    vn_hook_add("ev", 0, probe_handler, &a);
    assert_string_equal(run("ev"), "aa");
    vn_hook_remove("ev", probe_handler, &a);
    assert_string_equal(run("ev"), "a");
    vn_hook_remove("ev", probe_handler, &a);
    assert_string_equal(run("ev"), "");
}

/* ---- disco ---- */

static char listing[256];

static void collect_feature(const char *var, void *ud)
{
    strcat(listing, var);
    strcat(listing, ";");
}

static const char *features(void)
{
    listing[0] = '\0';
    vn_disco_foreach_feature(collect_feature, NULL);
    return listing;
}

static void collect_identity(const char *category, const char *type, const char *name, void *ud)
{
    strcat(listing, category);
    strcat(listing, "/");
    strcat(listing, type);
    strcat(listing, "/");
    strcat(listing, name ? name : "-");
    strcat(listing, ";");
}

static const char *identities(void)
{
    listing[0] = '\0';
    vn_disco_foreach_identity(collect_identity, NULL);
    return listing;
}

static void test_disco_features_sorted_unique(void **state)
{
    vn_disco_add_feature("urn:xmpp:ping");
    vn_disco_add_feature("jabber:iq:version");
    vn_disco_add_feature("urn:xmpp:ping");
    vn_disco_add_feature("http://jabber.org/protocol/disco#info");
    assert_string_equal(features(),
                        "http://jabber.org/protocol/disco#info;jabber:iq:version;urn:xmpp:ping;");
}

static void test_disco_feature_refcount(void **state)
{
    vn_disco_add_feature("b");
    vn_disco_add_feature("a");
    vn_disco_add_feature("b");
    vn_disco_remove_feature("b");
    assert_string_equal(features(), "a;b;");
    vn_disco_remove_feature("b");
    assert_string_equal(features(), "a;");
    vn_disco_remove_feature("b"); /* one too many: ignored */
    vn_disco_remove_feature("a");
    assert_string_equal(features(), "");
    vn_disco_add_feature("b");
    assert_string_equal(features(), "b;");
}

static void test_disco_identities(void **state)
{
    vn_disco_add_identity("server", "im", "vestnik");
    vn_disco_add_identity("pubsub", "pep", NULL);
    vn_disco_add_identity("server", "im", "vestnik");
    vn_disco_add_identity("server", "im", "other");
    assert_string_equal(identities(), "server/im/vestnik;pubsub/pep/-;server/im/other;");

    vn_disco_remove_identity("server", "im", "vestnik");
    assert_string_equal(identities(), "server/im/vestnik;pubsub/pep/-;server/im/other;");
    vn_disco_remove_identity("server", "im", "vestnik");
    assert_string_equal(identities(), "pubsub/pep/-;server/im/other;");
    vn_disco_remove_identity("pubsub", "pep", "named"); /* not registered: ignored */
    vn_disco_remove_identity("pubsub", "pep", NULL);
    assert_string_equal(identities(), "server/im/other;");
}

static void test_disco_clear(void **state)
{
    vn_disco_add_feature("x");
    vn_disco_add_identity("server", "im", NULL);
    vn_disco_clear();
    assert_string_equal(features(), "");
    assert_string_equal(identities(), "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_priority_order, teardown),
        cmocka_unit_test_teardown(test_same_priority_keeps_registration_order, teardown),
        cmocka_unit_test_teardown(test_handled_stops_chain, teardown),
        cmocka_unit_test_teardown(test_run_unknown_hook_passes, teardown),
        cmocka_unit_test_teardown(test_hooks_are_separate, teardown),
        cmocka_unit_test_teardown(test_remove_self_during_run, teardown),
        cmocka_unit_test_teardown(test_remove_later_handler_during_run, teardown),
        cmocka_unit_test_teardown(test_remove_last_handler_during_run, teardown),
        cmocka_unit_test_teardown(test_add_during_run, teardown),
        cmocka_unit_test_teardown(test_many_adds_during_run, teardown),
        cmocka_unit_test_teardown(test_add_and_remove_during_run, teardown),
        cmocka_unit_test_teardown(test_nested_run, teardown),
        cmocka_unit_test_teardown(test_remove_unknown_is_harmless, teardown),
        cmocka_unit_test_teardown(test_remove_takes_one_registration, teardown),
        cmocka_unit_test_teardown(test_disco_features_sorted_unique, teardown),
        cmocka_unit_test_teardown(test_disco_feature_refcount, teardown),
        cmocka_unit_test_teardown(test_disco_identities, teardown),
        cmocka_unit_test_teardown(test_disco_clear, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
