// SPDX-License-Identifier: MIT
/*
 * prio_types: priorities and message types. Messages of higher priority
 * are received first (FIFO within one priority), as POSIX mq_receive
 * does; a receive may select by type with System V msgrcv's rules
 * (KIPC_F_TYPE: type > 0 that type, < 0 the lowest type <= |type|,
 * with KIPC_F_EXCEPT any type but that one).
 *
 * Notice: the order in which the same messages come out each time.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <kipc/libkipc.h>

static void send(int64_t box, const char *text, unsigned prio, int64_t type)
{
	struct kipc_opts o = {.type = type};
	char buf[16] = {0};
	strncpy(buf, text, sizeof buf - 1);
	kipc_mbox_send_x(box, buf, sizeof buf, prio, 0, &o);
}

static void take(int64_t box, const char *how, unsigned flags, int64_t type)
{
	char buf[16];
	struct kipc_msginfo info;
	struct kipc_opts o = {.type = type};
	if (kipc_mbox_receive_x(box, buf, sizeof buf, &info, flags | KIPC_F_NONBLOCK, &o) < 0)
		printf("  %-22s -> %s\n", how, strerrorname_np(errno));
	else
		printf("  %-22s -> %-8s (prio %u, type %lld)\n", how, buf, info.prio,
		       (long long)info.type);
}

int main(void)
{
	struct kipc_mbox_attr attr = {.capacity = 16, .msgsize = 16, .mode = 0600};
	int64_t box = kipc_mbox_open(NULL, 0, &attr);
	if (box < 0) {
		perror("kipc_mbox_open");
		return 1;
	}
	printf("sent: low (prio 1), urgent (prio 9), normal (prio 5), normal2 (prio 5)\n");
	send(box, "low", 1, 0);
	send(box, "urgent", 9, 0);
	send(box, "normal", 5, 0);
	send(box, "normal2", 5, 0);
	for (int i = 0; i < 4; i++)
		take(box, "receive", 0, 0);

	printf("sent: a (type 3), b (type 1), c (type 2), d (type 3), e (type 4)\n");
	send(box, "a", 0, 3);
	send(box, "b", 0, 1);
	send(box, "c", 0, 2);
	send(box, "d", 0, 3);
	send(box, "e", 0, 4);
	take(box, "type 3", KIPC_F_TYPE, 3);
	take(box, "type -2 (lowest <= 2)", KIPC_F_TYPE, -2);
	take(box, "any type but 4", KIPC_F_TYPE | KIPC_F_EXCEPT, 4);
	take(box, "any (type 0)", 0, 0);
	take(box, "type 3 again", KIPC_F_TYPE, 3);
	take(box, "any", 0, 0);
	kipc_mbox_destroy(box);
	return 0;
}
