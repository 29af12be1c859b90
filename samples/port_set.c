// SPDX-License-Identifier: MIT
/*
 * port_set: one receive on several mailboxes (Mach's port sets, like
 * select(2) on descriptors). kipc_mbox_receive_set() takes the first
 * message of any of them; info.source says which mailbox it came from.
 *
 * Notice: one server loop serves three services, and a receive on the
 * set blocks (here: times out) only when all of them are empty.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <kipc/libkipc.h>

int main(void)
{
	const char *names[] = {"printer", "disk", "network"};
	int64_t ids[3];
	struct kipc_mbox_attr attr = {.capacity = 4, .msgsize = 32, .mode = 0600};
	for (int i = 0; i < 3; i++)
		if ((ids[i] = kipc_mbox_open(NULL, 0, &attr)) < 0) {
			perror("kipc_mbox_open");
			return 1;
		}
	printf("a server with three mailboxes: printer, disk, network\n");
	kipc_mbox_send(ids[1], "read block 7", 13, 0, 0);
	kipc_mbox_send(ids[2], "packet in", 10, 0, 0);
	kipc_mbox_send(ids[0], "print page", 11, 0, 0);
	kipc_mbox_send(ids[1], "write block 9", 14, 0, 0);
	printf("sent: disk, network, printer, disk\n");

	for (;;) {
		char buf[32];
		struct kipc_msginfo info;
		ssize_t n = kipc_mbox_receive_set_x(ids, 3, buf, sizeof buf, &info, KIPC_F_TIMEOUT,
						    &(struct kipc_opts){.timeout = 100000000});
		if (n < 0) {
			printf("set empty: %s after the 100 ms timeout\n", strerrorname_np(errno));
			break;
		}
		for (int i = 0; i < 3; i++)
			if (info.source == ids[i])
				printf("from %-8s: %s\n", names[i], buf);
	}
	for (int i = 0; i < 3; i++)
		kipc_mbox_destroy(ids[i]);
	return 0;
}
