// SPDX-License-Identifier: MIT
/*
 * kipcd internals: the event loop (io_uring or epoll) and the transport
 * (attach, per-process rings, death). Private to kernel/daemon/.
 */
#pragma once

#include <csignal>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#if __has_include(<generated/autoconf.h>)
#include <generated/autoconf.h>
#endif
#ifndef CONFIG_RING_ENTRIES
#define CONFIG_RING_ENTRIES 256
#endif
#ifndef CONFIG_ARENA_SIZE
#define CONFIG_ARENA_SIZE 1048576
#endif

#if __has_include(<generated/version.h>)
#include <generated/version.h>
#endif
#ifndef KIPC_VERSION
#define KIPC_VERSION "0.1"
#endif

#include <kernel/kernel.h>
#include <kipc/introspect.h>

namespace kipcd {

/* What kernel_info reports; main() fills it before serve(). */
extern struct kipc_kernel_info boot_info;

/* dmesg-style line on stderr: "[    0.000123] kipc: ..." */
void klog(const std::string &msg);

/*
 * The loop watches file descriptors for readiness. A watch is persistent
 * (multishot poll on io_uring, level-triggered epoll) until del(). The
 * callback gets the poll(2) revents. del() is safe from inside any
 * callback, including the watch's own: a deleted watch is never called
 * again, even for events already reaped in the same batch.
 */
class Loop {
public:
	using Fn = std::function<void(uint32_t revents)>;
	virtual ~Loop() = default;
	virtual const char *name() const = 0;
	/* Returns a watch id (> 0), or -errno. */
	virtual int64_t add(int fd, uint32_t events, Fn fn) = 0;
	virtual void del(int64_t id) = 0;
	/* Wait up to timeout_ms (-1: forever) and run the callbacks. */
	virtual int wait(int timeout_ms) = 0;
};

/*
 * which: "auto", "io_uring" or "epoll". With "auto", io_uring is used when
 * it can be set up and supports what the loop needs, else epoll; *why
 * says why io_uring was not used. nullptr when which is "io_uring" and
 * io_uring is unusable (*why tells), or which is unknown.
 */
std::unique_ptr<Loop> make_loop(const std::string &which, std::string *why);

/* The transport: listener, attached processes, timers, host interface. */
class Transport;

struct Options {
	std::string socket_path;
	bool foreground = false;
	std::string loop = "auto";
};

/* Run the kernel on an already listening socket until SIGTERM/SIGINT. */
int serve(int listen_fd, Loop &loop, const kipc::Limits &limits, bool verbose);

/* Block SIGTERM, SIGINT and SIGHUP (they wait for the server's
 * signalfd, which reads this set) and return the set. */
sigset_t block_shutdown_signals();

} // namespace kipcd
