/*
 * mod_vcard.c - vcard-temp (XEP-0054) and vCard-based avatars (XEP-0153).
 *
 * An account's vCard is kept in the store (store "vcard", key "vcard") as
 * serialized XML. Anyone may read it through the account's bare JID; only
 * the account itself may replace it. A vCard larger than max_size bytes
 * (serialized) is refused with <policy-violation/>: the limit is local
 * service policy (RFC 6120 §8.3.3.12), a retry cannot succeed, so neither
 * <resource-constraint/> (type wait) nor <not-acceptable/> (a request
 * missing criteria) fits.
 *
 * When a vCard is set, the SHA-1 of its decoded PHOTO/BINVAL is kept next
 * to it (key "photo": lower-case hex, or empty when the vCard has no
 * photo). The account's broadcast presence then gets
 * <x xmlns='vcard-temp:x:update'><photo>hash</photo></x> unless the client
 * already put a <photo/> there itself (XEP-0153 §4.3): a client that is not
 * ready to advertise (an <x/> without <photo/>) or knows nothing of
 * XEP-0153 still announces the avatar the server knows.
 */
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vestnik/i18n.h>
#include <vestnik/module.h>

#define NS_VCARD "vcard-temp"
#define NS_VCARD_UPDATE "vcard-temp:x:update"
#define VCARD_STORE "vcard"
#define VCARD_KEY "vcard"
#define PHOTO_KEY "photo"
/* Before mod_presence (priority 0), which takes the presence and sends
 * it on. */
#define UPDATE_PRIORITY 50

static const vn_config_key vcard_keys[] = {
    {.name = "max_size",
     .type = VN_CONF_INT,
     .default_value = "65536",
     .min = 1024,
     .max = 16777216},
    {.name = NULL},
};

/* The request's <vCard/>, or NULL after answering bad-request. */
static const vn_stanza *request_vcard(const vn_event *ev)
{
    const vn_stanza *vcard = vn_stanza_child(ev->stanza, "vCard", NS_VCARD);
    if (!vcard)
        vn_route_error(ev->stanza, "modify", "bad-request", "Expected <vCard xmlns='vcard-temp'/>");
    return vcard;
}

static vn_hook_result vcard_get(vn_event *ev, void *ud)
{
    if (!request_vcard(ev))
        return VN_HANDLED;

    vn_buf stored;
    vn_buf_init(&stored);
    int rc =
        vn_store_get(vn_server_store(), ev->host, ev->to->local, VCARD_STORE, VCARD_KEY, &stored);
    vn_stanza *vcard = NULL;
    if (rc == VN_STORE_OK) {
        vcard = vn_stanza_parse(stored.data, stored.len);
        if (!vcard)
            vn_log_error("vcard: the stored vCard of %s does not parse", ev->to->bare);
    }
    vn_buf_free(&stored);

    if (rc == VN_STORE_NOT_FOUND) {
        vcard = vn_stanza_new("vCard", NS_VCARD); /* XEP-0054 §3.1: empty, not an error */
    } else if (!vcard) {
        vn_route_error(ev->stanza, "wait", "internal-server-error", NULL);
        return VN_HANDLED;
    }
    vn_stanza *reply = vn_stanza_iq_result(ev->stanza);
    vn_stanza_append(reply, vcard);
    vn_route(reply);
    return VN_HANDLED;
}

/* Lower-case hex SHA-1 of the decoded BINVAL into hex (41 bytes); "" when
 * the vCard has no photo data. false if BINVAL is not valid base64. */
static bool photo_hash(const vn_stanza *vcard, char hex[2 * SHA_DIGEST_LENGTH + 1])
{
    const vn_stanza *photo = vn_stanza_child(vcard, "PHOTO", NS_VCARD);
    const char *binval = photo ? vn_stanza_child_text(photo, "BINVAL", NS_VCARD) : NULL;

    hex[0] = '\0';
    if (!binval)
        return true;
    size_t len = strlen(binval);
    if (len > INT32_MAX)
        return false;

    /* EVP_DecodeUpdate skips the whitespace and line breaks BINVAL often
     * carries, and handles the padding. */
    unsigned char *image = vn_alloc(len / 4 * 3 + 3);
    EVP_ENCODE_CTX *ctx = EVP_ENCODE_CTX_new();
    int chunk = 0, tail = 0;
    bool decoded = false;
    if (ctx) {
        EVP_DecodeInit(ctx);
        decoded =
            EVP_DecodeUpdate(ctx, image, &chunk, (const unsigned char *)binval, (int)len) >= 0 &&
            EVP_DecodeFinal(ctx, image + chunk, &tail) == 1;
        EVP_ENCODE_CTX_free(ctx);
    }
    if (decoded && chunk + tail > 0) {
        unsigned char digest[SHA_DIGEST_LENGTH];
        SHA1(image, (size_t)(chunk + tail), digest);
        for (size_t i = 0; i < sizeof digest; i++)
            snprintf(hex + 2 * i, 3, "%02x", digest[i]);
    }
    free(image);
    return decoded;
}

static vn_hook_result vcard_set(vn_event *ev, void *ud)
{
    const vn_module *m = ud;
    const vn_stanza *vcard = request_vcard(ev);

    if (!vcard)
        return VN_HANDLED;
    if (!ev->from || !vn_jid_bare_equal(ev->from, ev->to)) {
        vn_route_error(ev->stanza, "auth", "forbidden", "Only the account may set its vCard");
        return VN_HANDLED;
    }
    size_t len;
    char *serialized = vn_stanza_serialize(vcard, VN_NS_CLIENT, &len);
    long long max_size = vn_module_config_int(m, "max_size");
    if (len > (unsigned long long)max_size) {
        char *text = vn_asprintf(vn_tr(vn_stanza_attr(ev->stanza, "xml:lang"),
                                       N_("A vCard may take at most %lld bytes")),
                                 max_size);
        vn_route_error(ev->stanza, "modify", "policy-violation", text);
        free(text);
        free(serialized);
        return VN_HANDLED;
    }
    char hash[2 * SHA_DIGEST_LENGTH + 1];
    if (!photo_hash(vcard, hash)) {
        vn_route_error(ev->stanza, "modify", "bad-request", "PHOTO/BINVAL is not base64");
        free(serialized);
        return VN_HANDLED;
    }

    /* The vCard first: a failure in between leaves an outdated hash, which
     * only makes clients fetch the vCard again. */
    vn_store *store = vn_server_store();
    if (vn_store_put(store, ev->host, ev->to->local, VCARD_STORE, VCARD_KEY, serialized, len) ==
            VN_STORE_OK &&
        vn_store_put(store, ev->host, ev->to->local, VCARD_STORE, PHOTO_KEY, hash, strlen(hash)) ==
            VN_STORE_OK) {
        vn_route_durable(vn_stanza_iq_result(ev->stanza));
    } else {
        vn_log_error("vcard: cannot store the vCard of %s", ev->to->bare);
        vn_route_error(ev->stanza, "wait", "internal-server-error", NULL);
    }
    free(serialized);
    return VN_HANDLED;
}

/* XEP-0153 §4.3 on the account's available broadcast presence; always
 * passes, so the presence module still handles it. */
static vn_hook_result add_photo_update(vn_event *ev, void *ud)
{
    if (vn_stanza_attr(ev->stanza, "type"))
        return VN_PASS;
    vn_stanza *update = vn_stanza_child(ev->stanza, "x", NS_VCARD_UPDATE);
    if (update && vn_stanza_child(update, "photo", NS_VCARD_UPDATE))
        return VN_PASS;

    const vn_jid *me = vn_session_jid(ev->session);
    vn_buf hash;
    vn_buf_init(&hash);
    if (vn_store_get(vn_server_store(), me->domain, me->local, VCARD_STORE, PHOTO_KEY, &hash) ==
        VN_STORE_OK) {
        if (!update)
            update = vn_stanza_add_child(ev->stanza, "x", NS_VCARD_UPDATE);
        vn_stanza_add_text_child(update, "photo", NS_VCARD_UPDATE, hash.data);
    }
    vn_buf_free(&hash);
    return VN_PASS;
}

static int vcard_load(vn_module *m)
{
    vn_hook_add("iq-get/bare/" NS_VCARD, 0, vcard_get, m);
    vn_hook_add("iq-set/bare/" NS_VCARD, 0, vcard_set, m);
    vn_hook_add("presence/broadcast", UPDATE_PRIORITY, add_photo_update, m);
    vn_disco_add_feature(NS_VCARD);
    return 0;
}

static void vcard_unload(vn_module *m)
{
    vn_hook_remove("iq-get/bare/" NS_VCARD, vcard_get, m);
    vn_hook_remove("iq-set/bare/" NS_VCARD, vcard_set, m);
    vn_hook_remove("presence/broadcast", add_photo_update, m);
    vn_disco_remove_feature(NS_VCARD);
}

VN_MODULE("vcard", "vcard-temp (XEP-0054) with avatar hashes in presence (XEP-0153)", vcard_keys,
          vcard_load, vcard_unload, NULL);
