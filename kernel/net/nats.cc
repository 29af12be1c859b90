// SPDX-License-Identifier: MIT
/*
 * The fabric on libnats (built with CONFIG_NET=y only).
 *
 * Threads: libnats runs its own for timers, reconnection and connection
 * events, and none to read: the connection runs in libnats' event-loop
 * mode (natsOptions_SetEventLoop) on one thread of ours, the I/O
 * thread, which connects, publishes what the loop queued, and reads
 * the socket itself (natsConnection_ProcessReadEvent), taking what came
 * from a synchronous subscription without waiting (NextMsg with timeout
 * 0). So a message from NATS passes one thread on its way to the loop,
 * not libnats' reader and then its delivery thread. None of them
 * touches the kernel: a received message or a connection event is
 * appended to inbox_ under mu_ and the eventfd is written; the loop
 * thread takes the inbox (take()). The loop thread never waits on
 * anything but mu_, which every thread holds only to move a vector or
 * a flag, and never calls libnats (which may hold its connection's lock
 * through a reconnection's handshake).
 *
 * On every connection (the first, each reconnect: maybe to another server
 * of the cluster) the I/O thread checks, before it publishes or takes
 * anything, that the server enforces the per-node permissions
 * network.md's security rests on (start_probe(), probed()); if it does
 * not, the node refuses the network: it says so loudly, publishes
 * nothing, drops what it receives and says it is not connected, until a
 * connection passes the check.
 *
 * Losing a message here is allowed: a publish that fails while the
 * connection is down (libnats buffers up to its reconnect buffer, then
 * refuses) is retransmitted by the protocol (net.cc), and the home node
 * deduplicates. So nothing here retries.
 */
#include "net.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <deque>
#include <mutex>
#include <set>
#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <thread>
#include <unistd.h>

#include <fmt/core.h>
#include <nats/nats.h>

namespace kipcd {

void klog(const std::string &msg);

namespace {

constexpr size_t kCoalesce = 256 * 1024; /* bytes of frames in one NATS message */

class NatsFabric final : public Fabric {
public:
	NatsFabric(const NetConfig &cfg) : cfg_(cfg) {}
	~NatsFabric() override;
	int start(std::string *err);

	int eventfd() const override { return efd_; }
	/*
	 * The loop thread's: frames for one subject, one after the other,
	 * go into one message (a frame says its own length: net.cc takes
	 * them apart), up to kCoalesce bytes and the server's max_payload
	 * (a larger NATS message is refused); the round's messages go to
	 * the sender in one hand-off at its end (flush()). So under load
	 * one publish, one delivery and one wake of the peer's loop carry
	 * many requests or answers; alone, a frame goes at the end of the
	 * round that made it.
	 */
	void publish(std::string subject, std::vector<uint8_t> data, size_t most) override
	{
		if (!round_.empty() && round_.back().subject == subject &&
		    round_.back().data.size() + data.size() <=
			    std::min({kCoalesce, max_payload_.load(), most})) {
			auto &d = round_.back().data;
			d.insert(d.end(), data.begin(), data.end());
			return;
		}
		round_.push_back({std::move(subject), std::move(data), most});
	}
	void flush() override
	{
		if (round_.empty())
			return;
		bool first;
		{
			std::lock_guard g(mu_);
			first = outbox_.empty(); /* else the I/O thread is awake already */
			for (auto &m : round_)
				outbox_.push_back(std::move(m));
		}
		round_.clear();
		if (first)
			wake_io(); /* else the I/O thread is awake already */
	}
	size_t max_payload() const override { return max_payload_.load(); }
	void check_node(const std::string &node) override
	{
		if (node == cfg_.node)
			return; /* publishing as ourselves is ours */
		{
			std::lock_guard g(mu_);
			if (!nodes_.insert(node).second)
				return;
			unchecked_.push_back(node);
		}
		wake_io();
	}
	std::vector<FabricMsg> take(bool *connected) override
	{
		uint64_t v;
		if (read(efd_, &v, sizeof v) < 0) { /* EAGAIN: nothing new */ }
		std::vector<FabricMsg> out;
		std::lock_guard g(mu_);
		out.swap(inbox_);
		*connected = connected_ && checked_;
		if (!checked_)
			out.clear(); /* not checked, or refused: nothing of it is taken */
		return out;
	}

private:
	/*
	 * libnats' event-loop callbacks, from any of its threads (the
	 * reconnection's attaches the new socket) and from ours, with its
	 * connection's lock held: they only set what the I/O thread polls,
	 * under mu_. The I/O thread polls its own duplicate of the socket,
	 * made here while libnats' descriptor is surely open, so that the
	 * number it polls is never another file's.
	 */
	static natsStatus ev_attach(void **ud, void *loop, natsConnection *, natsSock fd)
	{
		auto *f = static_cast<NatsFabric *>(loop);
		*ud = f;
		int d = fcntl(fd, F_DUPFD_CLOEXEC, 0);
		if (d < 0)
			return NATS_SYS_ERROR;
		{
			std::lock_guard g(f->mu_);
			if (f->next_fd_ >= 0)
				close(f->next_fd_); /* never polled */
			f->next_fd_ = d;
			f->swap_ = true;
			f->want_read_ = true;
		}
		f->wake_io();
		return NATS_OK;
	}
	static natsStatus ev_read(void *ud, bool add)
	{
		auto *f = static_cast<NatsFabric *>(ud);
		{
			std::lock_guard g(f->mu_);
			f->want_read_ = add;
		}
		if (!on_io_thread)
			f->wake_io();
		return NATS_OK;
	}
	static natsStatus ev_write(void *ud, bool add)
	{
		auto *f = static_cast<NatsFabric *>(ud);
		{
			std::lock_guard g(f->mu_);
			f->want_write_ = add;
		}
		if (add && !on_io_thread) /* ours looks again after it published */
			f->wake_io();
		return NATS_OK;
	}
	static natsStatus ev_detach(void *ud)
	{
		auto *f = static_cast<NatsFabric *>(ud);
		{
			std::lock_guard g(f->mu_);
			if (f->next_fd_ >= 0)
				close(f->next_fd_);
			f->next_fd_ = -1;
			f->swap_ = true;
			f->want_read_ = f->want_write_ = false;
		}
		if (!on_io_thread)
			f->wake_io();
		return NATS_OK;
	}
	void wake_io()
	{
		uint64_t one = 1;
		if (write(io_efd_, &one, sizeof one) < 0) { /* counter full: awake */ }
	}
	void received(); /* the I/O thread: what the subscription holds, to the loop */
	static void on_state(natsConnection *nc, void *c)
	{
		auto *f = static_cast<NatsFabric *>(c);
		bool up = natsConnection_Status(nc) == NATS_CONN_STATUS_CONNECTED;
		if (up && natsConnection_GetMaxPayload(nc) > 0) /* this server's */
			f->max_payload_ = size_t(natsConnection_GetMaxPayload(nc));
		{
			std::lock_guard g(f->mu_);
			f->connected_ = up;
			if (up) /* the I/O thread checks this server before anything goes */
				f->verify_ = true, f->checked_ = false;
		}
		if (up && !on_io_thread)
			f->wake_io();
		f->kick();
	}
	static void on_error(natsConnection *, natsSubscription *, natsStatus s, void *c)
	{
		auto *f = static_cast<NatsFabric *>(c);
		if (s == NATS_NOT_PERMITTED && f->denials_.fetch_sub(1) > 0)
			return; /* the check asked for that refusal (it may come after it) */
		if (s == NATS_NOT_PERMITTED)
			f->denials_.fetch_add(1);
		klog(fmt::format("kipc: net: NATS: {}", natsStatus_GetText(s)));
	}
	void kick()
	{
		uint64_t one = 1;
		if (write(efd_, &one, sizeof one) < 0) { /* counter full: already kicked */ }
	}
	void io();
	void publish_batch(std::deque<FabricMsg> &batch);
	void start_probe(const std::vector<std::string> &others);
	bool probed(bool timed_out);
	static thread_local bool on_io_thread;

	NetConfig cfg_;
	int efd_ = -1;                   /* wakes the loop */
	int io_efd_ = -1;                /* wakes the I/O thread */
	natsOptions *opts_ = nullptr;
	natsConnection *nc_ = nullptr;
	natsSubscription *sub_ = nullptr;
	std::thread thr_;
	std::mutex mu_;
	std::vector<FabricMsg> round_;   /* the loop thread's: this round's messages */
	std::deque<FabricMsg> outbox_;   /* guarded by mu_ */
	std::vector<FabricMsg> inbox_;   /* guarded by mu_ */
	bool connected_ = false;         /* guarded by mu_ */
	bool stop_ = false;              /* guarded by mu_ */
	int next_fd_ = -1;               /* guarded by mu_: the socket to poll next */
	bool swap_ = false;              /* guarded by mu_: next_fd_ is new */
	bool want_read_ = false;         /* guarded by mu_: libnats' wishes */
	bool want_write_ = false;        /* guarded by mu_ */
	bool verify_ = false;            /* guarded by mu_: check this connection */
	bool checked_ = false;           /* guarded by mu_: the last check passed */
	std::atomic<bool> probing_{false}; /* the I/O thread's check runs */
	std::set<std::string> nodes_;    /* guarded by mu_: the nodes we heard of (check_node) */
	std::vector<std::string> unchecked_; /* guarded by mu_: of those, not checked yet */
	struct Probe {
		natsSubscription *sub;   /* what must stay silent */
		std::string what;        /* what it says if it does not */
		bool ours;               /* only our publish (nonce_) counts: X's own
					    messages come there too */
	};
	std::string nonce_;              /* the I/O thread's: this check's payload */
	std::atomic<int> denials_{0};    /* refusals the check asked for, not yet seen */
	std::vector<Probe> probe_;       /* the I/O thread's: the check running */
	natsSubscription *mark_ = nullptr; /* the I/O thread's: its end */
	bool full_check_ = false;        /* the I/O thread's: a connection's first check */
	int64_t probe_by_ = 0;           /* the I/O thread's: the mark's deadline (ms) */
	bool debug_ = getenv("KIPC_NET_DEBUG") != nullptr;
	std::atomic<size_t> max_payload_{1 << 20}; /* NATS's default until connected */
};

/* Read "user password" or a NATS .creds file into the options. */
int set_creds(natsOptions *o, const std::string &path, std::string *err)
{
	FILE *f = fopen(path.c_str(), "re");
	if (!f) {
		*err = fmt::format("{}: {}", path, strerror(errno));
		return -1;
	}
	char line[1024] = "";
	bool jwt = false;
	std::string first;
	while (fgets(line, sizeof line, f)) {
		if (strstr(line, "BEGIN NATS USER JWT"))
			jwt = true;
		if (first.empty() && line[0] != '#' && line[0] != '\n')
			first = line;
	}
	fclose(f);
	memset(line, 0, sizeof line);
	if (jwt) {
		if (natsOptions_SetUserCredentialsFromFiles(o, path.c_str(), nullptr) != NATS_OK) {
			*err = fmt::format("{}: not a usable NATS credentials file", path);
			return -1;
		}
		return 0;
	}
	char user[256], pass[512];
	if (sscanf(first.c_str(), "%255s %511s", user, pass) != 2) {
		*err = fmt::format("{}: expected one line 'user password' or a NATS .creds file", path);
		return -1;
	}
	natsStatus s = natsOptions_SetUserInfo(o, user, pass);
	memset(pass, 0, sizeof pass);
	first.assign(first.size(), '\0');
	if (s != NATS_OK) {
		*err = "natsOptions_SetUserInfo failed";
		return -1;
	}
	return 0;
}

int NatsFabric::start(std::string *err)
{
	efd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (efd_ < 0) {
		*err = fmt::format("eventfd: {}", strerror(errno));
		return -1;
	}
	if (natsOptions_Create(&opts_) != NATS_OK) {
		*err = "natsOptions_Create failed";
		return -1;
	}
	std::vector<std::string> urls;
	for (size_t i = 0; i <= cfg_.url.size();) {
		size_t j = cfg_.url.find(',', i);
		if (j == std::string::npos)
			j = cfg_.url.size();
		if (j > i)
			urls.push_back(cfg_.url.substr(i, j - i));
		i = j + 1;
	}
	std::vector<const char *> cu;
	for (auto &u : urls)
		cu.push_back(u.c_str());
	if (cu.empty() || natsOptions_SetServers(opts_, cu.data(), int(cu.size())) != NATS_OK) {
		*err = fmt::format("bad NATS URL '{}'", cfg_.url);
		return -1;
	}
	if (!cfg_.creds.empty() && set_creds(opts_, cfg_.creds, err))
		return -1;
	natsOptions_SetNoRandomize(opts_, false);
	natsOptions_SetAllowReconnect(opts_, true);
	natsOptions_SetMaxReconnect(opts_, -1);
	natsOptions_SetReconnectWait(opts_, 100);
	natsOptions_SetReconnectJitter(opts_, 50, 50);
	natsOptions_SetTimeout(opts_, 1000);
	natsOptions_SetPingInterval(opts_, 1000);
	natsOptions_SetSendAsap(opts_, true);
	natsOptions_SetDisconnectedCB(opts_, on_state, this);
	natsOptions_SetReconnectedCB(opts_, on_state, this);
	natsOptions_SetErrorHandler(opts_, on_error, this);
	natsOptions_SetRetryOnFailedConnect(opts_, true, on_state, this);
	natsOptions_SetIOBufSize(opts_, int(kCoalesce)); /* a batch in one read */
	natsOptions_SetEventLoop(opts_, this, ev_attach, ev_read, ev_write, ev_detach);
	io_efd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (io_efd_ < 0) {
		*err = fmt::format("eventfd: {}", strerror(errno));
		return -1;
	}
	thr_ = std::thread([this] { io(); });
	return 0;
}

thread_local bool NatsFabric::on_io_thread = false;

/* Rounds queued while we published: merged as publish() does. */
void NatsFabric::publish_batch(std::deque<FabricMsg> &batch)
{
	std::vector<uint8_t> buf;
	for (size_t i = 0; i < batch.size();) {
		const FabricMsg &m = batch[i];
		const std::vector<uint8_t> *d = &m.data;
		/* one NATS message, for both ends' servers */
		size_t most = std::min({kCoalesce, max_payload_.load(), m.most});
		size_t j = i + 1;
		if (j < batch.size() && batch[j].subject == m.subject &&
		    m.data.size() + batch[j].data.size() <= most) {
			buf = m.data;
			for (; j < batch.size() && batch[j].subject == m.subject &&
			       buf.size() + batch[j].data.size() <= most; j++)
				buf.insert(buf.end(), batch[j].data.begin(), batch[j].data.end());
			d = &buf;
		}
		natsStatus ps = nc_ ? natsConnection_Publish(nc_, m.subject.c_str(),
					d->data(), int(d->size())) : NATS_NOT_YET_CONNECTED;
		if (ps != NATS_OK && debug_)
			klog(fmt::format("kipc: net: publish {}: {}", m.subject,
					 natsStatus_GetText(ps)));
		i = j;
	}
}

void NatsFabric::received()
{
	std::vector<FabricMsg> got;
	for (;;) {
		natsMsg *m = nullptr;
		natsStatus s = natsSubscription_NextMsg(&m, sub_, 0); /* 0: never waits */
		if (s == NATS_SLOW_CONSUMER)
			continue; /* NATS dropped some: the protocol retransmits */
		if (s != NATS_OK)
			break;
		FabricMsg fm;
		fm.subject = natsMsg_GetSubject(m);
		const uint8_t *d = reinterpret_cast<const uint8_t *>(natsMsg_GetData(m));
		fm.data.assign(d, d + natsMsg_GetDataLength(m));
		natsMsg_Destroy(m);
		got.push_back(std::move(fm));
	}
	if (got.empty())
		return;
	bool first;
	{
		std::lock_guard g(mu_);
		if (!checked_)
			return; /* this connection is not checked (or refused) */
		first = inbox_.empty(); /* else the loop has been kicked */
		for (auto &m : got)
			inbox_.push_back(std::move(m));
	}
	if (first)
		kick();
}

int64_t now_ms()
{
	timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return int64_t(now.tv_sec) * 1000 + now.tv_nsec / 1000000;
}

/*
 * Does the server stop this node from being another, or from reading
 * another's traffic? For each other node X (PROBE, no node's name, on a
 * connection's first check, and then each node we heard of: check_node(),
 * on every connection again), subscriptions that must stay silent and
 * publishes that would reach them if the server let them, then a mark,
 * all on our one connection, so the server takes them in this order and
 * delivers what it lets through before the mark:
 *   - publishing as X: kipc.<us>.req.X and kipc.<us>.rsp.X (ours to
 *     subscribe to): the publish must be refused;
 *   - reading X's traffic: kipc.X.>, kipc.X.req.<us>, kipc.X.rsp.<us>
 *     (ours to publish on: our requests to X, our answers): the
 *     subscriptions must be refused;
 *   - the mark on kipc.<us>.rsp.<us> (ours both ways).
 * What reaches X (our publishes on its subjects) or us is no frame, and
 * is dropped as such (net.cc). What we cannot see alone: a grant to
 * publish as X on a third node's subjects only (kipc.Y.req.X), which
 * only Y's subscription would receive.
 */
void NatsFabric::start_probe(const std::vector<std::string> &others)
{
	const std::string &me = cfg_.node;
	probing_ = true;
	std::vector<std::string> pubs;
	auto watch = [&](std::string subj, std::string what, bool ours) {
		natsSubscription *sub = nullptr;
		if (natsConnection_SubscribeSync(&sub, nc_, subj.c_str()) == NATS_OK)
			probe_.push_back({sub, std::move(what), ours});
	};
	/* Unguessable: X may publish on kipc.<us>.req.X, and must not make
	 * us take its message for our own. */
	uint64_t r[2] = {};
	if (getrandom(r, sizeof r, 0) != sizeof r)
		r[0] = uint64_t(now_ms()), r[1] = uint64_t(getpid());
	nonce_ = fmt::format("probe {:016x}{:016x}", r[0], r[1]);
	denials_ = int(5 * others.size()); /* two publishes, three subscriptions each */
	for (const std::string &x : others) {
		for (const char *kind : {"req", "rsp"}) {
			std::string as = fmt::format("kipc.{}.{}.{}", me, kind, x);
			watch(as, fmt::format("it let {} publish as node {} ({})", me, x, as), true);
			pubs.push_back(as);
		}
		std::string all = fmt::format("kipc.{}.>", x);
		watch(all, fmt::format("it let {} subscribe to node {}'s subjects ({})", me, x, all),
		      false);
		for (const char *kind : {"req", "rsp"}) {
			std::string of = fmt::format("kipc.{}.{}.{}", x, kind, me);
			watch(of, fmt::format("it let {} subscribe to node {}'s {} ({})", me, x,
					      kind[1] == 'e' ? "requests" : "answers", of),
			      false);
			pubs.push_back(of);
		}
	}
	std::string mark = fmt::format("kipc.{}.rsp.{}", me, me);
	if (natsConnection_SubscribeSync(&mark_, nc_, mark.c_str()) != NATS_OK)
		mark_ = nullptr;
	for (const std::string &subj : pubs)
		natsConnection_PublishString(nc_, subj.c_str(), nonce_.c_str());
	natsConnection_PublishString(nc_, mark.c_str(), nonce_.c_str());
	probe_by_ = now_ms() + 2000;
}

/* The mark came (or its deadline passed): the verdict. True when done. */
bool NatsFabric::probed(bool timed_out)
{
	natsMsg *m = nullptr;
	auto got = [&](natsSubscription *sub, bool ours) {
		bool yes = false;
		while (sub && natsSubscription_NextMsg(&m, sub, 0) == NATS_OK) {
			yes |= !ours || (size_t(natsMsg_GetDataLength(m)) == nonce_.size() &&
					 memcmp(natsMsg_GetData(m), nonce_.data(), nonce_.size()) == 0);
			natsMsg_Destroy(m);
		}
		return yes;
	};
	bool mark = got(mark_, true);
	if (!mark && !timed_out)
		return false;
	std::string why, me = cfg_.node;
	for (auto &p : probe_)
		if (got(p.sub, p.ours))
			why += (why.empty() ? "" : "; ") + p.what;
	if (!mark && why.empty())
		why = fmt::format("its answer to the check (kipc.{}.rsp.{}) did not come within 2 s",
				  me, me);
	for (auto &p : probe_) {
		natsSubscription_Unsubscribe(p.sub);
		natsSubscription_Destroy(p.sub);
	}
	probe_.clear();
	if (mark_) {
		natsSubscription_Unsubscribe(mark_);
		natsSubscription_Destroy(mark_);
		mark_ = nullptr;
	}
	probing_ = false;
	if (!why.empty())
		klog(fmt::format("kipc: net: REFUSING THE NETWORK: the NATS server does not enforce "
				 "the per-node permissions (Documentation/network.md, Security): "
				 "{}; node {} publishes nothing and takes nothing until a connection "
				 "passes this check", why, me));
	bool was;
	{
		std::lock_guard g(mu_);
		was = checked_;
		/* A later node's check can only take the network away. */
		checked_ = why.empty() && (full_check_ || checked_);
	}
	if (!was && why.empty() && full_check_)
		klog(fmt::format("kipc: net: node {}: the NATS server enforces the per-node "
				 "permissions (checked): network on", me));
	full_check_ = false;
	kick(); /* the loop sees whether it is connected */
	return true;
}

/*
 * The I/O thread: connect, then publish what the loop queued and read
 * what comes, polling the socket (its duplicate, fd) as libnats asks
 * (want_read_, want_write_) and our eventfd. On the stop it sends what
 * was queued before it, and what libnats buffered, for at most 500 ms.
 */
void NatsFabric::io()
{
	on_io_thread = true;
	natsStatus s = natsConnection_Connect(&nc_, opts_);
	if (s != NATS_OK && s != NATS_NOT_YET_CONNECTED) {
		klog(fmt::format("kipc: net: cannot connect to {}: {}", cfg_.url,
				 natsStatus_GetText(s)));
		nc_ = nullptr;
	}
	if (nc_) {
		std::string subj = fmt::format("kipc.{}.>", cfg_.node);
		if (natsConnection_SubscribeSync(&sub_, nc_, subj.c_str()) != NATS_OK) {
			klog(fmt::format("kipc: net: cannot subscribe to {}", subj));
			sub_ = nullptr;
		}
		on_state(nc_, this);
	}
	int fd = -1;
	int64_t stop_by = 0;
	std::unique_lock g(mu_);
	for (;;) {
		if (swap_) {
			if (fd >= 0)
				close(fd);
			fd = next_fd_;
			next_fd_ = -1;
			swap_ = false;
		}
		std::deque<FabricMsg> batch;
		batch.swap(outbox_);
		bool stopping = stop_;
		bool probe = verify_ && nc_ && !stopping;
		verify_ = verify_ && !probe;
		std::vector<std::string> others; /* the nodes to check */
		if (probe) {
			others.assign(nodes_.begin(), nodes_.end());
			others.insert(others.begin(), "PROBE");
			unchecked_.clear();
		} else if (checked_ && nc_ && !stopping && !probing_ && !unchecked_.empty()) {
			others.swap(unchecked_); /* heard of since the last check */
		}
		bool send = checked_;
		g.unlock();
		if (probe) {
			for (auto &p : probe_) /* a check a reconnect cut short */
				natsSubscription_Destroy(p.sub);
			probe_.clear();
			if (mark_)
				natsSubscription_Destroy(mark_), mark_ = nullptr;
			full_check_ = true;
		}
		if (!others.empty())
			start_probe(others);
		if (send)
			publish_batch(batch); /* else not checked yet, or refused: dropped
						 (the protocol retransmits) */
		if (probing_ && now_ms() >= probe_by_)
			probed(true);
		g.lock();
		if (want_write_ && nc_) {
			g.unlock();
			natsConnection_ProcessWriteEvent(nc_); /* nonblocking: what fits */
			g.lock();
		}
		if (!outbox_.empty() || swap_)
			continue;
		timespec now;
		clock_gettime(CLOCK_MONOTONIC, &now);
		int64_t ms = int64_t(now.tv_sec) * 1000 + now.tv_nsec / 1000000;
		if (stopping && !stop_by)
			stop_by = ms + 500;
		if (stopping && (!want_write_ || !nc_ || ms >= stop_by))
			break; /* all written (or given up: the protocol's business) */
		pollfd p[2] = {{io_efd_, POLLIN, 0},
			       {fd, short((want_read_ ? POLLIN : 0) | (want_write_ ? POLLOUT : 0)), 0}};
		if (!p[1].events)
			p[1].fd = -1;
		g.unlock();
		int wait = stopping ? int(stop_by - ms)
			   : probing_ ? int(std::max<int64_t>(probe_by_ - ms, 0)) : -1;
		int n = poll(p, 2, wait);
		if (n > 0 && (p[0].revents & POLLIN)) {
			uint64_t v;
			if (read(io_efd_, &v, sizeof v) < 0) { /* EAGAIN */ }
		}
		if (n > 0 && p[1].fd >= 0 && (p[1].revents & (POLLIN | POLLHUP | POLLERR)) &&
		    (p[1].events & POLLIN) && nc_)
			natsConnection_ProcessReadEvent(nc_); /* one read, then parse */
		if (n > 0 && p[1].fd >= 0 && (p[1].revents & POLLOUT) && nc_)
			natsConnection_ProcessWriteEvent(nc_);
		if (probing_)
			probed(false); /* the mark may have come */
		if (sub_)
			received(); /* also what another thread of libnats parsed */
		g.lock();
	}
	g.unlock();
	if (fd >= 0)
		close(fd);
}

NatsFabric::~NatsFabric()
{
	flush(); /* the last round's (the BYEs of ~NetImpl) */
	if (thr_.joinable()) {
		{
			std::lock_guard g(mu_);
			stop_ = true;
		}
		wake_io();
		thr_.join(); /* it wrote what was queued (nobody reads a PONG now) */
	}
	if (nc_)
		natsConnection_Close(nc_);
	if (sub_)
		natsSubscription_Destroy(sub_);
	for (auto &p : probe_)
		natsSubscription_Destroy(p.sub);
	if (mark_)
		natsSubscription_Destroy(mark_);
	if (nc_)
		natsConnection_Destroy(nc_);
	if (opts_)
		natsOptions_Destroy(opts_);
	{
		std::lock_guard g(mu_);
		if (next_fd_ >= 0)
			close(next_fd_);
		next_fd_ = -1;
	}
	if (efd_ >= 0)
		close(efd_);
	if (io_efd_ >= 0)
		close(io_efd_);
}

} // namespace

std::unique_ptr<Fabric> make_nats_fabric(const NetConfig &cfg, std::string *err)
{
	auto f = std::make_unique<NatsFabric>(cfg);
	if (f->start(err))
		return nullptr;
	return f;
}

} // namespace kipcd
