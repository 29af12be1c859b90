/* SPDX-License-Identifier: MIT */
/*
 * uapi check, C11: compiled with every uapi header force-included
 * (-include) by tests/uapi-check/run.sh, so all headers go together.
 */
#include <assert.h>
#include <kipc/kipc.h>

static_assert(sizeof(struct kipc_sqe) == 64, "struct kipc_sqe must be 64 bytes");
static_assert(sizeof(struct kipc_cqe) == 64, "struct kipc_cqe must be 64 bytes");
