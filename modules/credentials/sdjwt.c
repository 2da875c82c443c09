/*
 * sdjwt.c - SD-JWT VC issuance, parsing, presentation and verification
 * (sdjwt.h).
 *
 * Everything that reads an SD-JWT goes through one walk (resolve): it
 * rebuilds the claims from the signed payload by replacing each digest in
 * an _sd array (or an array's {"...": digest}) with the disclosure that
 * hashes to it, recursively, and records where every disclosure was
 * found. The holder's view, the choice of disclosures to present and the
 * verifier's checks (unsigned, duplicate and conflicting disclosures) are
 * all read off that walk, so they cannot disagree about what a digest
 * means.
 */
#include "sdjwt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <vestnik/util.h>

#include "cred_internal.h"
#include "jws.h"

#define SALT_BYTES 16
#define DEFAULT_KB_MAX_AGE 300

/* ---- issuance ---- */

static bool reserved_top(const char *name)
{
    static const char *const names[] = {"iss",    "vct", "iat",     "nbf", "exp",          "cnf",
                                        "status", "_sd", "_sd_alg", "...", "vct#integrity"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcmp(name, names[i]) == 0)
            return true;
    return false;
}

static bool reserved_inner(const char *name)
{
    return strcmp(name, "_sd") == 0 || strcmp(name, "...") == 0 || strcmp(name, "_sd_alg") == 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Digests of dst's disclosable members, as a sorted _sd array with decoys. */
static void set_sd_array(json_t *dst, char **digests, size_t n, unsigned decoys_max)
{
    size_t decoys = 0;
    if (decoys_max) {
        unsigned char r;
        vn_cred_random(&r, 1);
        decoys = r % decoys_max + 1;
    }
    digests = vn_realloc(digests, (n + decoys + 1) * sizeof(char *));
    for (size_t i = 0; i < decoys; i++) {
        unsigned char noise[32];
        vn_cred_random(noise, sizeof(noise));
        digests[n++] = vn_b64url_sha256(noise, sizeof(noise));
    }
    /* Sorted: the order tells nothing about the claims' order. */
    qsort(digests, n, sizeof(char *), cmp_str);
    json_t *sd = json_array();
    for (size_t i = 0; i < n; i++) {
        json_array_append_new(sd, json_string(digests[i]));
        free(digests[i]);
    }
    free(digests);
    if (json_array_size(sd))
        json_object_set_new(dst, "_sd", sd);
    else
        json_decref(sd);
}

static int make_sd(const json_t *src, json_t *dst, vn_buf *out, unsigned decoys_max,
                   unsigned depth);
static int make_sd_array(const json_t *src, json_t *dst, vn_buf *out, unsigned decoys_max,
                         unsigned depth);

/* What a disclosure carries for value: nested objects and arrays made
 * selectively disclosable in turn (new reference), or NULL with *rc set. */
static json_t *disclosed_value(const json_t *value, vn_buf *out, unsigned decoys_max,
                               unsigned depth, int *rc)
{
    json_t *dvalue = NULL;
    if (json_is_object(value) && json_object_size(value)) {
        dvalue = json_object();
        *rc = make_sd(value, dvalue, out, decoys_max, depth + 1);
    } else if (json_is_array(value) && json_array_size(value)) {
        dvalue = json_array();
        *rc = make_sd_array(value, dvalue, out, decoys_max, depth + 1);
    } else {
        return json_incref((json_t *)value);
    }
    if (*rc != 0) {
        json_decref(dvalue);
        return NULL;
    }
    return dvalue;
}

/* The disclosure of [salt, (name,) value], appended to out as "~<d>";
 * returns its digest (free()). Takes the reference to value. */
static char *add_disclosure(const char *name, json_t *value, vn_buf *out)
{
    char *salt = vn_cred_random_b64url(SALT_BYTES);
    json_t *arr = name ? json_pack("[s,s,o]", salt, name, value) : json_pack("[s,o]", salt, value);
    free(salt);
    char *text = json_dumps(arr, JSON_COMPACT);
    json_decref(arr);
    char *disclosure = vn_b64url_encode(text, strlen(text));
    free(text);
    char *digest = vn_b64url_sha256(disclosure, strlen(disclosure));
    vn_buf_printf(out, "~%s", disclosure);
    free(disclosure);
    return digest;
}

static json_t *decoy_element(void)
{
    unsigned char noise[32];
    vn_cred_random(noise, sizeof(noise));
    char *digest = vn_b64url_sha256(noise, sizeof(noise));
    json_t *el = json_pack("{s:s}", "...", digest);
    free(digest);
    return el;
}

/* Every element of src an array element disclosure ({"...": digest} in
 * dst, in order), with decoy elements at random places among them: a
 * holder can show one driving licence category of several. */
static int make_sd_array(const json_t *src, json_t *dst, vn_buf *out, unsigned decoys_max,
                         unsigned depth)
{
    if (depth > VN_SDJWT_MAX_DEPTH)
        return VN_CRED_ETOOLARGE;
    size_t i;
    json_t *el;
    int rc = 0;
    json_array_foreach(src, i, el)
    {
        json_t *dvalue = disclosed_value(el, out, decoys_max, depth, &rc);
        if (!dvalue)
            return rc;
        char *digest = add_disclosure(NULL, dvalue, out);
        json_array_append_new(dst, json_pack("{s:s}", "...", digest));
        free(digest);
    }
    if (decoys_max) {
        unsigned char r[2];
        vn_cred_random(r, 1);
        for (unsigned k = r[0] % decoys_max + 1; k > 0; k--) {
            vn_cred_random(r + 1, 1);
            json_array_insert_new(dst, r[1] % (json_array_size(dst) + 1), decoy_element());
        }
    }
    return 0;
}

/* Make every member of src a disclosure (appended to out as "~<d>"),
 * nested objects and arrays recursively, and put the digests into dst's
 * _sd. */
static int make_sd(const json_t *src, json_t *dst, vn_buf *out, unsigned decoys_max, unsigned depth)
{
    if (depth > VN_SDJWT_MAX_DEPTH)
        return VN_CRED_ETOOLARGE;
    size_t n = 0;
    char **digests = vn_alloc((json_object_size(src) + 1) * sizeof(char *));
    const char *name;
    json_t *value;
    int rc = 0;
    json_object_foreach((json_t *)src, name, value)
    {
        if (depth ? reserved_inner(name) : reserved_top(name)) {
            rc = VN_CRED_ECONFLICT;
            break;
        }
        json_t *dvalue = disclosed_value(value, out, decoys_max, depth, &rc);
        if (!dvalue)
            break;
        digests[n++] = add_disclosure(name, dvalue, out);
    }
    if (rc != 0) {
        for (size_t i = 0; i < n; i++)
            free(digests[i]);
        free(digests);
        return rc;
    }
    set_sd_array(dst, digests, n, decoys_max);
    return 0;
}

int vn_sdjwt_issue(const vn_sdjwt_issue_params *p, char **out)
{
    *out = NULL;
    if (!p || !p->issuer_key || !vn_cred_key_has_private(p->issuer_key) || !p->iss || !p->vct ||
        !json_is_object(p->claims) || p->iat <= 0)
        return VN_CRED_EINVAL;
    json_t *payload = json_object();
    json_object_set_new(payload, "iss", json_string(p->iss));
    json_object_set_new(payload, "iat", json_integer(p->iat));
    if (p->nbf)
        json_object_set_new(payload, "nbf", json_integer(p->nbf));
    if (p->exp)
        json_object_set_new(payload, "exp", json_integer(p->exp));
    json_object_set_new(payload, "vct", json_string(p->vct));
    if (p->holder_key) {
        json_t *jwk = vn_cred_key_to_jwk(p->holder_key, false);
        if (!jwk) {
            json_decref(payload);
            return VN_CRED_EKEY;
        }
        json_object_set_new(payload, "cnf", json_pack("{s:o}", "jwk", jwk));
    }
    if (p->status_uri)
        json_object_set_new(payload, "status",
                            json_pack("{s:{s:I, s:s}}", "status_list", "idx",
                                      (json_int_t)p->status_idx, "uri", p->status_uri));
    json_object_set_new(payload, "_sd_alg", json_string("sha-256"));
    vn_buf disclosures;
    vn_buf_init(&disclosures);
    int rc = make_sd(p->claims, payload, &disclosures, p->decoys_max, 0);
    char *jwt = NULL;
    if (rc == 0) {
        json_t *header = json_pack("{s:s}", "typ", VN_SDJWT_TYP);
        char *kid = p->kid ? NULL : vn_cred_key_thumbprint(p->issuer_key);
        rc = vn_jws_sign_json(p->issuer_key, header, p->kid ? p->kid : kid, payload, &jwt);
        free(kid);
        json_decref(header);
    }
    if (rc == 0)
        *out = vn_asprintf("%s%s~", jwt, disclosures.data);
    free(jwt);
    vn_buf_free(&disclosures);
    json_decref(payload);
    return rc;
}

/* ---- parsing and the walk ---- */

static void disclosure_clear(vn_sdjwt_disclosure *d)
{
    free(d->encoded);
    free(d->digest);
    free(d->salt);
    free(d->name);
    json_decref(d->value);
    free(d->path);
}

void vn_sdjwt_free(vn_sdjwt *sd)
{
    if (!sd)
        return;
    free(sd->jwt);
    json_decref(sd->header);
    json_decref(sd->payload);
    for (size_t i = 0; i < sd->n_disclosures; i++)
        disclosure_clear(&sd->disclosures[i]);
    free(sd->disclosures);
    free(sd->kb_jwt);
    free(sd);
}

static int decode_disclosure(const char *enc, size_t len, vn_sdjwt_disclosure *d)
{
    memset(d, 0, sizeof(*d));
    unsigned char *raw;
    size_t raw_len;
    if (vn_b64url_decode(enc, len, &raw, &raw_len) != 0)
        return VN_CRED_EDISCLOSURE;
    json_t *arr = vn_cred_json_parse(raw, raw_len);
    free(raw);
    size_t n = json_array_size(arr);
    const char *salt = json_string_value(json_array_get(arr, 0));
    const char *name = n == 3 ? json_string_value(json_array_get(arr, 1)) : NULL;
    /* An empty name would have no claim path of its own. */
    if (!json_is_array(arr) || (n != 2 && n != 3) || !salt || (n == 3 && (!name || !*name)) ||
        (name && reserved_inner(name))) {
        json_decref(arr);
        return VN_CRED_EDISCLOSURE;
    }
    d->encoded = vn_strndup(enc, len);
    d->digest = vn_b64url_sha256(enc, len);
    d->salt = vn_strdup(salt);
    d->name = vn_strdup(name);
    d->value = json_incref(json_array_get(arr, n - 1));
    json_decref(arr);
    return 0;
}

typedef struct walk {
    vn_sdjwt *sd;
    json_t *index; /* digest -> disclosure number */
    json_t *seen;  /* digests met in the payload */
    json_t *paths; /* disclosed claim paths, in walk order */
    /* Where each disclosure sits, for presentation: the names (and array
     * indexes) leading to it, and the disclosure whose value holds it
     * (-1: the signed payload). Paths join names with '.', so a name
     * with a '.' in it could pass for two; the structure cannot. */
    json_t *segs;     /* names leading to where the walk is */
    json_t *segments; /* per disclosure: its names, or null */
    long *parent;
    long current; /* the disclosure being walked into, -1: none */
    int err;
    char detail[160];
} walk;

static json_t *walk_value(walk *w, const json_t *v, const char *path, unsigned depth);

static void walk_fail(walk *w, int err, const char *what)
{
    if (w->err == 0) {
        w->err = err;
        snprintf(w->detail, sizeof(w->detail), "%s", what ? what : "");
    }
}

/* Disclosure d is found where the walk is, under name. */
static void walk_found(walk *w, vn_sdjwt_disclosure *d, const char *name)
{
    size_t i = (size_t)(d - w->sd->disclosures);
    json_array_append_new(w->segs, json_string(name));
    json_array_set_new(w->segments, i, json_deep_copy(w->segs));
    json_array_remove(w->segs, json_array_size(w->segs) - 1);
    w->parent[i] = w->current;
}

/* Walk into d's value as the holder or verifier sees it. */
static json_t *walk_disclosed(walk *w, vn_sdjwt_disclosure *d, const char *name, unsigned depth)
{
    long outer = w->current;
    w->current = (long)(d - w->sd->disclosures);
    json_array_append_new(w->segs, json_string(name));
    json_t *pv = walk_value(w, d->value, d->path, depth + 1);
    json_array_remove(w->segs, json_array_size(w->segs) - 1);
    w->current = outer;
    return pv;
}

/* Walk a plain member or element under name. */
static json_t *walk_plain(walk *w, const json_t *v, const char *path, const char *name,
                          unsigned depth)
{
    json_array_append_new(w->segs, json_string(name));
    json_t *pv = walk_value(w, v, path, depth + 1);
    json_array_remove(w->segs, json_array_size(w->segs) - 1);
    return pv;
}

static char *join_path(const char *path, const char *name)
{
    return *path ? vn_asprintf("%s.%s", path, name) : vn_strdup(name);
}

/* The disclosure a digest names, or NULL (a decoy or not presented). */
static vn_sdjwt_disclosure *walk_digest(walk *w, const json_t *digest)
{
    const char *s = json_string_value(digest);
    if (!s) {
        walk_fail(w, VN_CRED_EMALFORMED, "_sd");
        return NULL;
    }
    if (json_object_get(w->seen, s)) {
        walk_fail(w, VN_CRED_EDUPLICATE, s);
        return NULL;
    }
    json_object_set_new(w->seen, s, json_true());
    json_t *i = json_object_get(w->index, s);
    return i ? &w->sd->disclosures[json_integer_value(i)] : NULL;
}

static json_t *walk_object(walk *w, const json_t *obj, const char *path, unsigned depth)
{
    json_t *out = json_object();
    const char *name;
    json_t *v;
    json_object_foreach((json_t *)obj, name, v)
    {
        if (strcmp(name, "_sd") == 0 || (depth == 0 && strcmp(name, "_sd_alg") == 0))
            continue;
        if (strcmp(name, "...") == 0) {
            walk_fail(w, VN_CRED_EMALFORMED, path);
            break;
        }
        char *p = join_path(path, name);
        json_t *pv = walk_plain(w, v, p, name, depth);
        free(p);
        if (!pv)
            break;
        json_object_set_new(out, name, pv);
    }
    const json_t *sd = json_object_get(obj, "_sd");
    if (sd && !json_is_array(sd))
        walk_fail(w, VN_CRED_EMALFORMED, "_sd");
    size_t i;
    json_t *digest;
    json_array_foreach(sd, i, digest)
    {
        if (w->err)
            break;
        vn_sdjwt_disclosure *d = walk_digest(w, digest);
        if (!d)
            continue;
        if (!d->name) {
            walk_fail(w, VN_CRED_EDISCLOSURE, d->digest);
            break;
        }
        if (json_object_get(obj, d->name) || json_object_get(out, d->name)) {
            walk_fail(w, VN_CRED_ECONFLICT, d->name);
            break;
        }
        free(d->path);
        d->path = join_path(path, d->name);
        json_array_append_new(w->paths, json_string(d->path));
        walk_found(w, d, d->name);
        json_t *pv = walk_disclosed(w, d, d->name, depth);
        if (!pv)
            break;
        json_object_set_new(out, d->name, pv);
    }
    if (w->err) {
        json_decref(out);
        return NULL;
    }
    return out;
}

static json_t *walk_array(walk *w, const json_t *arr, const char *path, unsigned depth)
{
    json_t *out = json_array();
    size_t i;
    json_t *el;
    json_array_foreach(arr, i, el)
    {
        /* Indexes count what the reader sees: undisclosed elements and
         * decoys leave no gap. */
        char idx[24];
        snprintf(idx, sizeof(idx), "%zu", json_array_size(out));
        char *p = join_path(path, idx);
        json_t *dots = json_is_object(el) ? json_object_get(el, "...") : NULL;
        json_t *pv = NULL;
        if (dots && json_object_size(el) != 1) {
            walk_fail(w, VN_CRED_EMALFORMED, p);
        } else if (dots) {
            vn_sdjwt_disclosure *d = walk_digest(w, dots);
            if (d && d->name) {
                walk_fail(w, VN_CRED_EDISCLOSURE, d->digest);
            } else if (d) {
                free(d->path);
                d->path = vn_strdup(p);
                json_array_append_new(w->paths, json_string(p));
                walk_found(w, d, idx);
                pv = walk_disclosed(w, d, idx, depth);
            }
        } else {
            pv = walk_plain(w, el, p, idx, depth);
        }
        free(p);
        if (w->err) {
            json_decref(pv);
            break;
        }
        if (pv)
            json_array_append_new(out, pv);
    }
    if (w->err) {
        json_decref(out);
        return NULL;
    }
    return out;
}

static json_t *walk_value(walk *w, const json_t *v, const char *path, unsigned depth)
{
    if (depth > VN_SDJWT_MAX_DEPTH) {
        walk_fail(w, VN_CRED_ETOOLARGE, path);
        return NULL;
    }
    if (json_is_object(v))
        return walk_object(w, v, path, depth);
    if (json_is_array(v))
        return walk_array(w, v, path, depth);
    return json_incref((json_t *)v);
}

/* Walk sd's payload: claims (new reference) or NULL with w->err set. The
 * caller initialises w and frees its members with walk_done. */
static json_t *walk_run(walk *w, vn_sdjwt *sd)
{
    memset(w, 0, sizeof(*w));
    w->sd = sd;
    w->index = json_object();
    w->seen = json_object();
    w->paths = json_array();
    w->segs = json_array();
    w->segments = json_array();
    w->parent = vn_alloc((sd->n_disclosures + 1) * sizeof(long));
    w->current = -1;
    for (size_t i = 0; i < sd->n_disclosures; i++) {
        json_array_append_new(w->segments, json_null());
        w->parent[i] = -1;
    }
    for (size_t i = 0; i < sd->n_disclosures; i++) {
        free(sd->disclosures[i].path);
        sd->disclosures[i].path = NULL;
    }
    const char *alg = json_string_value(json_object_get(sd->payload, "_sd_alg"));
    if (json_object_get(sd->payload, "_sd_alg") && (!alg || strcmp(alg, "sha-256") != 0)) {
        walk_fail(w, VN_CRED_EALG, "_sd_alg");
        return NULL;
    }
    for (size_t i = 0; i < sd->n_disclosures; i++) {
        const char *digest = sd->disclosures[i].digest;
        if (json_object_get(w->index, digest)) {
            walk_fail(w, VN_CRED_EDUPLICATE, digest);
            return NULL;
        }
        json_object_set_new(w->index, digest, json_integer((json_int_t)i));
    }
    return walk_value(w, sd->payload, "", 0);
}

static void walk_done(walk *w)
{
    json_decref(w->index);
    json_decref(w->seen);
    json_decref(w->paths);
    json_decref(w->segs);
    json_decref(w->segments);
    free(w->parent);
}

/* Split and decode the parts; no walk yet. */
static int split(const char *s, size_t len, vn_sdjwt **out)
{
    *out = NULL;
    if (!s)
        return VN_CRED_EINVAL;
    if (len > VN_SDJWT_MAX_LEN)
        return VN_CRED_ETOOLARGE;
    const char *tilde = memchr(s, '~', len);
    if (!tilde)
        return VN_CRED_EMALFORMED;
    vn_sdjwt *sd = vn_alloc(sizeof(*sd));
    sd->jwt = vn_strndup(s, (size_t)(tilde - s));
    int rc = vn_jws_decode(sd->jwt, strlen(sd->jwt), &sd->header, &sd->payload);
    const char *p = tilde + 1, *end = s + len;
    while (rc == 0) {
        const char *t = memchr(p, '~', (size_t)(end - p));
        if (!t) {
            /* The last part: a KB-JWT, or nothing after the final '~'. */
            if (p < end)
                sd->kb_jwt = vn_strndup(p, (size_t)(end - p));
            break;
        }
        if (t == p) {
            rc = VN_CRED_EMALFORMED;
            break;
        }
        if (sd->n_disclosures == VN_SDJWT_MAX_DISCLOSURES) {
            rc = VN_CRED_ETOOLARGE;
            break;
        }
        sd->disclosures =
            vn_realloc(sd->disclosures, (sd->n_disclosures + 1) * sizeof(vn_sdjwt_disclosure));
        rc = decode_disclosure(p, (size_t)(t - p), &sd->disclosures[sd->n_disclosures]);
        if (rc == 0)
            sd->n_disclosures++;
        p = t + 1;
    }
    if (rc != 0) {
        vn_sdjwt_free(sd);
        return rc;
    }
    *out = sd;
    return 0;
}

int vn_sdjwt_parse(const char *s, size_t len, vn_sdjwt **out)
{
    int rc = split(s, len, out);
    if (rc != 0)
        return rc;
    walk w;
    json_t *claims = walk_run(&w, *out);
    rc = w.err;
    json_decref(claims);
    walk_done(&w);
    if (rc != 0) {
        vn_sdjwt_free(*out);
        *out = NULL;
    }
    return rc;
}

json_t *vn_sdjwt_claims(const vn_sdjwt *sd, json_t **paths)
{
    walk w;
    json_t *claims = walk_run(&w, (vn_sdjwt *)sd);
    if (paths)
        *paths = claims ? json_incref(w.paths) : NULL;
    walk_done(&w);
    return claims;
}

/* ---- presentation ---- */

/* path names the claim at segments or one of the objects or arrays
 * around it. */
static bool path_leads_to(const char *path, const json_t *segments)
{
    vn_buf b;
    vn_buf_init(&b);
    bool match = false;
    size_t i;
    const json_t *seg;
    json_array_foreach(segments, i, seg)
    {
        if (i)
            vn_buf_append_str(&b, ".");
        vn_buf_append_str(&b, json_string_value(seg));
        if (strcmp(b.data, path) == 0) {
            match = true;
            break;
        }
    }
    vn_buf_free(&b);
    return match;
}

/* The value at path below v. A member name may itself contain '.'
 * (claim names can be URIs): the longest name that leads somewhere wins. */
static const json_t *claim_at(const json_t *v, const char *path, unsigned depth)
{
    if (depth > VN_SDJWT_MAX_DEPTH)
        return NULL;
    size_t len = strlen(path);
    if (json_is_object(v)) {
        const json_t *whole = json_object_get(v, path);
        if (whole)
            return whole;
        for (size_t cut = len; cut-- > 0;) {
            if (path[cut] != '.')
                continue;
            char *name = vn_strndup(path, cut);
            const json_t *m = json_object_get(v, name);
            free(name);
            const json_t *found = m ? claim_at(m, path + cut + 1, depth + 1) : NULL;
            if (found)
                return found;
        }
        return NULL;
    }
    if (json_is_array(v) && path[0] >= '0' && path[0] <= '9') {
        char *end;
        unsigned long i = strtoul(path, &end, 10);
        const json_t *el = json_array_get(v, i);
        if (!el || (*end != '\0' && *end != '.'))
            return NULL;
        return *end ? claim_at(el, end + 1, depth + 1) : el;
    }
    return NULL;
}

const json_t *vn_sdjwt_claim_get(const json_t *claims, const char *path)
{
    return claims && path && *path ? claim_at(claims, path, 0) : NULL;
}

static int cnf_key(const json_t *payload, vn_cred_key **out)
{
    *out = NULL;
    const json_t *jwk = json_object_get(json_object_get(payload, "cnf"), "jwk");
    if (!jwk)
        return VN_CRED_ENOCNF;
    return vn_cred_key_from_jwk(jwk, out) == 0 ? 0 : VN_CRED_ENOCNF;
}

static bool paths_ok(const vn_sdjwt_present_params *p)
{
    for (size_t k = 0; k < p->n_paths; k++)
        if (!p->paths || !p->paths[k] || !*p->paths[k])
            return false;
    return true;
}

static int make_kb(const vn_sdjwt_present_params *p, const char *presented, char **kb)
{
    json_t *header = json_pack("{s:s}", "typ", VN_SDJWT_KB_TYP);
    char *sd_hash = vn_b64url_sha256(presented, strlen(presented));
    json_t *payload = json_pack("{s:I, s:s, s:s, s:s}", "iat", (json_int_t)p->iat, "aud", p->aud,
                                "nonce", p->nonce, "sd_hash", sd_hash);
    free(sd_hash);
    int rc = vn_jws_sign_json(p->holder_key, header, NULL, payload, kb);
    json_decref(header);
    json_decref(payload);
    return rc;
}

int vn_sdjwt_present(const char *sdjwt, size_t len, const vn_sdjwt_present_params *p, char **out,
                     char **bad_path)
{
    *out = NULL;
    if (bad_path)
        *bad_path = NULL;
    if (!p || (p->n_paths && !p->paths) || !paths_ok(p) ||
        (p->holder_key && (!p->aud || !p->nonce || !vn_cred_key_has_private(p->holder_key))))
        return VN_CRED_EINVAL;
    vn_sdjwt *sd;
    int rc = split(sdjwt, len, &sd);
    if (rc != 0)
        return rc;
    walk w;
    json_t *claims = walk_run(&w, sd);
    rc = w.err;
    bool *chosen = vn_alloc(sd->n_disclosures + 1);
    for (size_t k = 0; k < p->n_paths && rc == 0; k++) {
        bool found = false;
        for (size_t i = 0; i < sd->n_disclosures; i++) {
            const json_t *segments = json_array_get(w.segments, i);
            if (json_is_array(segments) && path_leads_to(p->paths[k], segments))
                chosen[i] = found = true;
        }
        if (!found && !vn_sdjwt_claim_get(claims, p->paths[k])) {
            rc = VN_CRED_ENOCLAIM;
            if (bad_path)
                *bad_path = vn_strdup(p->paths[k]);
        }
    }
    /* A nested claim needs the disclosures of the objects around it. */
    for (size_t i = 0; i < sd->n_disclosures && rc == 0; i++)
        if (chosen[i])
            for (long j = w.parent[i]; j >= 0; j = w.parent[j])
                chosen[j] = true;
    vn_cred_key *cnf = NULL;
    if (rc == 0 && p->holder_key &&
        (cnf_key(sd->payload, &cnf) != 0 || !vn_cred_key_equal(cnf, p->holder_key)))
        rc = VN_CRED_ENOCNF;
    vn_cred_key_free(cnf);
    if (rc == 0) {
        vn_buf b;
        vn_buf_init(&b);
        vn_buf_append_str(&b, sd->jwt);
        for (size_t i = 0; i < sd->n_disclosures; i++)
            if (chosen[i])
                vn_buf_printf(&b, "~%s", sd->disclosures[i].encoded);
        vn_buf_append_str(&b, "~");
        char *kb = NULL;
        if (p->holder_key)
            rc = make_kb(p, b.data, &kb);
        if (kb)
            vn_buf_append_str(&b, kb);
        free(kb);
        if (rc == 0)
            *out = vn_buf_steal(&b, NULL);
        vn_buf_free(&b);
    }
    json_decref(claims);
    walk_done(&w);
    free(chosen);
    vn_sdjwt_free(sd);
    return rc;
}

/* ---- verification ---- */

static int fail(vn_sdjwt_verified *r, int err, const char *what)
{
    snprintf(r->detail, sizeof(r->detail), "%s", what ? what : "");
    return err;
}

/* Seconds from a JSON number (a NumericDate may have a fraction), within
 * +-2^62 so that adding a leeway or an age cannot overflow. */
static bool seconds(const json_t *v, int64_t *t)
{
    const double limit = 4611686018427387904.0; /* 2^62 */
    if (json_is_integer(v) && json_integer_value(v) < (json_int_t)limit &&
        json_integer_value(v) > -(json_int_t)limit) {
        *t = (int64_t)json_integer_value(v);
        return true;
    }
    if (json_is_real(v) && json_real_value(v) < limit && json_real_value(v) > -limit) {
        *t = (int64_t)json_real_value(v);
        return true;
    }
    return false;
}

/* A NumericDate member: true with *t, false when absent; *bad when it is
 * present but not a number in range. */
static bool numeric_date(const json_t *obj, const char *name, int64_t *t, bool *bad)
{
    const json_t *v = json_object_get(obj, name);
    if (!v)
        return false;
    if (!seconds(v, t)) {
        *bad = true;
        return false;
    }
    return true;
}

static int check_times(const json_t *payload, const vn_sdjwt_verify_params *p, int64_t now,
                       vn_sdjwt_verified *r)
{
    bool bad = false;
    int64_t t;
    if (numeric_date(payload, "exp", &t, &bad)) {
        r->exp = t;
        if (now - p->leeway > t)
            return fail(r, VN_CRED_EEXPIRED, "exp");
    }
    if (numeric_date(payload, "nbf", &t, &bad) && now + p->leeway < t)
        return fail(r, VN_CRED_ENOTYET, "nbf");
    if (numeric_date(payload, "iat", &t, &bad)) {
        r->iat = t;
        if (now + p->leeway < t)
            return fail(r, VN_CRED_ENOTYET, "iat");
    }
    return bad ? fail(r, VN_CRED_EMALFORMED, "exp/nbf/iat") : 0;
}

static int check_kb(const vn_sdjwt *sd, const char *s, size_t len, const vn_sdjwt_verify_params *p,
                    int64_t now, vn_sdjwt_verified *r)
{
    if (!sd->kb_jwt)
        return p->require_kb ? fail(r, VN_CRED_EKBMISSING, "") : 0;
    if (!r->holder_key)
        return fail(r, VN_CRED_ENOCNF, "cnf.jwk");
    json_t *header = NULL, *payload = NULL;
    int rc = vn_jws_verify(sd->kb_jwt, strlen(sd->kb_jwt), r->holder_key, &header, &payload);
    if (rc == VN_CRED_ESIGNATURE || rc == VN_CRED_EALG)
        return fail(r, VN_CRED_EKBSIG, "kb+jwt");
    if (rc != 0)
        return fail(r, VN_CRED_EKB, "kb+jwt");
    const char *typ = json_string_value(json_object_get(header, "typ"));
    const char *aud = json_string_value(json_object_get(payload, "aud"));
    const char *nonce = json_string_value(json_object_get(payload, "nonce"));
    const char *sd_hash = json_string_value(json_object_get(payload, "sd_hash"));
    int64_t iat = 0;
    bool iat_ok = seconds(json_object_get(payload, "iat"), &iat);
    /* sd_hash covers everything before the KB-JWT, the last '~' included. */
    size_t presented = len - strlen(sd->kb_jwt);
    char *expect = vn_b64url_sha256(s, presented);
    int64_t max_age = p->kb_max_age ? p->kb_max_age : DEFAULT_KB_MAX_AGE;
    if (!typ || strcmp(typ, VN_SDJWT_KB_TYP) != 0)
        rc = fail(r, VN_CRED_EKB, "typ");
    else if (!aud || !nonce || !sd_hash || !iat_ok)
        rc = fail(r, VN_CRED_EKB, !aud ? "aud" : !nonce ? "nonce" : !sd_hash ? "sd_hash" : "iat");
    else if (strcmp(sd_hash, expect) != 0)
        rc = fail(r, VN_CRED_ESDHASH, sd_hash);
    else if (p->aud && strcmp(aud, p->aud) != 0)
        rc = fail(r, VN_CRED_EAUD, aud);
    else if (p->nonce && strcmp(nonce, p->nonce) != 0)
        rc = fail(r, VN_CRED_ENONCE, nonce);
    else if (iat > now + p->leeway || iat < now - max_age - p->leeway)
        rc = fail(r, VN_CRED_ESTALE, "iat");
    if (rc == 0) {
        r->key_bound = true;
        r->kb_iat = iat;
        snprintf(r->sd_hash, sizeof(r->sd_hash), "%s", sd_hash);
        snprintf(r->nonce, sizeof(r->nonce), "%s", nonce);
    }
    free(expect);
    json_decref(header);
    json_decref(payload);
    return rc;
}

static int check_status(const json_t *payload, const vn_sdjwt_verify_params *p,
                        vn_sdjwt_verified *r)
{
    const json_t *status = json_object_get(payload, "status");
    if (!status || !p->status)
        return 0;
    const json_t *sl = json_object_get(status, "status_list");
    const json_t *idx = json_object_get(sl, "idx");
    const char *uri = json_string_value(json_object_get(sl, "uri"));
    if (!json_is_integer(idx) || json_integer_value(idx) < 0 || !uri)
        return fail(r, VN_CRED_ESTATUS, "status.status_list");
    int v = p->status(uri, (uint64_t)json_integer_value(idx), p->status_ud);
    if (v < 0)
        return fail(r, v, uri);
    r->status = v;
    if (v == 1)
        return fail(r, VN_CRED_EREVOKED, uri);
    if (v == 2)
        return fail(r, VN_CRED_ESUSPENDED, uri);
    return v == 0 ? 0 : fail(r, VN_CRED_ESTATUS, uri);
}

/* The issuer's signature over the JWT: header typ and alg, iss, key. */
static int check_issuer(const vn_sdjwt *sd, const vn_sdjwt_verify_params *p, vn_sdjwt_verified *r)
{
    const char *typ = json_string_value(json_object_get(sd->header, "typ"));
    /* "vc+sd-jwt" is the type's name before draft 06; still issued by some. */
    if (!typ || (strcmp(typ, VN_SDJWT_TYP) != 0 && strcmp(typ, "vc+sd-jwt") != 0))
        return fail(r, VN_CRED_ETYP, typ ? typ : "typ");
    vn_cred_alg alg;
    const char *alg_name = json_string_value(json_object_get(sd->header, "alg"));
    if (vn_cred_alg_parse(alg_name, &alg) != 0)
        return fail(r, VN_CRED_EALG, alg_name ? alg_name : "alg");
    const char *iss = json_string_value(json_object_get(sd->payload, "iss"));
    if (!iss)
        return fail(r, VN_CRED_EISSUER, "iss");
    const char *kid = json_string_value(json_object_get(sd->header, "kid"));
    const vn_cred_key *key = p->issuer_key(iss, kid, alg, p->issuer_ud);
    if (!key)
        return fail(r, VN_CRED_EISSUER, iss);
    int rc = vn_jws_verify(sd->jwt, strlen(sd->jwt), key, NULL, NULL);
    if (rc == VN_CRED_EALG || rc == VN_CRED_ESIGNATURE)
        return fail(r, VN_CRED_ESIGNATURE, iss);
    return rc ? fail(r, rc, "jwt") : 0;
}

int vn_sdjwt_verify(const char *s, size_t len, const vn_sdjwt_verify_params *p,
                    vn_sdjwt_verified *r)
{
    memset(r, 0, sizeof(*r));
    r->status = -1;
    if (!s || !p || !p->issuer_key)
        return fail(r, VN_CRED_EINVAL, "");
    int64_t now = p->now ? p->now : (int64_t)time(NULL);
    vn_sdjwt *sd = NULL;
    int rc = split(s, len, &sd);
    if (rc != 0)
        return fail(r, rc, rc == VN_CRED_EDISCLOSURE ? "disclosure" : "sd-jwt");
    rc = check_issuer(sd, p, r);
    const char *vct = json_string_value(json_object_get(sd->payload, "vct"));
    if (rc == 0 && (!vct || (p->vct && strcmp(vct, p->vct) != 0)))
        rc = fail(r, VN_CRED_EVCT, vct ? vct : "vct");
    if (rc == 0)
        rc = check_times(sd->payload, p, now, r);
    walk w;
    json_t *claims = NULL;
    if (rc == 0) {
        claims = walk_run(&w, sd);
        if (w.err)
            rc = fail(r, w.err, w.detail);
        for (size_t i = 0; rc == 0 && i < sd->n_disclosures; i++)
            if (!sd->disclosures[i].path)
                rc = fail(r, VN_CRED_EUNSIGNED, sd->disclosures[i].digest);
        if (rc == 0)
            r->disclosed = json_incref(w.paths);
        walk_done(&w);
    }
    if (rc == 0 && json_object_get(sd->payload, "cnf") && cnf_key(sd->payload, &r->holder_key) != 0)
        rc = fail(r, VN_CRED_ENOCNF, "cnf.jwk");
    if (rc == 0)
        rc = check_kb(sd, s, len, p, now, r);
    if (rc == 0)
        rc = check_status(sd->payload, p, r);
    if (rc == 0) {
        r->claims = claims;
        r->iss = json_string_value(json_object_get(claims, "iss"));
        r->vct = json_string_value(json_object_get(claims, "vct"));
    } else {
        json_decref(claims);
    }
    vn_sdjwt_free(sd);
    return rc;
}

void vn_sdjwt_verified_free(vn_sdjwt_verified *r)
{
    if (!r)
        return;
    json_decref(r->claims);
    json_decref(r->disclosed);
    vn_cred_key_free(r->holder_key);
    r->claims = r->disclosed = NULL;
    r->holder_key = NULL;
    r->iss = r->vct = NULL;
}
