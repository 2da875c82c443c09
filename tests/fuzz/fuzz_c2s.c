/*
 * fuzz_c2s.c - libFuzzer target for the client stream state machine
 * (c2s.c, c2s_sm.c) and the stanza handlers behind it: the router, the
 * session table, and the modules loaded below, all on a real server
 * context (vn_server_start with a config and an LMDB store in a temporary
 * directory; the config needs a listener, so one listens on a free
 * loopback port, but nothing connects to it).
 *
 * Each input is one client connection on a fake transport that claims to
 * be encrypted (as a WebSocket over HTTPS is) but has no TLS channel
 * binding and cannot STARTTLS. The harness first logs in as a real client
 * would, through the real XML parser: stream header, SCRAM-SHA-256 (it
 * computes the proof from the server's challenge), stream restart, header,
 * resource binding. Then it feeds the input's bytes (after the first,
 * which sets the chunk size) as the rest of the client's stream, honouring
 * stream restarts the way the TCP transport does, and finally drops the
 * connection. Everything the server writes is serialized and discarded.
 *
 * The same file builds one target per module (tests/fuzz/targets):
 * FUZZ_MODULES, a space-separated list, names the modules to load, the
 * module fuzzed first and what it needs after it, so that each module's
 * coverage can be read on its own. Without it, the target loads them all.
 *
 * Not exercised: TLS, STARTTLS and -PLUS binding, the TCP transport and
 * its timers, web framing, s2s. State in the store (rosters, archives,
 * PEP nodes, offline messages) carries over from one input to the next,
 * so a crash may need the inputs before it; the streams and sessions do
 * not: every one is closed after each input.
 */
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "accounts.h"
#include "c2s.h"
#include "fuzz_tmpdir.h"
#include "scram.h"
#include "server.h"
#include "xml_parser.h"

#define HOST "localhost"
#define USER "juliet"
#define PASSWORD "r0m30"
#define CLIENT_NONCE "fuzzclientnonce"
#define OUTPUT_CAP (1024 * 1024)

#define NS_SASL "urn:ietf:params:xml:ns:xmpp-sasl"
#define STREAM_HEADER                                                                              \
    "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' "        \
    "to='" HOST "' version='1.0'>"

typedef struct fake_tx {
    vn_c2s *c2s; /* NULL once the stream is gone */
    vn_xml_parser *parser;
    vn_buf out;      /* the last element written */
    size_t written;  /* bytes written on this connection */
    char *challenge; /* the last SASL challenge's text */
    bool success;    /* <success/> seen */
    bool bound;      /* the bind result seen */
    bool closed;     /* the stream closed its transport */
    bool in_feed;
    bool restart;
} fake_tx;

/* ---- the transport ---- */

static void tx_open(void *tx, const char *stream_id, const char *from, const char *to)
{
    fake_tx *t = tx;
    t->written += strlen(stream_id) + strlen(from) + (to ? strlen(to) : 0);
}

static int tx_element(void *tx, const vn_stanza *st)
{
    fake_tx *t = tx;

    vn_buf_reset(&t->out);
    vn_stanza_serialize_to(st, VN_NS_CLIENT, &t->out);
    t->written += t->out.len;
    if (vn_stanza_is(st, "challenge", NS_SASL)) {
        free(t->challenge);
        t->challenge = vn_strdup(vn_stanza_text(st));
    } else if (vn_stanza_is(st, "success", NS_SASL)) {
        t->success = true;
    } else if (vn_stanza_is(st, "iq", VN_NS_CLIENT) &&
               vn_stanza_child(st, "bind", "urn:ietf:params:xml:ns:xmpp-bind")) {
        t->bound = true;
    }
    return t->written > OUTPUT_CAP ? -1 : 0;
}

static void tx_close(void *tx, bool flush)
{
    fake_tx *t = tx;
    t->closed = true;
    if (t->in_feed)
        vn_xml_parser_stop(t->parser);
}

static bool tx_secure(void *tx)
{
    return true;
}

static SSL *tx_ssl(void *tx)
{
    return NULL;
}

static const char *tx_peer_ip(void *tx)
{
    return "192.0.2.1";
}

static const vn_c2s_transport fake_transport = {
    .open = tx_open,
    .element = tx_element,
    .close = tx_close,
    .secure = tx_secure,
    .ssl = tx_ssl,
    .peer_ip = tx_peer_ip,
};

/* ---- parser events, as c2s_tcp.c hands them over ---- */

static void on_open(void *ud, const vn_stanza *header)
{
    fake_tx *t = ud;
    if (t->c2s && !t->closed)
        vn_c2s_input_open(t->c2s, header);
}

static void on_stanza(void *ud, vn_stanza *st)
{
    fake_tx *t = ud;
    if (!t->c2s || t->closed) {
        vn_stanza_free(st);
        return;
    }
    vn_c2s_input_element(t->c2s, st);
    if (t->c2s && vn_c2s_take_restart(t->c2s)) {
        t->restart = true;
        vn_xml_parser_stop(t->parser);
    }
}

static void on_close(void *ud)
{
    fake_tx *t = ud;
    if (t->c2s && !t->closed)
        vn_c2s_input_close(t->c2s);
}

static void on_error(void *ud, const char *condition, const char *text)
{
    fake_tx *t = ud;
    if (t->c2s && !t->closed)
        vn_c2s_input_error(t->c2s, condition, text);
}

static const vn_xml_callbacks xml_callbacks = {
    .stream_open = on_open,
    .stanza = on_stanza,
    .stream_close = on_close,
    .error = on_error,
};

/* Feed bytes as one read; false once the connection is closed. */
static bool feed(fake_tx *t, const char *data, size_t len)
{
    if (t->closed || !t->c2s)
        return false;
    vn_c2s_input_activity(t->c2s);
    t->in_feed = true;
    vn_xml_parser_feed(t->parser, data, len);
    t->in_feed = false;
    if (t->restart && !t->closed) {
        vn_xml_parser_reset(t->parser);
        t->restart = false;
    }
    return !t->closed;
}

static bool feed_str(fake_tx *t, const char *text)
{
    return feed(t, text, strlen(text));
}

/* ---- the login ---- */

static char salted_for[256]; /* the salt attribute the cached key belongs to */
static unsigned char client_key[32], stored_key[32];

static void derive_keys(const char *salt_b64, unsigned iterations)
{
    unsigned char salted[32];
    unsigned int len;
    vn_buf salt;

    vn_buf_init(&salt);
    if (vn_scram_b64_decode(salt_b64, strlen(salt_b64), &salt) != 0 ||
        PKCS5_PBKDF2_HMAC(PASSWORD, strlen(PASSWORD), (unsigned char *)salt.data, (int)salt.len,
                          (int)iterations, EVP_sha256(), 32, salted) != 1 ||
        !HMAC(EVP_sha256(), salted, 32, (const unsigned char *)"Client Key", 10, client_key,
              &len) ||
        EVP_Digest(client_key, 32, stored_key, NULL, EVP_sha256(), NULL) != 1)
        abort();
    vn_buf_free(&salt);
    snprintf(salted_for, sizeof salted_for, "%s", salt_b64);
}

/* The client-final message for server-first "r=..,s=..,i=..". */
static char *client_final(const char *server_first)
{
    char nonce[128], salt_b64[128];
    unsigned iterations;
    unsigned char signature[32], proof[32];
    unsigned int len;

    if (sscanf(server_first, "r=%127[^,],s=%127[^,],i=%u", nonce, salt_b64, &iterations) != 3)
        abort();
    if (strcmp(salted_for, salt_b64) != 0)
        derive_keys(salt_b64, iterations);
    char *without_proof = vn_asprintf("c=biws,r=%s", nonce);
    char *auth = vn_asprintf("n=" USER ",r=" CLIENT_NONCE ",%s,%s", server_first, without_proof);
    if (!HMAC(EVP_sha256(), stored_key, 32, (unsigned char *)auth, strlen(auth), signature, &len))
        abort();
    for (size_t i = 0; i < sizeof proof; i++)
        proof[i] = client_key[i] ^ signature[i];
    vn_buf msg;
    vn_buf_init(&msg);
    vn_buf_printf(&msg, "%s,p=", without_proof);
    vn_scram_b64_encode(proof, sizeof proof, &msg);
    free(auth);
    free(without_proof);
    return vn_buf_steal(&msg, NULL);
}

static void send_sasl(fake_tx *t, const char *element, const char *message)
{
    vn_buf xml;
    vn_buf_init(&xml);
    vn_buf_printf(&xml, "<%s xmlns='" NS_SASL "'%s>", element,
                  strcmp(element, "auth") == 0 ? " mechanism='SCRAM-SHA-256'" : "");
    vn_scram_b64_encode(message, strlen(message), &xml);
    vn_buf_printf(&xml, "</%s>", element);
    feed(t, xml.data, xml.len);
    vn_buf_free(&xml);
}

/* Log in and bind a resource; aborts if the server refuses, since every
 * input would then test nothing past the login. */
static void login(fake_tx *t)
{
    feed_str(t, STREAM_HEADER);
    send_sasl(t, "auth", "n,,n=" USER ",r=" CLIENT_NONCE);
    if (!t->challenge) {
        fprintf(stderr, "fuzz_c2s: no SCRAM challenge\n");
        abort();
    }
    vn_buf server_first;
    vn_buf_init(&server_first);
    if (vn_scram_b64_decode(t->challenge, strlen(t->challenge), &server_first) != 0)
        abort();
    char *final = client_final(server_first.data);
    send_sasl(t, "response", final);
    free(final);
    vn_buf_free(&server_first);
    feed_str(t, STREAM_HEADER "<iq type='set' id='bind1'>"
                              "<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
                              "<resource>balcony</resource></bind></iq>");
    if (!t->success || !t->bound) {
        fprintf(stderr, "fuzz_c2s: login failed (success %d, bound %d)\n", t->success, t->bound);
        abort();
    }
}

/* ---- set-up and one input ---- */

/* A loopback port nothing listens on right now. */
static int free_port(void)
{
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof addr;
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0 ||
        getsockname(fd, (struct sockaddr *)&addr, &len) != 0) {
        perror("fuzz_c2s: free port");
        exit(1);
    }
    close(fd);
    return ntohs(addr.sin_port);
}

#ifndef FUZZ_MODULES
#define FUZZ_MODULES                                                                               \
    "ping version disco roster presence offline blocking last time vcard private pep mam "         \
    "carbons csi"
#endif

static void write_config(const char *dir, const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        perror(path);
        exit(1);
    }
    fprintf(f,
            "hosts:\n  - " HOST "\n"
            "data_dir: %s/data\n"
            "log:\n  level: error\n"
            "listeners:\n  - type: c2s\n    address: 127.0.0.1\n    port: %d\n"
            "c2s:\n  resume_timeout: 60\n"
            "admin:\n  socket: %s/admin.sock\n"
            "module_path: " VN_FUZZ_MODULE_DIR "\n"
            "modules:\n",
            dir, free_port(), dir);
    for (const char *m = FUZZ_MODULES; *m;) {
        size_t len = strcspn(m, " ");
        if (len)
            fprintf(f, "  %.*s:\n", (int)len, m);
        m += len + (m[len] == ' ');
    }
    fclose(f);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char *dir = fuzz_tmpdir_make();
    char *config = vn_asprintf("%s/vestnik.yaml", dir);
    vn_buf err;

    write_config(dir, config);
    vn_buf_init(&err);
    if (vn_server_start(uv_default_loop(), config, &err) < 0 ||
        vn_accounts_create(vn_srv.store, HOST, USER, PASSWORD, vn_srv.cfg->scram_iterations) != 0 ||
        vn_accounts_create(vn_srv.store, HOST, "romeo", PASSWORD, vn_srv.cfg->scram_iterations) !=
            0) {
        fprintf(stderr, "fuzz_c2s: cannot start the server: %s\n", err.data ? err.data : "");
        exit(1);
    }
    vn_buf_free(&err);
    free(config);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t chunk = data[0] % 128 + 1;
    const char *bytes = (const char *)data + 1;
    size_t left = size - 1;
    fake_tx t = {0};

    vn_buf_init(&t.out);
    t.parser = vn_xml_parser_new(&xml_callbacks, &t, vn_srv.cfg->max_stanza_size,
                                 vn_srv.cfg->max_xml_depth);
    t.c2s = vn_c2s_new(&fake_transport, &t);
    login(&t);
    while (left > 0) {
        size_t n = left < chunk ? left : chunk;
        if (!feed(&t, bytes, n))
            break;
        bytes += n;
        left -= n;
    }
    /* The connection drops (or the stream closed it): as c2s_tcp's on_close. */
    if (t.c2s)
        vn_c2s_gone(t.c2s, t.closed ? "closed by the server" : "end of fuzz input");
    /* A stream that enabled resumption hibernates: end it too. */
    vn_c2s_close_all(NULL);
    uv_run(vn_srv.loop, UV_RUN_NOWAIT);
    vn_xml_parser_free(t.parser);
    vn_buf_free(&t.out);
    free(t.challenge);
    return 0;
}
