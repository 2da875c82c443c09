/*
 * cred_error.c - texts and tokens of the credentials core's error codes.
 *
 * One table, so that the sentence a person reads and the token a machine
 * matches can never drift apart from the code (cred_error.h).
 */
#include "cred_error.h"

#include <stddef.h>
#include <vestnik/i18n.h>

static const struct {
    int code;
    const char *name;
    const char *text;
} errors[] = {
    {VN_CRED_OK, "ok", N_("No error.")},
    {VN_CRED_EINVAL, "invalid_argument", N_("A required value is missing or out of range.")},
    {VN_CRED_EMALFORMED, "malformed", N_("The document is malformed.")},
    {VN_CRED_ETOOLARGE, "too_large", N_("The document is too large.")},
    {VN_CRED_EALG, "unsupported_algorithm",
     N_("The signature or hash algorithm is not supported.")},
    {VN_CRED_EKEY, "invalid_key", N_("The key cannot be used.")},
    {VN_CRED_ECRYPTO, "crypto_failure", N_("A cryptographic operation failed.")},
    {VN_CRED_EUNWRAP, "unwrap_failed", N_("The stored key cannot be decrypted.")},
    {VN_CRED_EIO, "io_error", N_("A key file could not be read or written.")},
    {VN_CRED_ETYP, "wrong_type", N_("The document is not of the expected type.")},
    {VN_CRED_EISSUER, "unknown_issuer", N_("The issuer is not trusted.")},
    {VN_CRED_ESIGNATURE, "invalid_signature", N_("The issuer's signature is not valid.")},
    {VN_CRED_EVCT, "wrong_credential_type", N_("The credential is not of the expected type.")},
    {VN_CRED_EEXPIRED, "expired", N_("The credential has expired.")},
    {VN_CRED_ENOTYET, "not_yet_valid", N_("The credential is not valid yet.")},
    {VN_CRED_EDISCLOSURE, "malformed_disclosure", N_("A disclosed claim is malformed.")},
    {VN_CRED_EUNSIGNED, "unsigned_disclosure",
     N_("A disclosed claim was not signed by the issuer: the presentation was tampered with.")},
    {VN_CRED_EDUPLICATE, "duplicate_disclosure", N_("A claim is disclosed more than once.")},
    {VN_CRED_ECONFLICT, "conflicting_claim", N_("A disclosed claim conflicts with another claim.")},
    {VN_CRED_ENOCLAIM, "claim_not_found",
     N_("The credential does not contain the requested claim.")},
    {VN_CRED_EKBMISSING, "missing_key_binding",
     N_("The presentation is not bound to the holder's key.")},
    {VN_CRED_EKB, "malformed_key_binding", N_("The holder's key binding is malformed.")},
    {VN_CRED_EKBSIG, "invalid_key_binding", N_("The holder's key binding signature is not valid.")},
    {VN_CRED_ENOCNF, "no_holder_key", N_("The credential is not bound to this holder key.")},
    {VN_CRED_ESDHASH, "sd_hash_mismatch",
     N_("The key binding does not cover the presented claims.")},
    {VN_CRED_EAUD, "wrong_audience", N_("The presentation was made for another verifier.")},
    {VN_CRED_ENONCE, "wrong_nonce", N_("The presentation answers another request (wrong nonce).")},
    {VN_CRED_ESTALE, "stale_presentation", N_("The presentation is too old or from the future.")},
    {VN_CRED_ESTATUS, "status_unavailable", N_("The credential's status cannot be checked.")},
    {VN_CRED_EREVOKED, "revoked", N_("The credential has been revoked.")},
    {VN_CRED_ESUSPENDED, "suspended", N_("The credential is suspended.")},
    {VN_CRED_EQR, "qr_too_large", N_("The text does not fit in a QR code.")},
};

static size_t find(int err)
{
    for (size_t i = 0; i < sizeof(errors) / sizeof(errors[0]); i++)
        if (errors[i].code == err)
            return i;
    return (size_t)-1;
}

const char *vn_cred_strerror(int err)
{
    size_t i = find(err);
    return i == (size_t)-1 ? N_("Unknown error.") : errors[i].text;
}

const char *vn_cred_errname(int err)
{
    size_t i = find(err);
    return i == (size_t)-1 ? "unknown" : errors[i].name;
}
