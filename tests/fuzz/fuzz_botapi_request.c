/*
 * fuzz_botapi_request.c - libFuzzer target for the Bot API's request
 * bodies (modules/services/botapi_request.c), which anyone who can reach
 * the https listener may send: JSON, urlencoded and multipart forms and
 * the query string.
 *
 * The input's first line is the Content-Type (so the fuzzer finds
 * boundaries), the rest the body; the first line is also parsed as a
 * query string. Besides memory safety it checks that every upload lies
 * within the body and that the typed getters of every parameter hold.
 *
 * The body is also formatted as each parse_mode (botapi_format.c).
 *
 * fuzz-sources: modules/services/botapi_request.c modules/services/botapi_format.c
 * fuzz-libs: -ljansson
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "services/botapi.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    const char *nl = memchr(text, '\n', size);
    size_t head_len = nl ? (size_t)(nl - text) : size;
    char *head = vn_strndup(text, head_len);
    const char *body = nl ? nl + 1 : "";
    size_t body_len = nl ? size - head_len - 1 : 0;
    botapi_call call = {0};

    const char *problem = botapi_request_parse(
        &call, strchr(head, '?') ? strchr(head, '?') + 1 : NULL, head, body, body_len);
    if (!problem) {
        const char *key;
        json_t *value;
        json_object_foreach(call.params, key, value)
        {
            int64_t n;
            botapi_param_int(&call, key, &n);
            botapi_param_bool(&call, key);
            botapi_param_string(&call, key);
            botapi_param_upload(&call, key);
        }
        json_object_foreach(call.params, key, value)
        {
            botapi_param_json(&call, key);
        }
        for (const botapi_upload *up = call.uploads; up; up = up->next)
            if (up->len > body_len || !up->field)
                abort();
    }
    json_decref(call.params);
    for (botapi_upload *up = call.uploads, *next; up; up = next) {
        next = up->next;
        free(up->field);
        free(up->filename);
        free(up->content_type);
        free(up->data);
        free(up);
    }
    char *body_text = vn_strndup(body, body_len);
    static const char *const modes[] = {"HTML", "MarkdownV2", "Markdown"};
    for (size_t i = 0; i < sizeof modes / sizeof *modes; i++) {
        char *formatted;
        if (!botapi_format(body_text, modes[i], &formatted) && !formatted)
            abort();
        free(formatted);
    }
    free(body_text);
    free(head);
    return 0;
}
