/* SPDX-License-Identifier: MIT */
/*
 * Force-included (-include) into every kipc compile by the Makefile, like
 * the kernel's include/linux/kconfig.h: brings in the CONFIG_ macros that
 * the build generated from .config, plus IS_ENABLED().
 *
 * Kconfig bools that are n are absent; bools that are y are defined to 1;
 * ints are plain numbers. So:
 *
 *	#ifdef CONFIG_DEBUG_CHECKS            (or #if IS_ENABLED(CONFIG_...))
 *	if constexpr (IS_ENABLED(CONFIG_ROOT_BYPASS)) ...
 *	static_assert(CONFIG_MSG_DEFAULT <= CONFIG_MSG_MAX);
 */
#ifndef _KIPC_KCONFIG_H
#define _KIPC_KCONFIG_H

#include <generated/autoconf.h>

#define __KIPC_ARG_PLACEHOLDER_1 0,
#define __kipc_take_second_arg(__ignored, val, ...) val
#define __kipc_is_defined(x)            ___kipc_is_defined(x)
#define ___kipc_is_defined(val)         ____kipc_is_defined(__KIPC_ARG_PLACEHOLDER_##val)
#define ____kipc_is_defined(arg1_or_junk) __kipc_take_second_arg(arg1_or_junk 1, 0)

/* 1 if the bool option is y, else 0; usable in #if and in expressions. */
#ifndef IS_ENABLED
#define IS_ENABLED(option) __kipc_is_defined(option)
#endif

#endif /* _KIPC_KCONFIG_H */
