/*
 * fuzz_jid.c - libFuzzer target for JID parsing and normalisation
 * (jid.c: RFC 7622 with PRECIS profiles and IDNA2008 via libidn2).
 *
 * Besides memory safety it checks the properties callers rely on: a
 * parsed JID's canonical form parses again to the same JID (normalisation
 * is idempotent), its bare form has no resource, vn_jid_normalize agrees
 * with vn_jid_parse, and rebuilding it from its parts gives it back.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "log_internal.h"
#include "vestnik/jid.h"
#include "vestnik/util.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    vn_log_setup(VN_LOG_ERROR, false, "fuzz_jid");
    return 0;
}

static void check_parsed(const vn_jid *jid, const char *input)
{
    vn_jid *again = vn_jid_parse(jid->full);
    if (!again || !vn_jid_equal(jid, again) || strcmp(again->full, jid->full) != 0)
        abort(); /* canonical form is not a fixed point */
    vn_jid_free(again);

    vn_jid *bare = vn_jid_bare_copy(jid);
    if (!bare || bare->resource || strcmp(bare->full, jid->bare) != 0 ||
        !vn_jid_bare_equal(bare, jid))
        abort();
    vn_jid_free(bare);

    vn_jid *rebuilt = vn_jid_make(jid->local, jid->domain, jid->resource);
    if (!rebuilt || !vn_jid_equal(rebuilt, jid))
        abort();
    vn_jid_free(rebuilt);

    char *norm = vn_jid_normalize(input);
    if (!norm || strcmp(norm, jid->full) != 0)
        abort();
    free(norm);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *input = vn_strndup((const char *)data, size);
    vn_jid *jid = vn_jid_parse(input);

    if (jid) {
        check_parsed(jid, input);
        vn_jid_free(jid);
    } else {
        char *norm = vn_jid_normalize(input);
        if (norm)
            abort(); /* normalize accepted what parse refused */
    }
    /* Each part's own preparation, on the whole input. */
    free(vn_jid_prep_local(input));
    free(vn_jid_prep_domain(input));
    free(vn_jid_prep_resource(input));
    free(input);
    return 0;
}
