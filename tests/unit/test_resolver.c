/*
 * test_resolver.c - RFC 2782 ordering of SRV targets, and address lookups
 * that need no DNS server (IP literals, RFC 6761 ".invalid") through the
 * real c-ares channel on a libuv loop.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "resolver.h"

/* Replays a fixed sequence of draws, clamped to the allowed maximum. */
typedef struct draws {
    const uint32_t *values;
    size_t n, next;
    uint32_t last_max;
} draws;

static uint32_t scripted_random(uint32_t max, void *ud)
{
    draws *d = ud;
    uint32_t v = d->next < d->n ? d->values[d->next++] : 0;
    d->last_max = max;
    return v > max ? max : v;
}

static void set(vn_srv_record *r, const char *target, uint16_t priority, uint16_t weight)
{
    *r = (vn_srv_record){.target = (char *)target, .priority = priority, .weight = weight};
}

static void test_priority_first(void **state)
{
    vn_srv_record r[3];
    draws d = {0};

    set(&r[0], "c", 30, 100);
    set(&r[1], "a", 10, 0);
    set(&r[2], "b", 20, 5);
    vn_srv_order(r, 3, scripted_random, &d);
    assert_string_equal(r[0].target, "a");
    assert_string_equal(r[1].target, "b");
    assert_string_equal(r[2].target, "c");
}

static void test_weighted_choice(void **state)
{
    /* Same priority, weights 10 (x), 30 (y), 60 (z): running sums 10, 40,
     * 100. A draw of 41 picks z; x and y remain in that order with sums
     * 10, 40: a draw of 35 picks y, leaving x. */
    static const uint32_t values[] = {41, 35};
    draws d = {.values = values, .n = 2};
    vn_srv_record r[3];

    set(&r[0], "x", 5, 10);
    set(&r[1], "y", 5, 30);
    set(&r[2], "z", 5, 60);
    vn_srv_order(r, 3, scripted_random, &d);
    assert_string_equal(r[0].target, "z");
    assert_string_equal(r[1].target, "y");
    assert_string_equal(r[2].target, "x");
    assert_int_equal(d.next, 2); /* the last record needs no draw */
    assert_int_equal(d.last_max, 40);
}

static void test_zero_weight_only_on_zero_draw(void **state)
{
    /* RFC 2782: weight-0 records go first in the running sum, so a draw of
     * 0 picks them and anything else picks a weighted one. */
    static const uint32_t zero[] = {0}, one[] = {1};
    vn_srv_record r[2];
    draws d = {.values = zero, .n = 1};

    set(&r[0], "heavy", 1, 50);
    set(&r[1], "none", 1, 0);
    vn_srv_order(r, 2, scripted_random, &d);
    assert_string_equal(r[0].target, "none");
    assert_int_equal(d.last_max, 50);

    set(&r[0], "heavy", 1, 50);
    set(&r[1], "none", 1, 0);
    d = (draws){.values = one, .n = 1};
    vn_srv_order(r, 2, scripted_random, &d);
    assert_string_equal(r[0].target, "heavy");
    assert_string_equal(r[1].target, "none");
}

static void test_weights_with_real_random(void **state)
{
    int heavy_first = 0;

    for (int i = 0; i < 2000; i++) {
        vn_srv_record r[2];
        set(&r[0], "light", 0, 1);
        set(&r[1], "heavy", 0, 9);
        vn_srv_order(r, 2, NULL, NULL);
        heavy_first += strcmp(r[0].target, "heavy") == 0;
    }
    /* draws are 0..10 inclusive and 'light' takes 0 and 1: heavy comes
     * first with probability 9/11, about 1636 times in 2000 */
    assert_true(heavy_first > 1450 && heavy_first < 1950);
}

/* ---- lookups on a loop ---- */

typedef struct outcome {
    bool called;
    size_t n;
    char first[INET6_ADDRSTRLEN];
    int port;
    char error[128];
} outcome;

static void on_address(void *ud, const struct sockaddr_storage *addrs, size_t n, const char *error)
{
    outcome *o = ud;

    o->called = true;
    o->n = n;
    if (error)
        snprintf(o->error, sizeof o->error, "%s", error);
    if (n && addrs[0].ss_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)&addrs[0];
        inet_ntop(AF_INET, &sin->sin_addr, o->first, sizeof o->first);
        o->port = ntohs(sin->sin_port);
    } else if (n) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&addrs[0];
        inet_ntop(AF_INET6, &sin6->sin6_addr, o->first, sizeof o->first);
        o->port = ntohs(sin6->sin6_port);
    }
}

static void on_server(void *ud, const vn_srv_record *targets, size_t n, const char *error)
{
    outcome *o = ud;

    o->called = true;
    o->n = n;
    if (n) {
        snprintf(o->first, sizeof o->first, "%s", targets[0].target);
        o->port = targets[0].port;
    }
}

static void test_lookups_without_dns(void **state)
{
    uv_loop_t loop;
    vn_buf err;
    outcome v4 = {0}, v6 = {0}, invalid = {0}, server = {0}, cancelled = {0};

    vn_buf_init(&err);
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(vn_resolver_init(&loop, &err), 0);

    vn_resolve_address("127.0.0.1", 5269, on_address, &v4);
    vn_resolve_address("::1", 5270, on_address, &v6);
    vn_resolve_address("nowhere.invalid", 5269, on_address, &invalid);
    vn_resolve_xmpp_server("example.invalid", on_server, &server);
    vn_resolve_cancel(vn_resolve_address("127.0.0.2", 1, on_address, &cancelled));
    assert_false(v4.called); /* never from inside the call */
    uv_run(&loop, UV_RUN_DEFAULT);

    assert_true(v4.called);
    assert_int_equal(v4.n, 1);
    assert_string_equal(v4.first, "127.0.0.1");
    assert_int_equal(v4.port, 5269);
    assert_true(v6.called);
    assert_string_equal(v6.first, "::1");
    assert_int_equal(v6.port, 5270);
    assert_true(invalid.called);
    assert_int_equal(invalid.n, 0);
    assert_non_null(strstr(invalid.error, "invalid"));
    /* no SRV records under .invalid: the domain itself on 5269 */
    assert_true(server.called);
    assert_int_equal(server.n, 1);
    assert_string_equal(server.first, "example.invalid");
    assert_int_equal(server.port, 5269);
    assert_false(cancelled.called);

    vn_resolver_shutdown();
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    vn_buf_free(&err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_priority_first),
        cmocka_unit_test(test_weighted_choice),
        cmocka_unit_test(test_zero_weight_only_on_zero_draw),
        cmocka_unit_test(test_weights_with_real_random),
        cmocka_unit_test(test_lookups_without_dns),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
