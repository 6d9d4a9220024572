/* The monitor's output: pino-compatible JSON lines on fd 1, line splitting, the status pipe. */
#define _GNU_SOURCE
#include "ovb-launch.h"
#include "sys.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include "netlink-min.h"
#include <net/if.h>
#include <sys/mount.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef PR_SET_CHILD_SUBREAPER
#define PR_SET_CHILD_SUBREAPER 36
#endif


extern char **environ;

struct logstate lg = {.status_fd = -1};
/* ------------------------------------------------------------------ logging (M) */


void set_name(const char *n)
{
	size_t l = strlen(n);
	if (l >= sizeof(lg.subhost)) l = sizeof(lg.subhost) - 1;
	memcpy(lg.subhost, n, l);
	lg.subhost[l] = 0;
}


/* One pino-compatible JSON line on fd 1. */
void json_log(int level, const char *source, const char *msg, size_t n)
{
	static char line[LOG_LINE_MAX * 6 + 2048];
	struct buf b = BUF_INIT(line);
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	b_str(&b, "{\"level\":");
	b_num(&b, level);
	b_str(&b, ",\"time\":");
	b_num(&b, (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
	b_str(&b, ",\"pid\":");
	b_num(&b, lg.mpid);
	b_str(&b, ",\"subhost\":\"");
	b_json(&b, lg.subhost, strlen(lg.subhost));
	b_str(&b, "\",\"source\":\"");
	b_str(&b, source);
	b_str(&b, "\",\"msg\":\"");
	b_json(&b, msg, n);
	b_str(&b, "\"}\n");
	log_rotate_check(b.len);
	write_all(1, b.p, b.len);
}

void logf_(int level, const char *a, const char *b_, const char *c, int err)
{
	char m[LOG_LINE_MAX];
	struct buf b = BUF_INIT(m);
	b_str(&b, a);
	if (b_) b_str(&b, b_);
	if (c) b_str(&b, c);
	if (err) {
		b_str(&b, ": ");
		b_str(&b, strerror(err));
	}
	json_log(level, "ovb-launch", b.p, b.len);
}


void lines_feed(struct lines *l, const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (p[i] == '\n') {
			l->emit(l->buf, l->len, l->ctx);
			l->len = 0;
			continue;
		}
		l->buf[l->len++] = p[i];
		if (l->len == l->max) {
			l->emit(l->buf, l->len, l->ctx);
			l->len = 0;
		}
	}
}

void lines_flush(struct lines *l)
{
	if (l->len) l->emit(l->buf, l->len, l->ctx);
	l->len = 0;
}

void emit_log(const char *s, size_t n, const void *ctx)
{
	json_log(30, (const char *)ctx, s, n);
}

/* Reads what is available on a non-blocking fd into l. Returns 0 at EOF (or error), 1 otherwise. */
int pump(int fd, struct lines *l)
{
	char b[8192];
	for (;;) {
		ssize_t r = read(fd, b, sizeof(b));
		if (r > 0) {
			lines_feed(l, b, (size_t)r);
			continue;
		}
		if (r < 0 && errno == EINTR) continue;
		if (r < 0 && errno == EAGAIN) return 1;
		lines_flush(l);
		return 0;
	}
}

void status_write(const char *s, size_t n)
{
	if (lg.status_fd < 0) return;
	if (write_all(lg.status_fd, s, n) < 0) {
		close(lg.status_fd);
		lg.status_fd = -1;
	}
}
