// SPDX-License-Identifier: MIT
/*
 * fuzz_attach: the attach handshake as kipcd parses it (parse_hello in
 * kernel/daemon/wire.h): any bytes of any length. An accepted request
 * has the magic and a version range holding KIPC_PROTO_VERSION, and the
 * features granted are a subset of KIPC_FEAT_ALL and of those asked for.
 * An accepted hello is then attached to a kernel with credentials from
 * the input (in kipcd they come from SO_PEERCRED, never from the
 * request): a second attach of the same pid is EEXIST.
 */
#include "fuzz.h"

#include "../../kernel/daemon/wire.h"

using namespace kfuzz;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* recv() into a request-sized buffer: SEQPACKET truncates. */
	kipc_attach_req req{};
	uint32_t feat = 0xdeadbeef;
	ssize_t n = size > sizeof req ? sizeof req : ssize_t(size);
	if (size > sizeof req + 8)
		n = -1; /* recv failed */
	int err = kipcd::parse_hello(data, n, &req, &feat);
	FUZZ_ASSERT(err == 0 || err == -EPROTO || err == -EPROTONOSUPPORT);
	if (err == -EPROTO) {
		FUZZ_ASSERT(n != ssize_t(sizeof req) || req.magic != KIPC_MAGIC);
		return 0;
	}
	FUZZ_ASSERT(n == ssize_t(sizeof req) && req.magic == KIPC_MAGIC);
	if (err == -EPROTONOSUPPORT) {
		FUZZ_ASSERT(req.version_min > KIPC_PROTO_VERSION ||
			    req.version_max < KIPC_PROTO_VERSION);
		return 0;
	}
	FUZZ_ASSERT(req.version_min <= KIPC_PROTO_VERSION &&
		    req.version_max >= KIPC_PROTO_VERSION);
	/* DELEGATE is negotiated but not in FEAT_ALL (ring.h). */
	FUZZ_ASSERT((feat & ~(KIPC_FEAT_ALL | KIPC_FEAT_DELEGATE)) == 0);
	FUZZ_ASSERT((feat & ~req.features) == 0);

	kfuzz::Clock clock;
	kfuzz::Host host;
	Sink sink;
	Proc p(4096);
	p.creds = Creds{pid_t(1 + req.rsvd[0] % 100000), req.rsvd[1] % 70000,
			req.rsvd[2] % 70000};
	host.alive[p.creds.pid] = p.creds;
	Kernel k(clock, host, sink, small_limits(), &host);
	int r = k.attach(p.creds, &p.mem.user, "fuzz", &p, &p.task);
	FUZZ_ASSERT(r == 0 || r == -EAGAIN || r == -ENOSPC);
	if (r == 0) {
		Task *again = nullptr;
		FUZZ_ASSERT(k.attach(p.creds, &p.mem.user, "fuzz", &p, &again) == -EEXIST);
		k.exit(p.task);
		p.task = nullptr;
	}
	k.impl().check_invariants();
	return 0;
}
