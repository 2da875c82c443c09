/*
 * test_config.c - the YAML tree (conf_tree.c) and the config loader
 * (config.c): defaults, every key, and each kind of error with its line.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "conf_tree.h"
#include "config.h"

/* ---- helpers ---- */

static char temp_dir[] = "/tmp/vn-test-config-XXXXXX";
static char temp_file[sizeof temp_dir + 16];

static int make_temp_dir(void **state)
{
    if (!mkdtemp(temp_dir))
        return -1;
    snprintf(temp_file, sizeof temp_file, "%s/vn.yaml", temp_dir);
    return 0;
}

static int remove_temp_dir(void **state)
{
    unlink(temp_file);
    return rmdir(temp_dir);
}

/* Loads text through a file, as the server does; err receives messages. */
static vn_config *load_text(const char *text, vn_buf *err)
{
    FILE *f = fopen(temp_file, "w");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
    return vn_config_load(temp_file, err);
}

static size_t count_lines(const vn_buf *err)
{
    size_t n = 0;
    for (size_t i = 0; i < err->len; i++)
        n += err->data[i] == '\n';
    return n;
}

/* err holds exactly the line "file:line: message". */
static void assert_has_error(const vn_buf *err, const char *file, int line, const char *message)
{
    char *expected = vn_asprintf("%s:%d: %s\n", file, line, message);
    if (!err->data || !strstr(err->data, expected))
        fail_msg("expected \"%s\" in:\n%s", expected, err->data ? err->data : "(nothing)");
    free(expected);
}

/* Loading text fails with exactly one error, the given one. */
static void assert_load_error(const char *text, int line, const char *message)
{
    vn_buf err;

    vn_buf_init(&err);
    vn_config *cfg = load_text(text, &err);
    assert_null(cfg);
    assert_has_error(&err, temp_file, line, message);
    assert_int_equal(count_lines(&err), 1);
    vn_buf_free(&err);
}

static vn_conf_node *parse_ok(const char *text)
{
    vn_buf err;

    vn_buf_init(&err);
    vn_conf_node *root = vn_conf_parse_string(text, "t.yaml", &err);
    if (!root)
        fail_msg("parse failed: %s", err.data);
    assert_int_equal(err.len, 0);
    vn_buf_free(&err);
    return root;
}

static void assert_parse_error(const char *text, int line, const char *message)
{
    vn_buf err;

    vn_buf_init(&err);
    assert_null(vn_conf_parse_string(text, "t.yaml", &err));
    assert_has_error(&err, "t.yaml", line, message);
    vn_buf_free(&err);
}

/* ---- conf_tree ---- */

static void test_tree_shape_and_lines(void **state)
{
    vn_conf_node *root = parse_ok("# comment\n"
                                  "a: 1\n"
                                  "b:\n"
                                  "  - x\n"
                                  "  - 'y'\n"
                                  "c: {d: \"e\"}\n");

    assert_int_equal(root->type, VN_NODE_MAP);
    assert_int_equal(root->count, 3);
    assert_string_equal(root->keys[0], "a");
    assert_int_equal(root->key_lines[0], 2);
    assert_string_equal(root->keys[2], "c");
    assert_int_equal(root->key_lines[2], 6);

    const vn_conf_node *a = vn_conf_map_get(root, "a");
    assert_int_equal(a->type, VN_NODE_SCALAR);
    assert_string_equal(a->value, "1");
    assert_false(a->quoted);

    const vn_conf_node *b = vn_conf_map_get(root, "b");
    assert_int_equal(b->type, VN_NODE_SEQ);
    assert_int_equal(b->count, 2);
    assert_int_equal(b->items[0]->line, 4);
    assert_string_equal(b->items[1]->value, "y");
    assert_true(b->items[1]->quoted);
    assert_int_equal(b->items[1]->line, 5);

    const vn_conf_node *d = vn_conf_map_get(vn_conf_map_get(root, "c"), "d");
    assert_string_equal(d->value, "e");
    assert_true(d->quoted);
    assert_null(vn_conf_map_get(root, "missing"));
    assert_null(vn_conf_map_get(b, "x"));
    vn_conf_node_free(root);
}

static void test_tree_many_items(void **state)
{
    vn_buf text;

    vn_buf_init(&text);
    for (int i = 0; i < 100; i++)
        vn_buf_printf(&text, "k%d: [%d]\n", i, i);
    vn_conf_node *root = parse_ok(text.data);
    assert_int_equal(root->count, 100);
    for (int i = 0; i < 100; i++) {
        char key[8];
        snprintf(key, sizeof key, "k%d", i);
        assert_int_equal(root->key_lines[i], i + 1);
        assert_int_equal(vn_conf_map_get(root, key)->items[0]->line, i + 1);
    }
    vn_conf_node_free(root);
    vn_buf_free(&text);
}

static void test_tree_empty_document_is_empty_map(void **state)
{
    vn_conf_node *root = parse_ok("# nothing but a comment\n");
    assert_int_equal(root->type, VN_NODE_MAP);
    assert_int_equal(root->count, 0);
    vn_conf_node_free(root);
}

static void test_tree_refuses_duplicate_key(void **state)
{
    assert_parse_error("a: 1\nb:\n  c: 2\n  c: 3\n", 4, "duplicate key 'c' (first at line 3)");
}

static void test_tree_refuses_anchor_and_alias(void **state)
{
    vn_buf err;

    vn_buf_init(&err);
    assert_null(vn_conf_parse_string("a: &x 1\nb: *x\n", "t.yaml", &err));
    assert_has_error(&err, "t.yaml", 1, "anchors and aliases are not supported (&x)");
    assert_has_error(&err, "t.yaml", 2, "anchors and aliases are not supported (*x)");
    assert_int_equal(count_lines(&err), 2);
    vn_buf_free(&err);
}

static void test_tree_tags(void **state)
{
    assert_parse_error("a: 1\nb: !custom x\n", 2, "tags are not supported (!custom)");
    vn_conf_node *root = parse_ok("a: !!str 1\nb: !!map {c: 2}\n");
    assert_string_equal(vn_conf_map_get(root, "a")->value, "1");
    vn_conf_node_free(root);
}

static void test_tree_refuses_second_document(void **state)
{
    assert_parse_error("a: 1\n---\nb: 2\n", 2, "only one YAML document is allowed");
}

static void test_tree_refuses_non_scalar_key(void **state)
{
    assert_parse_error("a: 1\n? [x, y]\n: 2\n", 2, "map keys must be plain scalars");
}

static void test_tree_syntax_error_line(void **state)
{
    vn_buf err;

    vn_buf_init(&err);
    assert_null(vn_conf_parse_string("a: 1\nb: [1, 2\nc: 3\n", "t.yaml", &err));
    assert_non_null(err.data);
    assert_int_equal(strncmp(err.data, "t.yaml:", 7), 0);
    assert_int_equal(count_lines(&err), 1);
    vn_buf_free(&err);

    vn_buf_init(&err);
    assert_null(vn_conf_parse_string("a: 1\nb: \"unterminated\n", "t.yaml", &err));
    assert_non_null(strstr(err.data, "t.yaml:3: found unexpected end of stream"));
    vn_buf_free(&err);
}

static void test_tree_parse_file_missing(void **state)
{
    vn_buf err;

    vn_buf_init(&err);
    assert_null(vn_conf_parse_file("/nonexistent/vn.yaml", &err));
    assert_string_equal(err.data, "/nonexistent/vn.yaml: No such file or directory\n");
    vn_buf_free(&err);
}

static bool int_of(const char *yaml_value, long long *out)
{
    char *text = vn_asprintf("v: %s\n", yaml_value);
    vn_conf_node *root = parse_ok(text);
    bool ok = vn_conf_as_int(vn_conf_map_get(root, "v"), out);
    vn_conf_node_free(root);
    free(text);
    return ok;
}

static void test_tree_as_int(void **state)
{
    long long v = 0;

    assert_true(int_of("42", &v));
    assert_int_equal(v, 42);
    assert_true(int_of("-7", &v));
    assert_int_equal(v, -7);
    assert_true(int_of("+3", &v));
    assert_int_equal(v, 3);
    assert_true(int_of("9223372036854775807", &v));
    assert_true(v == 9223372036854775807LL);

    assert_false(int_of("99999999999999999999", &v));
    assert_false(int_of("4x", &v));
    assert_false(int_of("0x10", &v));
    assert_false(int_of("1.5", &v));
    assert_false(int_of("1e3", &v));
    assert_false(int_of("+", &v));
    assert_false(int_of("-x", &v));
    assert_false(int_of("\"5\"", &v));
    assert_false(int_of("", &v));
    assert_false(int_of("[1]", &v));
    assert_false(vn_conf_as_int(NULL, &v));
}

static bool bool_of(const char *yaml_value, bool *out)
{
    char *text = vn_asprintf("v: %s\n", yaml_value);
    vn_conf_node *root = parse_ok(text);
    bool ok = vn_conf_as_bool(vn_conf_map_get(root, "v"), out);
    vn_conf_node_free(root);
    free(text);
    return ok;
}

static void test_tree_as_bool(void **state)
{
    static const char *const truthy[] = {"true", "yes", "on", "True"};
    static const char *const falsy[] = {"false", "no", "off", "OFF"};
    bool v;

    for (size_t i = 0; i < 4; i++) {
        v = false;
        assert_true(bool_of(truthy[i], &v));
        assert_true(v);
        v = true;
        assert_true(bool_of(falsy[i], &v));
        assert_false(v);
    }
    assert_false(bool_of("1", &v));
    assert_false(bool_of("y", &v));
    assert_false(bool_of("'true'", &v));
    assert_false(bool_of("", &v));
}

static void test_tree_is_null(void **state)
{
    vn_conf_node *root = parse_ok("a:\nb: ~\nc: null\nd: ''\ne: x\nf: {}\n");
    assert_true(vn_conf_is_null(vn_conf_map_get(root, "a")));
    assert_true(vn_conf_is_null(vn_conf_map_get(root, "b")));
    assert_true(vn_conf_is_null(vn_conf_map_get(root, "c")));
    assert_false(vn_conf_is_null(vn_conf_map_get(root, "d")));
    assert_false(vn_conf_is_null(vn_conf_map_get(root, "e")));
    assert_false(vn_conf_is_null(vn_conf_map_get(root, "f")));
    assert_true(vn_conf_is_null(NULL));
    vn_conf_node_free(root);
}

static const char *const colours[] = {"red", "green", NULL};

/* A module's own check: no digits. */
static const char *check_no_digits(const char *value)
{
    return strpbrk(value, "0123456789") ? "has digits" : NULL;
}

static const vn_config_key test_keys[] = {
    {.name = "interval", .type = VN_CONF_INT, .default_value = "60", .min = 1, .max = 3600},
    {.name = "count", .type = VN_CONF_INT, .default_value = "0"},
    {.name = "show_os", .type = VN_CONF_BOOL, .default_value = "false"},
    {.name = "name", .type = VN_CONF_STRING, .default_value = "x"},
    {.name = "colour", .type = VN_CONF_STRING, .default_value = "red", .choices = colours},
    {.name = "word", .type = VN_CONF_STRING, .default_value = "", .check = check_no_digits},
    {.name = NULL},
};

static void test_validate_keys_valid(void **state)
{
    vn_buf err;
    vn_conf_node *root = parse_ok("interval: 3600\ncount: -5\nshow_os: yes\nname: 12\n"
                                  "colour: green\nword: \"\"\n");

    vn_buf_init(&err);
    assert_true(vn_conf_validate_keys(root, test_keys, "version", "f.yaml", &err));
    assert_true(vn_conf_validate_keys(NULL, test_keys, "version", "f.yaml", &err));
    assert_int_equal(err.len, 0);
    vn_conf_node_free(root);
    vn_buf_free(&err);
}

static void test_validate_keys_errors(void **state)
{
    vn_buf err;
    vn_conf_node *root = parse_ok("# options of mod_version\n"
                                  "show_oss: true\n"
                                  "interval: 0\n"
                                  "count: many\n"
                                  "show_os: 1\n"
                                  "name: [a]\n"
                                  "colour: blue\n"
                                  "word: r2d2\n");

    vn_buf_init(&err);
    assert_false(vn_conf_validate_keys(root, test_keys, "version", "conf/vestnik.yaml", &err));
    assert_has_error(&err, "conf/vestnik.yaml", 2, "modules.version: unknown key 'show_oss'");
    assert_has_error(&err, "conf/vestnik.yaml", 3,
                     "modules.version: key 'interval' must be an integer between 1 and 3600");
    assert_has_error(&err, "conf/vestnik.yaml", 4,
                     "modules.version: key 'count' must be an integer");
    assert_has_error(&err, "conf/vestnik.yaml", 5,
                     "modules.version: key 'show_os' must be true or false");
    assert_has_error(&err, "conf/vestnik.yaml", 6, "modules.version: key 'name' must be a string");
    assert_has_error(&err, "conf/vestnik.yaml", 7,
                     "modules.version: key 'colour' must be one of red, green");
    assert_has_error(&err, "conf/vestnik.yaml", 8, "modules.version: key 'word' has digits");
    assert_int_equal(count_lines(&err), 7);

    /* A module without keys accepts no options at all. */
    vn_buf_reset(&err);
    assert_false(vn_conf_validate_keys(root, NULL, "ping", "f.yaml", &err));
    assert_int_equal(count_lines(&err), 7);
    assert_has_error(&err, "f.yaml", 3, "modules.ping: unknown key 'interval'");
    vn_conf_node_free(root);
    vn_buf_free(&err);
}

static void test_validate_keys_not_a_map(void **state)
{
    vn_buf err;
    vn_conf_node *root = parse_ok("- a\n");

    vn_buf_init(&err);
    assert_false(vn_conf_validate_keys(root, test_keys, "version", "f.yaml", &err));
    assert_string_equal(err.data, "f.yaml:1: modules.version: options must be a map of keys\n");
    vn_conf_node_free(root);
    vn_buf_free(&err);
}

/* ---- the loader: valid files ---- */

static void test_minimal_config_defaults(void **state)
{
    vn_buf err;

    vn_buf_init(&err);
    vn_config *cfg = load_text("hosts: [localhost]\n", &err);
    if (!cfg)
        fail_msg("load failed: %s", err.data);
    assert_string_equal(cfg->path, temp_file);
    assert_non_null(cfg->root);
    assert_int_equal(cfg->n_hosts, 1);
    assert_string_equal(cfg->hosts[0].name, "localhost");
    assert_null(cfg->hosts[0].cert_file);
    assert_null(cfg->hosts[0].key_file);
    assert_int_equal(cfg->hosts[0].line, 1);

    assert_int_equal(cfg->n_listeners, 2);
    assert_int_equal(cfg->listeners[0].type, VN_LISTEN_C2S);
    assert_string_equal(cfg->listeners[0].address, "::");
    assert_int_equal(cfg->listeners[0].port, 5222);
    assert_int_equal(cfg->listeners[1].type, VN_LISTEN_C2S_TLS);
    assert_string_equal(cfg->listeners[1].address, "::");
    assert_int_equal(cfg->listeners[1].port, 5223);

    assert_string_equal(cfg->data_dir, VN_LOCALSTATEDIR);
    assert_string_equal(cfg->store_backend, "lmdb");
    assert_int_equal(cfg->store_map_size_mb, 1024);
    assert_int_equal(cfg->log_level, VN_LOG_INFO);
    assert_false(cfg->log_syslog);
    assert_null(cfg->tls_cert);
    assert_null(cfg->tls_key);
    assert_string_equal(cfg->tls_ciphers, "ECDHE+AESGCM:ECDHE+CHACHA20");
    assert_string_equal(
        cfg->tls_ciphersuites,
        "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256");
    assert_true(cfg->require_encryption);
    assert_true(cfg->allow_plain);
    assert_int_equal(cfg->handshake_timeout, 30);
    assert_int_equal(cfg->keepalive_interval, 60);
    assert_int_equal(cfg->idle_timeout, 0);
    assert_int_equal(cfg->scram_iterations, 4096);
    assert_int_equal(cfg->max_stanza_size, 262144);
    assert_int_equal(cfg->max_xml_depth, 32);
    assert_int_equal(cfg->max_output_buffer, 1048576);
    assert_string_equal(cfg->admin_socket, VN_LOCALSTATEDIR "/admin.sock");
    assert_string_equal(cfg->module_path, VN_MODULE_DIR);

    static const char *const defaults[] = {
        "ping", "version", "disco",   "roster",  "presence", "offline", "blocking", "last",
        "time", "vcard",   "private", "carbons", "csi",      "mam",     "pep",      "adhoc",
    };
    assert_int_equal(cfg->n_modules, sizeof defaults / sizeof defaults[0]);
    for (size_t i = 0; i < cfg->n_modules; i++) {
        assert_string_equal(cfg->modules[i].name, defaults[i]);
        assert_null(cfg->modules[i].options);
    }
    assert_int_equal(cfg->resume_timeout, 300);
    assert_int_equal(cfg->max_unacked, 1000);
    assert_ptr_equal(vn_config_module(cfg, "version"), &cfg->modules[1]);
    assert_null(vn_config_module(cfg, "muc"));
    assert_int_equal(err.len, 0);
    vn_config_free(cfg);
    vn_buf_free(&err);
}

static void test_full_config(void **state)
{
    vn_buf err;

    vn_buf_init(&err);
    vn_config *cfg = load_text("hosts:\n"
                               "  - example.org\n"
                               "  - name: chat.example.net\n"
                               "    certificate: /etc/ssl/chat.crt\n"
                               "    key: /etc/ssl/chat.key\n"
                               "data_dir: /srv/vestnik\n"
                               "log:\n"
                               "  level: debug\n"
                               "  syslog: yes\n"
                               "store:\n"
                               "  backend: lmdb\n"
                               "  map_size_mb: 1048576\n"
                               "tls:\n"
                               "  certificate: /etc/ssl/default.crt\n"
                               "  key: /etc/ssl/default.key\n"
                               "  ciphers: ECDHE+AESGCM\n"
                               "  ciphersuites: TLS_AES_128_GCM_SHA256\n"
                               "listeners:\n"
                               "  - type: c2s_tls\n"
                               "    address: 127.0.0.1\n"
                               "    port: 443\n"
                               "  - {type: c2s, port: 5222}\n"
                               "  - {type: c2s, address: '::1', port: 5222}\n"
                               "c2s:\n"
                               "  require_encryption: false\n"
                               "  allow_plain: off\n"
                               "  handshake_timeout: 3600\n"
                               "  keepalive_interval: 0\n"
                               "  idle_timeout: 86400\n"
                               "auth:\n"
                               "  scram_iterations: 1000000\n"
                               "limits:\n"
                               "  max_stanza_size: 1024\n"
                               "  max_xml_depth: 256\n"
                               "  max_output_buffer: 1073741824\n"
                               "admin:\n"
                               "  socket: /run/vestnik.sock\n"
                               "module_path: /opt/vestnik/modules\n"
                               "modules:\n"
                               "  disco: {}\n"
                               "  version:\n"
                               "    show_os: true\n"
                               "  ping:\n",
                               &err);
    if (!cfg)
        fail_msg("load failed: %s", err.data);

    assert_int_equal(cfg->n_hosts, 2);
    assert_string_equal(cfg->hosts[0].name, "example.org");
    assert_null(cfg->hosts[0].cert_file);
    assert_int_equal(cfg->hosts[0].line, 2);
    assert_string_equal(cfg->hosts[1].name, "chat.example.net");
    assert_string_equal(cfg->hosts[1].cert_file, "/etc/ssl/chat.crt");
    assert_string_equal(cfg->hosts[1].key_file, "/etc/ssl/chat.key");
    assert_int_equal(cfg->hosts[1].line, 3);
    assert_ptr_equal(vn_config_host(cfg, "chat.example.net"), &cfg->hosts[1]);
    assert_null(vn_config_host(cfg, "example.com"));

    assert_string_equal(cfg->data_dir, "/srv/vestnik");
    assert_int_equal(cfg->log_level, VN_LOG_DEBUG);
    assert_true(cfg->log_syslog);
    assert_string_equal(cfg->store_backend, "lmdb");
    assert_int_equal(cfg->store_map_size_mb, 1048576);
    assert_string_equal(cfg->tls_cert, "/etc/ssl/default.crt");
    assert_string_equal(cfg->tls_key, "/etc/ssl/default.key");
    assert_string_equal(cfg->tls_ciphers, "ECDHE+AESGCM");
    assert_string_equal(cfg->tls_ciphersuites, "TLS_AES_128_GCM_SHA256");

    assert_int_equal(cfg->n_listeners, 3);
    assert_int_equal(cfg->listeners[0].type, VN_LISTEN_C2S_TLS);
    assert_string_equal(cfg->listeners[0].address, "127.0.0.1");
    assert_int_equal(cfg->listeners[0].port, 443);
    assert_int_equal(cfg->listeners[0].line, 19);
    assert_int_equal(cfg->listeners[1].type, VN_LISTEN_C2S);
    assert_string_equal(cfg->listeners[1].address, "::");
    assert_int_equal(cfg->listeners[1].port, 5222);
    assert_string_equal(cfg->listeners[2].address, "::1");

    assert_false(cfg->require_encryption);
    assert_false(cfg->allow_plain);
    assert_int_equal(cfg->handshake_timeout, 3600);
    assert_int_equal(cfg->keepalive_interval, 0);
    assert_int_equal(cfg->idle_timeout, 86400);
    assert_int_equal(cfg->scram_iterations, 1000000);
    assert_int_equal(cfg->max_stanza_size, 1024);
    assert_int_equal(cfg->max_xml_depth, 256);
    assert_int_equal(cfg->max_output_buffer, 1073741824);
    assert_string_equal(cfg->admin_socket, "/run/vestnik.sock");
    assert_string_equal(cfg->module_path, "/opt/vestnik/modules");

    /* Modules keep file order; options point into the tree. */
    assert_int_equal(cfg->n_modules, 3);
    assert_string_equal(cfg->modules[0].name, "disco");
    assert_non_null(cfg->modules[0].options);
    assert_int_equal(cfg->modules[0].options->count, 0);
    assert_int_equal(cfg->modules[0].line, 40);
    const vn_module_conf *version = vn_config_module(cfg, "version");
    assert_ptr_equal(version, &cfg->modules[1]);
    assert_ptr_equal(version->options,
                     vn_conf_map_get(vn_conf_map_get(cfg->root, "modules"), "version"));
    bool show_os = false;
    assert_true(vn_conf_as_bool(vn_conf_map_get(version->options, "show_os"), &show_os));
    assert_true(show_os);
    assert_string_equal(cfg->modules[2].name, "ping");
    assert_null(cfg->modules[2].options);
    assert_int_equal(err.len, 0);
    vn_config_free(cfg);
    vn_buf_free(&err);
}

static void test_host_names_normalised(void **state)
{
    vn_buf err;

    vn_buf_init(&err);
    vn_config *cfg = load_text("hosts:\n  - Example.ORG\n  - {name: CHAT.example.org}\n", &err);
    if (!cfg)
        fail_msg("load failed: %s", err.data);
    assert_string_equal(cfg->hosts[0].name, "example.org");
    assert_string_equal(cfg->hosts[1].name, "chat.example.org");
    vn_config_free(cfg);
    vn_buf_free(&err);
}

static void test_empty_sections_and_modules(void **state)
{
    vn_buf err;

    vn_buf_init(&err);
    vn_config *cfg = load_text("hosts: [a.example]\nlog:\nc2s: {}\nmodules:\n", &err);
    if (!cfg)
        fail_msg("load failed: %s", err.data);
    assert_int_equal(cfg->log_level, VN_LOG_INFO);
    assert_int_equal(cfg->handshake_timeout, 30);
    assert_int_equal(cfg->n_modules, 0); /* explicitly none, not the defaults */
    vn_config_free(cfg);
    vn_buf_free(&err);
}

static void test_admin_socket_follows_data_dir(void **state)
{
    vn_buf err;

    vn_buf_init(&err);
    vn_config *cfg = load_text("hosts: [a.example]\ndata_dir: run/data\n", &err);
    assert_non_null(cfg);
    assert_string_equal(cfg->admin_socket, "run/data/admin.sock");
    vn_config_free(cfg);
    vn_buf_free(&err);
}

static void test_store_postgresql_keys(void **state)
{
    vn_buf err;

    vn_buf_init(&err);
    vn_config *cfg = load_text("hosts: [a.example]\n"
                               "store:\n"
                               "  backend: postgresql\n"
                               "  postgresql:\n"
                               "    conninfo: \"dbname=vestnik user=vestnik\"\n"
                               "    read_timeout_ms: 250\n"
                               "    snapshot_max_age_ms: 50\n"
                               "    read_cache_kb: 0\n",
                               &err);
    assert_non_null(cfg);
    assert_string_equal(cfg->store_backend, "postgresql");
    assert_string_equal(cfg->store_pg_conninfo, "dbname=vestnik user=vestnik");
    assert_int_equal(cfg->store_pg_read_timeout_ms, 250);
    assert_int_equal(cfg->store_pg_write_timeout_ms, 60000);
    assert_int_equal(cfg->store_pg_snapshot_max_age_ms, 50);
    assert_int_equal(cfg->store_pg_read_cache_kb, 0);
    vn_config_free(cfg);
    vn_buf_free(&err);
    assert_load_error(
        "hosts: [a.example]\nstore:\n  postgresql:\n    read_timeout_ms: 5\n", 4,
        "store.postgresql: key 'read_timeout_ms' must be an integer between 10 and 600000");
}

static void test_cluster_keys(void **state)
{
    vn_buf err;

    vn_buf_init(&err);
    vn_config *cfg = load_text("hosts: [a.example]\n", &err);
    assert_non_null(cfg);
    assert_false(cfg->cluster_enabled); /* one node is the default */
    assert_string_equal(cfg->cluster_nats_url, "nats://127.0.0.1:4222");
    assert_int_equal(cfg->cluster_heartbeat_ms, 1000);
    assert_int_equal(cfg->cluster_node_timeout_ms, 4000);
    vn_config_free(cfg);
    cfg = load_text("hosts: [a.example]\n"
                    "cluster:\n"
                    "  enabled: true\n"
                    "  node_id: node-2\n"
                    "  nats_url: \"nats://10.0.0.1:4222,nats://10.0.0.2:4222\"\n"
                    "  heartbeat_ms: 200\n"
                    "  node_timeout_ms: 1500\n",
                    &err);
    assert_non_null(cfg);
    assert_true(cfg->cluster_enabled);
    assert_string_equal(cfg->cluster_node_id, "node-2");
    assert_string_equal(cfg->cluster_nats_url, "nats://10.0.0.1:4222,nats://10.0.0.2:4222");
    assert_int_equal(cfg->cluster_heartbeat_ms, 200);
    assert_int_equal(cfg->cluster_node_timeout_ms, 1500);
    vn_config_free(cfg);
    vn_buf_free(&err);
    assert_load_error("hosts: [a.example]\ncluster:\n  enabled: true\n", 3,
                      "cluster: 'node_id' is required when enabled");
    assert_load_error("hosts: [a.example]\ncluster:\n  node_id: a.b\n", 3,
                      "cluster: 'node_id' may not contain '.', '*', '>' or spaces (a NATS "
                      "subject token)");
    assert_load_error("hosts: [a.example]\ncluster:\n  heartbeat_ms: 5000\n"
                      "  node_timeout_ms: 4000\n",
                      4, "cluster: 'node_timeout_ms' must be more than 'heartbeat_ms'");
}

static void test_example_config_loads(void **state)
{
    const char *srcdir = getenv("VN_SRCDIR");
    char *path = vn_asprintf("%s/conf/vestnik.yaml", srcdir ? srcdir : ".");
    vn_buf err;

    vn_buf_init(&err);
    vn_config *cfg = vn_config_load(path, &err);
    if (!cfg)
        fail_msg("%s does not load: %s", path, err.data);
    assert_int_equal(err.len, 0);
    assert_int_equal(cfg->n_hosts, 1);
    assert_string_equal(cfg->hosts[0].name, "localhost");
    assert_string_equal(cfg->data_dir, "vestnik-data");
    assert_string_equal(cfg->admin_socket, "vestnik-data/admin.sock");
    assert_int_equal(cfg->n_listeners, 3);
    assert_int_equal(cfg->listeners[0].port, 5222);
    assert_int_equal(cfg->listeners[1].port, 5223);
    assert_int_equal(cfg->listeners[2].type, VN_LISTEN_HTTPS);
    assert_int_equal(cfg->listeners[2].port, 5281);
    assert_true(cfg->n_modules >= 3);
    assert_string_equal(cfg->modules[0].name, "ping");
    assert_string_equal(cfg->modules[1].name, "version");
    assert_string_equal(cfg->modules[2].name, "disco");

    /* The documented option of mod_version is valid against its declaration
     * (test_example_config.py checks every module against the real ones). */
    static const vn_config_key version_keys[] = {
        {.name = "show_os", .type = VN_CONF_BOOL, .default_value = "false"},
        {.name = NULL},
    };
    assert_true(
        vn_conf_validate_keys(cfg->modules[1].options, version_keys, "version", path, &err));
    assert_true(vn_conf_validate_keys(cfg->modules[0].options, NULL, "ping", path, &err));
    vn_config_free(cfg);
    vn_buf_free(&err);
    free(path);
}

/* ---- the loader: errors ---- */

static void test_error_missing_file(void **state)
{
    vn_buf err;

    vn_buf_init(&err);
    assert_null(vn_config_load("/nonexistent/vestnik.yaml", &err));
    assert_string_equal(err.data, "/nonexistent/vestnik.yaml: No such file or directory\n");
    vn_buf_free(&err);
}

static void test_error_unknown_top_level_key(void **state)
{
    assert_load_error("hosts: [a.example]\n\nlogging: {}\n", 3, "unknown top-level key 'logging'");
}

static void test_error_unknown_nested_key(void **state)
{
    assert_load_error("hosts: [a.example]\nc2s:\n  allow_plain: true\n  alow_plain: true\n", 4,
                      "c2s: unknown key 'alow_plain'");
}

static void test_error_wrong_type(void **state)
{
    assert_load_error("hosts: [a.example]\nlog:\n  syslog: sometimes\n", 3,
                      "log: key 'syslog' must be true or false");
    assert_load_error("hosts: [a.example]\nlimits:\n  max_xml_depth: deep\n", 3,
                      "limits: key 'max_xml_depth' must be an integer between 4 and 256");
    assert_load_error("hosts: [a.example]\ndata_dir: [a, b]\n", 2,
                      "key 'data_dir' must be a non-empty string");
    assert_load_error("hosts: [a.example]\nc2s: true\n", 2, "'c2s' must be a map of keys");
    assert_load_error("hosts: [a.example]\nlog:\n  level: loud\n", 3,
                      "log: key 'level' must be one of: error, warn, info, debug");
    assert_load_error("hosts: [a.example]\nstore:\n  backend: bdb\n", 3,
                      "store: key 'backend' must be one of: lmdb, postgresql");
    assert_load_error("hosts: a.example\n", 1, "hosts: must be a list of domain names");
    assert_load_error("- hosts\n", 1,
                      "the configuration must be a map of keys, starting with 'hosts'");
}

static void test_error_out_of_range(void **state)
{
    assert_load_error("hosts: [a.example]\nc2s:\n  handshake_timeout: 0\n", 3,
                      "c2s: key 'handshake_timeout' must be an integer between 1 and 3600");
    assert_load_error("hosts: [a.example]\nauth:\n  scram_iterations: 4095\n", 3,
                      "auth: key 'scram_iterations' must be an integer between 4096 and 1000000");
    assert_load_error("hosts: [a.example]\nstore:\n  map_size_mb: 1048577\n", 3,
                      "store: key 'map_size_mb' must be an integer between 1 and 1048576");
    assert_load_error("hosts: [a.example]\nc2s:\n  idle_timeout: -1\n", 3,
                      "c2s: key 'idle_timeout' must be an integer between 0 and 86400");
    assert_load_error("hosts: [a.example]\nlisteners:\n  - {type: c2s, port: 65536}\n", 3,
                      "listeners: key 'port' must be an integer between 1 and 65535");
}

static void test_error_missing_hosts(void **state)
{
    assert_load_error("\n\ndata_dir: /tmp\n", 3, "missing required key 'hosts'");
    assert_load_error("", 1, "missing required key 'hosts'");
    assert_load_error("hosts: []\n", 1, "hosts: at least one host is required");
}

static void test_error_duplicate_host(void **state)
{
    assert_load_error("hosts:\n  - example.org\n  - name: Example.org\n", 3,
                      "hosts: duplicate host 'example.org' (first at line 2)");
}

static void test_error_bad_host_entries(void **state)
{
    assert_load_error("hosts:\n  - {certificate: /a.crt, key: /a.key}\n", 2,
                      "hosts: a host given as a map needs a 'name'");
    assert_load_error("hosts:\n  - name: a.example\n    port: 1\n", 3, "hosts: unknown key 'port'");
    assert_load_error("hosts:\n  - [a.example]\n", 2,
                      "hosts: each host must be a domain name or a map with 'name'");
    assert_load_error("hosts:\n  - bad domain\n", 2,
                      "hosts: 'bad domain' is not a valid domain name");
}

static void test_error_duplicate_key(void **state)
{
    assert_load_error("hosts: [a.example]\nc2s:\n  idle_timeout: 5\n  idle_timeout: 6\n", 4,
                      "duplicate key 'idle_timeout' (first at line 3)");
}

static void test_error_cert_without_key(void **state)
{
    assert_load_error("hosts:\n  - name: a.example\n    certificate: /a.crt\n", 3,
                      "hosts: 'certificate' and 'key' must be given together");
    assert_load_error("hosts: [a.example]\ntls:\n  ciphers: HIGH\n  key: /a.key\n", 4,
                      "tls: 'certificate' and 'key' must be given together");
}

static void test_error_bad_listeners(void **state)
{
    assert_load_error("hosts: [a.example]\nlisteners:\n  - type: xmpp\n    port: 5269\n", 3,
                      "listeners: key 'type' must be one of: c2s, c2s_tls, http, https, "
                      "component, s2s, s2s_tls");
    assert_load_error("hosts: [a.example]\nlisteners:\n  - {port: 5222}\n", 3,
                      "listeners: a listener needs a 'type' (c2s, c2s_tls, http, https, "
                      "component, s2s or s2s_tls)");
    assert_load_error("hosts: [a.example]\nlisteners:\n  - {type: c2s}\n", 3,
                      "listeners: a listener needs a 'port'");
    assert_load_error("hosts: [a.example]\nlisteners:\n  - {type: c2s, port: 1, address: "
                      "localhost}\n",
                      3, "listeners: address 'localhost' is not an IP address");
    assert_load_error("hosts: [a.example]\nlisteners:\n  - 5222\n", 3,
                      "listeners: each listener must be a map with 'type' and 'port'");
    assert_load_error("hosts: [a.example]\nlisteners: []\n", 2,
                      "listeners: at least one listener is required");
    assert_load_error("hosts: [a.example]\n"
                      "listeners:\n"
                      "  - {type: c2s, port: 5222}\n"
                      "  - {type: c2s_tls, port: 5222, address: '0::0'}\n",
                      4, "listeners: duplicate listener on 0::0 port 5222 (first at line 3)");
}

static void test_error_bad_modules(void **state)
{
    assert_load_error("hosts: [a.example]\nmodules:\n  ping:\n  Bad-Name:\n", 4,
                      "modules: invalid module name 'Bad-Name' (use a-z, 0-9 and _)");
    assert_load_error("hosts: [a.example]\nmodules:\n  version: [show_os]\n", 3,
                      "modules.version: options must be a map of keys");
    assert_load_error("hosts: [a.example]\nmodules: [ping]\n", 2,
                      "modules: must be a map of module names to their options");
}

static void test_error_alias_refused(void **state)
{
    assert_load_error("hosts: &h [a.example]\n", 1, "anchors and aliases are not supported (&h)");
}

static void test_several_errors_all_reported(void **state)
{
    vn_buf err;

    vn_buf_init(&err);
    vn_config *cfg = load_text("data_dir: /srv\n"
                               "colour: blue\n"
                               "c2s:\n"
                               "  handshake_timeout: 0\n"
                               "  keepalive: 5\n"
                               "limits:\n"
                               "  max_xml_depth: lots\n"
                               "listeners:\n"
                               "  - {type: c2s, port: 0}\n"
                               "modules:\n"
                               "  ping:\n"
                               "  version: yes\n",
                               &err);
    assert_null(cfg);
    assert_has_error(&err, temp_file, 2, "unknown top-level key 'colour'");
    assert_has_error(&err, temp_file, 4,
                     "c2s: key 'handshake_timeout' must be an integer between 1 and 3600");
    assert_has_error(&err, temp_file, 5, "c2s: unknown key 'keepalive'");
    assert_has_error(&err, temp_file, 7,
                     "limits: key 'max_xml_depth' must be an integer between 4 and 256");
    assert_has_error(&err, temp_file, 9,
                     "listeners: key 'port' must be an integer between 1 and 65535");
    assert_has_error(&err, temp_file, 12, "modules.version: options must be a map of keys");
    assert_has_error(&err, temp_file, 1, "missing required key 'hosts'");
    assert_int_equal(count_lines(&err), 7);
    vn_buf_free(&err);

    /* Errors of the YAML layer are all collected too. */
    vn_buf_init(&err);
    cfg = load_text("hosts: [a.example]\nlog: {level: info}\nlog: {}\nc2s: *x\n", &err);
    assert_null(cfg);
    assert_has_error(&err, temp_file, 3, "duplicate key 'log' (first at line 2)");
    assert_has_error(&err, temp_file, 4, "anchors and aliases are not supported (*x)");
    assert_int_equal(count_lines(&err), 2);
    vn_buf_free(&err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tree_shape_and_lines),
        cmocka_unit_test(test_tree_many_items),
        cmocka_unit_test(test_tree_empty_document_is_empty_map),
        cmocka_unit_test(test_tree_refuses_duplicate_key),
        cmocka_unit_test(test_tree_refuses_anchor_and_alias),
        cmocka_unit_test(test_tree_tags),
        cmocka_unit_test(test_tree_refuses_second_document),
        cmocka_unit_test(test_tree_refuses_non_scalar_key),
        cmocka_unit_test(test_tree_syntax_error_line),
        cmocka_unit_test(test_tree_parse_file_missing),
        cmocka_unit_test(test_tree_as_int),
        cmocka_unit_test(test_tree_as_bool),
        cmocka_unit_test(test_tree_is_null),
        cmocka_unit_test(test_validate_keys_valid),
        cmocka_unit_test(test_validate_keys_errors),
        cmocka_unit_test(test_validate_keys_not_a_map),
        cmocka_unit_test(test_minimal_config_defaults),
        cmocka_unit_test(test_full_config),
        cmocka_unit_test(test_host_names_normalised),
        cmocka_unit_test(test_empty_sections_and_modules),
        cmocka_unit_test(test_admin_socket_follows_data_dir),
        cmocka_unit_test(test_store_postgresql_keys),
        cmocka_unit_test(test_cluster_keys),
        cmocka_unit_test(test_example_config_loads),
        cmocka_unit_test(test_error_missing_file),
        cmocka_unit_test(test_error_unknown_top_level_key),
        cmocka_unit_test(test_error_unknown_nested_key),
        cmocka_unit_test(test_error_wrong_type),
        cmocka_unit_test(test_error_out_of_range),
        cmocka_unit_test(test_error_missing_hosts),
        cmocka_unit_test(test_error_duplicate_host),
        cmocka_unit_test(test_error_bad_host_entries),
        cmocka_unit_test(test_error_duplicate_key),
        cmocka_unit_test(test_error_cert_without_key),
        cmocka_unit_test(test_error_bad_listeners),
        cmocka_unit_test(test_error_bad_modules),
        cmocka_unit_test(test_error_alias_refused),
        cmocka_unit_test(test_several_errors_all_reported),
    };
    return cmocka_run_group_tests(tests, make_temp_dir, remove_temp_dir);
}
