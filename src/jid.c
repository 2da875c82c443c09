/*
 * jid.c - parsing and normalising XMPP addresses (RFC 7622).
 *
 * The localpart is enforced with the PRECIS UsernameCaseMapped profile
 * (RFC 8265 §3.3) plus XMPP's own exclusions, the resourcepart with the
 * OpaqueString profile (RFC 8265 §4.2) and the domainpart with IDNA2008
 * through libidn2. The PRECIS derived property of a code point (RFC 8264
 * §8) is computed from libunistring's character database; the only
 * literal code points here are the protocol's own exception lists.
 */
#include "vestnik/jid.h"

#include <arpa/inet.h>
#include <idn2.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unicase.h>
#include <unictype.h>
#include <uninorm.h>
#include <unistr.h>

#include "vestnik/util.h"

#define JID_PART_MAX 1023
#define DNS_LABEL_MAX 63

/* RFC 8264 §8. ID_DISALLOWED is valid in the FreeformClass only. */
typedef enum {
    PRECIS_PVALID,
    PRECIS_ID_DISALLOWED,
    PRECIS_CONTEXTJ,
    PRECIS_CONTEXTO,
    PRECIS_DISALLOWED,
} precis_property;

typedef enum { PRECIS_IDENTIFIER_CLASS, PRECIS_FREEFORM_CLASS } precis_class;

/* ---- PRECIS derived property ---- */

/* Exceptions (F), RFC 8264 §9.6, listed in RFC 5892 §2.6. */
static bool precis_exception(ucs4_t cp, precis_property *prop)
{
    switch (cp) {
    case 0x00DF:
    case 0x03C2:
    case 0x06FD:
    case 0x06FE:
    case 0x0F0B:
    case 0x3007: *prop = PRECIS_PVALID; return true;
    case 0x00B7:
    case 0x0375:
    case 0x05F3:
    case 0x05F4:
    case 0x30FB: *prop = PRECIS_CONTEXTO; return true;
    case 0x0640:
    case 0x07FA:
    case 0x302E:
    case 0x302F:
    case 0x303B: *prop = PRECIS_DISALLOWED; return true;
    default: break;
    }
    if ((cp >= 0x0660 && cp <= 0x0669) || (cp >= 0x06F0 && cp <= 0x06F9)) {
        *prop = PRECIS_CONTEXTO;
        return true;
    }
    if (cp >= 0x3031 && cp <= 0x3035) {
        *prop = PRECIS_DISALLOWED;
        return true;
    }
    return false;
}

/* OldHangulJamo (I): Hangul_Syllable_Type L, V or T, which are exactly
 * the assigned code points of the "Hangul Jamo*" blocks. */
static bool is_old_hangul_jamo(ucs4_t cp)
{
    const uc_block_t *block = uc_block(cp);
    return block && strncmp(block->name, "Hangul Jamo", 11) == 0;
}

/* HasCompat (Q): toNFKC(cp) != cp. */
static bool has_compat(ucs4_t cp)
{
    ucs4_t decomposition[UC_DECOMPOSITION_MAX_LENGTH];
    ucs4_t buf[32];
    size_t len = sizeof buf / sizeof buf[0];
    int tag;

    if (uc_decomposition(cp, &tag, decomposition) < 0)
        return false;
    ucs4_t *nfkc = u32_normalize(UNINORM_NFKC, &cp, 1, buf, &len);
    bool changed = !nfkc || len != 1 || nfkc[0] != cp;
    if (nfkc != buf)
        free(nfkc);
    return changed;
}

static precis_property precis_derive(ucs4_t cp)
{
    precis_property prop;

    if (precis_exception(cp, &prop))
        return prop;
    if (cp >= 0x21 && cp <= 0x7E) /* ASCII7 (K) */
        return PRECIS_PVALID;
    if (uc_is_general_category(cp, UC_CATEGORY_Cn)) /* Unassigned (J), noncharacters */
        return PRECIS_DISALLOWED;
    if (uc_is_property_join_control(cp))
        return PRECIS_CONTEXTJ;
    if (is_old_hangul_jamo(cp) || uc_is_property_default_ignorable_code_point(cp) ||
        uc_is_general_category(cp, UC_CATEGORY_Cc))
        return PRECIS_DISALLOWED;
    if (has_compat(cp))
        return PRECIS_ID_DISALLOWED;
    if (uc_is_general_category_withtable(cp, UC_CATEGORY_MASK_Ll | UC_CATEGORY_MASK_Lu |
                                                 UC_CATEGORY_MASK_Lo | UC_CATEGORY_MASK_Nd |
                                                 UC_CATEGORY_MASK_Lm | UC_CATEGORY_MASK_Mn |
                                                 UC_CATEGORY_MASK_Mc))
        return PRECIS_PVALID;
    /* OtherLetterDigits (R), Spaces (N), Symbols (O), Punctuation (P). */
    if (uc_is_general_category_withtable(cp, UC_CATEGORY_MASK_Lt | UC_CATEGORY_MASK_Nl |
                                                 UC_CATEGORY_MASK_No | UC_CATEGORY_MASK_Me |
                                                 UC_CATEGORY_MASK_Zs | UC_CATEGORY_MASK_S |
                                                 UC_CATEGORY_MASK_P))
        return PRECIS_ID_DISALLOWED;
    return PRECIS_DISALLOWED;
}

/* ---- contextual rules (RFC 5892 Appendix A) ---- */

static bool in_script(ucs4_t cp, const char *name)
{
    const uc_script_t *script = uc_script(cp);
    return script && strcmp(script->name, name) == 0;
}

static bool preceded_by_virama(const ucs4_t *s, size_t i)
{
    return i > 0 && uc_combining_class(s[i - 1]) == UC_CCC_VR;
}

/* (Joining_Type:{L,D})(Joining_Type:T)* ZWNJ (Joining_Type:T)*(Joining_Type:{R,D}) */
static bool zwnj_joins(const ucs4_t *s, size_t n, size_t i)
{
    size_t j = i;
    while (j > 0 && uc_joining_type(s[j - 1]) == UC_JOINING_TYPE_T)
        j--;
    if (j == 0)
        return false;
    int before = uc_joining_type(s[j - 1]);
    if (before != UC_JOINING_TYPE_L && before != UC_JOINING_TYPE_D)
        return false;
    j = i + 1;
    while (j < n && uc_joining_type(s[j]) == UC_JOINING_TYPE_T)
        j++;
    if (j == n)
        return false;
    int after = uc_joining_type(s[j]);
    return after == UC_JOINING_TYPE_R || after == UC_JOINING_TYPE_D;
}

static bool contains_range(const ucs4_t *s, size_t n, ucs4_t lo, ucs4_t hi)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] >= lo && s[i] <= hi)
            return true;
    return false;
}

static bool context_allows(const ucs4_t *s, size_t n, size_t i)
{
    ucs4_t cp = s[i];

    switch (cp) {
    case 0x200C: return preceded_by_virama(s, i) || zwnj_joins(s, n, i);
    case 0x200D: return preceded_by_virama(s, i);
    case 0x00B7: return i > 0 && i + 1 < n && s[i - 1] == 'l' && s[i + 1] == 'l';
    case 0x0375: return i + 1 < n && in_script(s[i + 1], "Greek");
    case 0x05F3:
    case 0x05F4: return i > 0 && in_script(s[i - 1], "Hebrew");
    case 0x30FB:
        for (size_t j = 0; j < n; j++)
            if (in_script(s[j], "Hiragana") || in_script(s[j], "Katakana") ||
                in_script(s[j], "Han"))
                return true;
        return false;
    default: break;
    }
    if (cp >= 0x0660 && cp <= 0x0669)
        return !contains_range(s, n, 0x06F0, 0x06F9);
    if (cp >= 0x06F0 && cp <= 0x06F9)
        return !contains_range(s, n, 0x0660, 0x0669);
    return false;
}

static bool string_in_class(const ucs4_t *s, size_t n, precis_class cls)
{
    for (size_t i = 0; i < n; i++) {
        switch (precis_derive(s[i])) {
        case PRECIS_PVALID: break;
        case PRECIS_ID_DISALLOWED:
            if (cls == PRECIS_IDENTIFIER_CLASS)
                return false;
            break;
        case PRECIS_CONTEXTJ:
        case PRECIS_CONTEXTO:
            if (!context_allows(s, n, i))
                return false;
            break;
        case PRECIS_DISALLOWED: return false;
        }
    }
    return true;
}

/* ---- the Bidi Rule (RFC 5893 §2) ---- */

static bool bidi_class_in(int bc, const int *set, size_t count)
{
    for (size_t i = 0; i < count; i++)
        if (set[i] == bc)
            return true;
    return false;
}

static bool bidi_rule_ok(const ucs4_t *s, size_t n)
{
    static const int rtl_allowed[] = {UC_BIDI_R,  UC_BIDI_AL, UC_BIDI_AN, UC_BIDI_EN, UC_BIDI_ES,
                                      UC_BIDI_CS, UC_BIDI_ET, UC_BIDI_ON, UC_BIDI_BN, UC_BIDI_NSM};
    static const int ltr_allowed[] = {UC_BIDI_L,  UC_BIDI_EN, UC_BIDI_ES, UC_BIDI_CS,
                                      UC_BIDI_ET, UC_BIDI_ON, UC_BIDI_BN, UC_BIDI_NSM};
    static const int rtl_end[] = {UC_BIDI_R, UC_BIDI_AL, UC_BIDI_EN, UC_BIDI_AN};
    static const int ltr_end[] = {UC_BIDI_L, UC_BIDI_EN};
    bool has_rtl = false, has_en = false, has_an = false;

    for (size_t i = 0; i < n; i++) {
        int bc = uc_bidi_class(s[i]);
        has_rtl |= bc == UC_BIDI_R || bc == UC_BIDI_AL || bc == UC_BIDI_AN;
        has_en |= bc == UC_BIDI_EN;
        has_an |= bc == UC_BIDI_AN;
    }
    if (!has_rtl) /* the rule covers only strings with right-to-left characters */
        return true;

    int first = uc_bidi_class(s[0]);
    bool rtl = first == UC_BIDI_R || first == UC_BIDI_AL;
    if (!rtl && first != UC_BIDI_L)
        return false;
    const int *allowed = rtl ? rtl_allowed : ltr_allowed;
    size_t allowed_count =
        rtl ? sizeof rtl_allowed / sizeof(int) : sizeof ltr_allowed / sizeof(int);
    for (size_t i = 0; i < n; i++)
        if (!bidi_class_in(uc_bidi_class(s[i]), allowed, allowed_count))
            return false;
    size_t last = n;
    while (last > 0 && uc_bidi_class(s[last - 1]) == UC_BIDI_NSM)
        last--;
    if (last == 0)
        return false;
    int end = uc_bidi_class(s[last - 1]);
    if (rtl)
        return bidi_class_in(end, rtl_end, sizeof rtl_end / sizeof(int)) && !(has_en && has_an);
    return bidi_class_in(end, ltr_end, sizeof ltr_end / sizeof(int));
}

/* ---- helpers ---- */

static bool is_ascii(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] >= 0x80)
            return false;
    return true;
}

/* Decode UTF-8; NULL if invalid. The caller frees the result. */
static ucs4_t *utf8_decode(const char *s, size_t len, size_t *n)
{
    if (u8_check((const uint8_t *)s, len))
        return NULL;
    return u8_to_u32((const uint8_t *)s, len, NULL, n);
}

/* Encode a normalised part, enforcing its length of 1..1023 bytes. */
static char *part_encode(const ucs4_t *s, size_t n)
{
    size_t len;

    if (n == 0)
        return NULL;
    uint8_t *utf8 = u32_to_u8(s, n, NULL, &len);
    if (!utf8)
        return NULL;
    char *part = len <= JID_PART_MAX ? vn_strndup((const char *)utf8, len) : NULL;
    free(utf8);
    return part;
}

static bool is_xmpp_excluded(ucs4_t cp)
{
    return cp && cp < 0x80 && strchr("\"&'/:<>@", (int)cp);
}

/* ---- localpart: UsernameCaseMapped ---- */

static char *prep_local_ascii(const char *local, size_t len)
{
    if (len == 0 || len > JID_PART_MAX)
        return NULL;
    char *part = vn_strndup(local, len);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)part[i];
        if (c < 0x21 || c > 0x7E || is_xmpp_excluded(c)) {
            free(part);
            return NULL;
        }
        if (c >= 'A' && c <= 'Z')
            part[i] = (char)(c - 'A' + 'a');
    }
    return part;
}

/* Width mapping (RFC 8265 §3.3.1): fullwidth and halfwidth characters to
 * their decomposition mappings. */
static void width_map(ucs4_t *s, size_t n)
{
    ucs4_t decomposition[UC_DECOMPOSITION_MAX_LENGTH];
    int tag;

    for (size_t i = 0; i < n; i++)
        if (uc_decomposition(s[i], &tag, decomposition) == 1 &&
            (tag == UC_DECOMP_WIDE || tag == UC_DECOMP_NARROW))
            s[i] = decomposition[0];
}

char *vn_jid_prep_local(const char *local)
{
    size_t n, mapped_n;

    if (!local)
        return NULL;
    size_t len = strlen(local);
    if (is_ascii(local, len))
        return prep_local_ascii(local, len);
    ucs4_t *s = utf8_decode(local, len, &n);
    if (!s)
        return NULL;
    width_map(s, n);
    ucs4_t *mapped = u32_tolower(s, n, NULL, UNINORM_NFC, NULL, &mapped_n);
    free(s);
    if (!mapped)
        return NULL;
    char *part = NULL;
    bool valid = mapped_n > 0 && string_in_class(mapped, mapped_n, PRECIS_IDENTIFIER_CLASS) &&
                 bidi_rule_ok(mapped, mapped_n);
    for (size_t i = 0; valid && i < mapped_n; i++)
        valid = !is_xmpp_excluded(mapped[i]);
    if (valid)
        part = part_encode(mapped, mapped_n);
    free(mapped);
    return part;
}

/* ---- resourcepart: OpaqueString ---- */

char *vn_jid_prep_resource(const char *resource)
{
    size_t n, nfc_n;

    if (!resource)
        return NULL;
    size_t len = strlen(resource);
    if (is_ascii(resource, len)) {
        for (size_t i = 0; i < len; i++)
            if (resource[i] < 0x20 || resource[i] == 0x7F)
                return NULL;
        return len > 0 && len <= JID_PART_MAX ? vn_strndup(resource, len) : NULL;
    }
    ucs4_t *s = utf8_decode(resource, len, &n);
    if (!s)
        return NULL;
    for (size_t i = 0; i < n; i++)
        if (uc_is_general_category(s[i], UC_CATEGORY_Zs))
            s[i] = 0x20;
    ucs4_t *nfc = u32_normalize(UNINORM_NFC, s, n, NULL, &nfc_n);
    free(s);
    if (!nfc)
        return NULL;
    char *part =
        string_in_class(nfc, nfc_n, PRECIS_FREEFORM_CLASS) ? part_encode(nfc, nfc_n) : NULL;
    free(nfc);
    return part;
}

/* ---- domainpart ---- */

static bool is_ace_label(const char *label, size_t len)
{
    return len >= 4 && strncasecmp(label, "xn--", 4) == 0;
}

/* Every label 1..63 letters, digits and hyphens, no hyphen at either end.
 * With ace_out, reports whether some label is an A-label ("xn--"). */
static bool dns_labels_ok(const char *name, bool *ace_out)
{
    const char *label = name;

    *ace_out = false;
    for (;;) {
        size_t len = strcspn(label, ".");
        if (len == 0 || len > DNS_LABEL_MAX || label[0] == '-' || label[len - 1] == '-')
            return false;
        for (size_t i = 0; i < len; i++) {
            char c = label[i];
            if (!(c >= 'a' && c <= 'z') && !(c >= '0' && c <= '9') && c != '-')
                return false;
        }
        *ace_out |= is_ace_label(label, len);
        if (label[len] == '\0')
            return true;
        label += len + 1;
    }
}

static char *prep_ip6_literal(const char *domain, size_t len)
{
    struct in6_addr addr;
    char text[INET6_ADDRSTRLEN];

    if (len < 3 || domain[len - 1] != ']')
        return NULL;
    char *inner = vn_strndup(domain + 1, len - 2);
    bool ok = inet_pton(AF_INET6, inner, &addr) == 1;
    free(inner);
    if (!ok || !inet_ntop(AF_INET6, &addr, text, sizeof text))
        return NULL;
    return vn_asprintf("[%s]", text);
}

/* Internationalised names: lower-case and NFC, validate and convert with
 * IDNA2008 (UTS #46 non-transitional mapping, STD3 rules), then keep the
 * U-label form of the result. */
static char *prep_idn(const char *domain, size_t len)
{
    size_t lower_len;
    char *ascii = NULL, *unicode = NULL;
    bool ace;

    if (u8_check((const uint8_t *)domain, len))
        return NULL;
    uint8_t *lower = u8_tolower((const uint8_t *)domain, len, NULL, UNINORM_NFC, NULL, &lower_len);
    if (!lower)
        return NULL;
    char *input = vn_strndup((const char *)lower, lower_len);
    free(lower);
    int rc = idn2_to_ascii_8z(input, &ascii,
                              IDN2_NFC_INPUT | IDN2_NONTRANSITIONAL | IDN2_USE_STD3_ASCII_RULES);
    free(input);
    if (rc != IDN2_OK)
        return NULL;
    char *part = NULL;
    if (dns_labels_ok(ascii, &ace) && idn2_to_unicode_8z8z(ascii, &unicode, 0) == IDN2_OK &&
        strlen(unicode) <= JID_PART_MAX)
        part = vn_strdup(unicode);
    idn2_free(ascii);
    idn2_free(unicode);
    return part;
}

char *vn_jid_prep_domain(const char *domain)
{
    bool ace;

    if (!domain)
        return NULL;
    size_t len = strlen(domain);
    if (len > 0 && domain[len - 1] == '.')
        len--;
    if (len == 0)
        return NULL;
    if (domain[0] == '[')
        return prep_ip6_literal(domain, len);
    if (!is_ascii(domain, len))
        return prep_idn(domain, len);
    if (len > JID_PART_MAX)
        return NULL;
    char *part = vn_strndup(domain, len);
    for (size_t i = 0; i < len; i++)
        if (part[i] >= 'A' && part[i] <= 'Z')
            part[i] = (char)(part[i] - 'A' + 'a');
    if (!dns_labels_ok(part, &ace)) {
        free(part);
        return NULL;
    }
    if (ace) {
        char *unicode = prep_idn(part, len);
        free(part);
        return unicode;
    }
    return part;
}

/* ---- JIDs ---- */

/* "a<sep>b", or b if a is NULL. Called for every JID parsed (several per
 * routed stanza), so without printf. */
static char *join(const char *a, char sep, const char *b)
{
    if (!a)
        return vn_strdup(b);
    size_t a_len = strlen(a), b_len = strlen(b);
    char *out = vn_alloc(a_len + b_len + 2);
    memcpy(out, a, a_len);
    out[a_len] = sep;
    memcpy(out + a_len + 1, b, b_len + 1);
    return out;
}

/* Takes ownership of the normalised parts. */
static vn_jid *jid_assemble(char *local, char *domain, char *resource)
{
    vn_jid *jid = vn_alloc(sizeof *jid);

    jid->local = local;
    jid->domain = domain;
    jid->resource = resource;
    jid->bare = join(local, '@', domain);
    jid->full = resource ? join(jid->bare, '/', resource) : vn_strdup(jid->bare);
    return jid;
}

vn_jid *vn_jid_make(const char *local, const char *domain, const char *resource)
{
    char *local_part = NULL, *domain_part, *resource_part = NULL;

    if (local && !(local_part = vn_jid_prep_local(local)))
        return NULL;
    if (!(domain_part = vn_jid_prep_domain(domain))) {
        free(local_part);
        return NULL;
    }
    if (resource && !(resource_part = vn_jid_prep_resource(resource))) {
        free(local_part);
        free(domain_part);
        return NULL;
    }
    return jid_assemble(local_part, domain_part, resource_part);
}

/* RFC 7622 §3.1: the resourcepart starts after the first '/', the
 * localpart ends at the first '@' before it. */
vn_jid *vn_jid_parse(const char *str)
{
    if (!str)
        return NULL;
    const char *slash = strchr(str, '/');
    size_t bare_len = slash ? (size_t)(slash - str) : strlen(str);
    const char *at = memchr(str, '@', bare_len);
    char *local = at ? vn_strndup(str, (size_t)(at - str)) : NULL;
    const char *domain_start = at ? at + 1 : str;
    char *domain = vn_strndup(domain_start, bare_len - (size_t)(domain_start - str));
    vn_jid *jid = vn_jid_make(local, domain, slash ? slash + 1 : NULL);
    free(local);
    free(domain);
    return jid;
}

vn_jid *vn_jid_copy(const vn_jid *jid)
{
    return jid_assemble(vn_strdup(jid->local), vn_strdup(jid->domain), vn_strdup(jid->resource));
}

vn_jid *vn_jid_bare_copy(const vn_jid *jid)
{
    return jid_assemble(vn_strdup(jid->local), vn_strdup(jid->domain), NULL);
}

void vn_jid_free(vn_jid *jid)
{
    if (!jid)
        return;
    free(jid->local);
    free(jid->domain);
    free(jid->resource);
    free(jid->full);
    free(jid->bare);
    free(jid);
}

bool vn_jid_equal(const vn_jid *a, const vn_jid *b)
{
    if (!a || !b)
        return a == b;
    return strcmp(a->full, b->full) == 0;
}

bool vn_jid_bare_equal(const vn_jid *a, const vn_jid *b)
{
    if (!a || !b)
        return a == b;
    return strcmp(a->bare, b->bare) == 0;
}

char *vn_jid_normalize(const char *str)
{
    vn_jid *jid = vn_jid_parse(str);

    if (!jid)
        return NULL;
    char *full = jid->full;
    jid->full = NULL;
    vn_jid_free(jid);
    return full;
}
