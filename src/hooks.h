/*
 * hooks.h - the core side of the hook registry (the API is in module.h).
 */
#ifndef VESTNIK_HOOKS_H
#define VESTNIK_HOOKS_H

/* Drop every handler (at shutdown, after modules unloaded). */
void vn_hooks_clear(void);
/* Drop every disco feature and identity. */
void vn_disco_clear(void);
/* Stop every timer still running (at shutdown). */
void vn_timers_stop_all(void);

#endif
