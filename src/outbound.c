/*
 * outbound.c - network.allow_outbound, decided in one place (outbound.h).
 *
 * The destinations seen are kept in a small table for `vestnikctl status`:
 * the first OUTBOUND_MAX_SEEN distinct ones by name, then only a count of
 * the others, so a server federating with thousands of domains does not
 * grow it without end.
 */
#include "outbound.h"

#include <stdlib.h>
#include <string.h>

#include "server.h"
#include "vestnik/log.h"

#define OUTBOUND_MAX_SEEN 64

typedef struct seen {
    vn_outbound_kind kind;
    char *dest;
    bool refused;
    unsigned long long count;
} seen;

static seen table[OUTBOUND_MAX_SEEN];
static size_t n_seen;
static unsigned long long others_reached, others_refused;

static const char *const kind_names[] = {"federation", "dns", "connect", "service"};

static bool allowed(vn_outbound_kind kind)
{
    const char *policy = vn_srv.cfg ? vn_srv.cfg->allow_outbound : "all";

    if (strcmp(policy, "none") == 0)
        return false;
    if (strcmp(policy, "federation") == 0)
        return kind != VN_OUTBOUND_SERVICE;
    return true;
}

static void note(vn_outbound_kind kind, const char *dest, bool refused)
{
    for (size_t i = 0; i < n_seen; i++) {
        if (table[i].kind == kind && table[i].refused == refused &&
            strcmp(table[i].dest, dest) == 0) {
            table[i].count++;
            return;
        }
    }
    if (refused)
        vn_log_warn("outbound %s to %s refused: network.allow_outbound is %s", kind_names[kind],
                    dest, vn_srv.cfg->allow_outbound);
    else
        vn_log_info("outbound %s to %s", kind_names[kind], dest);
    if (n_seen == OUTBOUND_MAX_SEEN) {
        if (refused)
            others_refused++;
        else
            others_reached++;
        return;
    }
    table[n_seen++] = (seen){.kind = kind, .dest = vn_strdup(dest), .refused = refused, .count = 1};
}

bool vn_outbound_permit(vn_outbound_kind kind, const char *dest)
{
    bool ok = allowed(kind);
    note(kind, dest ? dest : "?", !ok);
    return ok;
}

static void describe_list(vn_buf *out, bool refused, unsigned long long others)
{
    bool any = false;

    for (size_t i = 0; i < n_seen; i++) {
        if (table[i].refused != refused)
            continue;
        vn_buf_printf(out, "%s%s %s x%llu", any ? ", " : "", kind_names[table[i].kind],
                      table[i].dest, table[i].count);
        any = true;
    }
    if (others)
        vn_buf_printf(out, "%s%llu more", any ? ", " : "", others);
    else if (!any)
        vn_buf_append_str(out, "none");
}

void vn_outbound_describe(vn_buf *out)
{
    vn_buf_printf(out, "outbound: %s; reached: ", vn_srv.cfg->allow_outbound);
    describe_list(out, false, others_reached);
    vn_buf_append_str(out, "; refused: ");
    describe_list(out, true, others_refused);
}

void vn_outbound_reset(void)
{
    for (size_t i = 0; i < n_seen; i++)
        free(table[i].dest);
    n_seen = 0;
    others_reached = others_refused = 0;
}
