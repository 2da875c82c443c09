/*
 * hotel_verifier.c - an example verifier: a hotel's front desk account
 * asking a guest's vestnik wallet for proof of age (and, if the guest
 * agrees, their name) at check-in, with libstrophe (xeps/documents.md §7-8,
 * doc/documents.md).
 *
 * It logs in as an ordinary account (any JID can be a verifier), sends a
 * <request/> with a fresh nonce and a purpose to the guest's wallet
 * service, waits for the guest's answer, and has the wallet service check
 * the presentation it received (signature, disclosures, key binding to
 * this account and nonce, expiry, revocation, replay). It prints what it
 * learnt, one line each:
 *   pending <request id>
 *   presentation <the SD-JWT presentation>     (also into -o FILE)
 *   nonce <nonce>
 *   verified <credential type> <issuer>
 *   claim <name> <value>                       (only what the guest shared)
 * or "declined" (exit 1), "refused <condition>" (exit 3), "timeout" (4).
 *
 *   hotel_verifier -j hotel@localhost -g guest@localhost [-w documents.localhost]
 *       [-c given_name,family_name,age_over_18] [-o FILE] [-s HOST] [-p PORT] [-t SECONDS]
 * The password comes from VESTNIK_PASSWORD. The server's certificate is
 * trusted as it is (an example for a test server; do not copy that).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strophe.h>
#include <time.h>
#include <unistd.h>

#define NS_DOCUMENTS "urn:vestnik:documents:0"
#define PURPOSE "Check-in at Hotel Example: guests must be adults"

typedef struct hotel {
    xmpp_ctx_t *ctx;
    xmpp_conn_t *conn;
    const char *guest, *wallet, *claims, *out_file;
    char nonce[33];
    char *request_id;
    int exit_code; /* -1 while waiting */
} hotel;

static xmpp_stanza_t *element(hotel *h, xmpp_stanza_t *parent, const char *name, const char *text)
{
    xmpp_stanza_t *e = xmpp_stanza_new(h->ctx);
    xmpp_stanza_set_name(e, name);
    if (text) {
        xmpp_stanza_t *t = xmpp_stanza_new(h->ctx);
        xmpp_stanza_set_text(t, text);
        xmpp_stanza_add_child(e, t);
        xmpp_stanza_release(t);
    }
    xmpp_stanza_add_child(parent, e);
    xmpp_stanza_release(e);
    return e;
}

static void make_nonce(char out[33])
{
    unsigned char raw[16];
    FILE *f = fopen("/dev/urandom", "rb");
    if (!f || fread(raw, 1, sizeof raw, f) != sizeof raw) {
        fprintf(stderr, "hotel_verifier: no randomness\n");
        exit(2);
    }
    fclose(f);
    for (size_t i = 0; i < sizeof raw; i++)
        snprintf(out + 2 * i, 3, "%02x", raw[i]);
}

/* The wallet service's condition in an error. */
static const char *error_condition(xmpp_stanza_t *iq)
{
    xmpp_stanza_t *error = xmpp_stanza_get_child_by_name(iq, "error");
    const char *found = "unknown";
    for (xmpp_stanza_t *c = error ? xmpp_stanza_get_children(error) : NULL; c;
         c = xmpp_stanza_get_next(c)) {
        const char *ns = xmpp_stanza_get_ns(c);
        if (ns && strcmp(ns, NS_DOCUMENTS) == 0)
            return xmpp_stanza_get_name(c);
        if (xmpp_stanza_is_tag(c) && strcmp(xmpp_stanza_get_name(c), "text") != 0)
            found = xmpp_stanza_get_name(c);
    }
    return found;
}

static int on_verified(xmpp_conn_t *conn, xmpp_stanza_t *iq, void *userdata)
{
    (void)conn;
    hotel *h = userdata;
    xmpp_stanza_t *v = xmpp_stanza_get_child_by_name(iq, "verified");
    if (strcmp(xmpp_stanza_get_type(iq), "result") != 0 || !v) {
        printf("refused %s\n", error_condition(iq));
        h->exit_code = 3;
        return 0;
    }
    printf("verified %s %s\n", xmpp_stanza_get_attribute(v, "type"),
           xmpp_stanza_get_attribute(v, "issuer"));
    for (xmpp_stanza_t *c = xmpp_stanza_get_children(v); c; c = xmpp_stanza_get_next(c)) {
        if (!xmpp_stanza_is_tag(c) || strcmp(xmpp_stanza_get_name(c), "claim") != 0)
            continue;
        char *value = xmpp_stanza_get_text(c);
        printf("claim %s %s\n", xmpp_stanza_get_attribute(c, "name"), value ? value : "");
        xmpp_free(h->ctx, value);
    }
    h->exit_code = 0;
    return 0;
}

static void verify(hotel *h, const char *presentation)
{
    xmpp_stanza_t *iq = xmpp_iq_new(h->ctx, "set", "verify1");
    xmpp_stanza_set_to(iq, h->wallet);
    xmpp_stanza_t *v = element(h, iq, "verify", NULL);
    xmpp_stanza_set_ns(v, NS_DOCUMENTS);
    xmpp_stanza_set_attribute(v, "nonce", h->nonce);
    element(h, v, "presentation", presentation);
    xmpp_id_handler_add(h->conn, on_verified, "verify1", h);
    xmpp_send(h->conn, iq);
    xmpp_stanza_release(iq);
}

static int on_message(xmpp_conn_t *conn, xmpp_stanza_t *stanza, void *userdata)
{
    (void)conn;
    hotel *h = userdata;
    for (xmpp_stanza_t *c = xmpp_stanza_get_children(stanza); c; c = xmpp_stanza_get_next(c)) {
        const char *ns = xmpp_stanza_is_tag(c) ? xmpp_stanza_get_ns(c) : NULL;
        const char *request = ns ? xmpp_stanza_get_attribute(c, "request") : NULL;
        if (!ns || strcmp(ns, NS_DOCUMENTS) != 0 || !request || !h->request_id ||
            strcmp(request, h->request_id) != 0)
            continue;
        if (strcmp(xmpp_stanza_get_name(c), "declined") == 0) {
            printf("declined\n");
            h->exit_code = 1;
        } else if (strcmp(xmpp_stanza_get_name(c), "presentation") == 0) {
            char *presentation = xmpp_stanza_get_text(c);
            printf("presentation %s\nnonce %s\n", presentation ? presentation : "", h->nonce);
            if (h->out_file && presentation) {
                FILE *f = fopen(h->out_file, "w");
                if (f) {
                    fputs(presentation, f);
                    fclose(f);
                }
            }
            verify(h, presentation ? presentation : "");
            xmpp_free(h->ctx, presentation);
        }
    }
    fflush(stdout);
    return 1;
}

static int on_pending(xmpp_conn_t *conn, xmpp_stanza_t *iq, void *userdata)
{
    (void)conn;
    hotel *h = userdata;
    xmpp_stanza_t *p = xmpp_stanza_get_child_by_name(iq, "pending");
    const char *id = p ? xmpp_stanza_get_attribute(p, "id") : NULL;
    if (strcmp(xmpp_stanza_get_type(iq), "result") != 0 || !id) {
        printf("refused %s\n", error_condition(iq));
        h->exit_code = 3;
    } else {
        h->request_id = strdup(id);
        printf("pending %s\n", id);
    }
    fflush(stdout);
    return 0;
}

/* Ask for the claims in identity or student cards, whichever the guest has. */
static void send_request(hotel *h)
{
    xmpp_stanza_t *iq = xmpp_iq_new(h->ctx, "set", "request1");
    xmpp_stanza_set_to(iq, h->wallet);
    xmpp_stanza_t *r = element(h, iq, "request", NULL);
    xmpp_stanza_set_ns(r, NS_DOCUMENTS);
    xmpp_stanza_set_attribute(r, "holder", h->guest);
    xmpp_stanza_set_attribute(r, "nonce", h->nonce);
    element(h, r, "purpose", PURPOSE);
    static const char *const types[] = {"identity", "student"};
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
        xmpp_stanza_t *cr = element(h, r, "credential", NULL);
        xmpp_stanza_set_attribute(cr, "type", types[t]);
        char *list = strdup(h->claims), *save = NULL;
        for (char *name = strtok_r(list, ",", &save); name; name = strtok_r(NULL, ",", &save))
            xmpp_stanza_set_attribute(element(h, cr, "claim", NULL), "name", name);
        free(list);
    }
    xmpp_id_handler_add(h->conn, on_pending, "request1", h);
    xmpp_send(h->conn, iq);
    xmpp_stanza_release(iq);
}

static void on_connection(xmpp_conn_t *conn, xmpp_conn_event_t status, int error,
                          xmpp_stream_error_t *stream_error, void *userdata)
{
    (void)error;
    (void)stream_error;
    hotel *h = userdata;
    if (status != XMPP_CONN_CONNECT) {
        if (h->exit_code < 0)
            h->exit_code = 5;
        xmpp_stop(h->ctx);
        return;
    }
    xmpp_stanza_t *presence = xmpp_presence_new(h->ctx);
    xmpp_send(conn, presence);
    xmpp_stanza_release(presence);
    send_request(h);
}

static void usage(void)
{
    fprintf(stderr, "usage: VESTNIK_PASSWORD=... hotel_verifier -j JID -g GUEST [-w WALLET] "
                    "[-c CLAIMS] [-o FILE] [-s HOST] [-p PORT] [-t SECONDS]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    hotel h = {.claims = "given_name,family_name,age_over_18", .exit_code = -1};
    const char *jid = NULL, *server = "127.0.0.1";
    unsigned short port = 5222;
    int timeout = 120, opt;
    const char *password = getenv("VESTNIK_PASSWORD");
    char wallet[1100];
    while ((opt = getopt(argc, argv, "j:g:w:c:o:s:p:t:h")) != -1) {
        switch (opt) {
        case 'j': jid = optarg; break;
        case 'g': h.guest = optarg; break;
        case 'w': h.wallet = optarg; break;
        case 'c': h.claims = optarg; break;
        case 'o': h.out_file = optarg; break;
        case 's': server = optarg; break;
        case 'p': port = (unsigned short)atoi(optarg); break;
        case 't': timeout = atoi(optarg); break;
        default: usage();
        }
    }
    if (!jid || !h.guest || !password || optind != argc || !strchr(h.guest, '@'))
        usage();
    if (!h.wallet) {
        /* documents.<the guest's domain> */
        snprintf(wallet, sizeof wallet, "documents.%s", strchr(h.guest, '@') + 1);
        h.wallet = wallet;
    }
    make_nonce(h.nonce);

    xmpp_initialize();
    h.ctx = xmpp_ctx_new(NULL, NULL);
    h.conn = xmpp_conn_new(h.ctx);
    xmpp_conn_set_flags(h.conn, XMPP_CONN_FLAG_TRUST_TLS | XMPP_CONN_FLAG_MANDATORY_TLS);
    xmpp_conn_set_jid(h.conn, jid);
    xmpp_conn_set_pass(h.conn, password);
    xmpp_handler_add(h.conn, on_message, NULL, "message", NULL, &h);
    time_t deadline = time(NULL) + timeout;
    if (xmpp_connect_client(h.conn, server, port, on_connection, &h) == XMPP_EOK) {
        while (h.exit_code < 0 && time(NULL) < deadline)
            xmpp_run_once(h.ctx, 200);
    }
    if (h.exit_code < 0) {
        printf("timeout\n");
        h.exit_code = 4;
    }
    fflush(stdout);
    xmpp_disconnect(h.conn);
    for (int i = 0; i < 50 && !xmpp_conn_is_disconnected(h.conn); i++)
        xmpp_run_once(h.ctx, 20);
    xmpp_conn_release(h.conn);
    xmpp_ctx_free(h.ctx);
    xmpp_shutdown();
    free(h.request_id);
    return h.exit_code;
}
