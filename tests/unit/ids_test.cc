// SPDX-License-Identifier: MIT
/*
 * kernel/ipc/ids.h on its own (issue, reuse protection, exhaustion), then
 * the kernel's two id spaces: a million native mailboxes, System V ids in
 * Linux's split or ipcmni_extend's, and stale ids refused in both.
 */
#include <vector>

#include <doctest/doctest.h>

#include "harness.h"

using namespace kipc;

namespace {
Mailbox *fake(uintptr_t n)
{
	return reinterpret_cast<Mailbox *>(n * 64);
}
} // namespace

TEST_CASE("ids: seq << bits | idx; a freed id is EIDRM, one never issued EINVAL")
{
	IdTable t(4, 1, 7, 16); /* 16 slots, seq 1..7 */
	int err = 0;
	int64_t a = t.alloc(fake(1)), b = t.alloc(fake(2));
	CHECK(a == (1 << 4 | 0));
	CHECK(b == (2 << 4 | 1)); /* the counter moves at every creation */
	CHECK(t.find(a, &err) == fake(1));
	CHECK(t.find(b, &err) == fake(2));
	t.free(a);
	CHECK(t.find(a, &err) == nullptr);
	CHECK(err == -EIDRM);
	/* the slot is reused with a new seq: the old id stays dead */
	int64_t c = t.alloc(fake(3));
	CHECK(t.idx_of(c) == 0);
	CHECK(c != a);
	CHECK(t.find(a, &err) == nullptr);
	CHECK(err == -EIDRM);
	CHECK(t.find(c, &err) == fake(3));
	/* never issued: a seq ahead of the slot's, an unused index, out of range */
	CHECK(t.find(int64_t(6) << 4 | 0, &err) == nullptr);
	CHECK(err == -EINVAL);
	CHECK(t.find(int64_t(1) << 4 | 9, &err) == nullptr);
	CHECK(err == -EINVAL);
	CHECK(t.find(0, &err) == nullptr);
	CHECK(err == -EINVAL);
	CHECK(t.find(-1, &err) == nullptr);
	CHECK(t.find(int64_t(8) << 4, &err) == nullptr); /* seq beyond seq_max */
	CHECK(err == -EINVAL);
}

TEST_CASE("ids: exhaustion is ENOSPC and changes nothing; a free makes room")
{
	IdTable t(4, 1, 7, 5);
	std::vector<int64_t> ids;
	for (uintptr_t i = 1; i <= 5; i++) {
		int64_t id = t.alloc(fake(i));
		REQUIRE(id > 0);
		ids.push_back(id);
	}
	CHECK(t.alloc(fake(9)) == -ENOSPC);
	CHECK(t.used() == 5);
	int err;
	for (size_t i = 0; i < ids.size(); i++)
		CHECK(t.find(ids[i], &err) == fake(i + 1));
	t.free(ids[2]);
	int64_t id = t.alloc(fake(9));
	CHECK(t.idx_of(id) == t.idx_of(ids[2]));
	CHECK(t.alloc(fake(10)) == -ENOSPC);
}

TEST_CASE("ids: the counter wraps from seq_max to seq_min; want picks index and seq")
{
	IdTable t(4, 1, 3, 16);
	int64_t last = 0;
	for (uintptr_t i = 1; i <= 4; i++) {
		last = t.alloc(fake(i));
		t.free(last);
	}
	CHECK(t.seq_of(last) == 1); /* 1, 2, 3, then 1 again */
	/* msg_next_id: the first free index from want's up, want's seq */
	int64_t a = t.alloc(fake(5), int64_t(3) << 4 | 2);
	CHECK(a == (int64_t(3) << 4 | 2));
	int64_t b = t.alloc(fake(6), int64_t(2) << 4 | 2);
	CHECK(b == (int64_t(2) << 4 | 3)); /* 2 is taken */
	CHECK(t.alloc(fake(7), 0) == (0 << 4 | 1)); /* id 0 is never issued */
	CHECK(t.alloc(fake(8), int64_t(2) << 4 | 15) == (int64_t(2) << 4 | 15));
	CHECK(t.alloc(fake(9), int64_t(2) << 4 | 15) == -ENOSPC);
}

TEST_CASE("ids: the native table holds a million live ids, all above INT32_MAX")
{
	IdTable t(kMboxIdxBits, kMboxSeqMin, UINT32_MAX, 1u << kMboxIdxBits);
	int err;
	int64_t first = 0, prev = 0;
	for (uintptr_t i = 1; i <= 1000000; i++) {
		int64_t id = t.alloc(fake(i));
		REQUIRE(id > INT32_MAX);
		REQUIRE(id != prev);
		prev = id;
		if (i == 1)
			first = id;
	}
	CHECK(t.used() == 1000000);
	CHECK(t.find(first, &err) == fake(1));
	CHECK(t.find(prev, &err) == fake(1000000));
}

TEST_CASE("mailboxes: past 32768 native mailboxes; System V ids stay Linux's; stale ids refused")
{
	Limits l = Limits::from_config();
	l.mbox_per_user = 65536;
	kt::World w(l);
	kt::Proc &a = w.spawn(100);
	KernelImpl &k = w.impl();
	/* the core directly: the facade's debug checks walk every mailbox per call */
	kipc_mbox_attr attr{};
	attr.capacity = 1;
	attr.mode = 0600;
	std::vector<int64_t> ids;
	for (int i = 0; i < 40000; i++) {
		int64_t id = k.mbox.open(*a.task, "", KIPC_O_CREAT, &attr);
		REQUIRE(id > INT32_MAX);
		ids.push_back(id);
	}
	CHECK(a.mbox_send(ids.back(), "last").res() == 0);
	CHECK(kt::mbox_drain(a, ids.back()) == std::vector<std::string>{"last"});
	/* System V queues have ids of their own, as Linux's: small, positive */
	int64_t q = k.do_msgget(*a.task, 0, KIPC_IPC_CREAT | 0600);
	REQUIRE(q > 0);
	CHECK(q < 32768 * 2); /* seq 1, index 0 */
	CHECK(q % 32768 == 0);
	/* a destroyed id is EIDRM, also once its slot is reused */
	CHECK(a.mbox_destroy(ids[12345]) == 0);
	CHECK(a.mbox_send(ids[12345], "x").res() == -EIDRM);
	int64_t again = a.mbox_create(1);
	CHECK(again != ids[12345]);
	CHECK(k.mbox.native_ids().idx_of(again) == k.mbox.native_ids().idx_of(ids[12345]));
	CHECK(a.mbox_send(ids[12345], "x").res() == -EIDRM);
	CHECK(a.mbox_send(again, "y").res() == 0);
	/* never issued: EINVAL */
	CHECK(a.mbox_send(ids.back() + (int64_t(1) << 40), "x").res() == -EINVAL);
	CHECK(a.mbox_send(q + 32768 * 5, "x").res() == -EINVAL);
	ids[12345] = again;
	for (int64_t id : ids)
		k.mbox.destroy(*a.task, id);
	k.do_msgctl(*a.task, q, KIPC_IPC_RMID, nullptr, nullptr);
}

TEST_CASE("sysv: ipcmni_extend ids are seq << 24 | idx; msgmni may reach 2^24")
{
	Limits l = Limits::from_config();
	CHECK(l.set("msgmni", "40000") == 0);
	CHECK(l.conflict() != ""); /* beyond IPCMNI without the extension */
	CHECK(l.set("ipcmni_extend", "1") == 0);
	CHECK(l.conflict() == "");
	kt::World w(l);
	kt::Proc &a = w.spawn(100);
	KernelImpl &k = w.impl();
	int64_t q = k.do_msgget(*a.task, 0, KIPC_IPC_CREAT | 0600);
	CHECK(q == (int64_t(1) << 24 | 0));
	kipc_msqid_ds ds{};
	/* MSG_STAT takes an index: id & 0xffffff */
	CHECK(k.do_msgctl(*a.task, 0, KIPC_MSG_STAT, &ds, nullptr) == q);
	CHECK(ds.seq == 1);
	CHECK(k.do_msgctl(*a.task, q, KIPC_MSG_STAT, &ds, nullptr) == q);
	int64_t v = 1 << 24;
	CHECK(k.do_sysctl(*a.task, KIPC_SYSCTL_MSGMNI, true, &v) == -EACCES); /* not root */
	CHECK(k.do_msgctl(*a.task, q, KIPC_IPC_RMID, nullptr, nullptr) == 0);
}
