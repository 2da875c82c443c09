/*
 * presentation_qr.c - showing a document in person (xeps/documents.md
 * §7.4): a short-lived presentation of the chosen claims behind a one-time
 * link, that link as a QR code, and the code as a PNG behind a link of its
 * own for the holder's client to display (XEP-0066).
 *
 * A whole presentation rarely fits a QR code, so the code holds the link;
 * the verifier's scanner fetches it once and checks it with the issuer's
 * published key. Its audience is the server's base URL, its nonce random:
 * no verifier is known in advance.
 */
#include <stdlib.h>
#include <string.h>
#include <vestnik/i18n.h>

#include "cred_http.h"
#include "mod_credentials.h"
#include "qr.h"

#define QR_SCALE 8
#define QR_MARGIN 4
#define PNG_FETCHES 5

char *presentation_qr(const char *host, const char *user, const json_t *c, const char *const *paths,
                      size_t n_paths, char **link_out, int *err)
{
    vn_cred_key *key = wallet_holder_key(host, user, false, NULL);
    char *nonce = cred_new_id("qr");
    const char *sd = json_string_value(json_object_get(c, "sdjwt"));
    vn_sdjwt_present_params p = {
        .paths = paths,
        .n_paths = n_paths,
        .holder_key = key,
        .aud = cred.base_url,
        .nonce = nonce,
        .iat = vn_now_us() / 1000000,
    };
    char *presentation = NULL, *link = NULL, *png_link = NULL, *url = NULL;
    *link_out = NULL;
    unsigned char *png = NULL;
    size_t png_len = 0;
    *err = key ? vn_sdjwt_present(sd, strlen(sd), &p, &presentation, NULL) : VN_CRED_ENOCNF;
    if (*err == 0)
        *err = vn_cred_http_link_create(VN_SDJWT_MEDIA_TYPE, presentation, strlen(presentation),
                                        cred.limits.qr_lifetime, 1, &link);
    if (*err == 0) {
        char *target = vn_asprintf("%s%s", cred.base_url, link);
        *err = vn_qr_png(target, QR_SCALE, QR_MARGIN, &png, &png_len);
        free(target);
    }
    if (*err == 0)
        *err = vn_cred_http_link_create("image/png", png, png_len, cred.limits.qr_lifetime,
                                        PNG_FETCHES, &png_link);
    if (*err == 0) {
        url = vn_asprintf("%s%s", cred.base_url, png_link);
        *link_out = vn_asprintf("%s%s", cred.base_url, link);
        json_t *claims = json_array();
        for (size_t i = 0; i < n_paths; i++)
            json_array_append_new(claims, json_string(paths[i]));
        audit_log(host, user, "shown", "",
                  json_pack("{s:s, s:o}", "type", json_string_value(json_object_get(c, "type")),
                            "claims", claims));
    } else if (link) {
        vn_cred_http_link_remove(link);
    }
    free(png_link);
    free(png);
    free(link);
    free(presentation);
    free(nonce);
    vn_cred_key_free(key);
    return url;
}
