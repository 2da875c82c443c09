/*
 * mam_query.h - one Message Archive Management query (XEP-0313 §4), from
 * its <query/> element to a page of archived messages and the stanzas that
 * carry them back.
 *
 * Kept apart from mod_mam.c so that tests/bench/mam_bench.c times exactly
 * the code path a client's query takes: parse the form and the Result Set
 * Management (XEP-0059) paging, read the archive, build the results.
 */
#ifndef VESTNIK_MAM_QUERY_H
#define VESTNIK_MAM_QUERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <vestnik/module.h>

#define MAM_NS "urn:xmpp:mam:2"
#define MAM_NS_EXTENDED "urn:xmpp:mam:2#extended"
#define MAM_ARCHIVE "mam" /* the archive name under each account */
#define MAM_DEFAULT_PAGE 50
#define MAM_MAX_IDS 1000 /* values in the 'ids' field */

typedef struct mam_query {
    char *queryid;        /* NULL when the client gave none */
    char *with;           /* canonical JID, or NULL */
    int64_t start_us;     /* 0: unbounded; inclusive */
    int64_t end_us;       /* 0: unbounded; inclusive */
    bool before_epoch;    /* 'end' at or before 1970: nothing matches */
    uint64_t form_after;  /* 'after-id' field; 0: none */
    uint64_t form_before; /* 'before-id' field; 0: none */
    uint64_t *ids;        /* 'ids' field, ascending and unique */
    size_t n_ids;         /* 0: no such filter */
    uint64_t rsm_after;   /* RSM <after/>; 0: none */
    uint64_t rsm_before;  /* RSM <before/> with an id; 0: none */
    bool backward;        /* RSM <before/>: the page that ends there */
    bool flip;            /* <flip-page/>: the page newest first */
    size_t max;           /* items per page, capped by the server */
} mam_query;

typedef struct mam_result {
    uint64_t id;
    int64_t ts_us;
    vn_stanza *message; /* the stored message; NULL if it does not parse */
} mam_result;

typedef struct mam_page {
    mam_result *items; /* in the order they are sent */
    size_t count;
    bool complete;  /* no matching item beyond the page in its direction */
    bool has_total; /* total is known (see mam_query_run) */
    size_t total;   /* items matching the query, regardless of paging */
} mam_page;

/* Reads the <query xmlns='urn:xmpp:mam:2'/> of an iq set into q (zeroed
 * first). A page without <max/> has min(MAM_DEFAULT_PAGE, max_page) items;
 * a larger <max/> is lowered to max_page. Returns NULL, or the stanza error
 * condition (bad-request) with a human-readable text in *text. */
const char *mam_query_parse(const vn_stanza *query, size_t max_page, mam_query *q,
                            const char **text);
void mam_query_free(mam_query *q);

/* Runs q over the archive of user@host into page (zeroed first). The
 * total (RSM <count/>, optional in XEP-0059) is given when it costs no
 * scan: for a query without with/start/end/after-id/before-id (the store
 * keeps the archive's count), for an 'ids' query, when one page holds the
 * whole result, and for <max>0</max> (a request for the count); counting a filtered query over a
 * large archive would cost more than reading its page. VN_STORE_OK, VN_STORE_NOT_FOUND when an id q
 * names as a bound is not in the archive (item-not-found), or VN_STORE_ERROR. */
int mam_query_run(vn_store *s, const char *host, const char *user, const mam_query *q,
                  mam_page *page);
void mam_page_free(mam_page *page);

/* <message from=archive_jid to=to><result queryid id><forwarded><delay/>
 * message</forwarded></result></message>, or NULL for an unreadable item. */
vn_stanza *mam_result_message(const mam_query *q, const mam_result *r, const char *archive_jid,
                              const char *to);
/* The iq result to the query iq: <fin complete><set>first last count</set></fin>. */
vn_stanza *mam_fin(const vn_stanza *iq, const mam_page *page);

#endif
