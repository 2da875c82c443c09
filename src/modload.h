/*
 * modload.h - loading modules by name from the config (dlopen).
 *
 * modules.<name> in the config loads <module_path>/mod_<name>.so, checks
 * its API version, validates its options against its declared keys and
 * calls its load function. On reload, removed modules are unloaded, new
 * ones loaded and the others get their reload callback.
 */
#ifndef VESTNIK_MODLOAD_H
#define VESTNIK_MODLOAD_H

#include "config.h"

/* Load every configured module; -1 with message (and nothing loaded). */
int vn_modules_load(const vn_config *cfg, vn_buf *err);
/* Apply a new config; -1 with message if a new module fails (the old set
 * stays loaded, with option pointers into the old config untouched). */
int vn_modules_reload(const vn_config *cfg, vn_buf *err);
void vn_modules_unload_all(void);
/* Open and validate every configured module without loading it
 * (`vestnikd --check-config`). */
int vn_modules_check(const vn_config *cfg, vn_buf *err);
/* Names of the loaded modules, comma-separated, into out. */
void vn_modules_describe(vn_buf *out);

#endif
