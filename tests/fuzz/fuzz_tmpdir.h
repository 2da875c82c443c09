/*
 * fuzz_tmpdir.h - a private temporary directory for the targets that need
 * an LMDB store, removed with everything in it when the fuzzer exits.
 */
#ifndef VESTNIK_FUZZ_TMPDIR_H
#define VESTNIK_FUZZ_TMPDIR_H

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>

static char fuzz_tmpdir[] = "/tmp/vestnik-fuzz-XXXXXX";

static int fuzz_tmpdir_remove_entry(const char *path, const struct stat *sb, int type,
                                    struct FTW *ftw)
{
    return remove(path);
}

static void fuzz_tmpdir_remove(void)
{
    nftw(fuzz_tmpdir, fuzz_tmpdir_remove_entry, 8, FTW_DEPTH | FTW_PHYS);
}

/* Create the directory (once) and return its path; exits on failure. */
static const char *fuzz_tmpdir_make(void)
{
    if (!mkdtemp(fuzz_tmpdir)) {
        perror("mkdtemp");
        exit(1);
    }
    atexit(fuzz_tmpdir_remove);
    return fuzz_tmpdir;
}

#endif
