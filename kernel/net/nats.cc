// SPDX-License-Identifier: MIT
/*
 * The fabric on libnats (built with CONFIG_NET=y only).
 *
 * One NATS connection at a time, in libnats' event-loop mode
 * (natsOptions_SetEventLoop), with libnats' own reconnection off: a
 * connection that fails is closed, and the I/O thread (ours) makes a
 * new one (connect(): natsConnection_Connect to the next of the
 * configured servers and those the cluster told of, one a try, so that
 * a stop waits for one connect timeout at most), subscribes and checks
 * it. libnats
 * runs its own threads for timers (its PINGs) and connection events,
 * and none to read, write or reconnect.
 *
 * Who drives a connection (calls libnats to read, write, publish):
 *   - the I/O thread while it connects and checks it (start_probe(),
 *     probed()), and all its life when the server refused the check or
 *     the connection is TLS (below);
 *   - else the loop thread itself, once the I/O thread hands it over
 *     checked (Conn::loop_owned): the loop polls the socket (our
 *     duplicate) with its other descriptors, reads and takes what came
 *     from a synchronous subscription without waiting (take()), and
 *     publishes what a round made when the round ends (flush()). So a
 *     message from NATS reaches the core with no thread hand-off, and an
 *     answer leaves with none (Documentation/network.md, Speed).
 * The loop may call libnats because nothing holds the connection's
 * lock for long once it is connected: the only long holder is libnats'
 * reconnection (its connect and handshake, up to the connect timeout),
 * which is off; what the timer thread does under the lock (a PING, the
 * close of a stale connection) is short, and so is ours. The loop never
 * calls it for a connection the I/O thread drives, and the I/O thread
 * never touches one the loop drives.
 *
 * TLS (a tls:// URL, or a server that requires it: libnats switches by
 * itself): libnats' TLS read loops until a whole record is in, which
 * may take a retransmission's time, so a TLS connection stays with the
 * I/O thread, which hands what it reads to the loop through a queue and
 * an eventfd, and publishes what the loop queued (the hand-offs the
 * loop-driven connection does without). A connection is taken for TLS
 * when the first byte it received after the handshake is no NATS
 * protocol line's (a TLS record begins with 20-23).
 *
 * On every connection the I/O thread checks, before anything is
 * published or taken, that the server enforces the per-node
 * permissions network.md's security rests on (start_probe(),
 * probed()), and again for each node we come to talk with (by the
 * connection's driver, the loop or the I/O thread: check_node()); if it
 * does not, the node refuses the network: it says so
 * loudly, publishes nothing, drops what it receives and says it is not
 * connected, until a new connection passes the check.
 *
 * Losing a message here is allowed: a publish while no connection is
 * up is dropped, one the server never got is lost with its connection,
 * and the protocol (net.cc) retransmits; the home node deduplicates. So
 * nothing here retries.
 */
#include "net.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <mutex>
#include <set>
#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>

#include <fmt/core.h>
#include <nats/nats.h>

#include "../daemon/kipcd.h"

namespace kipcd {

void klog(const std::string &msg);

namespace {

constexpr size_t kCoalesce = 256 * 1024; /* bytes of frames in one NATS message */
constexpr int kReads = 16;               /* socket reads per take(): then the next round */

class NatsFabric;

/*
 * One NATS connection. Made and destroyed by the I/O thread; driven by
 * the I/O thread or, once handed over, by the loop thread (above). The
 * fields under "mu_" are the fabric's mutex's: libnats' callbacks set
 * them from any of its threads.
 */
struct Conn {
	NatsFabric *f = nullptr;
	natsConnection *nc = nullptr;
	natsSubscription *sub = nullptr;
	int rfd = -1;              /* our duplicates of libnats' socket: polled for */
	int wfd = -1;              /* reading, for writing (a loop watches an fd once) */
	int64_t w_read = 0;        /* the loop's watches (loop thread) */
	int64_t w_write = 0;
	bool want_read = false;    /* mu_: libnats' wishes */
	bool want_write = false;   /* mu_ */
	bool dead = false;         /* mu_: libnats closed it (detach) */
	bool checked = false;      /* mu_: the permission check passed */
	bool loop_owned = false;   /* mu_: the loop thread drives it */
	bool tls = false;          /* the I/O thread's: stays with it */
	bool sniffed = false;      /* the I/O thread's: its first byte was looked at */
	bool full = false;         /* the I/O thread's: its first check runs */
	int denials = 0;           /* mu_: refusals its checks asked for, not seen yet */
};

/* The connection this thread is in libnats for: its callbacks for that
 * connection need not wake anyone (this thread looks again). */
thread_local const Conn *driving = nullptr;

struct Drive {
	const Conn *was;
	explicit Drive(const Conn *c) : was(driving) { driving = c; }
	~Drive() { driving = was; }
};

class NatsFabric final : public Fabric {
public:
	NatsFabric(const NetConfig &cfg) : cfg_(cfg) {}
	~NatsFabric() override;
	int start(std::string *err);

	int eventfd() const override { return efd_; }
	void attach_loop(Loop &loop, std::function<void()> ready) override
	{
		loop_ = &loop;
		ready_ = std::move(ready);
	}
	/*
	 * The loop thread's: frames for one subject, one after the other,
	 * go into one message (a frame says its own length: net.cc takes
	 * them apart), up to kCoalesce bytes and the server's max_payload
	 * (a larger NATS message is refused); the round's messages are
	 * published at its end (flush()). So under load one publish, one
	 * write and one wake of the peer's loop carry many requests or
	 * answers; alone, a frame goes at the end of the round that made it.
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
	void flush() override;
	size_t max_payload() const override { return max_payload_.load(); }
	std::vector<FabricMsg> take(bool *connected) override;
	void check_node(const std::string &node) override;

	/* libnats' event-loop callbacks (any thread; see Conn). */
	static natsStatus ev_attach(void **ud, void *loop, natsConnection *, natsSock fd);
	static natsStatus ev_read(void *ud, bool add);
	static natsStatus ev_write(void *ud, bool add);
	static natsStatus ev_detach(void *ud);

private:
	void wake(const Conn *c) /* mu_ held: its driver looks again */
	{
		if (driving == c)
			return;
		if (c->loop_owned)
			kick();
		else
			wake_io();
	}
	void wake_io()
	{
		uint64_t one = 1;
		if (write(io_efd_, &one, sizeof one) < 0) { /* counter full: awake */ }
	}
	void kick()
	{
		uint64_t one = 1;
		if (write(efd_, &one, sizeof one) < 0) { /* counter full: already kicked */ }
	}
	/*
	 * libnats' thread for connection events. A check asks the server
	 * for refusals (start_probe()), which come here, maybe after the
	 * check passed (the mark is read by the connection's driver, the
	 * refusals are handed to this thread): each connection counts those
	 * its checks asked for, and a check started before the refusals of
	 * the one before came adds to that count (it once replaced it: the
	 * late refusals of a check were then logged as "NATS: Not
	 * Permitted" after a check had passed). A refusal on a connection
	 * already closed is its check's too, as far as we can know: nothing
	 * of that connection goes on. Any other is logged as what it is.
	 */
	static void on_error(natsConnection *nc, natsSubscription *, natsStatus s, void *c)
	{
		auto *f = static_cast<NatsFabric *>(c);
		if (s == NATS_NOT_PERMITTED) {
			std::lock_guard g(f->mu_);
			Conn *cur = f->cur_;
			if (!cur || cur->nc != nc)
				return; /* a closed connection's (its check's) */
			if (cur->denials > 0) {
				cur->denials--;
				return; /* the check asked for that refusal */
			}
		}
		klog(fmt::format("kipc: net: NATS: {}{}", natsStatus_GetText(s),
				 s == NATS_NOT_PERMITTED
					 ? " (the server refused a publish or subscription of ours "
					   "that no permission check asked for: its permissions "
					   "deny a subject of kipc's own?)"
					 : ""));
	}
	void io();
	Conn *connect(std::string *why);
	void serve(Conn *c);
	void retire(Conn *c);
	void drain(Conn *c, std::vector<FabricMsg> &out);
	void received(Conn *c);
	void learn(Conn *c);
	void loop_write(Conn *c);
	void loop_drop(Conn *c);
	void loop_check(Conn *c);
	bool io_read(Conn *c);
	void publish_batch(Conn *c, std::deque<FabricMsg> &batch);
	void start_probe(Conn *c, const std::vector<std::string> &others);
	bool probed(Conn *c, bool timed_out);
	bool stopping()
	{
		std::lock_guard g(mu_);
		return stop_;
	}

	NetConfig cfg_;
	Loop *loop_ = nullptr;
	std::function<void()> ready_;    /* the loop's: what came, to net.cc */
	int efd_ = -1;                   /* wakes the loop */
	int io_efd_ = -1;                /* wakes the I/O thread */
	natsOptions *opts_ = nullptr;    /* the I/O thread's */
	std::vector<std::string> urls_;  /* the I/O thread's: configured, then discovered */
	std::thread thr_;
	std::mutex mu_;
	std::vector<FabricMsg> round_;   /* the loop thread's: this round's messages */
	Conn *live_ = nullptr;           /* the loop thread's: the connection it drives */
	Conn *cur_ = nullptr;            /* mu_: the connection (nullptr: none up) */
	std::deque<FabricMsg> outbox_;   /* mu_: for the I/O thread to publish */
	std::vector<FabricMsg> inbox_;   /* mu_: what the I/O thread read */
	bool stop_ = false;              /* mu_ */
	std::atomic<bool> probing_{false}; /* the I/O thread's check runs */
	std::set<std::string> nodes_;    /* mu_: the nodes we talk with (check_node) */
	std::vector<std::string> unchecked_; /* mu_: of those, not checked on this connection */
	struct Probe {
		natsSubscription *sub;   /* what must stay silent */
		std::string what;        /* what it says if it does not */
		bool ours;               /* only our publish (nonce_) counts: X's own
					    messages come there too */
	};
	std::vector<Probe> probe_;       /* the I/O thread's: the check running */
	natsSubscription *mark_ = nullptr; /* the I/O thread's: its end */
	std::string nonce_;              /* the I/O thread's: this check's payload */
	int64_t probe_by_ = 0;           /* the I/O thread's: the mark's deadline (ms) */
	size_t next_url_ = 0;            /* the I/O thread's: urls_[next_url_ % size] next */
	bool debug_ = getenv("KIPC_NET_DEBUG") != nullptr;
	std::atomic<size_t> max_payload_{1 << 20}; /* NATS's default until connected */
};

/*
 * libnats' callbacks, with its connection's lock held (but detach):
 * they only set what the connection's driver looks at, under mu_, and
 * wake it when another thread called (the timer thread's PING, a close).
 * The drivers poll duplicates of the socket, made here while libnats'
 * descriptor is surely open, so that the number polled is never
 * another file's. With libnats' reconnection off, a connection is
 * attached once and detached once.
 */
natsStatus NatsFabric::ev_attach(void **ud, void *loop, natsConnection *, natsSock fd)
{
	auto *c = static_cast<Conn *>(loop);
	*ud = c;
	int r = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	int w = r < 0 ? -1 : fcntl(fd, F_DUPFD_CLOEXEC, 0);
	if (w < 0) {
		if (r >= 0)
			close(r);
		return NATS_SYS_ERROR;
	}
	std::lock_guard g(c->f->mu_);
	if (c->rfd >= 0)
		close(c->rfd), close(c->wfd);
	c->rfd = r;
	c->wfd = w;
	c->want_read = true;
	return NATS_OK;
}

natsStatus NatsFabric::ev_read(void *ud, bool add)
{
	auto *c = static_cast<Conn *>(ud);
	std::lock_guard g(c->f->mu_);
	c->want_read = add; /* removed: it closes (detach follows) */
	return NATS_OK;
}

natsStatus NatsFabric::ev_write(void *ud, bool add)
{
	auto *c = static_cast<Conn *>(ud);
	std::lock_guard g(c->f->mu_);
	c->want_write = add;
	if (add)
		c->f->wake(c);
	return NATS_OK;
}

natsStatus NatsFabric::ev_detach(void *ud)
{
	auto *c = static_cast<Conn *>(ud);
	std::lock_guard g(c->f->mu_);
	c->dead = true;
	c->want_read = c->want_write = false;
	c->f->wake(c);
	return NATS_OK;
}

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
	io_efd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (efd_ < 0 || io_efd_ < 0) {
		*err = fmt::format("eventfd: {}", strerror(errno));
		return -1;
	}
	if (natsOptions_Create(&opts_) != NATS_OK) {
		*err = "natsOptions_Create failed";
		return -1;
	}
	for (size_t i = 0; i <= cfg_.url.size();) {
		size_t j = cfg_.url.find(',', i);
		if (j == std::string::npos)
			j = cfg_.url.size();
		if (j > i)
			urls_.push_back(cfg_.url.substr(i, j - i));
		i = j + 1;
	}
	std::vector<const char *> cu;
	for (auto &u : urls_)
		cu.push_back(u.c_str());
	if (cu.empty() || natsOptions_SetServers(opts_, cu.data(), int(cu.size())) != NATS_OK) {
		*err = fmt::format("bad NATS URL '{}'", cfg_.url);
		return -1;
	}
	if (!cfg_.creds.empty() && set_creds(opts_, cfg_.creds, err))
		return -1;
	/* Where the turns begin: random, as libnats picks from a pool, so
	 * that the nodes of a cluster spread over its servers. */
	unsigned start = 0;
	if (getrandom(&start, sizeof start, 0) != sizeof start)
		start = unsigned(getpid());
	next_url_ = start % urls_.size();
	natsOptions_SetAllowReconnect(opts_, false); /* ours: connect() (the top) */
	natsOptions_SetTimeout(opts_, 1000);
	natsOptions_SetPingInterval(opts_, 1000);
	natsOptions_SetSendAsap(opts_, true);
	natsOptions_SetErrorHandler(opts_, on_error, this);
	natsOptions_SetIOBufSize(opts_, int(kCoalesce)); /* a batch in one read */
	thr_ = std::thread([this] { io(); });
	return 0;
}

/* Rounds queued while we published (a connection the I/O thread drives):
 * merged as publish() does. */
void NatsFabric::publish_batch(Conn *c, std::deque<FabricMsg> &batch)
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
		natsStatus ps = natsConnection_Publish(c->nc, m.subject.c_str(), d->data(),
						       int(d->size()));
		if (ps != NATS_OK && debug_)
			klog(fmt::format("kipc: net: publish {}: {}", m.subject,
					 natsStatus_GetText(ps)));
		i = j;
	}
}

/* What the subscription holds, without waiting (NextMsg with timeout 0). */
void NatsFabric::drain(Conn *c, std::vector<FabricMsg> &out)
{
	for (;;) {
		natsMsg *m = nullptr;
		natsStatus s = natsSubscription_NextMsg(&m, c->sub, 0);
		if (s == NATS_SLOW_CONSUMER)
			continue; /* NATS dropped some: the protocol retransmits */
		if (s != NATS_OK)
			break;
		FabricMsg fm;
		fm.subject = natsMsg_GetSubject(m);
		const uint8_t *d = reinterpret_cast<const uint8_t *>(natsMsg_GetData(m));
		fm.data.assign(d, d + natsMsg_GetDataLength(m));
		natsMsg_Destroy(m);
		out.push_back(std::move(fm));
	}
}

int64_t now_ms()
{
	timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return int64_t(now.tv_sec) * 1000 + now.tv_nsec / 1000000;
}

bool readable(int fd)
{
	pollfd p = {fd, POLLIN, 0};
	return poll(&p, 1, 0) > 0 && (p.revents & (POLLIN | POLLHUP | POLLERR));
}

/* ---------------------------------------------------------------- */
/* The loop thread                                                    */

/* What the round made goes out: on the connection the loop drives, at
 * once; else to the I/O thread (dropped there when nothing is up). */
void NatsFabric::flush()
{
	if (round_.empty())
		return;
	if (Conn *c = live_) {
		{
			Drive d(c);
			for (auto &m : round_) {
				natsStatus ps = natsConnection_Publish(c->nc, m.subject.c_str(),
								       m.data.data(), int(m.data.size()));
				if (ps != NATS_OK && debug_)
					klog(fmt::format("kipc: net: publish {}: {}", m.subject,
							 natsStatus_GetText(ps)));
			}
			round_.clear();
			loop_write(c);
		}
		loop_drop(c);
		return;
	}
	bool first;
	{
		std::lock_guard g(mu_);
		first = outbox_.empty(); /* else the I/O thread is awake already */
		for (auto &m : round_)
			outbox_.push_back(std::move(m));
	}
	round_.clear();
	if (first)
		wake_io();
}

/* Write what libnats holds for c (nonblocking: what fits), and poll for
 * room while some is left. */
void NatsFabric::loop_write(Conn *c)
{
	bool ww;
	{
		std::lock_guard g(mu_);
		ww = c->want_write && !c->dead;
	}
	if (ww) {
		natsConnection_ProcessWriteEvent(c->nc);
		std::lock_guard g(mu_);
		ww = c->want_write && !c->dead;
	}
	if (ww && !c->w_write) {
		int64_t w = loop_->add(c->wfd, POLLOUT, [this](uint32_t) { ready_(); });
		c->w_write = w > 0 ? w : 0;
	} else if (!ww && c->w_write) {
		loop_->del(c->w_write);
		c->w_write = 0;
	}
}

/* c died (libnats closed it) or the fabric stops: back to the I/O thread,
 * which destroys it (and connects anew) or writes out what it holds. */
void NatsFabric::loop_drop(Conn *c)
{
	std::lock_guard g(mu_);
	if (!c->dead && !stop_)
		return;
	if (c->w_read)
		loop_->del(c->w_read);
	if (c->w_write)
		loop_->del(c->w_write);
	c->w_read = c->w_write = 0;
	c->loop_owned = false;
	live_ = nullptr;
	wake_io();
}

std::vector<FabricMsg> NatsFabric::take(bool *connected)
{
	uint64_t v;
	if (read(efd_, &v, sizeof v) < 0) { /* EAGAIN: nothing new */ }
	std::vector<FabricMsg> out;
	if (!live_) {
		std::lock_guard g(mu_);
		out.swap(inbox_); /* what the I/O thread read (it drives the connection) */
		if (!cur_ || !cur_->loop_owned) {
			*connected = cur_ && cur_->checked && !cur_->dead;
			return out;
		}
		/* handed over: the loop drives it from now on */
		live_ = cur_;
		int64_t w = loop_->add(live_->rfd, POLLIN, [this](uint32_t) { ready_(); });
		if (w <= 0) { /* cannot poll it here: it stays with the I/O thread */
			live_->loop_owned = false;
			live_->tls = true;
			live_ = nullptr;
			wake_io();
			*connected = true;
			return out;
		}
		live_->w_read = w;
	}
	Conn *c = live_;
	{
		Drive d(c);
		int i = 0;
		for (; i < kReads && readable(c->rfd); i++) {
			natsConnection_ProcessReadEvent(c->nc); /* one read, then parse */
			std::lock_guard g(mu_);
			if (c->dead)
				break;
		}
		if (i == kReads)
			kick(); /* maybe more: after this round's work */
		drain(c, out);
		loop_write(c);
	}
	bool due;
	{
		std::lock_guard g(mu_);
		due = !unchecked_.empty();
	}
	if (probing_ || due) {
		loop_check(c);
		if (!live_)
			out.clear(); /* refused: nothing of it is taken */
	}
	if (live_)
		loop_drop(c);
	*connected = live_ != nullptr;
	return out;
}

/* ---------------------------------------------------------------- */
/* The I/O thread                                                     */

/*
 * A new connection to the next server (urls_ in turn), subscribed;
 * nullptr when it did not take it (*why: what libnats said). One server
 * an attempt: given them all, libnats tries one after the other, each up
 * to the connect timeout (1 s) when it does not answer, and the stop
 * waits for the attempt running (~NatsFabric): so a SIGTERM waits for
 * one timeout at most, however many servers are listed or discovered.
 */
Conn *NatsFabric::connect(std::string *why)
{
	const char *url = urls_[next_url_++ % urls_.size()].c_str();
	natsOptions_SetServers(opts_, &url, 1);
	auto *c = new Conn;
	c->f = this;
	natsOptions_SetEventLoop(opts_, c, ev_attach, ev_read, ev_write, ev_detach);
	Drive d(c);
	natsStatus s = natsConnection_Connect(&c->nc, opts_);
	if (s == NATS_OK) {
		std::string subj = fmt::format("kipc.{}.>", cfg_.node);
		s = natsConnection_SubscribeSync(&c->sub, c->nc, subj.c_str());
		if (s != NATS_OK) {
			klog(fmt::format("kipc: net: cannot subscribe to {}: {}", subj,
					 natsStatus_GetText(s)));
			c->sub = nullptr;
		}
	} else {
		*why = natsStatus_GetText(s);
	}
	if (s != NATS_OK) {
		retire(c);
		return nullptr;
	}
	learn(c);
	if (natsConnection_GetMaxPayload(c->nc) > 0) /* this server's */
		max_payload_ = size_t(natsConnection_GetMaxPayload(c->nc));
	return c;
}

/* Remember the servers the cluster told c of: the next connection may
 * need them (its own server may be the one that died). */
void NatsFabric::learn(Conn *c)
{
	char **srv = nullptr;
	int n = 0;
	if (natsConnection_GetDiscoveredServers(c->nc, &srv, &n) != NATS_OK)
		return;
	for (int i = 0; i < n; i++) {
		if (std::find(urls_.begin(), urls_.end(), srv[i]) == urls_.end())
			urls_.push_back(srv[i]);
		free(srv[i]);
	}
	free(srv);
}

/* Destroy c (what the cluster told of kept, learn()). */
void NatsFabric::retire(Conn *c)
{
	Drive d(c);
	if (c->nc) {
		learn(c);
		natsConnection_Close(c->nc); /* first: a subscription's end would queue an
						UNSUB, which Close would wait 500 ms to flush */
	}
	for (auto &p : probe_)
		natsSubscription_Destroy(p.sub);
	probe_.clear();
	if (mark_)
		natsSubscription_Destroy(mark_);
	mark_ = nullptr;
	probing_ = false;
	if (c->sub)
		natsSubscription_Destroy(c->sub);
	if (c->nc)
		natsConnection_Destroy(c->nc);
	{
		std::lock_guard g(mu_);
		if (cur_ == c)
			cur_ = nullptr;
	}
	if (c->rfd >= 0)
		close(c->rfd);
	if (c->wfd >= 0)
		close(c->wfd);
	delete c;
	kick(); /* the loop sees it is not connected */
}

/* Read c (it is the I/O thread's); the first byte says whether it is TLS. */
bool NatsFabric::io_read(Conn *c)
{
	if (!c->sniffed) {
		unsigned char b;
		if (recv(c->rfd, &b, 1, MSG_PEEK | MSG_DONTWAIT) == 1) {
			c->sniffed = true;
			c->tls = b >= 20 && b <= 23; /* a TLS record, no protocol line */
		}
	}
	natsConnection_ProcessReadEvent(c->nc); /* one read, then parse */
	return true;
}

/*
 * Does the server stop this node from being another, or from reading
 * another's traffic? For each other node X (PROBE, no node's name, and
 * every node we talk with on a connection's first check; then each node
 * we come to talk with, check_node()), subscriptions that must stay
 * silent and publishes that would reach them if the server let them,
 * then a mark, all on our one connection, so the server takes them in
 * this order and delivers what it lets through before the mark:
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
void NatsFabric::start_probe(Conn *c, const std::vector<std::string> &others)
{
	const std::string &me = cfg_.node;
	probing_ = true;
	std::vector<std::string> pubs;
	auto watch = [&](std::string subj, std::string what, bool ours) {
		natsSubscription *sub = nullptr;
		if (natsConnection_SubscribeSync(&sub, c->nc, subj.c_str()) == NATS_OK)
			probe_.push_back({sub, std::move(what), ours});
	};
	/* Unguessable: X may publish on kipc.<us>.req.X, and must not make
	 * us take its message for our own. */
	uint64_t r[2] = {};
	if (getrandom(r, sizeof r, 0) != sizeof r)
		r[0] = uint64_t(now_ms()), r[1] = uint64_t(getpid());
	nonce_ = fmt::format("probe {:016x}{:016x}", r[0], r[1]);
	{
		std::lock_guard g(mu_); /* two publishes, three subscriptions each */
		c->denials += int(5 * others.size());
	}
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
	if (natsConnection_SubscribeSync(&mark_, c->nc, mark.c_str()) != NATS_OK)
		mark_ = nullptr;
	for (const std::string &subj : pubs)
		natsConnection_PublishString(c->nc, subj.c_str(), nonce_.c_str());
	natsConnection_PublishString(c->nc, mark.c_str(), nonce_.c_str());
	probe_by_ = now_ms() + 2000;
}

/* The mark came (or its deadline passed): the verdict. True when done. */
bool NatsFabric::probed(Conn *c, bool timed_out)
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
	/* No answer in time, nothing let through: no verdict (a loaded
	 * machine, a server busy with a reconnecting cluster). Not taken
	 * for a refusal, which would stand as long as the connection does:
	 * the connection goes, the I/O thread connects anew and checks
	 * again; nothing is published or taken meanwhile. */
	bool late = !mark && why.empty();
	if (late)
		klog(fmt::format("kipc: net: node {}: the NATS server's answer to the permission "
				 "check (kipc.{}.rsp.{}) did not come within 2 s: checking again on "
				 "a new connection; nothing is published or taken meanwhile",
				 me, me, me));
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
	if (!late && why.empty() && c->full)
		klog(fmt::format("kipc: net: node {}: the NATS server enforces the per-node "
				 "permissions (checked): network on{}", me,
				 c->tls ? " (TLS: through the I/O thread)" : ""));
	{
		std::lock_guard g(mu_);
		/* A later node's check can only take the network away. */
		c->checked = !late && why.empty() && (c->full || c->checked);
		if (late)
			c->dead = true; /* to the I/O thread, which retires it (serve()) */
		if (c->loop_owned) /* the loop's check: a refused one goes back (loop_check) */
			c->loop_owned = c->checked;
		else /* handed over: the loop drives it, unless another check is due */
			c->loop_owned = c->checked && !c->tls && unchecked_.empty();
	}
	c->full = false;
	kick(); /* the loop sees whether it is connected, and takes it */
	return true;
}

/*
 * The loop thread's: net.cc talks with node (first named or heard
 * from). Checked by whoever drives the connection: the loop itself
 * (start_probe() now, the verdict in take() when the mark came), or the
 * I/O thread (serve()).
 */
void NatsFabric::check_node(const std::string &node)
{
	if (node == cfg_.node)
		return; /* publishing as ourselves is ours */
	{
		std::lock_guard g(mu_);
		if (!nodes_.insert(node).second)
			return;
		unchecked_.push_back(node);
	}
	if (Conn *c = live_)
		loop_check(c);
	else
		wake_io();
}

/* The loop drives c: start a check of the nodes not checked yet, if none
 * runs; or take its verdict (a refusal hands c back to the I/O thread,
 * which keeps a refused connection). */
void NatsFabric::loop_check(Conn *c)
{
	Drive d(c);
	if (probing_) {
		if (!probed(c, now_ms() >= probe_by_))
			return;
		bool refused;
		{
			std::lock_guard g(mu_);
			refused = !c->loop_owned;
		}
		if (refused) {
			std::lock_guard g(mu_);
			if (c->w_read)
				loop_->del(c->w_read);
			if (c->w_write)
				loop_->del(c->w_write);
			c->w_read = c->w_write = 0;
			live_ = nullptr;
			wake_io();
			return;
		}
	}
	std::vector<std::string> others;
	{
		std::lock_guard g(mu_);
		others.swap(unchecked_);
	}
	if (others.empty())
		return;
	start_probe(c, others);
	loop_write(c);
}


/* What a connection the I/O thread drives received, to the loop (only
 * once it passed the check). */
void NatsFabric::received(Conn *c)
{
	std::vector<FabricMsg> got;
	drain(c, got);
	if (got.empty())
		return;
	bool first;
	{
		std::lock_guard g(mu_);
		if (!c->checked)
			return; /* not checked yet, or refused */
		first = inbox_.empty(); /* else the loop has been kicked */
		for (auto &m : got)
			inbox_.push_back(std::move(m));
	}
	if (first)
		kick();
}

/*
 * Drive c until it dies or the fabric stops: check it, then hand it to
 * the loop and wait for it back, or (TLS, refused) publish what the loop
 * queued and read what comes, polling the socket (our duplicate) as
 * libnats asks and our eventfd. On the stop it sends what was queued
 * before it, and what libnats holds, for at most 500 ms.
 */
void NatsFabric::serve(Conn *c)
{
	Drive d(c);
	{
		std::lock_guard g(mu_);
		cur_ = c;
	}
	std::vector<std::string> all;
	{
		std::lock_guard g(mu_);
		all.assign(nodes_.begin(), nodes_.end());
		unchecked_.clear();
	}
	all.insert(all.begin(), "PROBE");
	c->full = true;
	start_probe(c, all);
	int64_t stop_by = 0;
	std::unique_lock g(mu_);
	for (;;) {
		if (c->loop_owned) { /* the loop's: until it dies or the stop */
			g.unlock();
			pollfd p = {io_efd_, POLLIN, 0};
			uint64_t v;
			if (poll(&p, 1, -1) > 0 && read(io_efd_, &v, sizeof v) < 0) { /* EAGAIN */ }
			g.lock();
			continue;
		}
		if (c->dead)
			break;
		std::deque<FabricMsg> batch;
		batch.swap(outbox_);
		bool stopping = stop_;
		bool send = c->checked;
		std::vector<std::string> others; /* nodes heard of since the last check */
		if (c->checked && !probing_ && !stopping)
			others.swap(unchecked_);
		g.unlock();
		if (!others.empty())
			start_probe(c, others);
		if (send)
			publish_batch(c, batch); /* else not checked yet, or refused: dropped
						    (the protocol retransmits) */
		if (probing_ && now_ms() >= probe_by_)
			probed(c, true);
		g.lock();
		if (c->loop_owned)
			continue;
		if (c->want_write && !c->dead) {
			g.unlock();
			natsConnection_ProcessWriteEvent(c->nc); /* nonblocking: what fits */
			g.lock();
		}
		if (!outbox_.empty() || c->dead)
			continue;
		int64_t ms = now_ms();
		if (stopping && !stop_by)
			stop_by = ms + 500;
		if (stopping && (!c->want_write || ms >= stop_by))
			break; /* all written (or given up: the protocol's business) */
		pollfd p[2] = {{io_efd_, POLLIN, 0},
			       {c->rfd, short((c->want_read ? POLLIN : 0) |
					      (c->want_write ? POLLOUT : 0)), 0}};
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
		    (p[1].events & POLLIN))
			io_read(c);
		if (n > 0 && p[1].fd >= 0 && (p[1].revents & POLLOUT))
			natsConnection_ProcessWriteEvent(c->nc);
		if (probing_)
			probed(c, false); /* the mark may have come */
		g.lock();
		if (!c->loop_owned) {
			g.unlock();
			received(c);
			g.lock();
		}
	}
	outbox_.clear(); /* for a connection that is gone (the protocol retransmits) */
}

/* The I/O thread: a connection, then another when it dies, until the
 * stop; the servers in turn, at libnats' pace after each round. */
void NatsFabric::io()
{
	size_t failed = 0; /* attempts since the last connection */
	bool said_down = false;
	for (bool again = false; !stopping();) {
		if (again) { /* libnats' pace: 100 ms and some jitter, or the stop */
			int64_t until = now_ms() + 100 + rand() % 50;
			for (int64_t ms; !stopping() && (ms = now_ms()) < until;) {
				pollfd p = {io_efd_, POLLIN, 0};
				uint64_t v;
				if (poll(&p, 1, int(until - ms)) > 0 &&
				    read(io_efd_, &v, sizeof v) < 0) { /* EAGAIN */ }
			}
			if (stopping())
				break;
		}
		std::string why;
		Conn *c = connect(&why);
		if (!c) {
			again = ++failed % urls_.size() == 0; /* a round: none took it */
			if (again && !said_down)
				klog(fmt::format("kipc: net: cannot connect to {}: {} (trying again)",
						 cfg_.url, why));
			said_down |= again;
			continue;
		}
		failed = 0;
		said_down = false;
		serve(c);
		retire(c);
		again = true;
	}
}

NatsFabric::~NatsFabric()
{
	flush(); /* the last round's (the BYEs of ~NetImpl) */
	{
		std::lock_guard g(mu_);
		stop_ = true;
	}
	if (live_)
		loop_drop(live_); /* the I/O thread writes out what it holds */
	{
		std::lock_guard g(mu_);
		if (cur_) /* handed over, not taken yet */
			cur_->loop_owned = false;
	}
	if (thr_.joinable()) {
		wake_io();
		thr_.join(); /* it wrote what was queued (nobody reads a PONG now) */
	}
	if (opts_)
		natsOptions_Destroy(opts_);
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
