// SPDX-License-Identifier: MIT
/*
 * The dispatch table and the syscall names, both expanded from the one
 * list in <kipc/syscalls.h>.
 */
#include "syscalls.h"

namespace kipc {

struct SyscallEntry {
	SyscallFn fn;
	const char *name;
};

/*
 * Indexed by number. Numbers may leave gaps (a family reserves a range);
 * a gap dispatches to ENOSYS and has no name. The list must be in
 * ascending order so that KIPC_NR_SYSCALLS is the highest number + 1.
 */
struct SyscallTable {
	SyscallEntry e[KIPC_NR_SYSCALLS] = {};
	unsigned last = 0;
	bool sorted = true;
	constexpr SyscallTable()
	{
		unsigned next = 0; /* the lowest number the next row may have */
#define KIPC_SYSCALL_ENTRY_(nr, name, family)                     \
		if (unsigned(nr) + 1 <= next)                     \
			sorted = false;                           \
		e[nr] = SyscallEntry{sys_##name, #name};          \
		last = nr;                                        \
		next = unsigned(nr) + 1;
		KIPC_ENUMERATE_SYSCALLS(KIPC_SYSCALL_ENTRY_)
#undef KIPC_SYSCALL_ENTRY_
	}
};

static constexpr SyscallTable syscall_table;
static_assert(syscall_table.sorted, "KIPC_ENUMERATE_SYSCALLS must be in ascending order");
static_assert(syscall_table.last + 1 == KIPC_NR_SYSCALLS);

const char *syscall_name(unsigned nr)
{
	return nr < KIPC_NR_SYSCALLS ? syscall_table.e[nr].name : nullptr;
}

long dispatch(KernelImpl &k, Task &cur, const kipc_sqe &sqe, kipc_cqe &cqe)
{
	if (sqe.opcode >= KIPC_NR_SYSCALLS || !syscall_table.e[sqe.opcode].fn)
		return -ENOSYS;
	if (sqe.rsvd0)
		return -EINVAL;
	return syscall_table.e[sqe.opcode].fn(k, cur, sqe, cqe);
}

} // namespace kipc
