// SPDX-License-Identifier: MIT
/*
 * net_chat: the textbook's Internet chat, across machines.
 *
 *   net_chat room N            on one node: the room, "/chat"; ends when
 *                              N members have joined and left again
 *   net_chat member NAME NODE  on any node: joins the room on NODE, says
 *                              every line of stdin, prints what is said
 *
 * A member has a mailbox of its own, "/chat-NAME", on its own node, and
 * says "join NAME" to the room. The room takes the member's node from
 * the sender of that message (a node-qualified pid: the node NATS
 * authenticated, never what the text claims; kipc_net_peer names it),
 * answers the member directly, kipc_send(sender) back across the
 * network to the task that joined (the textbook's send(P)), and sends
 * every line it receives to every member's mailbox as
 * /net/NODE/chat-NAME: the same kipc_mbox_send as on one machine, only
 * the name has a node. Both mailboxes are writable by others (0622): a
 * remote sender is an unprivileged user at the home node, and the direct
 * answer reaches a member only if its uid is declared shared by the
 * cluster (net_shared_uids) or the same as the mapped one
 * (Documentation/network.md); otherwise the member says why and leaves.
 *
 * Run without arguments (as make check's samples do) it says how to run
 * it and exits 0; tests/net runs it on three nodes.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <kipc/libkipc.h>

#define MAX_MEMBERS 16

static int64_t open_own(const char *name)
{
	struct kipc_mbox_attr a = {.capacity = KIPC_CAP_DEFAULT, .mode = 0622};
	return kipc_mbox_open(name, KIPC_O_CREAT | KIPC_O_EXCL, &a);
}

/* The node of a message's sender: its node-qualified pid says it. */
static int sender_node(pid_t from, char *node, size_t len)
{
	struct kipc_net_peer np;
	struct kipc_net_stat ns;
	if (KIPC_NET_IS_PID(from)) {
		if (kipc_net_peer(from, &np) < 0)
			return -1;
		snprintf(node, len, "%s", np.node);
	} else { /* a member on the room's own node */
		if (kipc_net_stat(&ns) < 0)
			return -1;
		snprintf(node, len, "%s", ns.node);
	}
	return 0;
}

static int room(int want)
{
	struct { char name[32]; int64_t box; } m[MAX_MEMBERS];
	int n = 0, joined = 0, left = 0;
	int64_t box = open_own("/chat");
	if (box < 0) {
		perror("net_chat: /chat");
		return 1;
	}
	printf("room open\n");
	fflush(stdout);
	while (joined < want || left < joined) {
		char line[512], who[32], node[32];
		struct kipc_msginfo mi;
		ssize_t len = kipc_mbox_receive(box, line, sizeof line - 1, &mi, 0);
		if (len < 0) {
			perror("net_chat: receive");
			return 1;
		}
		line[len] = '\0';
		if (sscanf(line, "join %31s", who) == 1 && n < MAX_MEMBERS) {
			char path[96], hi[64];
			if (sender_node(mi.pid, node, sizeof node) < 0) {
				perror("net_chat: who joined");
				continue;
			}
			snprintf(path, sizeof path, "/net/%s/chat-%s", node, who);
			snprintf(m[n].name, sizeof m[n].name, "%s", who);
			m[n].box = kipc_mbox_open(path, 0, NULL);
			if (m[n].box < 0) {
				fprintf(stderr, "net_chat: %s: %s\n", path, strerror(errno));
				continue;
			}
			n++, joined++;
			/* Straight back to the task that joined, on its node. */
			int k = snprintf(hi, sizeof hi, "welcome %s (%d here)", who, n);
			if (kipc_send(mi.pid, hi, (size_t)k + 1, 0, 0) < 0)
				fprintf(stderr, "net_chat: welcome %s: %s\n", who, strerror(errno));
			snprintf(line, sizeof line, "* %s joined from %s", who, node);
		} else if (sscanf(line, "bye %31s", who) == 1) {
			left++;
			snprintf(line, sizeof line, "* %s left", who);
		} else {
			who[0] = '\0';
		}
		printf("%s\n", line);
		fflush(stdout);
		for (int i = 0; i < n; i++)
			if (kipc_mbox_send(m[i].box, line, strlen(line) + 1, 0, 0) < 0)
				fprintf(stderr, "net_chat: to %s: %s\n", m[i].name, strerror(errno));
		/* Who left hears its own leaving, then no more. */
		for (int i = 0; i < n; i++)
			if (strncmp(line, "* ", 2) == 0 && strstr(line, " left") &&
			    strcmp(m[i].name, who) == 0)
				m[i] = m[--n];
	}
	return 0;
}

static int member(const char *name, const char *room_node)
{
	char own[64], path[96], line[512], left[64];
	snprintf(own, sizeof own, "/chat-%s", name);
	snprintf(left, sizeof left, "* %s left", name);
	/*
	 * The listener owns the member's mailbox (only a holder of the
	 * receive right may receive) and prints the room until it
	 * announces our leaving; it says on a pipe when the mailbox exists.
	 */
	int ready[2];
	if (pipe(ready) < 0)
		return 1;
	pid_t listener = fork();
	if (listener == 0) {
		close(ready[0]);
		int64_t me = open_own(own);
		if (me < 0) {
			fprintf(stderr, "net_chat: %s: %s\n", own, strerror(errno));
			_exit(1);
		}
		if (write(ready[1], "r", 1) != 1)
			_exit(1);
		close(ready[1]);
		for (;;) {
			ssize_t len = kipc_mbox_receive(me, line, sizeof line - 1, NULL, 0);
			if (len < 0)
				_exit(1);
			line[len] = '\0';
			printf("%s\n", line);
			fflush(stdout);
			if (strcmp(line, left) == 0)
				_exit(0);
		}
	}
	close(ready[1]);
	char c;
	if (listener < 0 || read(ready[0], &c, 1) != 1)
		return 1;
	close(ready[0]);
	struct kipc_net_stat ns;
	if (kipc_net_stat(&ns) < 0) {
		perror("net_chat: this kernel has no network");
		kill(listener, SIGTERM);
		return 1;
	}
	snprintf(path, sizeof path, "/net/%s/chat", room_node);
	int64_t box = kipc_mbox_open(path, 0, NULL);
	int k = snprintf(line, sizeof line, "join %s", name);
	if (box < 0 || kipc_mbox_send(box, line, (size_t)k + 1, 0, 0) < 0) {
		fprintf(stderr, "net_chat: join %s: %s\n", path, strerror(errno));
		kill(listener, SIGTERM);
		return 1;
	}
	/* The room's answer comes to this task itself (its task queue). */
	struct kipc_msginfo mi;
	ssize_t n = kipc_receive_timed(KIPC_ANY, line, sizeof line - 1, &mi, 0,
				       10 * (int64_t)1000000000);
	if (n < 0) {
		fprintf(stderr, "net_chat: no welcome from the room: %s\n", strerror(errno));
		kill(listener, SIGTERM);
		return 1;
	}
	line[n] = '\0';
	printf("%s\n", line);
	fflush(stdout);
	char in[400];
	while (fgets(in, sizeof in, stdin)) {
		in[strcspn(in, "\n")] = '\0';
		k = snprintf(line, sizeof line, "<%s> %s", name, in);
		if (kipc_mbox_send(box, line, (size_t)k + 1, 0, 0) < 0) {
			perror("net_chat: send");
			break;
		}
	}
	k = snprintf(line, sizeof line, "bye %s", name);
	kipc_mbox_send(box, line, (size_t)k + 1, 0, 0);
	int st = 1;
	waitpid(listener, &st, 0);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 1;
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "room") == 0)
		return room(atoi(argv[2]));
	if (argc == 4 && strcmp(argv[1], "member") == 0)
		return member(argv[2], argv[3]);
	printf("net_chat: a chat across kipc nodes; run it on a cluster:\n"
	       "  net_chat room N             (on one node)\n"
	       "  net_chat member NAME NODE   (on any node; NODE has the room)\n");
	return argc == 1 ? 0 : 2;
}
