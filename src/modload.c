/*
 * modload.c - loading modules by name from the config, and their options.
 *
 * modules.<name> loads <module_path>/mod_<name>.so with dlopen. Loading and
 * reloading are one operation, applying a config to the set of loaded
 * modules in two phases: first every module is opened and its options
 * validated (nothing has happened yet, so a failure leaves the running set
 * as it was), then the new modules' load functions run (a failure here
 * unloads the new ones again). Only when both succeed are removed modules
 * unloaded and the kept ones pointed at their new options.
 */
#include "modload.h"
#include "sessions.h"
#include "store_backend.h"
#include "work.h"

#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "vestnik/module.h"

struct vn_module {
    const vn_module_def *def;
    void *handle;                /* from dlopen */
    const vn_conf_node *options; /* modules.<name> in the current config, or NULL */
};

/* The loaded modules, in config order. */
static vn_module **loaded;
static size_t n_loaded;

static vn_module *find_loaded(const char *name)
{
    for (size_t i = 0; i < n_loaded; i++)
        if (strcmp(loaded[i]->def->name, name) == 0)
            return loaded[i];
    return NULL;
}

/* A module name becomes part of a file name: keep it to [a-z0-9_]. */
static bool module_name_valid(const char *name)
{
    if (!*name)
        return false;
    for (const char *c = name; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_'))
            return false;
    return true;
}

/* What a key reads as: the configured node, else its default written into
 * *fallback as an unquoted scalar, so both are parsed the same way. */
static const vn_conf_node *key_value(const vn_conf_node *options, const vn_config_key *key,
                                     vn_conf_node *fallback)
{
    const vn_conf_node *set = vn_conf_map_get(options, key->name);

    if (set)
        return set;
    /* value is only read, never written or freed. */
    *fallback = (vn_conf_node){.type = VN_NODE_SCALAR,
                               .value = (char *)(key->default_value ? key->default_value : "")};
    return fallback;
}

/* Every key's default must pass its own checks: the accessors fall back
 * to it. A bad one is the module author's mistake, caught at open. (An
 * empty string default stands for "not set" and is not checked.) */
static bool defaults_valid(const vn_module_def *def, const char *so_path, vn_buf *err)
{
    bool valid = true;

    for (const vn_config_key *key = def->config_keys; key && key->name; key++) {
        vn_conf_node fallback;
        const vn_conf_node *value = key_value(NULL, key, &fallback);
        char why[256];
        const char *problem = NULL;

        if (key->type != VN_CONF_STRING || value->value[0])
            problem = vn_conf_check_value(key, value, why, sizeof why);
        if (problem) {
            vn_buf_printf(err, "%s: key '%s' has an invalid default '%s': %s\n", so_path, key->name,
                          value->value, problem);
            valid = false;
        }
    }
    return valid;
}

static void module_close(vn_module *m)
{
    Dl_info info;

    /* Session data the module left behind would call into unmapped code. */
    if (dladdr(m->def, &info))
        vn_sessions_drop_module_data(info.dli_fbase);
    /* So would the close callbacks of handles it closed on the loop (the
     * uv_async of a module's own thread): they run now. */
    if (vn_server_loop())
        uv_run(vn_server_loop(), UV_RUN_NOWAIT);
    dlclose(m->handle);
    free(m);
}

/* dlopen, check and validate the options of one configured module; NULL
 * with messages in err on failure. Nothing of the module runs. */
static vn_module *module_open(const vn_config *cfg, const vn_module_conf *mc, vn_buf *err)
{
    if (!module_name_valid(mc->name)) {
        vn_buf_printf(err, "%s:%d: modules.%s: a module name is made of a-z, 0-9 and _\n",
                      cfg->path, mc->line, mc->name);
        return NULL;
    }

    char *so_path = vn_asprintf("%s/mod_%s.so", cfg->module_path, mc->name);
    vn_module *m = vn_alloc(sizeof *m);
    const char *problem = NULL;

    m->options = mc->options;
    m->handle = dlopen(so_path, RTLD_NOW | RTLD_LOCAL);
    if (!m->handle) {
        vn_buf_printf(err, "%s:%d: modules.%s: cannot load module: %s\n", cfg->path, mc->line,
                      mc->name, dlerror());
        free(so_path);
        free(m);
        return NULL;
    }
    m->def = dlsym(m->handle, "vn_module_entry");
    if (!m->def)
        problem = "exports no vn_module_entry (is it a vestnik module?)";
    else if (m->def->api_version != VN_MODULE_API_VERSION)
        problem = "was built for another version of the module API";
    else if (!m->def->name || strcmp(m->def->name, mc->name) != 0)
        problem = "is not the module of that name";
    else if (!m->def->load)
        problem = "has no load function";
    if (problem)
        vn_buf_printf(err, "%s:%d: modules.%s: %s %s\n", cfg->path, mc->line, mc->name, so_path,
                      problem);

    bool valid = !problem && defaults_valid(m->def, so_path, err) &&
                 vn_conf_validate_keys(mc->options, m->def->config_keys, mc->name, cfg->path, err);
    free(so_path);
    if (!valid) {
        module_close(m);
        return NULL;
    }
    return m;
}

/* Undo a successful load(): the module's unload, then dlclose. */
static void module_unload(vn_module *m)
{
    Dl_info info;

    vn_log_info("unloading module %s", m->def->name);
    if (dladdr(m->def, &info))
        vn_work_drain_module(info.dli_fbase); /* its jobs' done functions run while loaded */
    vn_store_flush(vn_server_store());        /* its durable callbacks run while mapped */
    if (m->def->unload)
        m->def->unload(m);
    module_close(m);
}

/* Make the loaded set match cfg->modules; see the comment at the top. */
static int modules_apply(const vn_config *cfg, vn_buf *err)
{
    vn_module **next = vn_alloc(cfg->n_modules * sizeof *next);
    bool *fresh = vn_alloc(cfg->n_modules * sizeof *fresh);
    bool opened_all = true;
    size_t started = 0;

    for (size_t i = 0; i < cfg->n_modules; i++) {
        const vn_module_conf *mc = &cfg->modules[i];
        vn_module *kept = find_loaded(mc->name);

        if (kept) {
            next[i] = kept;
            opened_all &= vn_conf_validate_keys(mc->options, kept->def->config_keys, mc->name,
                                                cfg->path, err);
        } else {
            next[i] = module_open(cfg, mc, err);
            fresh[i] = true;
            opened_all &= next[i] != NULL;
        }
    }

    if (opened_all) {
        for (; started < cfg->n_modules; started++) {
            vn_module *m = next[started];
            if (!fresh[started])
                continue;
            if (m->def->load(m) != 0) {
                vn_buf_printf(err, "%s:%d: modules.%s: the module failed to load (see the log)\n",
                              cfg->path, cfg->modules[started].line, m->def->name);
                break;
            }
            vn_log_info("loaded module %s", m->def->name);
        }
    }

    if (!opened_all || started < cfg->n_modules) {
        for (size_t i = started; i-- > 0;)
            if (fresh[i]) {
                module_unload(next[i]);
                fresh[i] = false;
            }
        for (size_t i = 0; i < cfg->n_modules; i++)
            if (fresh[i] && next[i])
                module_close(next[i]);
        free(next);
        free(fresh);
        return -1;
    }

    /* Committed: drop what the config no longer names, then refresh the
     * kept modules. */
    for (size_t i = n_loaded; i-- > 0;)
        if (!vn_config_module(cfg, loaded[i]->def->name))
            module_unload(loaded[i]);
    for (size_t i = 0; i < cfg->n_modules; i++) {
        vn_module *m = next[i];
        if (fresh[i])
            continue;
        m->options = cfg->modules[i].options;
        if (m->def->reload)
            m->def->reload(m);
    }
    free(loaded);
    free(fresh);
    loaded = next;
    n_loaded = cfg->n_modules;
    return 0;
}

int vn_modules_load(const vn_config *cfg, vn_buf *err)
{
    return modules_apply(cfg, err);
}

int vn_modules_reload(const vn_config *cfg, vn_buf *err)
{
    return modules_apply(cfg, err);
}

void vn_modules_unload_all(void)
{
    for (size_t i = n_loaded; i-- > 0;)
        module_unload(loaded[i]);
    free(loaded);
    loaded = NULL;
    n_loaded = 0;
}

int vn_modules_check(const vn_config *cfg, vn_buf *err)
{
    int rc = 0;

    for (size_t i = 0; i < cfg->n_modules; i++) {
        vn_module *m = module_open(cfg, &cfg->modules[i], err);
        if (m)
            module_close(m);
        else
            rc = -1;
    }
    return rc;
}

void vn_modules_describe(vn_buf *out)
{
    for (size_t i = 0; i < n_loaded; i++) {
        if (i > 0)
            vn_buf_append_str(out, ", ");
        vn_buf_append_str(out, loaded[i]->def->name);
    }
}

/* ---- option accessors (module.h) ---- */

/* The declaration of key in m, or NULL (logged: reading an undeclared key
 * or reading it as another type is a bug in the module). */
static const vn_config_key *declared_key(const vn_module *m, const char *key, vn_conf_type type)
{
    for (const vn_config_key *k = m->def->config_keys; k && k->name; k++) {
        if (strcmp(k->name, key) != 0)
            continue;
        if (k->type == type)
            return k;
        vn_log_error("module %s reads its config key '%s' as the wrong type", m->def->name, key);
        return NULL;
    }
    vn_log_error("module %s reads config key '%s', which it does not declare", m->def->name, key);
    return NULL;
}

const char *vn_module_config_string(const vn_module *m, const char *key)
{
    const vn_config_key *k = declared_key(m, key, VN_CONF_STRING);
    vn_conf_node fallback;

    return k ? key_value(m->options, k, &fallback)->value : "";
}

long long vn_module_config_int(const vn_module *m, const char *key)
{
    const vn_config_key *k = declared_key(m, key, VN_CONF_INT);
    vn_conf_node fallback;
    long long value;

    return k && vn_conf_as_int(key_value(m->options, k, &fallback), &value) ? value : 0;
}

bool vn_module_config_bool(const vn_module *m, const char *key)
{
    const vn_config_key *k = declared_key(m, key, VN_CONF_BOOL);
    vn_conf_node fallback;
    bool value;

    return k && vn_conf_as_bool(key_value(m->options, k, &fallback), &value) ? value : false;
}
