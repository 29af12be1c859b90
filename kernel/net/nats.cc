// SPDX-License-Identifier: MIT
/*
 * The fabric on libnats (built with CONFIG_NET=y only).
 *
 * Threads: libnats runs its own (socket reader, flusher, message
 * delivery, connection events); we add one, the sender, which connects
 * and publishes what the loop queued. None of them touches the kernel:
 * a received message or a connection event is appended to inbox_ under
 * mu_ and the eventfd is written; the loop thread takes the inbox
 * (take()). The loop thread never waits on anything but mu_, which every
 * thread holds only to move a vector.
 *
 * On every connection (the first, each reconnect: maybe to another server
 * of the cluster) the sender checks, before it publishes anything, that
 * the server enforces the per-node permissions network.md's security
 * rests on (check_permissions()); if it does not, the node refuses the
 * network: it says so loudly, publishes nothing, drops what it receives
 * and says it is not connected, until a connection passes the check.
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
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
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
			first = outbox_.empty(); /* else the sender is awake already */
			for (auto &m : round_)
				outbox_.push_back(std::move(m));
		}
		round_.clear();
		if (first)
			cv_.notify_one();
	}
	size_t max_payload() const override { return max_payload_.load(); }
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
	static void on_msg(natsConnection *, natsSubscription *, natsMsg *m, void *c)
	{
		auto *f = static_cast<NatsFabric *>(c);
		FabricMsg fm;
		fm.subject = natsMsg_GetSubject(m);
		const uint8_t *d = reinterpret_cast<const uint8_t *>(natsMsg_GetData(m));
		fm.data.assign(d, d + natsMsg_GetDataLength(m));
		natsMsg_Destroy(m);
		bool first;
		{
			std::lock_guard g(f->mu_);
			if (!f->checked_)
				return; /* this connection is not checked (or refused) */
			first = f->inbox_.empty(); /* else the loop has been kicked */
			f->inbox_.push_back(std::move(fm));
		}
		if (first)
			f->kick();
	}
	static void on_state(natsConnection *nc, void *c)
	{
		auto *f = static_cast<NatsFabric *>(c);
		bool up = natsConnection_Status(nc) == NATS_CONN_STATUS_CONNECTED;
		if (up && natsConnection_GetMaxPayload(nc) > 0) /* this server's */
			f->max_payload_ = size_t(natsConnection_GetMaxPayload(nc));
		{
			std::lock_guard g(f->mu_);
			f->connected_ = up;
			if (up) /* the sender checks this server before anything goes */
				f->verify_ = true, f->checked_ = false;
		}
		f->cv_.notify_one();
		f->kick();
	}
	static void on_error(natsConnection *, natsSubscription *, natsStatus s, void *c)
	{
		auto *f = static_cast<NatsFabric *>(c);
		if (s == NATS_NOT_PERMITTED && f->probing_)
			return; /* check_permissions() asked for that refusal */
		klog(fmt::format("kipc: net: NATS: {}", natsStatus_GetText(s)));
	}
	void kick()
	{
		uint64_t one = 1;
		if (write(efd_, &one, sizeof one) < 0) { /* counter full: already kicked */ }
	}
	void sender();
	std::string check_permissions();

	NetConfig cfg_;
	int efd_ = -1;
	natsOptions *opts_ = nullptr;
	natsConnection *nc_ = nullptr;
	natsSubscription *sub_ = nullptr;
	std::thread thr_;
	std::mutex mu_;
	std::condition_variable cv_;
	std::vector<FabricMsg> round_;   /* the loop thread's: this round's messages */
	std::deque<FabricMsg> outbox_;   /* guarded by mu_ */
	std::vector<FabricMsg> inbox_;   /* guarded by mu_ */
	bool connected_ = false;         /* guarded by mu_ */
	bool stop_ = false;              /* guarded by mu_ */
	bool verify_ = false;            /* guarded by mu_: check this connection */
	bool checked_ = false;           /* guarded by mu_: the last check passed */
	std::atomic<bool> probing_{false}; /* its refusals are no errors */
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
	thr_ = std::thread([this] { sender(); });
	return 0;
}

void NatsFabric::sender()
{
	natsStatus s = natsConnection_Connect(&nc_, opts_);
	if (s != NATS_OK && s != NATS_NOT_YET_CONNECTED) {
		klog(fmt::format("kipc: net: cannot connect to {}: {}", cfg_.url,
				 natsStatus_GetText(s)));
		nc_ = nullptr;
	}
	if (nc_) {
		std::string subj = fmt::format("kipc.{}.>", cfg_.node);
		if (natsConnection_Subscribe(&sub_, nc_, subj.c_str(), on_msg, this) != NATS_OK)
			klog(fmt::format("kipc: net: cannot subscribe to {}", subj));
		on_state(nc_, this);
	}
	std::unique_lock g(mu_);
	for (;;) {
		cv_.wait(g, [this] { return stop_ || !outbox_.empty() || verify_; });
		if (verify_ && nc_ && !stop_) {
			verify_ = false;
			g.unlock();
			probing_ = true;
			std::string why = check_permissions();
			probing_ = false;
			if (!why.empty())
				klog(fmt::format("kipc: net: REFUSING THE NETWORK: the NATS server does "
						 "not enforce the per-node permissions (Documentation/"
						 "network.md, Security): {}; node {} publishes nothing and "
						 "takes nothing until a connection passes this check",
						 why, cfg_.node));
			g.lock();
			if (!checked_ && why.empty())
				klog(fmt::format("kipc: net: node {}: the NATS server enforces the "
						 "per-node permissions (checked): network on", cfg_.node));
			checked_ = why.empty();
			kick();
			continue;
		}
		if (stop_ && outbox_.empty())
			break; /* what was queued before the stop goes out first */
		std::deque<FabricMsg> batch;
		batch.swap(outbox_);
		if (!checked_)
			continue; /* not checked yet, or refused: nothing goes out (retransmitted) */
		g.unlock();
		/* Rounds queued while we published: merged as publish() does. */
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
		g.lock();
		if (stop_ && outbox_.empty())
			break;
	}
}

/*
 * Does the server stop this node from being another? Two probes, each
 * answered by the server within one round trip (a flush): a publish on
 * the request subject of us as a node PROBE would send it
 * (kipc.<us>.req.PROBE: permitted, it reaches our own subscription to
 * it) and a subscription to a request subject of node PROBE
 * (kipc.PROBE.req.<us>, which we may publish: permitted, our publish
 * reaches it). PROBE is no node's name (names are lowercase), so no
 * node takes either for a request. "" when both are refused, else what
 * was let through.
 */
std::string NatsFabric::check_permissions()
{
	auto let_through = [this](const std::string &sub_subj, const std::string &pub_subj,
				  bool *yes) {
		natsSubscription *sub = nullptr;
		natsMsg *m = nullptr;
		*yes = false;
		if (natsConnection_SubscribeSync(&sub, nc_, sub_subj.c_str()) != NATS_OK)
			return true; /* refused at once (or down: checked again on reconnect) */
		natsStatus s = natsConnection_Publish(nc_, pub_subj.c_str(), "probe", 5);
		if (s == NATS_OK)
			s = natsConnection_FlushTimeout(nc_, 2000);
		/* the server answers the flush after the message it delivers */
		if (s == NATS_OK && natsSubscription_NextMsg(&m, sub, 50) == NATS_OK) {
			*yes = true;
			natsMsg_Destroy(m);
		}
		natsSubscription_Unsubscribe(sub);
		natsSubscription_Destroy(sub);
		return s == NATS_OK || s == NATS_NOT_PERMITTED;
	};
	std::string me = cfg_.node, why;
	bool yes = false;
	if (let_through(fmt::format("kipc.{}.req.PROBE", me), fmt::format("kipc.{}.req.PROBE", me),
			&yes) && yes)
		why = fmt::format("it let {} publish as another node (kipc.{}.req.PROBE)", me, me);
	if (let_through(fmt::format("kipc.PROBE.req.{}", me), fmt::format("kipc.PROBE.req.{}", me),
			&yes) && yes)
		why += fmt::format("{}it let {} subscribe to another node's requests "
				   "(kipc.PROBE.req.{})", why.empty() ? "" : "; ", me, me);
	return why;
}

NatsFabric::~NatsFabric()
{
	flush(); /* the last round's (the BYEs of ~NetImpl) */
	if (thr_.joinable()) {
		{
			std::lock_guard g(mu_);
			stop_ = true;
		}
		cv_.notify_one();
		thr_.join();
	}
	if (nc_) {
		natsConnection_FlushTimeout(nc_, 500);
		natsConnection_Close(nc_);
	}
	if (sub_)
		natsSubscription_Destroy(sub_);
	if (nc_)
		natsConnection_Destroy(nc_);
	if (opts_)
		natsOptions_Destroy(opts_);
	if (efd_ >= 0)
		close(efd_);
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
