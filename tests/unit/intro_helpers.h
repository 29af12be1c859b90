// SPDX-License-Identifier: MIT
/* Helpers for the introspection and tracing unit tests. */
#pragma once

#include "harness.h"

namespace kt {

/* Run a list syscall with room for cap records; the result and the records. */
template <class T>
inline int64_t list(Proc &p, uint8_t op, std::vector<T> &out, size_t cap = 64,
		    int64_t target = 0, uint32_t flags = 0)
{
	uint32_t len = cap * sizeof(T);
	kipc_sqe s{};
	__kipc_enc_rec(&s, op, target, flags, 0, p.mem.alloc(len ? len : 1), len);
	int64_t r = p.now(s);
	out.clear();
	if (r >= 0) {
		size_t n = std::min<size_t>(r, cap);
		out.resize(n);
		if (n) /* an empty vector's data() may be null */
			std::memcpy(out.data(), p.mem.arena.data() + s.addr2, n * sizeof(T));
	}
	return r;
}

template <class T>
inline int64_t one(Proc &p, uint8_t op, int64_t target, T *out)
{
	kipc_sqe s{};
	__kipc_enc_rec(&s, op, target, 0, 0, p.mem.alloc(sizeof(T)), sizeof(T));
	return get_rec(p, s, out);
}

inline kipc_sysinfo sysinfo(Proc &p)
{
	kipc_sysinfo si{};
	REQUIRE(one(p, KIPC_SYS_sysinfo, 0, &si) == 0);
	return si;
}

inline int64_t trace_open(Proc &p, const kipc_trace_attr *a = nullptr)
{
	kipc_sqe s{};
	__kipc_enc_rec(&s, KIPC_SYS_trace_open, 0, 0, 0, a ? put_rec(p.mem, *a) : 0,
		       a ? sizeof(*a) : 0);
	return p.now(s);
}

inline int64_t trace_close(Proc &p)
{
	kipc_sqe s{};
	__kipc_enc_simple(&s, KIPC_SYS_trace_close, 0, 0);
	return p.now(s);
}

/* Submit a trace_read for up to n events (it may park). */
inline Op trace_read(Proc &p, size_t n = 64, uint32_t flags = 0, int64_t timeout = 0)
{
	uint32_t len = n * sizeof(kipc_trace_event);
	kipc_sqe s{};
	__kipc_enc_trace_read(&s, p.mem.alloc(len), len, flags, 0);
	return p.submit(timed(s, timeout), s.addr2, len);
}

inline std::vector<kipc_trace_event> events(const Op &op)
{
	kipc_cqe c = op.cqe();
	std::vector<kipc_trace_event> v;
	if (c.res <= 0)
		return v;
	v.resize(c.res);
	std::memcpy(v.data(), op.p->mem.arena.data() + op.buf, c.res * sizeof(kipc_trace_event));
	return v;
}

/* Every event readable now (nonblocking). */
inline std::vector<kipc_trace_event> drain_events(Proc &p)
{
	std::vector<kipc_trace_event> all;
	for (;;) {
		Op r = trace_read(p, 64, KIPC_F_NONBLOCK);
		if (r.res() == -EAGAIN)
			return all;
		REQUIRE(r.res() > 0);
		auto v = events(r);
		all.insert(all.end(), v.begin(), v.end());
	}
}

/* The event types of v, in order, as a compact string: "SEND ENQUEUE ...". */
inline std::string kinds(const std::vector<kipc_trace_event> &v)
{
	static const char *names[] = {"?", "ATTACH", "EXIT", "SEND", "ENQUEUE", "BLOCK",
				      "WAKE", "DELIVER", "TIMEOUT", "CANCEL", "DESTROY",
				      "CREATE", "OPEN", "NETSEND", "NETRECV", "LOST", "SYSCALL", "SYSRET",
				      "SYSARG"};
	std::string s;
	for (const auto &e : v) {
		if (!s.empty())
			s += ' ';
		s += e.event <= 18 ? names[e.event] : "?";
	}
	return s;
}

} // namespace kt
