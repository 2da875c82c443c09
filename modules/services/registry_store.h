/*
 * registry_store.h - what the service registry keeps in the store, shared
 * by mod_services and vestnikctl (which changes it directly when no server
 * runs, else asks the server over the admin socket).
 *
 * One document per service and local host, under that host's store:
 *   (host, "", "services", SERVICE)  the record, as XML:
 *     <service xmlns='urn:vestnik:services:0' jid='SERVICE'
 *              verified='true' suspended='false'
 *              sent='N' received='N' refused='N' broadcasts='N'>
 *       <name/> <description/> <category/> <avatar/> <operator/> <privacy/>
 *     </service>
 * SERVICE is a component's domain (every JID at it speaks for it) or a bot
 * account's bare JID. The profile (name ... privacy) is the service's own,
 * set over the services bus; verified and suspended are the server
 * operator's (vestnikctl services verify/suspend); the counters are the
 * audit's. A changed name or operator takes the verified badge away again.
 *
 * The audit's log of each service (audit.c) is an archive beside it:
 *   (host, "", "service-audit/" SERVICE)  with the user (or audience),
 *     "KIND\tTYPE\tID\tBYTES[\tRECIPIENTS]"  KIND: in, out, refused, broadcast
 *
 * Plain store calls, no server needed: usable on the loop and in vestnikctl.
 */
#ifndef VESTNIK_REGISTRY_STORE_H
#define VESTNIK_REGISTRY_STORE_H

#include <stdbool.h>
#include <stdint.h>

#include <vestnik/store.h>

#define NS_SERVICES "urn:vestnik:services:0"
#define REGISTRY_STORE "services"
#define AUDIT_ARCHIVE_PREFIX "service-audit/"

typedef struct service_record {
    char *jid;
    char *name, *description, *category, *avatar, *operator_name, *privacy;
    bool verified, suspended;
    uint64_t sent, received, refused, broadcasts;
} service_record;

/* VN_STORE_OK (r filled; free with service_record_free), NOT_FOUND or ERROR. */
int service_record_get(vn_store *s, const char *host, const char *jid, service_record *r);
int service_record_put(vn_store *s, const char *host, const service_record *r);
void service_record_free(service_record *r);
/* r's profile fields from a <service/> or <profile/> element's children
 * (the others are kept); false if name or category is missing or a value
 * is longer than its limit. */
struct vn_stanza;
bool service_record_set_profile(service_record *r, const struct vn_stanza *profile);
/* Append the profile's children (name ... privacy) to el. */
void service_record_add_profile(const service_record *r, struct vn_stanza *el);

typedef bool (*service_record_cb)(const service_record *r, void *ud);
/* Each service of host, in JID order. */
int service_record_foreach(vn_store *s, const char *host, service_record_cb cb, void *ud);

/* The newest limit entries of a service's log, newest first, one line each
 * ("TIME\tWITH\tKIND\tTYPE\tID\tBYTES[\tRECIPIENTS]\n"), appended to out.
 * VN_STORE_OK or ERROR. */
struct vn_buf;
int service_log_lines(vn_store *s, const char *host, const char *jid, size_t limit,
                      struct vn_buf *out);

#endif
