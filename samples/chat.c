// SPDX-License-Identifier: MIT
/*
 * chat: three processes chat over one mailbox.
 *
 * A mailbox is a link that any number of tasks can use: everyone sends
 * into "/chat-<pid>", and the room (the parent, which owns the mailbox
 * and so may receive from it) prints every line with its sender's pid.
 * Each speaker says its lines and then "bye".
 */
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <kipc/libkipc.h>

#define SPEAKERS 3

static const char *lines[SPEAKERS][3] = {
	{"hello, everyone", "anyone up for lunch?", "bye"},
	{"hi alice", "lunch sounds good", "bye"},
	{"hey both", "count me in", "bye"},
};
static const char *names[SPEAKERS] = {"alice", "bob", "carol"};

static int speaker(const char *room, int who)
{
	int64_t box = kipc_mbox_open(room, 0, NULL); /* look it up by name */
	if (box < 0) {
		perror("speaker: open");
		return 1;
	}
	for (int i = 0; i < 3; i++) {
		char msg[128];
		int n = snprintf(msg, sizeof msg, "%s: %s", names[who], lines[who][i]);
		if (kipc_mbox_send(box, msg, (size_t)n, 0, 0) < 0) {
			perror("speaker: send");
			return 1;
		}
		usleep(1000 * (who + 1)); /* let the others get a word in */
	}
	return 0;
}

int main(void)
{
	char room[64];
	snprintf(room, sizeof room, "/chat-%d", (int)getpid());
	int64_t box = kipc_mbox_open(room, KIPC_O_CREAT | KIPC_O_EXCL,
				     &(struct kipc_mbox_attr){
					     .capacity = 8, .mode = 0600});
	if (box < 0) {
		perror("kipc_mbox_open");
		return 1;
	}
	printf("chat: room %s is open\n", room);
	fflush(stdout);

	pid_t pids[SPEAKERS];
	for (int i = 0; i < SPEAKERS; i++) {
		pids[i] = fork();
		if (pids[i] < 0) {
			perror("fork");
			return 1;
		}
		if (pids[i] == 0)
			_exit(speaker(room, i));
	}

	int byes = 0, lines_seen = 0;
	while (byes < SPEAKERS) {
		char msg[129];
		struct kipc_msginfo info;
		ssize_t n = kipc_mbox_receive(box, msg, sizeof msg - 1, &info, 0);
		if (n < 0) {
			perror("room: receive");
			return 1;
		}
		msg[n] = '\0';
		printf("  [%d] %s\n", (int)info.pid, msg);
		lines_seen++;
		if (strstr(msg, ": bye"))
			byes++;
	}
	int failed = 0;
	for (int i = 0; i < SPEAKERS; i++) {
		int st;
		waitpid(pids[i], &st, 0);
		failed |= !WIFEXITED(st) || WEXITSTATUS(st) != 0;
	}
	if (failed || lines_seen != 3 * SPEAKERS) {
		fprintf(stderr, "chat: FAILED\n");
		return 1;
	}
	printf("chat: %d lines from %d speakers, room closed\n", lines_seen, SPEAKERS);
	return 0; /* the mailbox is ours: it goes away with us */
}
