/*
 * test_botapi_request.c - the Bot API's request bodies
 * (modules/services/botapi_request.c): JSON, urlencoded and multipart
 * forms as grammY, telegraf and node-telegram-bot-api send them (grammY's
 * unquoted file names, attach:// references, a preamble), the query
 * string, the typed parameter getters, and every malformed body refused
 * with a description instead of read past its end; and parse_mode
 * (modules/services/botapi_format.c): Telegram's HTML and Markdown as
 * XEP-0393 styling.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "botapi.h"

static void call_free(botapi_call *call)
{
    json_decref(call->params);
    for (botapi_upload *up = call->uploads, *next; up; up = next) {
        next = up->next;
        free(up->field);
        free(up->filename);
        free(up->content_type);
        free(up->data);
        free(up);
    }
    free(call);
}

/* Parse into a new call: the problem (NULL if none) in *problem. */
static botapi_call *parse(const char *query, const char *type, const char *body, size_t len,
                          const char **problem)
{
    botapi_call *call = calloc(1, sizeof *call);
    assert_non_null(call);
    *problem = botapi_request_parse(call, query, type, body, len);
    return call;
}

static botapi_call *parse_ok(const char *query, const char *type, const char *body)
{
    const char *problem;
    botapi_call *call = parse(query, type, body, strlen(body), &problem);
    assert_null(problem);
    return call;
}

static void refused(const char *type, const char *body, const char *words)
{
    size_t len = strlen(body);
    const char *problem;
    botapi_call *call = parse(NULL, type, body, len, &problem);
    assert_non_null(problem);
    assert_non_null(strstr(problem, words));
    call_free(call);
}

static void test_json(void **state)
{
    botapi_call *call = parse_ok(NULL, "application/json; charset=utf-8",
                                 "{\"chat_id\": 42, \"text\": \"hi\", \"reply_markup\": "
                                 "{\"inline_keyboard\": [[{\"text\": \"A\", \"callback_data\": "
                                 "\"a\"}]]}, \"disable_notification\": true}");
    int64_t id = 0;
    assert_true(botapi_param_int(call, "chat_id", &id));
    assert_int_equal(id, 42);
    assert_string_equal(botapi_param_string(call, "text"), "hi");
    assert_true(json_is_object(botapi_param_json(call, "reply_markup")));
    assert_true(botapi_param_bool(call, "disable_notification"));
    assert_false(botapi_param_bool(call, "protect_content"));
    assert_false(botapi_param_int(call, "text", &id));
    call_free(call);

    refused("application/json", "{\"chat_id\": 1, \"text\": ", "can't parse JSON");
    refused("application/json", "[1, 2]", "can't parse JSON");
    refused("application/json", "{\"a\": 1, \"a\": 2}", "can't parse JSON");
    refused("application/json", "{\"a\": \"\xff\"}", "can't parse JSON");
    refused("text/xml", "<a/>", "unsupported Content-Type");
}

static void test_urlencoded_and_query(void **state)
{
    botapi_call *call = parse_ok("offset=7&limit=", "application/x-www-form-urlencoded",
                                 "chat_id=-5&text=caf%C3%A9+au+lait&reply_markup=%7B%22inline_"
                                 "keyboard%22%3A%5B%5D%7D&flag");
    int64_t n = 0;
    assert_true(botapi_param_int(call, "offset", &n));
    assert_int_equal(n, 7);
    assert_false(botapi_param_int(call, "limit", &n)); /* empty */
    assert_true(botapi_param_int(call, "chat_id", &n));
    assert_int_equal(n, -5);
    assert_string_equal(botapi_param_string(call, "text"), "caf\xc3\xa9 au lait");
    json_t *markup = botapi_param_json(call, "reply_markup"); /* JSON in a form field */
    assert_true(json_is_array(json_object_get(markup, "inline_keyboard")));
    assert_string_equal(botapi_param_string(call, "flag"), "");
    call_free(call);

    refused("application/x-www-form-urlencoded", "text=%zz", "invalid form parameter");
    refused("application/x-www-form-urlencoded", "text=%4", "invalid form parameter");
    refused("application/x-www-form-urlencoded", "text=%ff", "invalid form parameter");
    refused("application/x-www-form-urlencoded", "te%00xt=1", "invalid form parameter");
    /* a name that is not UTF-8 (found by fuzz_botapi_request: freed twice) */
    refused("application/x-www-form-urlencoded", "na%87me=1", "invalid form parameter");
}

#define GRAMMY_BODY                                                                                \
    "--abc\r\n"                                                                                    \
    "Content-Disposition: form-data; name=\"chat_id\"\r\n\r\n"                                     \
    "12\r\n"                                                                                       \
    "--abc\r\n"                                                                                    \
    "Content-Disposition: form-data; name=\"document\"\r\n\r\n"                                    \
    "attach://file1\r\n"                                                                           \
    "--abc\r\n"                                                                                    \
    "content-disposition: form-data; name=file1; filename=hello.txt\r\n"                           \
    "Content-Type: text/plain\r\n\r\n"                                                             \
    "line one\r\n--not the boundary\r\n"                                                           \
    "--abc--\r\n"

static void test_multipart(void **state)
{
    botapi_call *call = parse_ok(NULL, "multipart/form-data; boundary=abc", GRAMMY_BODY);
    int64_t n = 0;
    assert_true(botapi_param_int(call, "chat_id", &n));
    assert_int_equal(n, 12);
    const botapi_upload *up = botapi_param_upload(call, "document");
    assert_non_null(up);
    assert_string_equal(up->filename, "hello.txt");
    assert_string_equal(up->content_type, "text/plain");
    assert_int_equal(up->len, strlen("line one\r\n--not the boundary"));
    assert_memory_equal(up->data, "line one\r\n--not the boundary", up->len);
    call_free(call);

    /* quoted names, a quoted boundary, a preamble, binary content */
    static const char body[] = "preamble\r\n--b q\r\n"
                               "Content-Disposition: form-data; name=\"photo\"; "
                               "filename=\"a b.png\"\r\n"
                               "Content-Type: image/png\r\n\r\n"
                               "\x89PNG\0\r\n\x1a"
                               "\r\n--b q--";
    const char *problem;
    call = parse(NULL, "multipart/form-data; boundary=\"b q\"", body, sizeof body - 1, &problem);
    assert_null(problem);
    up = botapi_param_upload(call, "photo");
    assert_non_null(up);
    assert_string_equal(up->filename, "a b.png");
    assert_int_equal(up->len, 8);
    assert_memory_equal(up->data, "\x89PNG\0\r\n\x1a", 8);
    call_free(call);

    refused("multipart/form-data", "--x\r\n", "without a boundary");
    refused("multipart/form-data; boundary=", "--\r\n", "without a boundary");
    refused("multipart/form-data; boundary=b", "--b\r\nbroken", "multipart");
    refused("multipart/form-data; boundary=b",
            "--b\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\nvalue", "closing boundary");
    refused("multipart/form-data; boundary=b", "--b\r\nX: y\r\n\r\nv\r\n--b--", "name");
    refused("multipart/form-data; boundary=b", "no boundary at all", "multipart");
    refused("multipart/form-data; boundary=b", "--bX", "multipart");
}

static void assert_format(const char *mode, const char *text, const char *expected)
{
    char *out;
    assert_null(botapi_format(text, mode, &out));
    assert_string_equal(out, expected);
    free(out);
}

static void test_parse_mode(void **state)
{
    assert_format(NULL, "<b>as is</b>", "<b>as is</b>");
    assert_format("HTML", "<b>Balance</b>: <i>1 250</i> &lt;EUR&gt; &amp; <code>x&#33;</code>",
                  "*Balance*: _1 250_ <EUR> & `x!`");
    assert_format("HTML",
                  "<a href=\"https://bank.example/x?a=1&amp;b\">site</a><br/>"
                  "<u>under</u> <tg-spoiler>s</tg-spoiler> <S>gone</S> &#x1F600; &bogus;",
                  "site (https://bank.example/x?a=1&amp;b)\nunder s ~gone~ \xf0\x9f\x98\x80 "
                  "&bogus;");
    assert_format("HTML", "&#0; &#xD800; &#99999999;", "\xef\xbf\xbd \xef\xbf\xbd \xef\xbf\xbd");
    assert_format("MarkdownV2",
                  "*bold* _it_ __under__ ||spoiler|| 1\\.5 \\* [doc](https://d.example)",
                  "*bold* _it_ under spoiler 1.5 * doc (https://d.example)");
    assert_format("Markdown", "*b* [x](u) [not a link] \\_", "*b* x (u) [not a link] _");

    char *out;
    assert_non_null(botapi_format("price <100", "HTML", &out));
    assert_null(out);
    assert_non_null(botapi_format("x", "BBCode", &out));
    assert_null(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json),
        cmocka_unit_test(test_urlencoded_and_query),
        cmocka_unit_test(test_multipart),
        cmocka_unit_test(test_parse_mode),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
