/*
 * work.h - the core's side of worker jobs (vn_work_queue is in module.h).
 */
#ifndef VESTNIK_WORK_H
#define VESTNIK_WORK_H

/* Run the loop until no queued or running job has its work or done function
 * in the module mapped at module_base (dladdr's dli_fbase): before the
 * module's unload, so that no job calls into freed state or unmapped code. */
void vn_work_drain_module(const void *module_base);

#endif
