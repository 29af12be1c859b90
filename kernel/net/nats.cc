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
#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
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
	void publish(std::string subject, std::vector<uint8_t> data) override
	{
		if (!round_.empty() && round_.back().subject == subject &&
		    round_.back().data.size() + data.size() <=
			    std::min(kCoalesce, max_payload_.load())) {
			auto &d = round_.back().data;
			d.insert(d.end(), data.begin(), data.end());
			return;
		}
		round_.push_back({std::move(subject), std::move(data)});
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
	std::vector<FabricMsg> take(bool *connected) override
	{
		uint64_t v;
		if (read(efd_, &v, sizeof v) < 0) { /* EAGAIN: nothing new */ }
		std::vector<FabricMsg> out;
		std::lock_guard g(mu_);
		out.swap(inbox_);
		*connected = connected_;
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
		}
		f->kick();
	}
	static void on_error(natsConnection *, natsSubscription *, natsStatus s, void *)
	{
		klog(fmt::format("kipc: net: NATS: {}", natsStatus_GetText(s)));
	}
	void kick()
	{
		uint64_t one = 1;
		if (write(efd_, &one, sizeof one) < 0) { /* counter full: already kicked */ }
	}
	void io();
	void publish_batch(std::deque<FabricMsg> &batch);
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
	size_t most = std::min(kCoalesce, max_payload_.load()); /* one NATS message */
	for (size_t i = 0; i < batch.size();) {
		const FabricMsg &m = batch[i];
		const std::vector<uint8_t> *d = &m.data;
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
		first = inbox_.empty(); /* else the loop has been kicked */
		for (auto &m : got)
			inbox_.push_back(std::move(m));
	}
	if (first)
		kick();
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
		g.unlock();
		publish_batch(batch);
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
		int n = poll(p, 2, stopping ? int(stop_by - ms) : -1);
		if (n > 0 && (p[0].revents & POLLIN)) {
			uint64_t v;
			if (read(io_efd_, &v, sizeof v) < 0) { /* EAGAIN */ }
		}
		if (n > 0 && p[1].fd >= 0 && (p[1].revents & (POLLIN | POLLHUP | POLLERR)) &&
		    (p[1].events & POLLIN) && nc_)
			natsConnection_ProcessReadEvent(nc_); /* one read, then parse */
		if (n > 0 && p[1].fd >= 0 && (p[1].revents & POLLOUT) && nc_)
			natsConnection_ProcessWriteEvent(nc_);
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
