/*
 * issuer_types.c - the credential types the module knows: identity card,
 * student card and driving licence (xeps/documents.md §5), with their
 * claims, the labels people read, and the age predicates derived from a
 * birth date so that a holder can prove "over 18" without showing it.
 *
 * Types are data, not code: a new one is a row here and in the document.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <vestnik/i18n.h>

#include "mod_credentials.h"

#define VCT_BASE "https://vestnik.example/credentials/"

static const cred_claim_def identity_claims[] = {
    {"given_name", N_("Given name"), CRED_CLAIM_STRING},
    {"family_name", N_("Family name"), CRED_CLAIM_STRING},
    {"birthdate", N_("Date of birth"), CRED_CLAIM_DATE},
    {"nationality", N_("Nationality"), CRED_CLAIM_STRING},
    {"document_number", N_("Document number"), CRED_CLAIM_STRING},
    {"age_over_18", N_("Over 18"), CRED_CLAIM_BOOL},
    {"age_over_21", N_("Over 21"), CRED_CLAIM_BOOL},
    {NULL, NULL, CRED_CLAIM_STRING},
};

static const cred_claim_def student_claims[] = {
    {"given_name", N_("Given name"), CRED_CLAIM_STRING},
    {"family_name", N_("Family name"), CRED_CLAIM_STRING},
    {"birthdate", N_("Date of birth"), CRED_CLAIM_DATE},
    {"university", N_("University"), CRED_CLAIM_STRING},
    {"student_id", N_("Student number"), CRED_CLAIM_STRING},
    {"faculty", N_("Faculty"), CRED_CLAIM_STRING},
    {"valid_until", N_("Valid until"), CRED_CLAIM_DATE},
    {"age_over_18", N_("Over 18"), CRED_CLAIM_BOOL},
    {"age_over_21", N_("Over 21"), CRED_CLAIM_BOOL},
    {NULL, NULL, CRED_CLAIM_STRING},
};

static const cred_claim_def licence_claims[] = {
    {"given_name", N_("Given name"), CRED_CLAIM_STRING},
    {"family_name", N_("Family name"), CRED_CLAIM_STRING},
    {"birthdate", N_("Date of birth"), CRED_CLAIM_DATE},
    {"licence_number", N_("Licence number"), CRED_CLAIM_STRING},
    {"categories", N_("Categories"), CRED_CLAIM_STRING},
    {"expiry_date", N_("Expiry date"), CRED_CLAIM_DATE},
    {"age_over_18", N_("Over 18"), CRED_CLAIM_BOOL},
    {"age_over_21", N_("Over 21"), CRED_CLAIM_BOOL},
    {NULL, NULL, CRED_CLAIM_STRING},
};

static const char *const identity_required[] = {"given_name", "family_name", "birthdate", NULL};
static const char *const student_required[] = {"given_name", "family_name", "university",
                                               "student_id", NULL};
static const char *const licence_required[] = {"given_name", "family_name", "licence_number",
                                               "categories", "expiry_date", NULL};

static const cred_type types[] = {
    {"identity", VCT_BASE "identity/1", N_("Identity card"), identity_claims, identity_required},
    {"student", VCT_BASE "student/1", N_("Student card"), student_claims, student_required},
    {"driving_licence", VCT_BASE "driving_licence/1", N_("Driving licence"), licence_claims,
     licence_required},
};

const cred_type *cred_type_find(const char *name)
{
    for (size_t i = 0; name && i < sizeof types / sizeof types[0]; i++)
        if (strcmp(types[i].name, name) == 0 || strcmp(types[i].vct, name) == 0)
            return &types[i];
    return NULL;
}

const cred_claim_def *cred_type_claim(const cred_type *t, const char *name)
{
    for (const cred_claim_def *c = t->claims; name && c->name; c++)
        if (strcmp(c->name, name) == 0)
            return c;
    return NULL;
}

const char *cred_claim_label(const char *name)
{
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        const cred_claim_def *c = cred_type_claim(&types[i], name);
        if (c)
            return c->label;
    }
    return name;
}

/* "YYYY-MM-DD" with a real month and day. */
static bool parse_date(const char *s, int *y, int *m, int *d)
{
    char tail;
    if (!s || strlen(s) != 10 || sscanf(s, "%4d-%2d-%2d%c", y, m, d, &tail) != 3)
        return false;
    static const int days[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return *y >= 1800 && *m >= 1 && *m <= 12 && *d >= 1 && *d <= days[*m - 1] && s[4] == '-' &&
           s[7] == '-';
}

bool cred_claim_valid(const cred_claim_def *c, const char *value)
{
    int y, m, d;
    switch (c->kind) {
    case CRED_CLAIM_DATE: return parse_date(value, &y, &m, &d);
    case CRED_CLAIM_BOOL:
        return value && (strcmp(value, "true") == 0 || strcmp(value, "false") == 0);
    case CRED_CLAIM_STRING: return value && *value && strlen(value) <= 1024;
    }
    return false;
}

void cred_add_age_predicates(json_t *claims, const char *birthdate, int64_t now)
{
    int y, m, d;
    if (!parse_date(birthdate, &y, &m, &d))
        return;
    time_t t = (time_t)now;
    struct tm today;
    gmtime_r(&t, &today);
    int age = today.tm_year + 1900 - y;
    if (today.tm_mon + 1 < m || (today.tm_mon + 1 == m && today.tm_mday < d))
        age--;
    json_object_set_new(claims, "age_over_18", json_boolean(age >= 18));
    json_object_set_new(claims, "age_over_21", json_boolean(age >= 21));
}
