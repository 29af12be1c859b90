// SPDX-License-Identifier: MIT
/*
 * unbounded_quota: an unbounded link never makes a sender wait, so
 * something else must stop a sender that outruns its receiver: the
 * kernel charges every queued byte to the sender's user and refuses a
 * send beyond bytes_per_user with ENOSPC (nothing is queued then).
 *
 * Notice: the sends never block; the quota, not the mailbox, stops
 * them; receiving gives the bytes back.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <kipc/libkipc.h>

#define MSG 1024

int main(void)
{
	struct kipc_mbox_attr attr = {.capacity = KIPC_UNBOUNDED, .msgsize = MSG, .mode = 0600};
	int64_t box = kipc_mbox_open(NULL, 0, &attr);
	if (box < 0) {
		perror("kipc_mbox_open");
		return 1;
	}
	struct kipc_sysinfo si;
	kipc_sysinfo(&si);
	uint64_t before = si.user_bytes;
	printf("unbounded mailbox; your quota: %llu bytes (bytes_per_user), %u charged per message\n",
	       (unsigned long long)si.bytes_per_user, si.msg_overhead);

	char buf[MSG];
	memset(buf, 'q', sizeof buf);
	unsigned sent = 0;
	while (kipc_mbox_send(box, buf, sizeof buf, 0, 0) == 0) /* blocking: yet it never waits */
		sent++;
	int err = errno;
	kipc_sysinfo(&si);
	printf("sent %u messages of %d bytes without waiting; the next one: %s\n", sent, MSG,
	       strerrorname_np(err));
	printf("charged to you: %llu bytes = %u x (%d + %u), the quota allows %llu\n",
	       (unsigned long long)(si.user_bytes - before), sent, MSG, si.msg_overhead,
	       (unsigned long long)si.bytes_per_user);

	struct kipc_mbox_stat st;
	kipc_mbox_stat(box, &st);
	printf("the mailbox holds %u messages (capacity: unbounded)\n", st.nmsg);
	for (int i = 0; i < 10; i++)
		kipc_mbox_receive(box, buf, sizeof buf, NULL, 0);
	printf("received 10: a send fits again: %s\n",
	       kipc_mbox_send(box, buf, sizeof buf, 0, 0) == 0 ? "ok" : strerrorname_np(errno));
	kipc_mbox_destroy(box);
	kipc_sysinfo(&si);
	printf("destroyed: charged to you now %llu bytes\n",
	       (unsigned long long)(si.user_bytes - before));
	return 0;
}
