/*
 * test_roster.c - roster items in a real LMDB store (round trip, version,
 * limit, "roster/changed" announcements) and the subscription state tables
 * of RFC 6121 Appendix A, row by row.
 */
#define _XOPEN_SOURCE 700
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "hooks.h"
#include "store_backend.h"
#include "vestnik/module.h"
#include "vestnik/roster.h"

#define HOST "example.org"

typedef struct fixture {
    char dir[64];
    vn_store *s;
} fixture;

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    return remove(path);
}

static int setup(void **state)
{
    fixture *f = vn_alloc(sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/vn-roster-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    char *path = vn_asprintf("%s/db", f->dir);
    vn_store_options opts = {.backend = "lmdb", .path = path, .map_size_mb = 16};
    vn_buf err;
    vn_buf_init(&err);
    f->s = vn_store_open(&opts, &err);
    vn_buf_free(&err);
    free(path);
    vn_roster_set_max_items(VN_ROSTER_DEFAULT_MAX_ITEMS);
    *state = f;
    return f->s ? 0 : -1;
}

static int teardown(void **state)
{
    fixture *f = *state;
    vn_store_close(f->s);
    nftw(f->dir, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
    free(f);
    vn_hooks_clear();
    return 0;
}

/* ---- storage ---- */

static void test_round_trip(void **state)
{
    fixture *f = *state;
    vn_roster_item *item = vn_roster_item_new("juliet@example.com");
    item->name = vn_strdup("Juliet <&> \"Capulet\"");
    item->subscription = VN_SUB_FROM;
    item->ask = true;
    item->pending_in = false;
    item->approved = false;
    item->listed = true;
    assert_true(vn_roster_item_add_group(item, "Friends"));
    assert_true(vn_roster_item_add_group(item, "Верона"));
    assert_false(vn_roster_item_add_group(item, "Friends"));
    assert_int_equal(item->n_groups, 2);

    uint64_t ver = 0;
    assert_int_equal(vn_roster_put(f->s, HOST, "romeo", item, &ver), VN_STORE_OK);
    assert_int_equal(ver, 1);
    vn_roster_item_free(item);

    vn_roster_item *back = NULL;
    assert_int_equal(vn_roster_get(f->s, HOST, "romeo", "juliet@example.com", &back), VN_STORE_OK);
    assert_string_equal(back->jid, "juliet@example.com");
    assert_string_equal(back->name, "Juliet <&> \"Capulet\"");
    assert_int_equal(back->subscription, VN_SUB_FROM);
    assert_true(back->ask);
    assert_false(back->pending_in);
    assert_false(back->approved);
    assert_true(back->listed);
    assert_int_equal(back->n_groups, 2);
    assert_string_equal(back->groups[0], "Friends");
    assert_string_equal(back->groups[1], "Верона");

    vn_stanza *query = vn_stanza_new("query", VN_NS_ROSTER);
    vn_roster_item_to_stanza(back, query);
    char *xml = vn_stanza_serialize(query, NULL, NULL);
    assert_string_equal(xml, "<query xmlns='jabber:iq:roster'><item jid='juliet@example.com' "
                             "name='Juliet &lt;&amp;&gt; &quot;Capulet&quot;' "
                             "subscription='from' ask='subscribe'><group>Friends</group>"
                             "<group>Верона</group></item></query>");
    free(xml);
    vn_stanza_free(query);
    vn_roster_item_free(back);

    assert_int_equal(vn_roster_get(f->s, HOST, "romeo", "nurse@example.com", &back),
                     VN_STORE_NOT_FOUND);
    assert_null(back);
    /* another account's roster is separate */
    assert_int_equal(vn_roster_get(f->s, HOST, "tybalt", "juliet@example.com", &back),
                     VN_STORE_NOT_FOUND);
}

static bool collect_jids(const vn_roster_item *item, void *ud)
{
    vn_buf *b = ud;
    vn_buf_printf(b, "%s%s;", item->jid, item->listed ? "" : "(hidden)");
    return true;
}

static void test_version_grows_and_foreach_skips_it(void **state)
{
    fixture *f = *state;
    uint64_t ver = 99;
    assert_int_equal(vn_roster_version(f->s, HOST, "romeo", &ver), VN_STORE_OK);
    assert_int_equal(ver, 0);

    const char *jids[] = {"b@example.com", "a@example.com", "c@example.com"};
    for (size_t i = 0; i < 3; i++) {
        vn_roster_item *item = vn_roster_item_new(jids[i]);
        item->listed = i != 2;
        assert_int_equal(vn_roster_put(f->s, HOST, "romeo", item, &ver), VN_STORE_OK);
        assert_int_equal(ver, i + 1);
        vn_roster_item_free(item);
    }
    assert_int_equal(vn_roster_remove(f->s, HOST, "romeo", "b@example.com", &ver), VN_STORE_OK);
    assert_int_equal(ver, 4);
    /* removing what is not there changes nothing */
    assert_int_equal(vn_roster_remove(f->s, HOST, "romeo", "zz@example.com", &ver), VN_STORE_OK);
    assert_int_equal(vn_roster_version(f->s, HOST, "romeo", &ver), VN_STORE_OK);
    assert_int_equal(ver, 4);

    vn_buf b;
    vn_buf_init(&b);
    assert_int_equal(vn_roster_foreach(f->s, HOST, "romeo", collect_jids, &b), VN_STORE_OK);
    assert_string_equal(b.data, "a@example.com;c@example.com(hidden);");
    vn_buf_free(&b);
}

static void test_item_limit(void **state)
{
    fixture *f = *state;
    vn_roster_set_max_items(2);
    vn_roster_item *a = vn_roster_item_new("a@example.com");
    vn_roster_item *b = vn_roster_item_new("b@example.com");
    vn_roster_item *c = vn_roster_item_new("c@example.com");
    assert_int_equal(vn_roster_put(f->s, HOST, "romeo", a, NULL), VN_STORE_OK);
    assert_int_equal(vn_roster_put(f->s, HOST, "romeo", b, NULL), VN_STORE_OK);
    assert_int_equal(vn_roster_put(f->s, HOST, "romeo", c, NULL), VN_ROSTER_FULL);
    /* replacing an existing item is not a new one */
    b->subscription = VN_SUB_BOTH;
    assert_int_equal(vn_roster_put(f->s, HOST, "romeo", b, NULL), VN_STORE_OK);
    uint64_t ver;
    assert_int_equal(vn_roster_version(f->s, HOST, "romeo", &ver), VN_STORE_OK);
    assert_int_equal(ver, 3);
    assert_int_equal(vn_roster_remove(f->s, HOST, "romeo", "a@example.com", NULL), VN_STORE_OK);
    assert_int_equal(vn_roster_put(f->s, HOST, "romeo", c, NULL), VN_STORE_OK);
    vn_roster_item_free(a);
    vn_roster_item_free(b);
    vn_roster_item_free(c);
}

/* Requests from strangers (unlisted items) have their own bound: a flood
 * of them neither fills the roster nor grows without limit. */
static void test_requests_bounded_apart(void **state)
{
    fixture *f = *state;
    vn_roster_set_max_items(2);
    static const char *const strangers[] = {"x@evil.example", "y@evil.example", "z@evil.example"};
    for (int i = 0; i < 3; i++) {
        vn_roster_item *req = vn_roster_item_new(strangers[i]);
        req->listed = false;
        req->pending_in = true;
        assert_int_equal(vn_roster_put(f->s, HOST, "juliet", req, NULL),
                         i < 2 ? VN_STORE_OK : VN_ROSTER_FULL);
        vn_roster_item_free(req);
    }
    vn_roster_item *a = vn_roster_item_new("a@example.com");
    vn_roster_item *b = vn_roster_item_new("b@example.com");
    vn_roster_item *c = vn_roster_item_new("c@example.com");
    a->listed = b->listed = c->listed = true;
    assert_int_equal(vn_roster_put(f->s, HOST, "juliet", a, NULL), VN_STORE_OK);
    assert_int_equal(vn_roster_put(f->s, HOST, "juliet", b, NULL), VN_STORE_OK);
    assert_int_equal(vn_roster_put(f->s, HOST, "juliet", c, NULL), VN_ROSTER_FULL);
    /* accepting a request lists it: that counts against the roster */
    vn_roster_item *x = vn_roster_item_new("x@evil.example");
    x->listed = true;
    assert_int_equal(vn_roster_put(f->s, HOST, "juliet", x, NULL), VN_ROSTER_FULL);
    vn_roster_item_free(a);
    vn_roster_item_free(b);
    vn_roster_item_free(c);
    vn_roster_item_free(x);
}

static char announced[256];

static vn_hook_result on_changed(vn_event *ev, void *ud)
{
    const vn_roster_change *c = ev->data;
    size_t len = strlen(announced);
    snprintf(announced + len, sizeof announced - len, "%s:%s:%s:%s:%llu;", ev->host, c->user,
             c->item->jid, c->removed ? "removed" : vn_subscription_name(c->item->subscription),
             (unsigned long long)c->version);
    return VN_PASS;
}

static void test_changes_of_listed_items_are_announced(void **state)
{
    fixture *f = *state;
    announced[0] = '\0';
    vn_hook_add("roster/changed", 0, on_changed, NULL);

    vn_roster_item *hidden = vn_roster_item_new("h@example.com");
    hidden->pending_in = true;
    assert_int_equal(vn_roster_put(f->s, HOST, "romeo", hidden, NULL), VN_STORE_OK);
    assert_int_equal(vn_roster_remove(f->s, HOST, "romeo", "h@example.com", NULL), VN_STORE_OK);
    assert_string_equal(announced, "");

    vn_roster_item *item = vn_roster_item_new("juliet@example.com");
    item->listed = true;
    item->subscription = VN_SUB_TO;
    assert_int_equal(vn_roster_put(f->s, HOST, "romeo", item, NULL), VN_STORE_OK);
    /* what the client does not see is stored without an announcement */
    item->pending_in = true;
    assert_int_equal(vn_roster_put(f->s, HOST, "romeo", item, NULL), VN_STORE_OK);
    item->subscription = VN_SUB_BOTH;
    assert_int_equal(vn_roster_put(f->s, HOST, "romeo", item, NULL), VN_STORE_OK);
    assert_int_equal(vn_roster_remove(f->s, HOST, "romeo", "juliet@example.com", NULL),
                     VN_STORE_OK);
    assert_string_equal(announced, "example.org:romeo:juliet@example.com:to:3;"
                                   "example.org:romeo:juliet@example.com:both:5;"
                                   "example.org:romeo:juliet@example.com:removed:6;");
    vn_roster_item_free(hidden);
    vn_roster_item_free(item);
}

/* ---- the subscription state tables ---- */

typedef struct sub_state {
    vn_subscription sub;
    bool ask, pending_in, approved;
} sub_state;

#define NONE_                                                                                      \
    {                                                                                              \
        VN_SUB_NONE, false, false, false                                                           \
    }
#define NONE_OUT                                                                                   \
    {                                                                                              \
        VN_SUB_NONE, true, false, false                                                            \
    }
#define NONE_IN                                                                                    \
    {                                                                                              \
        VN_SUB_NONE, false, true, false                                                            \
    }
#define NONE_OUT_IN                                                                                \
    {                                                                                              \
        VN_SUB_NONE, true, true, false                                                             \
    }
#define NONE_PRE                                                                                   \
    {                                                                                              \
        VN_SUB_NONE, false, false, true                                                            \
    }
#define TO_                                                                                        \
    {                                                                                              \
        VN_SUB_TO, false, false, false                                                             \
    }
#define TO_IN                                                                                      \
    {                                                                                              \
        VN_SUB_TO, false, true, false                                                              \
    }
#define TO_PRE                                                                                     \
    {                                                                                              \
        VN_SUB_TO, false, false, true                                                              \
    }
#define FROM_                                                                                      \
    {                                                                                              \
        VN_SUB_FROM, false, false, false                                                           \
    }
#define FROM_OUT                                                                                   \
    {                                                                                              \
        VN_SUB_FROM, true, false, false                                                            \
    }
#define BOTH_                                                                                      \
    {                                                                                              \
        VN_SUB_BOTH, false, false, false                                                           \
    }

/* outcome flags: C changed, F forward, A auto-reply, G gained from, L lost from */
typedef struct sub_row {
    bool outbound;
    vn_subscription_type type;
    sub_state before, after;
    const char *outcome;
} sub_row;

static const sub_row table[] = {
    /* A.2.1 outbound subscribe */
    {true, VN_PRESENCE_SUBSCRIBE, NONE_, NONE_OUT, "CF"},
    {true, VN_PRESENCE_SUBSCRIBE, NONE_OUT, NONE_OUT, "F"},
    {true, VN_PRESENCE_SUBSCRIBE, NONE_IN, NONE_OUT_IN, "CF"},
    {true, VN_PRESENCE_SUBSCRIBE, TO_, TO_, "F"},
    {true, VN_PRESENCE_SUBSCRIBE, TO_IN, TO_IN, "F"},
    {true, VN_PRESENCE_SUBSCRIBE, FROM_, FROM_OUT, "CF"},
    {true, VN_PRESENCE_SUBSCRIBE, BOTH_, BOTH_, "F"},
    /* A.2.2 outbound unsubscribe */
    {true, VN_PRESENCE_UNSUBSCRIBE, NONE_, NONE_, "F"},
    {true, VN_PRESENCE_UNSUBSCRIBE, NONE_OUT, NONE_, "CF"},
    {true, VN_PRESENCE_UNSUBSCRIBE, NONE_OUT_IN, NONE_IN, "CF"},
    {true, VN_PRESENCE_UNSUBSCRIBE, TO_, NONE_, "CF"},
    {true, VN_PRESENCE_UNSUBSCRIBE, TO_IN, NONE_IN, "CF"},
    {true, VN_PRESENCE_UNSUBSCRIBE, FROM_, FROM_, "F"},
    {true, VN_PRESENCE_UNSUBSCRIBE, FROM_OUT, FROM_, "CF"},
    {true, VN_PRESENCE_UNSUBSCRIBE, BOTH_, FROM_, "CF"},
    /* A.2.3 outbound subscribed (approval, or pre-approval) */
    {true, VN_PRESENCE_SUBSCRIBED, NONE_, NONE_PRE, "C"},
    {true, VN_PRESENCE_SUBSCRIBED, NONE_PRE, NONE_PRE, ""},
    {true, VN_PRESENCE_SUBSCRIBED, NONE_IN, FROM_, "CFG"},
    {true, VN_PRESENCE_SUBSCRIBED, NONE_OUT_IN, FROM_OUT, "CFG"},
    {true, VN_PRESENCE_SUBSCRIBED, TO_, TO_PRE, "C"},
    {true, VN_PRESENCE_SUBSCRIBED, TO_IN, BOTH_, "CFG"},
    {true, VN_PRESENCE_SUBSCRIBED, FROM_, FROM_, ""},
    {true, VN_PRESENCE_SUBSCRIBED, BOTH_, BOTH_, ""},
    /* A.2.4 outbound unsubscribed (denial, cancellation) */
    {true, VN_PRESENCE_UNSUBSCRIBED, NONE_, NONE_, ""},
    {true, VN_PRESENCE_UNSUBSCRIBED, NONE_OUT, NONE_OUT, ""},
    {true, VN_PRESENCE_UNSUBSCRIBED, NONE_IN, NONE_, "CF"},
    {true, VN_PRESENCE_UNSUBSCRIBED, NONE_OUT_IN, NONE_OUT, "CF"},
    {true, VN_PRESENCE_UNSUBSCRIBED, NONE_PRE, NONE_, "C"},
    {true, VN_PRESENCE_UNSUBSCRIBED, TO_IN, TO_, "CF"},
    {true, VN_PRESENCE_UNSUBSCRIBED, FROM_, NONE_, "CFL"},
    {true, VN_PRESENCE_UNSUBSCRIBED, FROM_OUT, NONE_OUT, "CFL"},
    {true, VN_PRESENCE_UNSUBSCRIBED, BOTH_, TO_, "CFL"},
    /* A.3.1 inbound subscribe */
    {false, VN_PRESENCE_SUBSCRIBE, NONE_, NONE_IN, "CF"},
    {false, VN_PRESENCE_SUBSCRIBE, NONE_OUT, NONE_OUT_IN, "CF"},
    {false, VN_PRESENCE_SUBSCRIBE, NONE_IN, NONE_IN, "F"},
    {false, VN_PRESENCE_SUBSCRIBE, TO_, TO_IN, "CF"},
    {false, VN_PRESENCE_SUBSCRIBE, FROM_, FROM_, "A"},
    {false, VN_PRESENCE_SUBSCRIBE, FROM_OUT, FROM_OUT, "A"},
    {false, VN_PRESENCE_SUBSCRIBE, BOTH_, BOTH_, "A"},
    {false, VN_PRESENCE_SUBSCRIBE, NONE_PRE, FROM_, "CAG"},
    {false, VN_PRESENCE_SUBSCRIBE, TO_PRE, BOTH_, "CAG"},
    /* A.3.2 inbound unsubscribe */
    {false, VN_PRESENCE_UNSUBSCRIBE, NONE_, NONE_, ""},
    {false, VN_PRESENCE_UNSUBSCRIBE, NONE_OUT, NONE_OUT, ""},
    {false, VN_PRESENCE_UNSUBSCRIBE, NONE_IN, NONE_, "CF"},
    {false, VN_PRESENCE_UNSUBSCRIBE, NONE_OUT_IN, NONE_OUT, "CF"},
    {false, VN_PRESENCE_UNSUBSCRIBE, TO_, TO_, ""},
    {false, VN_PRESENCE_UNSUBSCRIBE, TO_IN, TO_, "CF"},
    {false, VN_PRESENCE_UNSUBSCRIBE, FROM_, NONE_, "CFL"},
    {false, VN_PRESENCE_UNSUBSCRIBE, FROM_OUT, NONE_OUT, "CFL"},
    {false, VN_PRESENCE_UNSUBSCRIBE, BOTH_, TO_, "CFL"},
    /* A.3.3 inbound subscribed */
    {false, VN_PRESENCE_SUBSCRIBED, NONE_, NONE_, ""},
    {false, VN_PRESENCE_SUBSCRIBED, NONE_OUT, TO_, "CF"},
    {false, VN_PRESENCE_SUBSCRIBED, NONE_IN, NONE_IN, ""},
    {false, VN_PRESENCE_SUBSCRIBED, NONE_OUT_IN, TO_IN, "CF"},
    {false, VN_PRESENCE_SUBSCRIBED, TO_, TO_, ""},
    {false, VN_PRESENCE_SUBSCRIBED, FROM_, FROM_, ""},
    {false, VN_PRESENCE_SUBSCRIBED, FROM_OUT, BOTH_, "CF"},
    {false, VN_PRESENCE_SUBSCRIBED, BOTH_, BOTH_, ""},
    /* A.3.4 inbound unsubscribed */
    {false, VN_PRESENCE_UNSUBSCRIBED, NONE_, NONE_, ""},
    {false, VN_PRESENCE_UNSUBSCRIBED, NONE_OUT, NONE_, "CF"},
    {false, VN_PRESENCE_UNSUBSCRIBED, NONE_IN, NONE_IN, ""},
    {false, VN_PRESENCE_UNSUBSCRIBED, NONE_OUT_IN, NONE_IN, "CF"},
    {false, VN_PRESENCE_UNSUBSCRIBED, TO_, NONE_, "CF"},
    {false, VN_PRESENCE_UNSUBSCRIBED, TO_IN, NONE_IN, "CF"},
    {false, VN_PRESENCE_UNSUBSCRIBED, FROM_, FROM_, ""},
    {false, VN_PRESENCE_UNSUBSCRIBED, FROM_OUT, FROM_, "CF"},
    {false, VN_PRESENCE_UNSUBSCRIBED, BOTH_, FROM_, "CF"},
};

static void outcome_flags(vn_subscription_outcome o, char *out)
{
    if (o.changed)
        *out++ = 'C';
    if (o.forward)
        *out++ = 'F';
    if (o.auto_reply)
        *out++ = 'A';
    if (o.gained_from)
        *out++ = 'G';
    if (o.lost_from)
        *out++ = 'L';
    *out = '\0';
}

static void test_subscription_tables(void **state)
{
    static const char *const types[] = {"subscribe", "subscribed", "unsubscribe", "unsubscribed"};
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        const sub_row *r = &table[i];
        vn_roster_item *item = vn_roster_item_new("c@example.com");
        item->subscription = r->before.sub;
        item->ask = r->before.ask;
        item->pending_in = r->before.pending_in;
        item->approved = r->before.approved;
        item->listed = true;
        vn_subscription_outcome o = vn_roster_apply_subscription(item, r->outbound, r->type);
        char flags[8];
        outcome_flags(o, flags);
        if (item->subscription != r->after.sub || item->ask != r->after.ask ||
            item->pending_in != r->after.pending_in || item->approved != r->after.approved ||
            strcmp(flags, r->outcome) != 0)
            fail_msg("row %zu (%s %s from %s%s%s%s): got %s%s%s%s [%s], want %s%s%s%s [%s]", i,
                     r->outbound ? "outbound" : "inbound", types[r->type],
                     vn_subscription_name(r->before.sub), r->before.ask ? "+out" : "",
                     r->before.pending_in ? "+in" : "", r->before.approved ? "+pre" : "",
                     vn_subscription_name(item->subscription), item->ask ? "+out" : "",
                     item->pending_in ? "+in" : "", item->approved ? "+pre" : "", flags,
                     vn_subscription_name(r->after.sub), r->after.ask ? "+out" : "",
                     r->after.pending_in ? "+in" : "", r->after.approved ? "+pre" : "", r->outcome);
        vn_roster_item_free(item);
    }
}

static void test_hidden_item_becomes_listed(void **state)
{
    /* an inbound request alone does not put the contact on the roster ... */
    vn_roster_item *item = vn_roster_item_new("c@example.com");
    vn_roster_apply_subscription(item, false, VN_PRESENCE_SUBSCRIBE);
    assert_true(item->pending_in);
    assert_false(item->listed);
    /* ... approving it does (RFC 6121 §3.1.5) */
    vn_roster_apply_subscription(item, true, VN_PRESENCE_SUBSCRIBED);
    assert_true(item->listed);
    assert_int_equal(item->subscription, VN_SUB_FROM);
    vn_roster_item_free(item);

    item = vn_roster_item_new("d@example.com");
    vn_roster_apply_subscription(item, true, VN_PRESENCE_SUBSCRIBE);
    assert_true(item->listed);
    assert_true(item->ask);
    vn_roster_item_free(item);
}

static void test_type_parse(void **state)
{
    vn_subscription_type t;
    assert_true(vn_subscription_type_parse("unsubscribed", &t));
    assert_int_equal(t, VN_PRESENCE_UNSUBSCRIBED);
    assert_true(vn_subscription_type_parse("subscribe", &t));
    assert_int_equal(t, VN_PRESENCE_SUBSCRIBE);
    assert_false(vn_subscription_type_parse("probe", &t));
    assert_false(vn_subscription_type_parse(NULL, &t));
    assert_false(vn_subscription_type_parse("Subscribe", &t));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_version_grows_and_foreach_skips_it, setup, teardown),
        cmocka_unit_test_setup_teardown(test_requests_bounded_apart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_item_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_changes_of_listed_items_are_announced, setup,
                                        teardown),
        cmocka_unit_test(test_subscription_tables),
        cmocka_unit_test(test_hidden_item_becomes_listed),
        cmocka_unit_test(test_type_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
