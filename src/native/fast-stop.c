/*
 * ovb-launch stop [-q] [--timeout S] CONF: overlay-stop's fast path for a running
 * subhost, without starting Node.js (whose start-up alone is most of a stop).
 *
 * The library writes STATEDIR/NAME.stop when a subhost is up: one line,
 *   realpath(CONF) \t NAME \t pid1 \t pid1-start \t monitor \t monitor-start \t STOP_TIMEOUT
 * This finds the line for CONF, checks both processes by pid and start time, sends
 * SIGTERM to pid 1 (the reaper stops the services) and waits on the monitor (pidfd)
 * until its teardown is done; SIGKILL to pid 1 after the grace period.
 * Anything unusual (no line, a stale one, other options) exits FALLBACK, and the
 * wrapper runs the full overlay-stop, which handles every case.
 */
#define _GNU_SOURCE
#include "sys.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define FALLBACK 100

struct entry {
	char *f[7]; /* conf, name, pid1, pid1 start, monitor, monitor start, timeout */
};

static int split(char *line, struct entry *e)
{
	for (int i = 0; i < 7; i++) {
		e->f[i] = line;
		char *t = strchr(line, i == 6 ? '\n' : '\t');
		if (!t) return i == 6 ? 0 : -1;
		*t = 0;
		line = t + 1;
	}
	return 0;
}

static int find(const char *dir, const char *conf, struct entry *e, char *buf, size_t cap)
{
	DIR *d = opendir(dir);
	if (!d) return -1;
	struct dirent *de;
	int found = -1;
	while (found < 0 && (de = readdir(d))) {
		size_t l = strlen(de->d_name);
		if (l < 6 || strcmp(de->d_name + l - 5, ".stop")) continue;
		int fd = openat(dirfd(d), de->d_name, O_RDONLY | O_CLOEXEC);
		if (fd < 0) continue;
		ssize_t n = read(fd, buf, cap - 1);
		close(fd);
		if (n <= 0 || (size_t)n == cap - 1) /* empty, or longer than any line we write: not ours */
			continue;
		buf[n] = 0;
		if (split(buf, e) == 0 && !strcmp(e->f[0], conf)) found = 0;
	}
	closedir(d);
	return found;
}

static int wait_fd(int fd, long long ms)
{
	struct pollfd p = {fd, POLLIN, 0};
	long long end = mono_ms() + ms;
	for (;;) {
		long long left = end - mono_ms();
		if (left < 0) left = 0;
		int r = poll(&p, 1, (int)(left > INT_MAX ? INT_MAX : left));
		if (r > 0) return 1;
		if (r == 0) return 0;
		if (errno != EINTR) return 0;
	}
}

int fast_stop_main(int argc, char **argv)
{
	int quiet = 0;
	long long timeout = -1;
	const char *conf = NULL;
	for (int i = 2; i < argc; i++) {
		unsigned long long v;
		if (!strcmp(argv[i], "-q") || !strcmp(argv[i], "--quiet"))
			quiet = 1;
		else if ((!strcmp(argv[i], "--timeout") || !strcmp(argv[i], "-t")) && i + 1 < argc &&
			 !parse_num(argv[i + 1], 10, &v) && v <= 3600) {
			timeout = (long long)v;
			i++;
		} else if (argv[i][0] != '-' && !conf)
			conf = argv[i];
		else
			return FALLBACK;
	}
	char real[PATH_MAX], line[PATH_MAX + 256];
	if (!conf || !realpath(conf, real)) return FALLBACK;
	const char *dir = getenv("OVERLAY_BOOT_STATE_DIR");
	struct entry e;
	if (find(dir && *dir ? dir : "/run/overlay-boot", real, &e, line, sizeof(line)) < 0) return FALLBACK;
	unsigned long long pid1, s1, mon, sm, to;
	if (parse_num(e.f[2], 10, &pid1) || parse_num(e.f[3], 10, &s1) || parse_num(e.f[4], 10, &mon) ||
	    parse_num(e.f[5], 10, &sm) || parse_num(e.f[6], 10, &to))
		return FALLBACK;
	/* both pinned: a pid reused since the line was written is never signalled */
	int p1fd = pin_process((long long)pid1, (long long)s1);
	if (p1fd < 0) return FALLBACK;
	int pfd = pin_process((long long)mon, (long long)sm);
	if (pfd < 0) return FALLBACK;
	if (timeout < 0) timeout = (long long)to;
	if (ovb_pidfd_kill(p1fd, SIGTERM) < 0 && errno != ESRCH) return FALLBACK;
	/* the reaper's grace period, then a margin for its KILL and the monitor's teardown */
	if (!wait_fd(pfd, timeout * 1000 + 3000)) {
		ovb_pidfd_kill(p1fd, SIGKILL);
		if (!wait_fd(pfd, 5000)) return FALLBACK;
	}
	close(p1fd);
	close(pfd);
	/* the monitor removes the record last: if it is still there, let the full stop finish */
	char rec[PATH_MAX];
	struct buf b = BUF_INIT(rec);
	b_str(&b, dir && *dir ? dir : "/run/overlay-boot");
	b_chr(&b, '/');
	b_str(&b, e.f[1]);
	b_str(&b, ".json");
	if (b.over || access(rec, F_OK) == 0) return FALLBACK;
	if (!quiet) {
		char m[128];
		struct buf o = BUF_INIT(m);
		b_str(&o, e.f[1]);
		b_str(&o, " stopped\n");
		write_all(1, o.p, o.len);
	}
	return 0;
}
