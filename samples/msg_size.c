// SPDX-License-Identifier: MIT
/*
 * msg_size: fixed-size versus variable-size messages. A mailbox's
 * msgsize bounds every message; with KIPC_MBOX_FIXED every message must
 * be exactly msgsize bytes (like a slot of a fixed record size), without
 * it any length up to msgsize goes (the kernel keeps each length).
 *
 * Notice: which lengths each kind accepts, and that a receive buffer too
 * small fails EMSGSIZE and keeps the message, unless KIPC_F_TRUNC.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <kipc/libkipc.h>

static void try_send(const char *kind, int64_t box, size_t len)
{
	char buf[32];
	memset(buf, 'x', sizeof buf);
	int r = kipc_mbox_send(box, buf, len, 0, KIPC_F_NONBLOCK);
	printf("%-8s mailbox, send %2zu bytes: %s\n", kind, len, r < 0 ? strerrorname_np(errno) : "ok");
}

int main(void)
{
	struct kipc_mbox_attr fixed = {.capacity = 8, .msgsize = 16, .flags = KIPC_MBOX_FIXED,
				       .mode = 0600};
	struct kipc_mbox_attr var = {.capacity = 8, .msgsize = 16, .mode = 0600};
	int64_t f = kipc_mbox_open(NULL, 0, &fixed), v = kipc_mbox_open(NULL, 0, &var);
	if (f < 0 || v < 0) {
		perror("kipc_mbox_open");
		return 1;
	}
	printf("both mailboxes: msgsize 16\n");
	size_t lens[] = {16, 5, 17};
	for (int i = 0; i < 3; i++)
		try_send("fixed", f, lens[i]);
	for (int i = 0; i < 3; i++)
		try_send("variable", v, lens[i]);

	/* The variable mailbox holds a 16-byte and a 5-byte message. */
	char small[8];
	struct kipc_msginfo info;
	ssize_t n = kipc_mbox_receive(v, small, sizeof small, &info, KIPC_F_NONBLOCK);
	printf("receive into 8 bytes: %s (the 16-byte message stays queued)\n",
	       n < 0 ? strerrorname_np(errno) : "ok");
	n = kipc_mbox_receive(v, small, sizeof small, &info, KIPC_F_TRUNC);
	printf("again with KIPC_F_TRUNC: got %zd of %u bytes, truncated: %s\n", n, info.len,
	       info.flags & KIPC_CQE_F_TRUNC ? "yes" : "no");
	n = kipc_mbox_receive(v, small, sizeof small, &info, 0);
	printf("the next message: %zd bytes, its own length\n", n);
	kipc_mbox_destroy(f);
	kipc_mbox_destroy(v);
	return 0;
}
