// SPDX-License-Identifier: MIT
/* msgctl MSG_STAT and MSG_STAT_ANY take an index: a full id names its
 * index (id % 32768, ipcid_to_idx()); IPC_INFO and MSG_INFO return the
 * highest index in use, which is at least every live queue's index. */
#include "conform.h"
#include <sys/msg.h>

int main(void)
{
	int q[3];
	struct msqid_ds ds;
	struct msginfo mi;
	for (int i = 0; i < 3; i++)
		q[i] = res("msgget", msgget(IPC_PRIVATE, 0600));
	for (int i = 0; i < 3; i++) {
		int idx = q[i] % 32768;
		val("MSG_STAT_ANY by index returns the id", msgctl(idx, MSG_STAT_ANY, &ds) == q[i]);
		val("MSG_STAT by index returns the id", msgctl(idx, MSG_STAT, &ds) == q[i]);
		val("MSG_STAT_ANY by full id returns the id", msgctl(q[i], MSG_STAT_ANY, &ds) == q[i]);
		val("MSG_STAT by full id returns the id", msgctl(q[i], MSG_STAT, &ds) == q[i]);
		val("id + 32768 names the same index",
		    msgctl(q[i] + 32768, MSG_STAT_ANY, &ds) == q[i]);
		int max = msgctl(0, IPC_INFO, (struct msqid_ds *)&mi);
		val("IPC_INFO highest index >= the queue's index", max >= idx);
		max = msgctl(0, MSG_INFO, (struct msqid_ds *)&mi);
		val("MSG_INFO highest index >= the queue's index", max >= idx);
	}
	res("MSG_STAT_ANY negative", msgctl(-1, MSG_STAT_ANY, &ds));
	int gone = q[2] % 32768;
	res("IPC_RMID", msgctl(q[2], IPC_RMID, NULL));
	res("MSG_STAT_ANY of a removed queue's index", msgctl(gone, MSG_STAT_ANY, &ds));
	res("MSG_STAT of a removed queue's id", msgctl(q[2], MSG_STAT, &ds));
	res("IPC_RMID", msgctl(q[0], IPC_RMID, NULL));
	res("IPC_RMID", msgctl(q[1], IPC_RMID, NULL));
	return 0;
}
