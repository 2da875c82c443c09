/*
 * jid.h - XMPP addresses per RFC 7622.
 *
 * Every JID that is compared, stored or used as a routing key in vestnik
 * has been through vn_jid_parse and is therefore in canonical form:
 * localpart per the PRECIS UsernameCaseMapped profile, domainpart as a
 * lower-case NFC U-label without trailing dot (IDNA2008 via libidn2),
 * resourcepart per the OpaqueString profile. Each part is 1..1023 bytes.
 */
#ifndef VESTNIK_JID_H
#define VESTNIK_JID_H

#include <stdbool.h>

typedef struct vn_jid {
    char *local;    /* NULL if absent */
    char *domain;   /* never NULL */
    char *resource; /* NULL if absent */
    char *full;     /* canonical string form of the whole JID */
    char *bare;     /* canonical local@domain (or domain) */
} vn_jid;

/* Parse and normalise; NULL if the string is not a valid JID. */
vn_jid *vn_jid_parse(const char *str);
/* Build from parts (each normalised); local/resource may be NULL. */
vn_jid *vn_jid_make(const char *local, const char *domain, const char *resource);
vn_jid *vn_jid_copy(const vn_jid *jid);
vn_jid *vn_jid_bare_copy(const vn_jid *jid); /* without resource */
void vn_jid_free(vn_jid *jid);

bool vn_jid_equal(const vn_jid *a, const vn_jid *b);      /* full comparison */
bool vn_jid_bare_equal(const vn_jid *a, const vn_jid *b); /* ignoring resource */

/* Normalise a single part; malloc'd canonical form or NULL if invalid. */
char *vn_jid_prep_local(const char *local);
char *vn_jid_prep_domain(const char *domain);
char *vn_jid_prep_resource(const char *resource);

/* Normalise a JID string in one go: malloc'd canonical form or NULL. */
char *vn_jid_normalize(const char *str);

#endif
