/* SPDX-License-Identifier: MIT */
/*
 * libkipc: where the kernel that belongs to this library is, and the
 * preload library kipc-run uses. The Makefile generates
 * <generated/kipcd_path.h>: $(O)/bin/kipcd and $(O)/lib/libkipc-posix.so
 * (absolute) for the build tree, $(BINDIR)/kipcd and
 * $(LIBDIR)/libkipc-posix.so for the copy `make install` installs. This
 * file is the only one compiled twice, so the rest of the library is
 * the same object code in both.
 */
#include <generated/build_id.h>
#include <generated/kipcd_path.h>

#include "internal.h"

const char __kipc_kipcd_path[] = KIPC_KIPCD_PATH;
const char __kipc_posix_lib_path[] = KIPC_POSIX_LIB_PATH;
const uint64_t __kipc_build_id = KIPC_BUILD_ID; /* sources + config */
