/*
 * cred_error.h - the one error space of the credentials core.
 *
 * Every function of the credentials core (keys, JWS, SD-JWT, status lists,
 * QR, HTTP) returns 0 or one of these negative codes, in the libuv manner,
 * so a caller can tell a tampered disclosure from a wrong nonce from a
 * revoked credential and answer each with the right stanza or HTTP error.
 * Memory exhaustion is not among them: allocation aborts (vestnik/util.h).
 */
#ifndef VN_CRED_ERROR_H
#define VN_CRED_ERROR_H

typedef enum vn_cred_err {
    VN_CRED_OK = 0,
    /* Input that is not what it claims to be. */
    VN_CRED_EINVAL = -1,     /* a caller's argument is missing or out of range */
    VN_CRED_EMALFORMED = -2, /* not base64url, not JSON, not a JWS/SD-JWT */
    VN_CRED_ETOOLARGE = -3,  /* over a size limit (see the function's doc) */
    VN_CRED_EALG = -4,       /* unsupported or mismatching algorithm ("alg", "_sd_alg") */
    VN_CRED_EKEY = -5,       /* a key (PEM, JWK) that cannot be used */
    VN_CRED_ECRYPTO = -6,    /* OpenSSL failed where it should not */
    VN_CRED_EUNWRAP = -7,    /* wrapped key: wrong secret, wrong owner or altered */
    VN_CRED_EIO = -8,        /* a file could not be read or written (errno kept) */
    /* The issuer-signed JWT. */
    VN_CRED_ETYP = -10,       /* header typ is not the expected one */
    VN_CRED_EISSUER = -11,    /* iss unknown: no trusted key for it */
    VN_CRED_ESIGNATURE = -12, /* issuer signature does not verify */
    VN_CRED_EVCT = -13,       /* vct missing or not the expected type */
    VN_CRED_EEXPIRED = -14,   /* exp is past (beyond the leeway) */
    VN_CRED_ENOTYET = -15,    /* nbf or iat in the future (beyond the leeway) */
    /* Disclosures. */
    VN_CRED_EDISCLOSURE = -20, /* a disclosure that is not a valid [salt, name, value] */
    VN_CRED_EUNSIGNED = -21,   /* a disclosure whose digest the issuer never signed: tampered */
    VN_CRED_EDUPLICATE = -22,  /* a digest or a disclosure present twice */
    VN_CRED_ECONFLICT = -23,   /* a disclosed name clashes with a plain claim or is reserved */
    VN_CRED_ENOCLAIM = -24,    /* a claim asked for is not in the credential */
    /* Key binding. */
    VN_CRED_EKBMISSING = -30, /* no key-binding JWT where one is required */
    VN_CRED_EKB = -31,        /* KB-JWT malformed, wrong typ, or missing a claim */
    VN_CRED_EKBSIG = -32,     /* KB-JWT signature does not verify with cnf.jwk */
    VN_CRED_ENOCNF = -33,     /* the credential has no usable cnf.jwk to bind to */
    VN_CRED_ESDHASH = -34,    /* sd_hash is not the hash of what was presented */
    VN_CRED_EAUD = -35,       /* aud is not the expected verifier */
    VN_CRED_ENONCE = -36,     /* nonce is not the expected one */
    VN_CRED_ESTALE = -37,     /* KB-JWT iat outside the freshness window */
    /* Status. */
    VN_CRED_ESTATUS = -40,    /* status list unavailable, malformed or index out of range */
    VN_CRED_EREVOKED = -41,   /* status 1 (invalid): revoked by the issuer */
    VN_CRED_ESUSPENDED = -42, /* status 2: suspended by the issuer */
    /* Rendering. */
    VN_CRED_EQR = -50, /* text does not fit in a QR code */
} vn_cred_err;

/* An English sentence for a person, marked N_() for po/: translate it with
 * vn_tr(lang, vn_cred_strerror(e)) before showing it. Never NULL. */
const char *vn_cred_strerror(int err);

/* A stable lower-case token for machines ("revoked", "wrong_nonce",
 * "unsigned_disclosure", ...): the JSON "error" of HTTP bodies and of the
 * ad-hoc "Check a presentation" result. Never NULL; "unknown" for codes
 * not listed above. */
const char *vn_cred_errname(int err);

#endif
