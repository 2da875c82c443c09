/*
 * store_xep0227.h - the accounts of a store as XEP-0227 (Portable
 * Import/Export Format, urn:xmpp:pie:0) files: `vestnikctl export
 * --format xep0227` and `import --format xep0227`, to move users between
 * vestnik and another server (Prosody, ejabberd) rather than between two
 * vestnik stores (store_dump.c does that, losslessly).
 */
#ifndef VESTNIK_STORE_XEP0227_H
#define VESTNIK_STORE_XEP0227_H

#include <stdio.h>

#include "vestnik/store.h"

/* Every account of the hosts named, with its SCRAM credentials, roster,
 * pending subscription requests, vCard, private XML, offline messages and
 * MAM archive. 0, or -1 with a message in err. */
int vn_xep0227_export(vn_store *s, const char *const *hosts, size_t n_hosts, FILE *out,
                      vn_buf *err);

/* Creates the accounts of a XEP-0227 file in the store (path names it in
 * messages, and the files it includes are found beside it): SCRAM
 * credentials as they are, or a plaintext password hashed with
 * iterations. A <host/>
 * that is not one of hosts, or an account that already exists, stops the
 * import (what was written before stays; import into a fresh store).
 * With a loop attached to the store (vn_store_attach_loop), writes are
 * grouped, IMPORT_BATCH to a commit, instead of one commit each.
 * 0, or -1 with a message in err; *users gets the accounts created. */
int vn_xep0227_import(vn_store *s, const char *const *hosts, size_t n_hosts, unsigned iterations,
                      FILE *in, const char *path, size_t *users, vn_buf *err);

#endif
