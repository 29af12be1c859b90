// SPDX-License-Identifier: MIT
/*
 * kipc across machines: the bridge between one kipcd and a NATS cluster
 * (Documentation/network.md). Private to kipcd.
 *
 * The daemon has three hooks into it and nothing else (ring.cc, attach.cc):
 *   - wants()/submit(): a request of a local process that goes to (or
 *     names) another node is handed here instead of to the core;
 *   - proxy_complete(): the core completed a request of a proxy task
 *     (a remote caller); its priv is tagged with bit 0 (is_proxy());
 *   - task_exit(): a local process is gone.
 * The NATS client's threads never call into the core nor into Net: the
 * loop thread reads and writes the NATS connection itself, or they hand
 * what they receive to it through a queue and an eventfd (Fabric,
 * kernel/net/nats.cc). Everything here runs on the loop thread and
 * never blocks.
 */
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <kernel/kernel.h>
#include <kipc/kipc.h>

namespace kipcd {

class Loop;

/* Boot configuration: --node, --nats, --nats-creds, net_* parameters. */
struct NetConfig {
	std::string node;            /* empty: no network */
	std::string url;             /* NATS URL(s), comma separated */
	std::string creds;           /* credentials file */
	int64_t timeout_ms = 2000;   /* net_timeout_ms */
	int64_t retry_ms = 200;      /* net_retry_ms */
	uint32_t uid = 65534;        /* net_uid: remote callers run as */
	uint32_t gid = 65534;        /* net_gid */
	std::vector<std::pair<uint32_t, uint32_t>> shared; /* net_shared_uids ranges */
	uint32_t origin_share = 50;  /* net_origin_share: percent of net_uid's
					bytes_per_user one origin node may hold */
	/* net_origin_uids: the uid (and gid) the unshared callers of these
	 * origin nodes run as, instead of net_uid; by node name */
	std::vector<std::pair<std::string, uint32_t>> origin_uids;
	std::string bad_default;     /* a CONFIG_ default that did not parse */

	static NetConfig from_config();
	/* A net_* boot parameter: 0, -ENOENT (not one of ours), -EINVAL. */
	int set(const std::string &name, const std::string &value);
	/* Usable? "" or why not (bad node name, unreadable creds ...). */
	std::string check() const;
	static bool valid_node(const std::string &name);
	/* The uid (and *gid) origin's unshared callers run as: its
	 * net_origin_uids entry (gid the same number), else net_uid. */
	uint32_t origin_uid(const std::string &origin, uint32_t *gid = nullptr) const;
};

extern NetConfig net_config;

/* One message from the fabric: the subject it came on and its bytes. */
struct FabricMsg {
	std::string subject;
	std::vector<uint8_t> data;
	size_t most = 0; /* publish: the largest NATS message it may be merged into */
};

/*
 * The fabric between kernels: a NATS connection (nats.cc). publish()
 * never blocks (it queues; what one loop round queued goes when the
 * round ends: flush()); what arrives is collected by take() on the loop
 * thread, called when the eventfd or a descriptor the fabric watches in
 * the loop (attach_loop()) fired.
 */
class Fabric {
public:
	virtual ~Fabric() = default;
	virtual int eventfd() const = 0;
	/* The loop and what to call when something came (net.cc's on_fabric):
	 * a fabric may poll its own descriptors there (nats.cc). */
	virtual void attach_loop(Loop &, std::function<void()>) {}
	/* data is at most most bytes, and is merged with other frames for the
	 * subject into NATS messages of at most most bytes (the smaller
	 * max_payload of both ends, net.cc). */
	virtual void publish(std::string subject, std::vector<uint8_t> data, size_t most) = 0;
	virtual void flush() {}
	/* Messages received, and whether the connection is up now. */
	virtual std::vector<FabricMsg> take(bool *connected) = 0;
	/* The largest message it carries (NATS: the server's max_payload). */
	virtual size_t max_payload() const { return 1 << 20; }
	/* We talk with node (first heard of, or named here): check that the
	 * server keeps us from publishing as it and reading its subjects
	 * (nats.cc), and refuse the network if not. */
	virtual void check_node(const std::string &) {}
};

/* Connect (in the background) and subscribe to "kipc.<node>.>". */
std::unique_ptr<Fabric> make_nats_fabric(const NetConfig &cfg, std::string *err);

/* The local process behind a request. */
struct NetCaller {
	void *priv;               /* the daemon's per-process handle */
	pid_t pid;
	uid_t uid;
	gid_t gid;
	kipc::UserMemory *mm;
	kipc::Task *task;         /* its task (the bridge traces its requests) */
};

class Net {
public:
	/* nullptr with *err when the network cannot start (or CONFIG_NET=n). */
	static std::unique_ptr<Net> create(const NetConfig &cfg, Loop &loop,
					   kipc::Kernel &kernel,
					   kipc::CompletionSink &sink, std::string *err);
	virtual ~Net() = default;

	static bool is_proxy(void *priv) { return reinterpret_cast<uintptr_t>(priv) & 1; }

	/* Is this request for the network (reads the name of an mbox_open)? */
	virtual bool wants(void *priv, const kipc_sqe &sqe, kipc::UserMemory &mm) = 0;
	/* Run it; its completion goes to sink.complete(caller.priv, ...). */
	virtual void submit(const NetCaller &caller, const kipc_sqe &sqe) = 0;
	virtual void proxy_complete(void *priv, const kipc_cqe &cqe) = 0;
	virtual void task_exit(void *priv) = 0;
	/* The loop's round ends: what it published goes out (Fabric::flush). */
	virtual void flush() = 0;
	/*
	 * Called before the bridge enters the core for a remote caller: its
	 * proxy's task with its request, or nullptr before a proxy exits or
	 * changes credentials (the daemon takes the credit sends and the
	 * pushed receives first, credit.cc, push.cc).
	 */
	virtual void set_before_core(std::function<void(kipc::Task *, const kipc_sqe *)> fn) = 0;
};

} // namespace kipcd
