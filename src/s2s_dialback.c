/*
 * s2s_dialback.c - Server Dialback (XEP-0220) with keys per XEP-0185.
 *
 * Originating side (our outgoing stream): <db:result from=local
 * to=remote>key</db:result> claims local; the peer checks it with our
 * authoritative server (us) and answers <db:result type='valid'/>.
 * Receiving side (an incoming stream): a <db:result/> makes us ask the
 * claimed domain's authoritative server, over our outgoing stream to it,
 * with <db:verify/>; its answer decides. Authoritative side: we answer
 * <db:verify/> for keys we issued by recomputing them, so no key is ever
 * stored: key = HMAC-SHA256(hex SHA256(secret), receiving ' ' originating
 * ' ' stream id), in hex, with a secret drawn at start-up (the key form of
 * XEP-0185's example, which the unit test checks).
 */
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "s2s_internal.h"
#include "vestnik/jid.h"
#include "vestnik/log.h"
#include "vestnik/util.h"

static char process_secret[65]; /* random, hex */

static void to_hex(const unsigned char *bytes, unsigned len, char *out)
{
    for (unsigned i = 0; i < len; i++)
        snprintf(out + 2 * i, 3, "%02x", bytes[i]);
}

void s2s_dialback_init(void)
{
    unsigned char secret[32];

    if (RAND_bytes(secret, sizeof secret) != 1)
        abort();
    to_hex(secret, sizeof secret, process_secret);
    OPENSSL_cleanse(secret, sizeof secret);
}

char *s2s_dialback_key_with_secret(const char *secret, const char *receiving,
                                   const char *originating, const char *stream_id)
{
    unsigned char digest[EVP_MAX_MD_SIZE], mac[EVP_MAX_MD_SIZE];
    unsigned int digest_len = 0, mac_len = 0;
    char hmac_key[2 * EVP_MAX_MD_SIZE + 1];
    char *text = vn_asprintf("%s %s %s", receiving, originating, stream_id);
    char *hex = vn_alloc(2 * EVP_MAX_MD_SIZE + 1);

    EVP_Digest(secret, strlen(secret), digest, &digest_len, EVP_sha256(), NULL);
    to_hex(digest, digest_len, hmac_key);
    HMAC(EVP_sha256(), hmac_key, (int)strlen(hmac_key), (const unsigned char *)text, strlen(text),
         mac, &mac_len);
    to_hex(mac, mac_len, hex);
    OPENSSL_cleanse(hmac_key, sizeof hmac_key);
    free(text);
    return hex;
}

char *s2s_dialback_key(const char *receiving, const char *originating, const char *stream_id)
{
    return s2s_dialback_key_with_secret(process_secret, receiving, originating, stream_id);
}

static bool keys_equal(const char *a, const char *b)
{
    size_t len = strlen(a);
    return len == strlen(b) && CRYPTO_memcmp(a, b, len) == 0;
}

void s2s_dialback_start(s2s_stream *s, const char *local)
{
    char *key;

    if (s2s_pair_has(s->pending, local, s->remote) || s2s_pair_has(s->pairs, local, s->remote))
        return;
    key = s2s_dialback_key(s->remote, local, s->id ? s->id : "");
    s2s_pair_add(&s->pending, local, s->remote);
    s2s_stream_write_dialback(s, "result", local, s->remote, NULL, NULL, key);
    free(key);
}

/* Domains of a dialback element, normalised; false if either is missing. */
static bool element_domains(const vn_stanza *el, char **from, char **to)
{
    const char *f = vn_stanza_attr(el, "from"), *t = vn_stanza_attr(el, "to");

    *from = f ? vn_jid_prep_domain(f) : NULL;
    *to = t ? vn_jid_prep_domain(t) : NULL;
    if (*from && *to)
        return true;
    free(*from);
    free(*to);
    return false;
}

/* Incoming <db:result from=remote to=local>key</db:result>. */
static void receive_result_request(s2s_stream *s, const char *remote, const char *local,
                                   const char *key)
{
    const char *why = NULL;

    if (!s2s_is_our_domain(local)) {
        s2s_stream_close(s, "host-unknown", "This server does not serve that domain");
    } else if (s2s_is_our_domain(remote)) {
        s2s_stream_close(s, "invalid-from", "That domain is served here");
    } else if (!s2s_remote_allowed(remote)) {
        vn_log_info("s2s in %s: %s refused by the allow/deny lists", s2s_stream_peer_ip(s), remote);
        s2s_stream_write_dialback(s, "result", local, remote, NULL, "invalid", NULL);
    } else if (!s2s_dialback_enabled()) {
        s2s_stream_close(s, "policy-violation", "Server Dialback is disabled here");
    } else if (s2s_require_valid_certificate(remote) && !s2s_stream_peer_valid(s, &why)) {
        vn_log_info("s2s in %s: refusing dialback for %s: its certificate is required (%s)",
                    s2s_stream_peer_ip(s), remote, why ? why : "not valid");
        s2s_stream_close(s, "policy-violation", "A valid certificate is required");
    } else if (s2s_pair_has(s->pairs, local, remote)) {
        s2s_stream_write_dialback(s, "result", local, remote, NULL, "valid", NULL);
    } else if (!s2s_pair_has(s->pending, local, remote)) {
        s2s_pair_add(&s->pending, local, remote);
        s2s_route_request_verify(local, remote, s->id, key);
    }
}

/* Incoming <db:verify from=receiving to=us id>key</db:verify>: is it ours? */
static void answer_verify(s2s_stream *s, const char *receiving, const char *originating,
                          const char *id, const char *key)
{
    bool valid = false;

    if (s2s_is_our_domain(originating)) {
        char *expected = s2s_dialback_key(receiving, originating, id);
        valid = keys_equal(expected, key);
        free(expected);
    }
    s2s_stream_write_dialback(s, "verify", originating, receiving, id, valid ? "valid" : "invalid",
                              NULL);
}

/* Outgoing: the authoritative server answered our <db:verify/>. */
static void verify_answered(s2s_stream *out, const char *remote, const char *local, const char *id,
                            const char *type)
{
    s2s_stream *in = s2s_incoming_find(id);
    bool valid = type && strcmp(type, "valid") == 0;

    if (!out->remote || strcmp(remote, out->remote) != 0) {
        s2s_stream_close(out, "invalid-from", "Verification answers only for your own domain");
        return;
    }
    if (!in || !s2s_pair_remove(&in->pending, local, remote))
        return; /* the stream went away, or nothing was asked */
    if (valid && !s2s_incoming_admit(in, remote))
        return;
    s2s_stream_write_dialback(in, "result", local, remote, NULL, valid ? "valid" : "invalid", NULL);
    if (!valid) {
        vn_log_info("s2s in %s: dialback for %s failed: its server says the key is invalid",
                    s2s_stream_peer_ip(in), remote);
        return;
    }
    s2s_pair_add(&in->pairs, local, remote);
    in->ever_authenticated = true;
    s2s_incoming_authenticated(in);
    vn_log_info("s2s in %s: %s authenticated with dialback (to %s)", s2s_stream_peer_ip(in), remote,
                local);
}

/* Outgoing: the receiving server's decision on our <db:result/>. */
static void result_answered(s2s_stream *out, const char *remote, const char *local,
                            const char *type)
{
    if (!out->route || !s2s_pair_remove(&out->pending, local, remote))
        return;
    if (type && strcmp(type, "valid") == 0) {
        s2s_pair_add(&out->pairs, local, remote);
        out->ever_authenticated = true;
        s2s_route_authenticated(out->route, local, "dialback");
    } else {
        s2s_route_auth_failed(out->route, local,
                              type && strcmp(type, "error") == 0 ? "dialback error"
                                                                 : "dialback key refused");
    }
}

void s2s_dialback_input(s2s_stream *s, const vn_stanza *el)
{
    const char *name = vn_stanza_name(el);
    const char *type = vn_stanza_attr(el, "type");
    const char *id = vn_stanza_attr(el, "id");
    bool result = strcmp(name, "result") == 0, verify = strcmp(name, "verify") == 0;
    char *from, *to;

    if (!result && !verify) {
        s2s_stream_close(s, "unsupported-stanza-type", NULL);
        return;
    }
    if (!element_domains(el, &from, &to)) {
        s2s_stream_close(s, "improper-addressing", "Dialback needs 'from' and 'to'");
        return;
    }
    if (verify && !type && id)
        answer_verify(s, from, to, id, vn_stanza_text(el));
    else if (verify && type && id && s->dir == S2S_OUTGOING)
        verify_answered(s, from, to, id, type);
    else if (result && !type && s->dir == S2S_INCOMING)
        receive_result_request(s, from, to, vn_stanza_text(el));
    else if (result && type && s->dir == S2S_OUTGOING)
        result_answered(s, from, to, type);
    else
        s2s_stream_close(s, "bad-format", "Unexpected dialback element");
    free(from);
    free(to);
}

void s2s_dialback_verify_failed(const char *stream_id, const char *local, const char *remote)
{
    s2s_stream *in = s2s_incoming_find(stream_id);

    if (!in || !s2s_pair_remove(&in->pending, local, remote))
        return;
    vn_log_info("s2s in %s: cannot verify %s: its authoritative server is unreachable",
                s2s_stream_peer_ip(in), remote);
    s2s_stream_write_dialback(in, "result", local, remote, NULL, "invalid", NULL);
}
