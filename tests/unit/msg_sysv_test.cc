// SPDX-License-Identifier: MIT
/* System V message queues in the core (kernel/ipc/msg_sysv.cc). */
#include "harness.h"

using namespace kt;

namespace {

int64_t msgget(Proc &p, int32_t key, uint32_t flg)
{
	kipc_sqe s{};
	__kipc_enc_msgget(&s, key, flg);
	return p.submit(s).res();
}

Op msgsnd(Proc &p, int64_t id, int64_t type, const std::string &data, int msgflg = 0)
{
	kipc_sqe s{};
	__kipc_enc_msgsnd(&s, id, type, p.put(data), data.size(), msgflg);
	return p.submit(s);
}

Op msgrcv(Proc &p, int64_t id, int64_t typ, uint32_t msgflg = KIPC_IPC_NOWAIT, uint32_t len = 64)
{
	kipc_sqe s{};
	__kipc_enc_msgrcv(&s, id, typ, p.mem.alloc(len), len, msgflg);
	return p.submit(s, s.addr, len);
}

int64_t msgctl(Proc &p, int64_t id, uint32_t cmd, kipc_msqid_ds *ds = nullptr)
{
	kipc_sqe s{};
	__kipc_enc_msgctl(&s, id, cmd, p.mem.alloc(sizeof *ds), sizeof *ds);
	if (ds)
		std::memcpy(p.mem.arena.data() + s.addr2, ds, sizeof *ds);
	int64_t r = p.submit(s).res();
	if (ds && r >= 0)
		std::memcpy(ds, p.mem.arena.data() + s.addr2, sizeof *ds);
	return r;
}

} // namespace

TEST_CASE("sysv: msgget keys, IPC_CREAT, IPC_EXCL, modes")
{
	World w;
	Proc &a = w.spawn(100), &b = w.spawn(200, 2000, 2000);
	CHECK(msgget(a, 42, 0600) == -ENOENT);
	int64_t id = msgget(a, 42, KIPC_IPC_CREAT | KIPC_IPC_EXCL | 0640);
	REQUIRE(id > 0);
	CHECK(msgget(a, 42, KIPC_IPC_CREAT | KIPC_IPC_EXCL) == -EEXIST);
	CHECK(msgget(a, 42, 0) == id);
	CHECK(msgget(b, 42, 0400) == -EACCES); /* other: no bits */
	CHECK(msgget(a, 0, 0600) != msgget(a, 0, 0600)); /* IPC_PRIVATE */
	CHECK(msgsnd(b, id, 1, "x").res() == -EACCES);
	CHECK(msgctl(b, id, KIPC_IPC_RMID) == -EPERM);
	CHECK(msgctl(a, id, KIPC_IPC_RMID) == 0);
	CHECK(msgsnd(a, id, 1, "x").res() == -EINVAL);
	CHECK(msgget(a, 42, 0) == -ENOENT);
}

TEST_CASE("sysv: msgtyp selection, MSG_EXCEPT, MSG_NOERROR, MSG_COPY")
{
	World w;
	Proc &a = w.spawn(100);
	int64_t id = msgget(a, 0, 0600);
	for (auto [t, s] : {std::pair{5, "e"}, {3, "c1"}, {1, "a"}, {3, "c2"}, {2, "b"}})
		CHECK(msgsnd(a, id, t, s).res() == 0);
	CHECK(msgsnd(a, id, 0, "bad").res() == -EINVAL);
	Op c = msgrcv(a, id, 1, KIPC_IPC_NOWAIT | KIPC_MSG_COPY);
	CHECK(c.text() == "c1");
	CHECK(msgrcv(a, id, 0, KIPC_MSG_COPY).res() == -EINVAL);
	CHECK(msgrcv(a, id, 3).text() == "c1");
	CHECK(msgrcv(a, id, -4).text() == "a");
	CHECK(msgrcv(a, id, 5, KIPC_IPC_NOWAIT | KIPC_MSG_EXCEPT).text() == "c2");
	CHECK(msgrcv(a, id, 4).res() == -EAGAIN);
	CHECK(msgsnd(a, id, 9, "long text").res() == 0);
	CHECK(msgrcv(a, id, 9, KIPC_IPC_NOWAIT, 4).res() == -EMSGSIZE);
	Op r = msgrcv(a, id, 9, KIPC_IPC_NOWAIT | KIPC_MSG_NOERROR, 4);
	CHECK(r.text() == "long");
	CHECK(r.cqe().type == 9);
}

TEST_CASE("sysv: msg_qbytes bounds bytes and messages; IPC_RMID wakes waiters with EIDRM")
{
	World w;
	Proc &a = w.spawn(100), &b = w.spawn(200);
	int64_t id = msgget(a, 7, KIPC_IPC_CREAT | 0666);
	kipc_msqid_ds ds{};
	CHECK(msgctl(a, id, KIPC_IPC_STAT, &ds) == 0);
	CHECK(ds.qbytes == 16384);
	ds.qbytes = 2;
	CHECK(msgctl(a, id, KIPC_IPC_SET, &ds) == 0);
	CHECK(msgsnd(a, id, 1, "").res() == 0);
	CHECK(msgsnd(a, id, 1, "").res() == 0);
	CHECK(msgsnd(a, id, 1, "", KIPC_IPC_NOWAIT).res() == -EAGAIN); /* 3 messages > 2 */
	Op blocked = msgsnd(b, id, 1, "");
	CHECK(!blocked.done());
	Op waiting = msgrcv(b, id, 5, 0);
	CHECK(!waiting.done());
	CHECK(msgctl(a, id, KIPC_IPC_RMID) == 0);
	CHECK(blocked.res() == -EIDRM);
	CHECK(waiting.res() == -EIDRM);
	CHECK(w.impl().msq.count() == 0);
}

TEST_CASE("sysv: MSG_STAT and MSG_STAT_ANY take id % 32768; IPC_INFO's highest index")
{
	World w;
	Proc &a = w.spawn(100), &b = w.spawn(200, 2000, 2000);
	kipc_msqid_ds ds{};
	CHECK(msgctl(a, 0, KIPC_IPC_INFO, &ds) == 0); /* none: 0 */
	int64_t id = msgget(a, 0, 0600);
	int64_t id2 = msgget(a, 0, 0600);
	REQUIRE(id > 0);
	REQUIRE(id2 > 0);
	CHECK(msgctl(a, id, KIPC_MSG_STAT_ANY, &ds) == id);
	CHECK(msgctl(a, id % 32768, KIPC_MSG_STAT_ANY, &ds) == id);
	CHECK(msgctl(a, id + 32768, KIPC_MSG_STAT, &ds) == id);
	CHECK(msgctl(b, id, KIPC_MSG_STAT, &ds) == -EACCES); /* mode 0600 */
	CHECK(msgctl(b, id, KIPC_MSG_STAT_ANY, &ds) == id);  /* no check */
	int64_t max = std::max(id % 32768, id2 % 32768);
	CHECK(msgctl(a, 0, KIPC_IPC_INFO, &ds) == max);
	CHECK(msgctl(a, 0, KIPC_MSG_INFO, &ds) == max);
	CHECK(msgctl(a, id2, KIPC_IPC_RMID) == 0);
	CHECK(msgctl(a, 0, KIPC_IPC_INFO, &ds) == id % 32768);
	CHECK(msgctl(a, id2 % 32768, KIPC_MSG_STAT_ANY, &ds) == -EINVAL);
	CHECK(msgctl(a, -1, KIPC_MSG_STAT_ANY, &ds) == -EINVAL);
}

TEST_CASE("sysv: queues and messages are charged: floods end in ENOSPC and ENOMEM, others go on")
{
	Limits l = Limits::from_config();
	l.mbox_per_user = 8;
	l.bytes_per_user = 819200; /* the default, whatever the config */
	World w(l);
	Proc &a = w.spawn(100), &b = w.spawn(200, 2000, 2000);
	/* queues: mbox_per_user of them, then ENOSPC (msgmni is far) */
	std::vector<int64_t> qs;
	int64_t r;
	while ((r = msgget(a, 0, 0600)) > 0 && qs.size() < 100)
		qs.push_back(r);
	CHECK(r == -ENOSPC);
	CHECK(qs.size() == 8);
	CHECK(w.impl().user(1000).bytes == 8 * kSysvQueueCost);
	int64_t qb = msgget(b, 0, 0600); /* another user still gets one */
	CHECK(qb > 0);
	/* zero-length messages: each costs its header, the flood ends ENOMEM */
	kipc_msqid_ds ds{};
	REQUIRE(msgctl(a, qs[0], KIPC_IPC_STAT, &ds) == 0);
	w.host.cap_sys_resource = true; /* a large queue: the quota ends it, not qbytes */
	ds.qbytes = 1u << 30;
	REQUIRE(msgctl(a, qs[0], KIPC_IPC_SET, &ds) == 0);
	w.host.cap_sys_resource = false;
	int n = 0;
	while ((r = msgsnd(a, qs[0], 1, "", KIPC_IPC_NOWAIT).res()) == 0 && n < 1000000)
		n++;
	CHECK(r == -ENOMEM);
	CHECK(uint64_t(n) <= l.bytes_per_user / kMessageOverhead);
	CHECK(w.impl().user(1000).bytes <= l.bytes_per_user);
	CHECK(msgsnd(b, qb, 1, "still served").res() == 0);
	CHECK(msgrcv(b, qb, 0).text() == "still served");
	/* removing the queue gives it all back */
	for (int64_t q : qs)
		CHECK(msgctl(a, q, KIPC_IPC_RMID) == 0);
	CHECK(w.impl().user(1000).bytes == 0);
	CHECK(w.impl().user(1000).mailboxes == 0);
	CHECK(msgget(a, 0, 0600) > 0);
	/* headers count too: a user with no bytes left gets no queue */
	kt::CoreTestAccess::limits(w.impl()).bytes_per_user = w.impl().user(1000).bytes + kSysvQueueCost - 1;
	CHECK(msgget(a, 0, 0600) == -ENOMEM);
}

TEST_CASE("creds: cred_refresh takes the host's credentials, never the caller's")
{
	World w;
	Proc &root = w.spawn(100, 0, 0), &a = w.spawn(200, 0, 0);
	int64_t id = msgget(root, 0, 0600);
	REQUIRE(id > 0);
	auto refresh = [](Proc &p, uint32_t len = 0) {
		kipc_sqe s{};
		s.opcode = KIPC_SYS_cred_refresh;
		s.len = len;
		return p.submit(s).res();
	};
	kipc_msqid_ds ds{};
	/* a seteuid(65534) the kernel has not been told about: still root */
	w.host.alive[a.pid] = Creds{a.pid, 65534, 65534};
	CHECK(msgctl(a, id, KIPC_IPC_STAT, &ds) == 0);
	CHECK(refresh(a, 1) == -EINVAL); /* the call takes no arguments */
	CHECK(refresh(a) == 0);
	CHECK(msgctl(a, id, KIPC_IPC_STAT, &ds) == -EACCES);
	CHECK(msgctl(a, id, KIPC_IPC_RMID) == -EPERM);
	CHECK(msgsnd(a, id, 1, "x").res() == -EACCES);
	/* supplementary groups count, as in_group_p() */
	ds.uid = 0;
	ds.gid = 4242;
	ds.mode = 0060;
	ds.qbytes = 16384;
	REQUIRE(msgctl(root, id, KIPC_IPC_SET, &ds) == 0);
	CHECK(msgsnd(a, id, 1, "x").res() == -EACCES);
	w.host.alive[a.pid] = Creds{a.pid, 65534, 65534, {7, 4242}};
	CHECK(refresh(a) == 0);
	CHECK(msgsnd(a, id, 1, "x").res() == 0);
	CHECK(msgctl(a, id, KIPC_IPC_STAT, &ds) == 0);
	CHECK(msgctl(a, id, KIPC_IPC_RMID) == -EPERM);
	/* back to root: the kernel follows the host again */
	w.host.alive[a.pid] = Creds{a.pid, 0, 0};
	CHECK(refresh(a) == 0);
	CHECK(msgctl(a, id, KIPC_IPC_RMID) == 0);
	/* a process that is gone cannot be refreshed */
	w.host.alive.erase(a.pid);
	CHECK(refresh(a) == -ESRCH);
}

TEST_CASE("sysctl: anyone reads, only root writes, within Linux's ranges; msg_next_id")
{
	World w;
	Proc &root = w.spawn(100, 0, 0), &a = w.spawn(200, 1000, 1000);
	auto sysctl = [](Proc &p, uint32_t key, int64_t *v, bool write) {
		kipc_sqe s{};
		__kipc_enc_sysctl(&s, key, write, *v);
		Op op = p.submit(s);
		if (!write && op.res() == 0)
			*v = op.cqe().type;
		return op.res();
	};
	int64_t v = 0;
	CHECK(sysctl(a, KIPC_SYSCTL_MSGMNI, &v, false) == 0);
	CHECK(v == 32000);
	v = 1;
	CHECK(sysctl(a, KIPC_SYSCTL_MSGMNI, &v, true) == -EACCES); /* hostile */
	CHECK(sysctl(a, KIPC_SYSCTL_MQ_QUEUES_MAX, &v, true) == -EACCES);
	CHECK(sysctl(root, KIPC_SYSCTL_MSGMNI, &v, true) == 0);
	CHECK(msgget(a, 0, 0600) > 0);
	CHECK(msgget(a, 0, 0600) == -ENOSPC);
	v = 32769;
	CHECK(sysctl(root, KIPC_SYSCTL_MSGMNI, &v, true) == -EINVAL);
	v = 0;
	CHECK(sysctl(root, KIPC_SYSCTL_MQ_MSG_MAX, &v, true) == -EINVAL);
	CHECK(sysctl(root, 999, &v, true) == -EINVAL);
	v = 32000;
	CHECK(sysctl(root, KIPC_SYSCTL_MSGMNI, &v, true) == 0);
	v = 5 * 32768 + 77;
	CHECK(sysctl(a, KIPC_SYSCTL_MSG_NEXT_ID, &v, true) == -EACCES);
	CHECK(sysctl(root, KIPC_SYSCTL_MSG_NEXT_ID, &v, true) == 0);
	CHECK(msgget(a, 0, 0600) == 5 * 32768 + 77);
	CHECK(sysctl(a, KIPC_SYSCTL_MSG_NEXT_ID, &v, false) == 0);
	CHECK(v == -1);
	CHECK(msgget(a, 0, 0600) % 32768 != 77); /* the usual allocation again */
	/* a dropped root (cred_refresh) is no longer root */
	w.host.alive[root.pid] = Creds{root.pid, 65534, 65534};
	kipc_sqe s{};
	__kipc_enc_simple(&s, KIPC_SYS_cred_refresh, 0, 0);
	REQUIRE(root.submit(s).res() == 0);
	v = 5;
	CHECK(sysctl(root, KIPC_SYSCTL_MSGMAX, &v, true) == -EACCES);
}
