/*
 * test_services_assistant.c - the pure parts of the public-services
 * assistant (modules/services): case folding and word matching (text.c),
 * the knowledge base loader (assistant_kb.c) on the shipped example and on
 * broken files, and the rule engine (assistant_rules.c) choosing entries
 * for English and Russian questions, or none.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "assistant.h"
#include "platform.h"

static void test_fold(void **state)
{
    char *folded = text_fold("ПАСПОРТ Ёлка ÀBC Straße Ünïcode 汉字");
    assert_string_equal(folded, "паспорт елка àbc straße ünïcode 汉字");
    free(folded);
    folded = text_fold("\xff broken \xc3");
    assert_string_equal(folded, "\xff broken \xc3"); /* not UTF-8: kept */
    free(folded);
}

static void test_word_prefix(void **state)
{
    assert_true(text_has_word_prefix("замена паспорта", "паспорт"));
    assert_true(text_has_word_prefix("замена паспорта", "замен"));
    assert_false(text_has_word_prefix("загранпаспорт", "паспорт"));
    assert_true(text_has_word_prefix("lost passport, again", "passport"));
    assert_false(text_has_word_prefix("passport", "port"));
    assert_true(text_has_word_prefix("anything", ""));
}

static kb *load_example(void)
{
    char *error = NULL;
    kb *k = kb_load(TEST_KB, &error);
    assert_null(error);
    assert_non_null(k);
    return k;
}

static void test_example_knowledge_base(void **state)
{
    kb *k = load_example();
    assert_int_equal(k->n, 4);
    const kb_entry *passport = &k->entries[0];
    assert_string_equal(passport->id, "passport-replacement");
    assert_string_equal(kb_text_in(&passport->title, "ru"), "Замена паспорта");
    assert_string_equal(kb_text_in(&passport->title, "ru-RU"), "Замена паспорта");
    assert_string_equal(kb_text_in(&passport->title, "fa"), "Replacing a passport");
    assert_string_equal(kb_text_in(&passport->title, NULL), "Replacing a passport");
    char *const *steps = kb_list_in(&passport->steps, "en");
    assert_non_null(steps);
    assert_string_equal(steps[0], "Apply online here or at a public services office");
    assert_int_equal(passport->n_documents, 1);
    assert_string_equal(passport->documents[0].type, "identity");
    assert_string_equal(passport->documents[0].claims[2], "birthdate");
    assert_null(passport->documents[0].claims[3]);
    assert_int_equal(k->entries[1].n_documents, 2); /* the car: identity and licence */
    assert_string_equal(kb_text_in(&k->entries[2].result, "en"), ""); /* none given */
    kb_free(k);
}

static char *write_file(const char *text)
{
    char *path = strdup("/tmp/vn-kb-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

static void assert_refused(const char *text, const char *error_part)
{
    char *path = write_file(text), *error = NULL;
    kb *k = kb_load(path, &error);
    assert_null(k);
    assert_non_null(error);
    if (!strstr(error, error_part))
        fail_msg("error \"%s\" lacks \"%s\"", error, error_part);
    free(error);
    unlink(path);
    free(path);
}

static void test_broken_knowledge_bases(void **state)
{
    assert_refused("services: [", "line ");
    assert_refused("other: 1\n", "line 1: expected a list under 'services'");
    assert_refused("services:\n  - title: {en: X}\n    keywords: {en: [x]}\n",
                   "line 2: every service needs an id");
    assert_refused("services:\n  - id: x\n    title: {en: X}\n    keywords: [a, b]\n",
                   "line 4: expected lists by language");
    assert_refused("services:\n  - id: x\n    title: {en: X}\n    keywords: {en: [x]}\n"
                   "    documents:\n      - claims: [a]\n",
                   "line 6: a document needs a type");
    char *error = NULL;
    assert_null(kb_load("/nonexistent/kb.yaml", &error));
    assert_string_equal(error, "cannot open it");
    free(error);
}

static void remember(const assistant_answer *answer, void *ud)
{
    *(const kb_entry **)ud = answer->entry;
}

static const char *choose(void *engine, const char *lang, const char *question)
{
    const kb_entry *entry = (const kb_entry *)1; /* must be set by the engine */
    assistant_rules_engine.ask(engine, lang, question, remember, &entry);
    assert_true(entry != (const kb_entry *)1);
    return entry ? entry->id : NULL;
}

static void test_rules_engine(void **state)
{
    kb *k = load_example();
    void *engine = assistant_rules_engine.open(k);
    assert_non_null(engine);
    assert_string_equal(choose(engine, "en", "How do I replace my lost passport?"),
                        "passport-replacement");
    assert_string_equal(choose(engine, "ru", "Как заменить паспорт?"), "passport-replacement");
    assert_string_equal(choose(engine, "en", "I want to register a car"), "car-registration");
    assert_string_equal(choose(engine, "en", "Как зарегистрировать МАШИНУ"), "car-registration");
    assert_string_equal(choose(engine, "ru", "налоговый вычет за лечение зубов"), "tax-deduction");
    assert_string_equal(choose(engine, "en", "enrol my daughter in first grade"),
                        "school-enrolment");
    assert_null(choose(engine, "en", "What will the weather be tomorrow?"));
    assert_null(choose(engine, "ru", ""));
    assistant_rules_engine.close(engine);
    kb_free(k);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fold),
        cmocka_unit_test(test_word_prefix),
        cmocka_unit_test(test_example_knowledge_base),
        cmocka_unit_test(test_broken_knowledge_bases),
        cmocka_unit_test(test_rules_engine),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
