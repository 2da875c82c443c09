/*
 * consent.c - a service asks a holder to sign a document, the holder
 * reviews it and signs or refuses (xeps/documents.md §9).
 *
 * The document comes inline (text, checked against its SHA-256 here) or by
 * URL (a PDF on an upload service: the holder's client shows the link, the
 * signature covers the hash the service states). Signing makes a JWS with
 * the holder's key over the document's SHA-256 digest, detached (RFC 7515
 * Appendix F): the protected header carries who signed for whom, when, and
 * what, and the holder's public key, so anyone with the document checks it
 * with any JOSE library. The service gets it; the holder's audit log keeps
 * a copy.
 */
#include <stdlib.h>
#include <string.h>
#include <vestnik/form.h>
#include <vestnik/i18n.h>

#include "jws.h"
#include "mod_credentials.h"

#define SIGNATURE_TYP "vestnik-signature+jws"
#define NS_OOB "jabber:x:oob"

char *consent_describe(const json_t *item, const char *lang)
{
    vn_buf out;
    vn_buf_init(&out);
    vn_buf_printf(&out, vn_tr(lang, N_("%s asks you to sign: \"%s\"")),
                  json_string_value(json_object_get(item, "service")),
                  json_string_value(json_object_get(item, "title")));
    const char *text = json_string_value(json_object_get(item, "text"));
    const char *url = json_string_value(json_object_get(item, "url"));
    if (text)
        vn_buf_printf(&out, "\n\n%s\n", text);
    if (url)
        vn_buf_printf(&out, "\n%s\n", url);
    vn_buf_printf(&out, "\nSHA-256: %s\n", json_string_value(json_object_get(item, "sha256")));
    vn_buf_append_str(&out, vn_tr(lang, N_("Reply \"yes\" to sign it or \"no\" to refuse.")));
    return vn_buf_steal(&out, NULL);
}

static char *sign_digest(const char *host, const char *user, const json_t *item)
{
    const char *hash = json_string_value(json_object_get(item, "sha256"));
    unsigned char *digest = NULL;
    size_t digest_len = 0;
    if (vn_b64url_decode(hash, strlen(hash), &digest, &digest_len) != 0)
        return NULL;
    vn_cred_key *key = wallet_holder_key(host, user, true, NULL);
    char *jws = NULL;
    if (key) {
        json_t *header =
            json_pack("{s:s, s:o, s:s, s:s, s:I, s:s, s:s, s:s, s:s}", "typ", SIGNATURE_TYP, "jwk",
                      vn_cred_key_to_jwk(key, false), "iss",
                      json_string_value(json_object_get(item, "holder_uri")), "aud",
                      json_string_value(json_object_get(item, "service_uri")), "iat",
                      (json_int_t)(vn_now_us() / 1000000), "jti",
                      json_string_value(json_object_get(item, "id")), "title",
                      json_string_value(json_object_get(item, "title")), "cty",
                      json_string_value(json_object_get(item, "media_type")), "sha-256", hash);
        if (vn_jws_sign_detached(key, header, NULL, digest, digest_len, &jws) != 0)
            jws = NULL;
        json_decref(header);
    }
    vn_cred_key_free(key);
    free(digest);
    return jws;
}

void consent_answer(const char *host, const char *user, const json_t *item, bool sign)
{
    const char *id = json_string_value(json_object_get(item, "id"));
    const char *service = json_string_value(json_object_get(item, "service"));
    const char *title = json_string_value(json_object_get(item, "title"));
    const char *lang = cred_holder_lang(host, user);
    char *holder = vn_asprintf("%s@%s", user, host);
    char *jws = sign ? sign_digest(host, user, item) : NULL;
    vn_stanza *answer = vn_stanza_new(jws ? "signature" : "declined", CRED_NS);
    vn_stanza_set_attr(answer, "request", id);
    vn_stanza_set_attr(answer, "holder", holder);
    if (jws)
        vn_stanza_add_text(answer, jws, strlen(jws));
    cred_send_payload(host, json_string_value(json_object_get(item, "from")), answer, NULL);
    if (jws) {
        audit_log(host, user, "signed", service,
                  json_pack("{s:s, s:s, s:s, s:s}", "request", id, "title", title, "sha256",
                            json_string_value(json_object_get(item, "sha256")), "signature", jws));
        char *text = vn_asprintf(vn_tr(lang, N_("You signed \"%s\" for %s.")), title, service);
        cred_tell(host, user, text);
        free(text);
    } else {
        audit_log(host, user, "refused", service,
                  json_pack("{s:s, s:s}", "request", id, "title", title));
        if (sign)
            cred_tell(host, user, vn_tr(lang, N_("The document could not be signed.")));
    }
    pending_delete(host, user, id);
    free(jws);
    free(holder);
}

/* The <document/> of a request into item, or false after answering. */
static bool read_document(const vn_event *ev, const vn_stanza *doc, json_t *item)
{
    const char *media = vn_stanza_attr(doc, "media-type");
    const char *hash = vn_stanza_attr(doc, "sha-256");
    const char *url = vn_stanza_attr(doc, "url");
    const char *text = doc ? vn_stanza_text(doc) : NULL;
    unsigned char *raw = NULL;
    size_t raw_len = 0;
    bool hash_ok =
        hash && vn_b64url_decode(hash, strlen(hash), &raw, &raw_len) == 0 && raw_len == 32;
    free(raw);
    if (!doc || !media || !*media || !hash_ok ||
        (url && strncmp(url, "https://", 8) != 0 && strncmp(url, "http://", 7) != 0) ||
        (!url && (!text || !*text))) {
        cred_iq_error(ev->stanza, "modify", "bad-request", "malformed",
                      N_("Give the document as text or by URL, with its media type and its "
                         "SHA-256 in base64url"));
        return false;
    }
    if (!url && strlen(text) > cred.limits.max_document) {
        cred_iq_error(ev->stanza, "modify", "policy-violation", NULL,
                      N_("The document is too large to send inline"));
        return false;
    }
    if (!url) {
        char *computed = vn_b64url_sha256(text, strlen(text));
        bool match = strcmp(computed, hash) == 0;
        free(computed);
        if (!match) {
            cred_iq_error(ev->stanza, "modify", "bad-request", "hash-mismatch",
                          N_("The SHA-256 is not the document's"));
            return false;
        }
        json_object_set_new(item, "text", json_string(text));
    } else {
        json_object_set_new(item, "url", json_string(url));
    }
    json_object_set_new(item, "media_type", json_string(media));
    json_object_set_new(item, "sha256", json_string(hash));
    return true;
}

void consent_sign_iq(vn_event *ev, const char *host, const vn_stanza *payload)
{
    vn_jid *holder = vn_jid_parse(vn_stanza_attr(payload, "holder"));
    const char *title = vn_stanza_child_text(payload, "title", CRED_NS);
    if (!holder || !holder->local || holder->resource || strcmp(holder->domain, host) != 0 ||
        !vn_account_exists(host, holder->local)) {
        cred_iq_error(ev->stanza, "cancel", "item-not-found", NULL,
                      N_("The holder has no wallet here"));
        vn_jid_free(holder);
        return;
    }
    if (!title || !*title || strlen(title) > cred.limits.max_purpose) {
        cred_iq_error(ev->stanza, "modify", "bad-request", "malformed",
                      N_("Give the document a short title"));
        vn_jid_free(holder);
        return;
    }
    const char *user = holder->local;
    char *id = cred_new_id("s");
    char *holder_uri = vn_asprintf("xmpp:%s", holder->bare);
    char *service_uri = vn_asprintf("xmpp:%s", ev->from->bare);
    json_t *item =
        json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:I}", "id", id, "kind", "sign", "from",
                  ev->from->full, "service", ev->from->bare, "title", title, "holder_uri",
                  holder_uri, "service_uri", service_uri, "created_us", (json_int_t)vn_now_us(),
                  "created", (json_int_t)(vn_now_us() / 1000000));
    json_t *pending = pending_list(host, user);
    if (read_document(ev, vn_stanza_child(payload, "document", CRED_NS), item)) {
        if (json_array_size(pending) >= cred.limits.max_pending ||
            pending_count_from(pending, ev->from->bare) >= cred.limits.max_pending_per_asker) {
            cred_iq_error(ev->stanza, "wait", "resource-constraint", NULL,
                          N_("The holder has too many requests waiting"));
        } else if (pending_put(host, user, item) != 0) {
            cred_iq_error(ev->stanza, "wait", "internal-server-error", NULL, NULL);
        } else {
            vn_stanza *reply = vn_stanza_iq_result(ev->stanza);
            vn_stanza_set_attr(vn_stanza_add_child(reply, "pending", CRED_NS), "id", id);
            vn_route_durable(reply);
            const char *lang = cred_holder_lang(host, user);
            char *text = consent_describe(item, lang);
            vn_stanza *oob = NULL;
            const char *url = json_string_value(json_object_get(item, "url"));
            if (url) {
                oob = vn_stanza_new("x", NS_OOB);
                vn_stanza_add_text_child(oob, "url", NS_OOB, url);
            }
            cred_send_payload(host, holder->bare, oob, text);
            free(text);
        }
    }
    json_decref(pending);
    json_decref(item);
    free(service_uri);
    free(holder_uri);
    free(id);
    vn_jid_free(holder);
}
