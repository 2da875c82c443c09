/*
 * log_internal.h - configuring the logger (the API is in vestnik/log.h).
 */
#ifndef VESTNIK_LOG_INTERNAL_H
#define VESTNIK_LOG_INTERNAL_H

#include "vestnik/log.h"

void vn_log_setup(vn_log_level level, bool use_syslog, const char *ident);
/* Parse "error", "warn", "info", "debug"; -1 if unknown. */
int vn_log_level_parse(const char *name);

#endif
