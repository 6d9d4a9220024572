/*
 * ovb-launch: interprets the programs described in PROTOCOL.md.
 *
 *   ovb-launch boot       fd 0 program, fd 1/2 log file, fd 3 status pipe, fd 4 control pipe
 *   ovb-launch teardown   fd 0 teardown program, fd 1/2 log file
 *
 * Processes: M (this process, the monitor), C (mount child, new mount namespace),
 * P (pid 1 of the subhost, forked by C in fork-pid1, reparented to M).
 */
#define _GNU_SOURCE
#include "util.h"
#include "inroot.h"
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

#define LOG_LINE_MAX 4096
#define STATUS_LINE_MAX 4000 /* < PIPE_BUF */
#define KILL_WAIT_MS 5000    /* bound on waiting for a SIGKILLed child */

extern char **environ;

/* ------------------------------------------------------------------ program decoding */

struct opdef;

struct op {
	const char *name;
	char **a; /* arguments, NULL-terminated */
	int n;
	const struct opdef *def;
};

struct prog {
	struct op *ops;
	int n, cap;
};

enum { IN_BOOT = 1, IN_TEARDOWN = 2 };

/* Boot ops run in C or P and end the process on failure (fail); teardown ops return 1 done, 0 failed. */
static void op_bind_optional(struct op *o);
static void op_bind_share(struct op *o);
static void op_cgroup(struct op *o);
static void op_copy(struct op *o);
static void op_exec(struct op *o);
static void op_fail(struct op *o);
static void op_fork_pid1(struct op *o);
static void op_hook(struct op *o);
static void op_hostname(struct op *o);
static void op_link_up(struct op *o);
static void op_mkdir(struct op *o);
static void op_mknod(struct op *o);
static void op_mount(struct op *o);
static void op_name(struct op *o);
static void op_netns(struct op *o);
static void op_open_exec(struct op *o);
static void op_pivot(struct op *o);
static void op_root(struct op *o);
static void op_setenv(struct op *o);
static void op_step(struct op *o);
static void op_symlink(struct op *o);
static void op_write(struct op *o);
static int td_del_link(struct op *o);
static int td_del_netns(struct op *o);
static int td_log(struct op *o);
static int td_name(struct op *o);
static int td_rmdir(struct op *o);
static int td_run(struct op *o);
static int td_setenv(struct op *o);
static int td_umount(struct op *o);
static int td_unlink(struct op *o);

/*
 * The op protocol in one table (PROTOCOL.md; src/plan/types.ts NATIVE_OPS mirrors it and
 * test/native/protocol.test.ts checks the three agree; `ovb-launch --list-ops` prints it).
 */
static const struct opdef {
	const char *name;
	int fixed;    /* number of fixed arguments (each may be empty) */
	int variadic; /* then 1 or more non-empty arguments up to the terminator */
	int where;    /* IN_BOOT, IN_TEARDOWN */
	void (*boot)(struct op *);
	int (*teardown)(struct op *);
} opdefs[] = {
	{ "name", 1, 0, IN_BOOT | IN_TEARDOWN, op_name, td_name },
	{ "setenv", 2, 0, IN_BOOT | IN_TEARDOWN, op_setenv, td_setenv },
	{ "step", 1, 0, IN_BOOT, op_step, NULL },
	{ "hook", 2, 0, IN_BOOT, op_hook, NULL },
	{ "root", 1, 0, IN_BOOT, op_root, NULL },
	{ "write-if-missing", 3, 0, IN_BOOT, op_write, NULL },
	{ "mkdir", 2, 0, IN_BOOT, op_mkdir, NULL },
	{ "mount", 5, 0, IN_BOOT, op_mount, NULL },
	{ "mknod", 7, 0, IN_BOOT, op_mknod, NULL },
	{ "symlink", 2, 0, IN_BOOT, op_symlink, NULL },
	{ "copy-if-missing", 3, 0, IN_BOOT, op_copy, NULL },
	{ "bind-share", 2, 0, IN_BOOT, op_bind_share, NULL },
	{ "bind-optional", 2, 0, IN_BOOT, op_bind_optional, NULL },
	{ "cgroup", 1, 0, IN_BOOT, op_cgroup, NULL },
	{ "netns", 1, 0, IN_BOOT, op_netns, NULL },
	{ "link-up", 1, 0, IN_BOOT, op_link_up, NULL },
	{ "open-exec", 1, 0, IN_BOOT, op_open_exec, NULL },
	{ "fork-pid1", 0, 0, IN_BOOT, op_fork_pid1, NULL },
	{ "hostname", 1, 0, IN_BOOT, op_hostname, NULL },
	{ "pivot", 1, 0, IN_BOOT, op_pivot, NULL },
	{ "exec", 0, 1, IN_BOOT, op_exec, NULL },
	{ "fail", 1, 0, IN_BOOT, op_fail, NULL },
	{ "teardown", 0, 0, IN_BOOT, NULL, NULL },
	{ "log", 1, 0, IN_TEARDOWN, NULL, td_log },
	{ "run", 2, 1, IN_TEARDOWN, NULL, td_run },
	{ "del-netns", 1, 0, IN_TEARDOWN, NULL, td_del_netns },
	{ "rmdir", 2, 0, IN_TEARDOWN, NULL, td_rmdir },
	{ "unlink", 1, 0, IN_TEARDOWN, NULL, td_unlink },
	{ "umount", 1, 0, IN_TEARDOWN, NULL, td_umount },
	{ "del-link", 1, 0, IN_TEARDOWN, NULL, td_del_link },
};

static char *pbuf;
static size_t plen, ppos;

static char *next_str(void)
{
	if (ppos >= plen)
		return NULL;
	char *s = pbuf + ppos, *z = memchr(s, 0, plen - ppos);
	if (!z)
		return NULL;
	ppos = (size_t)(z - pbuf) + 1;
	return s;
}

static int read_program(int fd)
{
	size_t cap = 65536;
	pbuf = malloc(cap);
	if (!pbuf)
		return -1;
	for (;;) {
		if (plen == cap) {
			char *n = realloc(pbuf, cap *= 2);
			if (!n)
				return -1;
			pbuf = n;
		}
		ssize_t r = read(fd, pbuf + plen, cap - plen);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == 0)
			return 0;
		plen += (size_t)r;
	}
}

/* Decodes ops into p until the end of input or (in a boot program) the `teardown` op.
 * Returns 1 when `teardown` was met, 0 at the end, -1 on error (message in err). */
static int decode(struct prog *p, int where, struct buf *err)
{
	for (;;) {
		if (ppos >= plen)
			return 0;
		char *name = next_str();
		if (!name) {
			b_str(err, "truncated program");
			return -1;
		}
		const struct opdef *d = NULL;
		for (size_t i = 0; i < sizeof(opdefs) / sizeof(opdefs[0]); i++)
			if (!strcmp(opdefs[i].name, name) && (opdefs[i].where & where))
				d = &opdefs[i];
		if (!d) {
			b_str(err, "unknown op \"");
			b_line(err, name);
			b_str(err, where == IN_BOOT ? "\" in boot program" : "\" in teardown program");
			return -1;
		}
		struct op o = { name, NULL, 0, d };
		int cap = d->fixed + 4;
		o.a = malloc(sizeof(char *) * (size_t)(cap + 1));
		if (!o.a)
			return -1;
		for (;;) {
			char *s = next_str();
			if (!s) {
				b_str(err, "truncated program in op ");
				b_str(err, name);
				return -1;
			}
			if (o.n >= d->fixed) {
				if (!*s)
					break;
				if (!d->variadic) {
					b_str(err, "too many arguments for op ");
					b_str(err, name);
					return -1;
				}
			}
			if (o.n == cap) {
				char **na = realloc(o.a, sizeof(char *) * (size_t)((cap *= 2) + 1));
				if (!na)
					return -1;
				o.a = na;
			}
			o.a[o.n++] = s;
		}
		o.a[o.n] = NULL;
		if (d->variadic && o.n == d->fixed) {
			b_str(err, "missing arguments for op ");
			b_str(err, name);
			return -1;
		}
		if (!strcmp(name, "teardown"))
			return 1;
		if (p->n == p->cap) {
			p->cap = p->cap ? p->cap * 2 : 64;
			struct op *no = realloc(p->ops, sizeof(struct op) * (size_t)p->cap);
			if (!no)
				return -1;
			p->ops = no;
		}
		p->ops[p->n++] = o;
	}
}

/* ------------------------------------------------------------------ logging (M) */

static char subhost[256];
static long mpid;
static int status_fd = -1; /* M: fd 3 towards the library, -1 once closed */

static void set_name(const char *n)
{
	size_t l = strlen(n);
	if (l >= sizeof(subhost))
		l = sizeof(subhost) - 1;
	memcpy(subhost, n, l);
	subhost[l] = 0;
}


/* One pino-compatible JSON line on fd 1. */
static void json_log(int level, const char *source, const char *msg, size_t n)
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
	b_num(&b, mpid);
	b_str(&b, ",\"subhost\":\"");
	b_json(&b, subhost, strlen(subhost));
	b_str(&b, "\",\"source\":\"");
	b_str(&b, source);
	b_str(&b, "\",\"msg\":\"");
	b_json(&b, msg, n);
	b_str(&b, "\"}\n");
	write_all(1, b.p, b.len);
}

static void logf_(int level, const char *a, const char *b_, const char *c, int err)
{
	char m[LOG_LINE_MAX];
	struct buf b = BUF_INIT(m);
	b_str(&b, a);
	if (b_)
		b_str(&b, b_);
	if (c)
		b_str(&b, c);
	if (err) {
		b_str(&b, ": ");
		b_str(&b, strerror(err));
	}
	json_log(level, "ovb-launch", b.p, b.len);
}

/* Splits a byte stream into lines of at most max bytes. */
struct lines {
	char buf[LOG_LINE_MAX];
	size_t len, max;
	void (*emit)(const char *, size_t, const void *);
	const void *ctx;
};

static void lines_feed(struct lines *l, const char *p, size_t n)
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

static void lines_flush(struct lines *l)
{
	if (l->len)
		l->emit(l->buf, l->len, l->ctx);
	l->len = 0;
}

static void emit_log(const char *s, size_t n, const void *ctx)
{
	json_log(30, (const char *)ctx, s, n);
}

/* Reads what is available on a non-blocking fd into l. Returns 0 at EOF (or error), 1 otherwise. */
static int pump(int fd, struct lines *l)
{
	char b[8192];
	for (;;) {
		ssize_t r = read(fd, b, sizeof(b));
		if (r > 0) {
			lines_feed(l, b, (size_t)r);
			continue;
		}
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && errno == EAGAIN)
			return 1;
		lines_flush(l);
		return 0;
	}
}

static void status_write(const char *s, size_t n)
{
	if (status_fd < 0)
		return;
	if (write_all(status_fd, s, n) < 0) {
		close(status_fd);
		status_fd = -1;
	}
}

/* ------------------------------------------------------------------ C and P: boot ops */

static const char *cur_step = "boot";
static int csfd = -1;   /* signalfd for SIGCHLD in C/P */
static int exec_fd = -1; /* open-exec */
static int is_pid1;      /* after fork-pid1, in P */
static int cur_op;       /* index of the running op (`created` lines) */
static struct root root = { .path = "", .len = 0, .fd = -1 };

static void st_line(struct buf *b)
{
	b_chr(b, '\n');
	write_all(3, b->p, b->len);
}

/* Reports a failure on fd 3 and ends C or P. */
static void __attribute__((noreturn)) fail(int err, const char *what, const char *path, const char *more)
{
	char l[STATUS_LINE_MAX + 2];
	struct buf b = { l, 0, STATUS_LINE_MAX, 0 };
	b_str(&b, "fail ");
	b_line(&b, cur_step);
	b_chr(&b, ' ');
	b_num(&b, err);
	b_chr(&b, ' ');
	b_line(&b, what);
	if (path) {
		b_chr(&b, ' ');
		b_line(&b, path);
	}
	if (more)
		b_line(&b, more);
	if (err) {
		b_str(&b, ": ");
		b_str(&b, strerror(err));
	}
	b.cap = sizeof(l);
	st_line(&b);
	_exit(1);
}

/* Waits for pid until deadline (ms, CLOCK_MONOTONIC). Returns 1 reaped, 0 timed out. */
static int wait_child(pid_t pid, int *st, long long deadline)
{
	for (;;) {
		pid_t r = waitpid(pid, st, WNOHANG);
		if (r == pid)
			return 1;
		if (r < 0 && errno != EINTR)
			return 1; /* not our child any more: nothing to wait for */
		long long left = deadline - mono_ms();
		if (left <= 0)
			return 0;
		struct pollfd pf = { csfd, POLLIN, 0 };
		if (poll(&pf, 1, left > 1000000000 ? 1000000000 : (int)left) > 0) {
			struct signalfd_siginfo si;
			while (read(csfd, &si, sizeof(si)) > 0)
				;
		}
	}
}

/* Tells M the process group of the running hook (M kills it when the boot is aborted);
 * M keeps these lines to itself. */
static void hook_pgrp(pid_t pg)
{
	char l[32];
	struct buf b = BUF_INIT(l);
	b_str(&b, "hookpg ");
	b_num(&b, pg);
	st_line(&b);
}

static void op_hook(struct op *o)
{
	unsigned long long ms;
	if (parse_num(o->a[0], 10, &ms))
		fail(EINVAL, "hook", NULL, ": bad timeout");
	pid_t pid = fork();
	if (pid < 0)
		fail(errno, "hook", NULL, ": fork");
	if (pid == 0) {
		sigset_t none;
		sigemptyset(&none);
		setpgid(0, 0);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		int fd = open("/dev/null", O_RDONLY);
		if (fd > 0) {
			dup2(fd, 0);
			close(fd);
		}
		sigprocmask(SIG_SETMASK, &none, NULL);
		execl("/bin/sh", "sh", "-c", o->a[1], (char *)0);
		_exit(127);
	}
	setpgid(pid, pid);
	hook_pgrp(pid);
	int st = 0;
	int done = wait_child(pid, &st, mono_ms() + (long long)ms);
	hook_pgrp(0);
	if (!done) {
		kill(-pid, SIGKILL);
		kill(pid, SIGKILL);
		wait_child(pid, &st, mono_ms() + KILL_WAIT_MS);
		char m[64];
		struct buf b = BUF_INIT(m);
		b_str(&b, "hook timed out after ");
		b_num(&b, (long long)ms);
		b_str(&b, " ms");
		fail(0, m, NULL, NULL);
	}
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
		return;
	char m[64];
	struct buf b = BUF_INIT(m);
	if (WIFEXITED(st)) {
		b_str(&b, "hook exited with status ");
		b_num(&b, WEXITSTATUS(st));
	} else {
		b_str(&b, "hook killed by signal ");
		b_num(&b, WTERMSIG(st));
	}
	fail(0, m, NULL, NULL);
}

/* The directory below the root (or the host path) that a path argument names; fails for a relative one. */
static int sub_path(const char *what, const char *path, const char **rel)
{
	int d = root_rel(&root, path, rel);
	if (d == -1)
		fail(errno, what, path, NULL);
	return d;
}

/* mkdir -p inside the root (created directories 0755); returns an O_PATH fd of it. */
static int mkdir_p(const char *what, const char *path)
{
	const char *rel;
	int d = sub_path(what, path, &rel);
	int fd = in_mkdir_p(d, rel);
	if (fd < 0)
		fail(errno, what, path, NULL);
	return fd;
}

static void op_mkdir(struct op *o)
{
	unsigned long long mode;
	if (parse_num(o->a[1], 8, &mode) || mode > 07777)
		fail(EINVAL, "mkdir", o->a[0], ": bad mode");
	int fd = mkdir_p("mkdir", o->a[0]);
	/* fchmod needs a real descriptor; "." of the resolved directory follows nothing */
	int w = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (w < 0 || fchmod(w, (mode_t)mode) < 0)
		fail(errno, "chmod", o->a[0], NULL);
	close(w);
	close(fd);
}

static void __attribute__((noreturn)) fail_mount(int e, const char *what, const char *src, const char *tgt)
{
	char m[STATUS_LINE_MAX];
	struct buf b = BUF_INIT(m);
	b_str(&b, what);
	b_chr(&b, ' ');
	b_str(&b, src);
	b_str(&b, " on");
	fail(e, m, tgt, NULL);
}

/*
 * A mount whose target is below the root: the target is resolved inside it and
 * the mount attached to that descriptor (new mount API), so a link planted where
 * /dev or /sys goes can only lead to a place inside the subhost.
 */
static void mount_in_root(struct op *o, const char *rel, unsigned long fl, unsigned long prop)
{
	const char *src = o->a[0], *tgt = o->a[1], *fs = o->a[2], *data = o->a[4];
	unsigned attrs = (fl & MS_RDONLY ? OVB_MOUNT_ATTR_RDONLY : 0) | (fl & MS_NOSUID ? OVB_MOUNT_ATTR_NOSUID : 0) |
			 (fl & MS_NODEV ? OVB_MOUNT_ATTR_NODEV : 0) | (fl & MS_NOEXEC ? OVB_MOUNT_ATTR_NOEXEC : 0);
	int rec = !!(fl & MS_REC);
	int tfd = in_open(root.fd, rel, O_PATH, 0);
	if (tfd < 0)
		fail(errno, "mount", tgt, NULL);
	if (*fs) {
		if (mount_fs_at(tfd, fs, src, data, attrs) < 0)
			fail_mount(errno, "mount", fs, tgt);
	} else if (fl & MS_BIND) {
		const char *srel;
		int sd = sub_path("mount", src, &srel);
		int sfd = in_open(sd, srel, O_PATH, 0);
		if (sfd < 0)
			fail(errno, "mount", src, NULL);
		if (bind_at(sfd, "", tfd, rec, attrs) < 0)
			fail_mount(errno, "mount", src, tgt);
		close(sfd);
	} else if ((fl & MS_REMOUNT) && setattr_at(tfd, rec, attrs, 0) < 0) {
		fail(errno, "mount -o remount on", tgt, NULL);
	} else if (!(fl & MS_REMOUNT) && !prop) {
		fail(EINVAL, "mount", tgt, ": neither a filesystem type, bind, remount nor propagation");
	}
	if (prop && setattr_at(tfd, rec, 0, prop) < 0)
		fail(errno, prop == MS_SLAVE ? "mount --make-slave on" : "mount --make-private on", tgt, NULL);
	close(tfd);
}

static void op_mount(struct op *o)
{
	const char *src = o->a[0], *tgt = o->a[1], *fs = o->a[2], *data = o->a[4];
	unsigned long fl = 0, prop = 0;
	static const struct {
		const char *n;
		unsigned long f, prop;
	} names[] = {
		{ "bind", MS_BIND, 0 },	      { "rec", MS_REC, 0 },	   { "private", 0, MS_PRIVATE },
		{ "rprivate", MS_REC, MS_PRIVATE }, { "slave", 0, MS_SLAVE }, { "nosuid", MS_NOSUID, 0 },
		{ "nodev", MS_NODEV, 0 },	      { "noexec", MS_NOEXEC, 0 }, { "ro", MS_RDONLY, 0 },
		{ "remount", MS_REMOUNT, 0 },     { "relatime", MS_RELATIME, 0 },
	};
	const char *f = o->a[3];
	while (*f) {
		const char *e = strchr(f, ',');
		size_t n = e ? (size_t)(e - f) : strlen(f);
		size_t i;
		for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
			if (strlen(names[i].n) == n && !memcmp(names[i].n, f, n))
				break;
		if (i == sizeof(names) / sizeof(names[0])) {
			if (n)
				fail(EINVAL, "mount", tgt, ": unknown flag in the flag list");
		} else {
			fl |= names[i].f;
			prop |= names[i].prop;
		}
		f += n + (e ? 1 : 0);
	}
	const char *what = *fs ? fs : *src ? src : "--make-private";
	int main_mount = *fs || (fl & (MS_BIND | MS_REMOUNT)) || !prop;
	const char *rel;
	if (sub_path("mount", tgt, &rel) != AT_FDCWD) {
		mount_in_root(o, rel, fl, prop);
		return;
	}
	if (main_mount) {
		if (mount(*src ? src : "none", tgt, *fs ? fs : NULL, fl, *data ? data : NULL) < 0)
			fail_mount(errno, "mount", what, tgt);
		unsigned long extra = fl & (MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC);
		if ((fl & MS_BIND) && !(fl & MS_REMOUNT) && extra &&
		    mount(NULL, tgt, NULL, MS_REMOUNT | MS_BIND | extra, NULL) < 0)
			fail(errno, "mount -o remount on", tgt, NULL);
	}
	if (prop && mount(NULL, tgt, NULL, prop | (fl & MS_REC), NULL) < 0)
		fail(errno, prop == MS_SLAVE ? "mount --make-slave on" : "mount --make-private on", tgt, NULL);
}

/* The parent directory of a path argument, resolved inside the root; its last component in leaf. */
static int parent_of(const char *what, const char *path, char *leaf, size_t cap)
{
	const char *rel;
	int d = sub_path(what, path, &rel);
	int fd = in_parent(d, rel, leaf, cap);
	if (fd < 0)
		fail(errno, what, path, NULL);
	return fd;
}

static void op_mknod(struct op *o)
{
	unsigned long long maj, min, mode, uid, gid;
	const char *path = o->a[0];
	char leaf[256];
	mode_t type = !strcmp(o->a[1], "c") ? S_IFCHR : !strcmp(o->a[1], "b") ? S_IFBLK : 0;
	if (!type || parse_num(o->a[2], 10, &maj) || parse_num(o->a[3], 10, &min) ||
	    parse_num(o->a[4], 8, &mode) || mode > 07777 || parse_num(o->a[5], 10, &uid) ||
	    parse_num(o->a[6], 10, &gid))
		fail(EINVAL, "mknod", path, ": bad arguments");
	dev_t dev = makedev((unsigned)maj, (unsigned)min);
	int pd = parent_of("mknod", path, leaf, sizeof(leaf));
	if (mknodat(pd, leaf, type | (mode_t)mode, dev) < 0) {
		struct stat sb;
		if (errno != EEXIST || fstatat(pd, leaf, &sb, AT_SYMLINK_NOFOLLOW) < 0 || (sb.st_mode & S_IFMT) != type ||
		    sb.st_rdev != dev)
			fail(errno == EEXIST ? EEXIST : errno, "mknod", path, NULL);
	}
	/* leaf is that node (checked above, never a link): fchmodat cannot follow anything */
	if (fchmodat(pd, leaf, (mode_t)mode, 0) < 0)
		fail(errno, "chmod", path, NULL);
	if (fchownat(pd, leaf, (uid_t)uid, (gid_t)gid, AT_SYMLINK_NOFOLLOW) < 0)
		fail(errno, "chown", path, NULL);
	close(pd);
}

static void op_symlink(struct op *o)
{
	char leaf[256];
	int pd = parent_of("symlink", o->a[1], leaf, sizeof(leaf));
	if (symlinkat(o->a[0], pd, leaf) == 0) {
		close(pd);
		return;
	}
	int e = errno;
	if (e == EEXIST) {
		char t[4096];
		ssize_t n = readlinkat(pd, leaf, t, sizeof(t) - 1);
		if (n >= 0) {
			t[n] = 0;
			if (!strcmp(t, o->a[0])) {
				close(pd);
				return;
			}
		}
	}
	fail(e, "symlink", o->a[1], NULL);
}

/* Writes n bytes from in (or buf when in < 0) into a new file dst (O_EXCL, inside the root).
 * Returns 1 written, 0 when dst exists (anything there, a link included, is left alone). */
static int create_file(const char *what, const char *dst, unsigned long long mode, int in, const char *buf)
{
	char leaf[256];
	const char *rel;
	int d = sub_path(what, dst, &rel);
	int pd = parent_of(what, dst, leaf, sizeof(leaf));
	struct stat sb;
	if (fstatat(pd, leaf, &sb, AT_SYMLINK_NOFOLLOW) == 0) {
		close(pd);
		return 0;
	}
	int out = in_open(d, rel, O_WRONLY | O_CREAT | O_EXCL | O_NOCTTY, (mode_t)mode);
	if (out < 0) {
		if (errno == EEXIST) {
			close(pd);
			return 0;
		}
		fail(errno, what, dst, NULL);
	}
	char b[65536];
	int bad = 0;
	if (buf) {
		bad = write_all(out, buf, strlen(buf)) < 0;
	} else {
		for (;;) {
			ssize_t r = read(in, b, sizeof(b));
			if (r < 0 && errno == EINTR)
				continue;
			if (r < 0 || (r > 0 && write_all(out, b, (size_t)r) < 0)) {
				bad = 1;
				break;
			}
			if (r == 0)
				break;
		}
	}
	if (bad || fchmod(out, (mode_t)mode) < 0 || close(out) < 0) {
		int e = errno;
		unlinkat(pd, leaf, 0);
		fail(e, what, dst, NULL);
	}
	close(pd);
	return 1;
}

static void op_copy(struct op *o)
{
	const char *src = o->a[0], *dst = o->a[1];
	unsigned long long mode;
	char leaf[256];
	struct stat sb;
	if (parse_num(o->a[2], 8, &mode) || mode > 07777)
		fail(EINVAL, "copy-if-missing", dst, ": bad mode");
	int pd = parent_of("copy-if-missing", dst, leaf, sizeof(leaf));
	int there = fstatat(pd, leaf, &sb, AT_SYMLINK_NOFOLLOW) == 0;
	close(pd);
	if (there)
		return;
	const char *srel;
	int sd = sub_path("copy-if-missing", src, &srel);
	int in = in_open(sd, srel, O_RDONLY, 0);
	if (in < 0)
		fail(errno, "copy-if-missing", src, NULL);
	create_file("copy-if-missing", dst, mode, in, NULL);
	close(in);
}

/* write-if-missing PATH MODE CONTENT: the built-in premount's /etc/network/interfaces in UPPER. */
static void op_write(struct op *o)
{
	unsigned long long mode;
	if (parse_num(o->a[1], 8, &mode) || mode > 07777)
		fail(EINVAL, "write-if-missing", o->a[0], ": bad mode");
	char dir[4096];
	const char *rel;
	sub_path("write-if-missing", o->a[0], &rel);
	size_t l = strlen(o->a[0]);
	while (l > 1 && o->a[0][l - 1] != '/')
		l--;
	if (l >= sizeof(dir) || l < 2)
		fail(EINVAL, "write-if-missing", o->a[0], NULL);
	memcpy(dir, o->a[0], l - 1);
	dir[l - 1] = 0;
	close(mkdir_p("write-if-missing", dir));
	if (create_file("write-if-missing", o->a[0], mode, -1, o->a[2])) {
		/* M removes it again when the boot does not succeed */
		char m[32];
		struct buf b = BUF_INIT(m);
		b_str(&b, "created ");
		b_num(&b, cur_op);
		st_line(&b);
	}
}

/* Opens dst (inside the root) for a bind mount: created as src's kind when make is set. */
static int bind_target(const char *what, const struct stat *src, const char *dst, int make)
{
	const char *rel;
	int d = sub_path(what, dst, &rel);
	if (make && S_ISDIR(src->st_mode))
		close(mkdir_p(what, dst));
	else if (make && in_touch(d, rel) < 0)
		fail(errno, what, dst, NULL);
	return in_open(d, rel, O_PATH, 0);
}

static void op_bind_share(struct op *o)
{
	const char *src = o->a[0], *dst = o->a[1];
	struct stat sb;
	if (stat(src, &sb) < 0)
		fail(errno, "bind-share", src, NULL);
	int tfd = bind_target("bind-share", &sb, dst, 1);
	if (tfd < 0)
		fail(errno, "bind-share", dst, NULL);
	if (bind_at(AT_FDCWD, src, tfd, 1, 0) < 0) {
		int e = errno;
		char m[STATUS_LINE_MAX];
		struct buf b = BUF_INIT(m);
		b_str(&b, "bind-share ");
		b_str(&b, src);
		b_str(&b, " on");
		fail(e, m, dst, NULL);
	}
	close(tfd);
}

static void op_bind_optional(struct op *o)
{
	struct stat a;
	if (stat(o->a[0], &a) < 0)
		return;
	int tfd = bind_target("bind-optional", &a, o->a[1], 0);
	if (tfd < 0)
		return;
	(void)bind_at(AT_FDCWD, o->a[0], tfd, 0, 0);
	close(tfd);
}

static void op_cgroup(struct op *o)
{
	size_t l = strlen(o->a[0]);
	char *p = malloc(l + 16);
	if (!p)
		fail(ENOMEM, "cgroup", o->a[0], NULL);
	memcpy(p, o->a[0], l);
	memcpy(p + l, "/cgroup.procs", 14);
	char n[24];
	struct buf b = BUF_INIT(n);
	b_num(&b, getpid());
	b_chr(&b, '\n');
	int fd = open(p, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write_all(fd, b.p, b.len) < 0)
		fail(errno, "cgroup", p, NULL);
	close(fd);
	free(p);
}

static void op_netns(struct op *o)
{
	int fd = open(o->a[0], O_RDONLY | O_CLOEXEC);
	if (fd < 0 || setns(fd, CLONE_NEWNET) < 0)
		fail(errno, "netns", o->a[0], NULL);
	close(fd);
}

/* Bring an interface of the current network namespace up (loopback after joining). */
static void op_link_up(struct op *o)
{
	struct ifreq ifr;
	size_t l = strlen(o->a[0]);
	if (!l || l >= IFNAMSIZ)
		fail(EINVAL, "link-up", o->a[0], NULL);
	int sk = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (sk < 0)
		fail(errno, "link-up: socket", NULL, NULL);
	memset(&ifr, 0, sizeof(ifr));
	memcpy(ifr.ifr_name, o->a[0], l);
	if (ioctl(sk, SIOCGIFFLAGS, &ifr) < 0)
		fail(errno, "link-up", o->a[0], NULL);
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(sk, SIOCSIFFLAGS, &ifr) < 0)
		fail(errno, "link-up", o->a[0], NULL);
	close(sk);
}

static void op_open_exec(struct op *o)
{
	if (exec_fd >= 0)
		close(exec_fd);
	const char *rel;
	int d = sub_path("open-exec", o->a[0], &rel);
	exec_fd = in_open(d, rel, O_RDONLY, 0);
	if (exec_fd < 0)
		fail(errno, "open-exec", o->a[0], NULL);
}

static void op_fork_pid1(struct op *o)
{
	(void)o;
	if (is_pid1)
		fail(EINVAL, "fork-pid1", NULL, ": already pid 1");
	int fl = CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWTIME;
	if (unshare(fl) < 0 && (errno != EINVAL || unshare(fl & ~CLONE_NEWTIME) < 0))
		fail(errno, "fork-pid1", NULL, ": unshare");
	int sync[2];
	if (pipe2(sync, O_CLOEXEC) < 0)
		fail(errno, "fork-pid1", NULL, ": pipe");
	pid_t pid = fork();
	if (pid < 0)
		fail(errno, "fork-pid1", NULL, ": fork");
	if (pid == 0) {
		/* P: go on only once C has reported our pid (else M could not find us) */
		char c;
		close(sync[1]);
		ssize_t r;
		while ((r = read(sync[0], &c, 1)) < 0 && errno == EINTR)
			;
		if (r != 1)
			_exit(1);
		close(sync[0]);
		is_pid1 = 1;
		return;
	}
	close(sync[0]);
	char l[32];
	struct buf b = BUF_INIT(l);
	b_str(&b, "pid1 ");
	b_num(&b, pid);
	st_line(&b);
	write_all(sync[1], "", 1);
	_exit(0);
}

static void op_pivot(struct op *o)
{
	const char *dir = o->a[0], *rel;
	struct stat a, b;
	/* dir is the root itself (LIVE, a configuration path) or a host path, never below the root */
	if (sub_path("pivot", dir, &rel) != AT_FDCWD && strcmp(rel, "."))
		fail(EINVAL, "pivot", dir, ": below the root");
	size_t l = strlen(dir);
	char *up = malloc(l + 4);
	if (!up)
		fail(ENOMEM, "pivot", dir, NULL);
	memcpy(up, dir, l);
	memcpy(up + l, "/..", 4);
	if (stat(dir, &a) < 0)
		fail(errno, "pivot", dir, NULL);
	if (stat(up, &b) < 0)
		fail(errno, "pivot", up, NULL);
	free(up);
	if (a.st_dev == b.st_dev && a.st_ino != b.st_ino &&
	    mount(dir, dir, NULL, MS_BIND | MS_REC, NULL) < 0)
		fail(errno, "pivot: bind", dir, " on itself");
	if (chdir(dir) < 0)
		fail(errno, "pivot: chdir", dir, NULL);
	if (syscall(SYS_pivot_root, ".", ".") < 0)
		fail(errno, "pivot_root", dir, NULL);
	if (umount2(".", MNT_DETACH) < 0)
		fail(errno, "pivot: detach the old root", NULL, NULL);
	if (chdir("/") < 0)
		fail(errno, "pivot: chdir", "/", NULL);
	/* from here on every path is the subhost's own */
	if (root_set(&root, "/") < 0)
		fail(errno, "pivot: open", "/", NULL);
}

static void op_exec(struct op *o)
{
	if (!is_pid1)
		fail(EINVAL, "exec before fork-pid1", NULL, NULL);
	sigset_t none;
	sigemptyset(&none);
	if (!getenv("OVB_STATUS_FD"))
		setenv("OVB_STATUS_FD", "3", 1);
	fcntl(3, F_SETFD, 0);
	sigprocmask(SIG_SETMASK, &none, NULL);
	if (exec_fd >= 0)
		syscall(SYS_execveat, exec_fd, "", o->a, environ, AT_EMPTY_PATH);
	else
		execv(o->a[0], o->a);
	int e = errno;
	fcntl(3, F_SETFD, FD_CLOEXEC);
	fail(e, "exec", o->a[0], NULL);
}

static void op_step(struct op *o)
{
	cur_step = o->a[0];
	char l[STATUS_LINE_MAX + 2];
	struct buf b = { l, 0, STATUS_LINE_MAX, 0 };
	b_str(&b, "step ");
	b_line(&b, cur_step);
	b_chr(&b, ' ');
	b_num(&b, mono_us());
	b.cap = sizeof(l);
	st_line(&b);
}

static void op_name(struct op *o)
{
	(void)o; /* read by M */
}

static void op_setenv(struct op *o)
{
	if (setenv(o->a[0], o->a[1], 1) < 0)
		fail(errno, "setenv", o->a[0], NULL);
}

static void op_root(struct op *o)
{
	if (root_set(&root, o->a[0]) < 0)
		fail(errno, "root", o->a[0], NULL);
}

static void op_hostname(struct op *o)
{
	if (!is_pid1)
		fail(EPERM, "hostname before fork-pid1 (it would rename the host)", NULL, NULL);
	if (sethostname(o->a[0], strlen(o->a[0])) < 0)
		fail(errno, "hostname", o->a[0], NULL);
}

/* fault injection: prove that the step's undo and the ones before it run */
static void op_fail(struct op *o)
{
	fail(0, o->a[0], NULL, NULL);
}

static void run_boot(struct prog *p)
{
	for (int i = 0; i < p->n; i++) {
		cur_op = i;
		p->ops[i].def->boot(&p->ops[i]);
	}
	fail(EINVAL, is_pid1 ? "program ended without exec" : "program ended without fork-pid1", NULL, NULL);
}

/* C: the mount child. Never returns. */
static void __attribute__((noreturn)) child_main(struct prog *boot, const int logp[2], const int stp[2], int msfd)
{
	sigset_t chld;
	int logw = logp[1], stw = stp[1];
	close(msfd);
	close(logp[0]);
	close(stp[0]);
	dup2(logw, 1);
	dup2(logw, 2);
	dup2(stw, 3);
	fcntl(3, F_SETFD, FD_CLOEXEC); /* cleared by exec only */
	close(logw);
	close(stw);
	close(4);
	signal(SIGPIPE, SIG_DFL);
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	sigprocmask(SIG_SETMASK, &chld, NULL);
	csfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
	if (csfd < 0)
		fail(errno, "signalfd", NULL, NULL);
	umask(0);
	if (unshare(CLONE_NEWNS) < 0)
		fail(errno, "unshare", "mount namespace", NULL);
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		fail(errno, "mount --make-rprivate on", "/", NULL);
	run_boot(boot);
	_exit(1);
}

/* ------------------------------------------------------------------ M: teardown */

static int msfd = -1; /* M: signalfd (SIGCHLD, SIGTERM, SIGINT, SIGHUP) */
static void on_signal(const struct signalfd_siginfo *si);
static void reap_all(void);

static pid_t run_pid;
static int run_status, run_done;

static void drain_signals(void)
{
	struct signalfd_siginfo si;
	while (read(msfd, &si, sizeof(si)) == (ssize_t)sizeof(si))
		on_signal(&si);
}

static int td_run(struct op *o)
{
	unsigned long long ms;
	const char *text = o->a[1];
	char **argv = o->a + 2;
	if (parse_num(o->a[0], 10, &ms)) {
		logf_(50, "teardown: run ", argv[0], ": bad timeout", 0);
		return 0;
	}
	int in[2], out[2];
	if (pipe2(in, O_CLOEXEC) < 0)
		goto err;
	if (pipe2(out, O_CLOEXEC) < 0) {
		close(in[0]);
		close(in[1]);
		goto err;
	}
	pid_t pid = fork();
	if (pid < 0) {
		close(in[0]);
		close(in[1]);
		close(out[0]);
		close(out[1]);
		goto err;
	}
	if (pid == 0) {
		sigset_t none;
		sigemptyset(&none);
		setpgid(0, 0);
		dup2(in[0], 0);
		dup2(out[1], 1);
		dup2(out[1], 2);
		signal(SIGPIPE, SIG_DFL);
		sigprocmask(SIG_SETMASK, &none, NULL);
		execvp(argv[0], argv);
		char m[512];
		struct buf b = BUF_INIT(m);
		b_str(&b, "run ");
		b_line(&b, argv[0]);
		b_str(&b, ": ");
		b_str(&b, strerror(errno));
		b_chr(&b, '\n');
		write_all(2, b.p, b.len);
		_exit(127);
	}
	setpgid(pid, pid);
	close(in[0]);
	close(out[1]);
	fcntl(in[1], F_SETFL, O_NONBLOCK);
	fcntl(out[0], F_SETFL, O_NONBLOCK);
	size_t tlen = strlen(text), toff = 0;
	int inw = in[1], outr = out[0];
	if (!tlen) {
		close(inw);
		inw = -1;
	}
	struct lines l = { .len = 0, .max = LOG_LINE_MAX, .emit = emit_log, .ctx = "teardown" };
	run_pid = pid;
	run_done = 0;
	long long deadline = mono_ms() + (long long)ms;
	int timed_out = 0;
	while (!run_done) {
		struct pollfd pf[3] = { { msfd, POLLIN, 0 }, { outr, POLLIN, 0 }, { inw, POLLOUT, 0 } };
		long long left = deadline - mono_ms();
		if (left <= 0) {
			if (timed_out)
				break; /* the SIGKILLed child did not go: give up waiting */
			timed_out = 1;
			kill(-pid, SIGKILL);
			kill(pid, SIGKILL);
			deadline = mono_ms() + KILL_WAIT_MS;
			continue;
		}
		if (poll(pf, 3, (int)(left > 1000000000 ? 1000000000 : left)) < 0 && errno != EINTR)
			break;
		if (pf[0].revents)
			drain_signals();
		if (pf[1].revents && !pump(outr, &l)) {
			close(outr);
			outr = -1;
		}
		if (pf[2].revents) {
			ssize_t w = write(inw, text + toff, tlen - toff);
			if (w > 0)
				toff += (size_t)w;
			if ((w < 0 && errno != EAGAIN && errno != EINTR) || toff == tlen) {
				close(inw);
				inw = -1;
			}
		}
	}
	run_pid = 0;
	if (inw >= 0)
		close(inw);
	if (outr >= 0) {
		pump(outr, &l); /* what is already there; a daemonized grandchild may keep it open */
		lines_flush(&l);
		close(outr);
	}
	if (timed_out) {
		char m[64];
		struct buf b = BUF_INIT(m);
		b_str(&b, " timed out after ");
		b_num(&b, (long long)ms);
		b_str(&b, " ms");
		logf_(50, "teardown: run ", argv[0], b.p, 0);
		return 0;
	}
	if (!run_done || !WIFEXITED(run_status) || WEXITSTATUS(run_status)) {
		char m[64];
		struct buf b = BUF_INIT(m);
		if (run_done && WIFEXITED(run_status)) {
			b_str(&b, " exited with status ");
			b_num(&b, WEXITSTATUS(run_status));
		} else if (run_done) {
			b_str(&b, " killed by signal ");
			b_num(&b, WTERMSIG(run_status));
		} else {
			b_str(&b, " failed");
		}
		logf_(50, "teardown: run ", argv[0], b.p, 0);
		return 0;
	}
	return 1;
err:
	logf_(50, "teardown: run ", argv[0], NULL, errno);
	return 0;
}

/*
 * Delete a network interface of this network namespace by name, with one
 * rtnetlink request (no `ip` process). Returns 0, or the errno (ENODEV when
 * there is no such interface, which teardown treats as done).
 */
static int del_link(const char *ifname)
{
	size_t len = strlen(ifname);
	if (!len || len >= IFNAMSIZ)
		return EINVAL;
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (fd < 0)
		return errno;
	struct {
		struct nlmsghdr nh;
		struct ifinfomsg ifi;
		char attrs[64];
	} req;
	memset(&req, 0, sizeof(req));
	struct rtattr *rta = (struct rtattr *)req.attrs;
	rta->rta_type = IFLA_IFNAME;
	rta->rta_len = RTA_LENGTH(len + 1);
	memcpy(RTA_DATA(rta), ifname, len + 1);
	req.nh.nlmsg_len = NLMSG_LENGTH(sizeof(struct ifinfomsg)) + RTA_ALIGN(rta->rta_len);
	req.nh.nlmsg_type = RTM_DELLINK;
	req.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	req.nh.nlmsg_seq = 1;
	req.ifi.ifi_family = AF_UNSPEC;
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	int err = 0;
	if (sendto(fd, &req, req.nh.nlmsg_len, 0, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		err = errno;
	} else {
		char buf[512];
		struct pollfd pf = { fd, POLLIN, 0 };
		/* bounded: the kernel answers at once; 5 s covers a very busy host */
		if (poll(&pf, 1, 5000) <= 0) {
			err = ETIMEDOUT;
		} else {
			ssize_t n = recv(fd, buf, sizeof(buf), 0);
			struct nlmsghdr *h = (struct nlmsghdr *)buf;
			/* only a whole NLMSG_ERROR (the ack, error 0 included) answers the request */
			if (n < 0)
				err = errno;
			else if ((size_t)n < NLMSG_LENGTH(sizeof(struct nlmsgerr)) || h->nlmsg_type != NLMSG_ERROR ||
				 h->nlmsg_len > (size_t)n || h->nlmsg_seq != req.nh.nlmsg_seq)
				err = EPROTO;
			else
				err = -((struct nlmsgerr *)NLMSG_DATA(h))->error;
		}
	}
	close(fd);
	return err;
}

static int td_rmdir(struct op *o)
{
	unsigned long long ms;
	if (parse_num(o->a[1], 10, &ms)) {
		logf_(50, "teardown: rmdir ", o->a[0], ": bad timeout", 0);
		return 0;
	}
	long long deadline = mono_ms() + (long long)ms;
	/* A cgroup empties a moment after its last task is reaped: retry soon, then less often. */
	int wait_ms = 1;
	for (;;) {
		if (rmdir(o->a[0]) == 0 || errno == ENOENT)
			return 1;
		if (errno != EBUSY || mono_ms() >= deadline)
			break;
		poll(NULL, 0, wait_ms);
		if (wait_ms < 20)
			wait_ms *= 2;
	}
	logf_(50, "teardown: rmdir ", o->a[0], NULL, errno);
	return 0;
}

static int td_name(struct op *o)
{
	set_name(o->a[0]);
	return 1;
}

static int td_setenv(struct op *o)
{
	if (setenv(o->a[0], o->a[1], 1) == 0)
		return 1;
	logf_(50, "teardown: setenv ", o->a[0], NULL, errno);
	return 0;
}

static int td_log(struct op *o)
{
	json_log(30, "ovb-launch", o->a[0], strlen(o->a[0]));
	return 1;
}

static int td_del_netns(struct op *o)
{
	const char *nn = o->a[0];
	if (!*nn || strchr(nn, '/') || !strcmp(nn, ".") || !strcmp(nn, "..")) {
		logf_(50, "teardown: del-netns: bad name ", nn, NULL, 0);
		return 0;
	}
	char p[512];
	struct buf b = BUF_INIT(p);
	b_str(&b, "/run/netns/");
	b_str(&b, nn);
	if (b.over) { /* a cut name could name another namespace */
		logf_(50, "teardown: del-netns: name too long ", nn, NULL, 0);
		return 0;
	}
	int ok = 1;
	if (umount2(p, MNT_DETACH) < 0 && errno != EINVAL && errno != ENOENT) {
		logf_(50, "teardown: del-netns: umount ", p, NULL, errno);
		ok = 0;
	}
	if (unlink(p) < 0 && errno != ENOENT) {
		logf_(50, "teardown: del-netns: unlink ", p, NULL, errno);
		ok = 0;
	}
	return ok;
}

static int td_unlink(struct op *o)
{
	if (unlink(o->a[0]) == 0 || errno == ENOENT)
		return 1;
	logf_(50, "teardown: unlink ", o->a[0], NULL, errno);
	return 0;
}

static int td_umount(struct op *o)
{
	if (umount2(o->a[0], MNT_DETACH) == 0 || errno == EINVAL || errno == ENOENT)
		return 1;
	logf_(50, "teardown: umount ", o->a[0], NULL, errno);
	return 0;
}

static int td_del_link(struct op *o)
{
	int r = del_link(o->a[0]);
	if (r == 0 || r == ENODEV)
		return 1;
	logf_(50, "teardown: del-link ", o->a[0], NULL, r);
	return 0;
}

static int run_teardown(struct prog *t)
{
	int ok = 1;
	for (int i = 0; i < t->n; i++)
		ok &= t->ops[i].def->teardown(&t->ops[i]);
	return ok;
}

/* `ovb-launch --list-ops`: the table, one op a line: NAME FIXED variadic|fixed boot|teardown|boot,teardown */
static int list_ops(void)
{
	char l[128];
	for (size_t i = 0; i < sizeof(opdefs) / sizeof(opdefs[0]); i++) {
		const struct opdef *d = &opdefs[i];
		struct buf b = BUF_INIT(l);
		b_str(&b, d->name);
		b_chr(&b, ' ');
		b_num(&b, d->fixed);
		b_str(&b, d->variadic ? " variadic " : " fixed ");
		b_str(&b, d->where == (IN_BOOT | IN_TEARDOWN) ? "boot,teardown\n" : d->where == IN_BOOT ? "boot\n" : "teardown\n");
		write_all(1, b.p, b.len);
	}
	return 0;
}

/* ------------------------------------------------------------------ M: the monitor */

static pid_t c_pid, p_pid, hook_pg;
static int c_done, c_status, p_done, p_status;
static int ready_seen, ready_ok, fail_seen, detached, committed, aborted;
static int created[16], n_created; /* indexes of write-if-missing ops that created their file */
static const char *abort_why;
static char m_step[128] = "boot";
static int str = -1; /* M: read end of the internal status pipe */
static struct lines st_lines;

static void on_status_line(const char *s, size_t n, const void *ctx)
{
	(void)ctx;
	char l[STATUS_LINE_MAX + 2];
	if (n > STATUS_LINE_MAX)
		n = STATUS_LINE_MAX;
	memcpy(l, s, n);
	l[n] = 0;
	if (!strncmp(l, "step ", 5)) {
		const char *e = strchr(l + 5, ' ');
		size_t k = e ? (size_t)(e - (l + 5)) : strlen(l + 5);
		if (k >= sizeof(m_step))
			k = sizeof(m_step) - 1;
		memcpy(m_step, l + 5, k);
		m_step[k] = 0;
	} else if (!strncmp(l, "pid1 ", 5)) {
		unsigned long long v;
		if (parse_num(l + 5, 10, &v) == 0)
			p_pid = (pid_t)v;
		if (aborted && p_pid > 0)
			kill(p_pid, SIGKILL);
	} else if (!strncmp(l, "fail ", 5)) {
		fail_seen = 1;
		json_log(50, "ovb-launch", l, n);
	} else if (!strncmp(l, "hookpg ", 7)) {
		unsigned long long v;
		if (parse_num(l + 7, 10, &v) == 0)
			hook_pg = (pid_t)v;
		return; /* internal */
	} else if (!strncmp(l, "created ", 8)) {
		unsigned long long v;
		if (parse_num(l + 8, 10, &v) == 0 && n_created < (int)(sizeof(created) / sizeof(created[0])))
			created[n_created++] = (int)v;
		return; /* internal */
	} else if (!strncmp(l, "ready ", 6)) {
		ready_seen = 1;
		ready_ok = !strcmp(l, "ready 0");
		json_log(30, "ovb-launch", l, n);
	}
	l[n] = '\n';
	status_write(l, n + 1);
}

static void drain_status(void)
{
	if (str >= 0 && !pump(str, &st_lines)) {
		close(str);
		str = -1;
	}
}

static void m_fail(int err, const char *msg)
{
	char l[STATUS_LINE_MAX];
	struct buf b = BUF_INIT(l);
	b_str(&b, "fail ");
	b_str(&b, m_step);
	b_chr(&b, ' ');
	b_num(&b, err);
	b_chr(&b, ' ');
	b_str(&b, msg);
	on_status_line(b.p, b.len, NULL);
}

static void do_abort(const char *why)
{
	if (aborted || p_done || (c_done && !p_pid))
		return;
	aborted = 1;
	abort_why = why;
	if (p_pid > 0)
		kill(p_pid, SIGKILL);
	else if (!c_done)
		kill(c_pid, SIGKILL);
	if (hook_pg > 0)
		kill(-hook_pg, SIGKILL);
}

static void reap_all(void)
{
	int st;
	pid_t r;
	while ((r = waitpid(-1, &st, WNOHANG)) > 0) {
		if (r != c_pid && r != p_pid && r != run_pid)
			drain_status(); /* P may be reaped before its pid1 line was read */
		if (r == c_pid) {
			c_done = 1;
			c_status = st;
			drain_status();
			if (aborted && p_pid > 0)
				kill(p_pid, SIGKILL);
		} else if (r == p_pid && p_pid > 0) {
			p_done = 1;
			p_status = st;
		} else if (r == run_pid && run_pid > 0) {
			run_done = 1;
			run_status = st;
		}
	}
}

static void on_signal(const struct signalfd_siginfo *si)
{
	if (si->ssi_signo == SIGCHLD) {
		reap_all();
		return;
	}
	/* SIGTERM, SIGINT, SIGHUP */
	if (p_done || (c_done && !p_pid))
		return;
	if (ready_seen && p_pid > 0)
		kill(p_pid, SIGTERM);
	else
		do_abort(si->ssi_signo == SIGTERM ? "SIGTERM" : si->ssi_signo == SIGINT ? "SIGINT" : "SIGHUP");
}

static int setup_signals(void)
{
	sigset_t s;
	sigemptyset(&s);
	sigaddset(&s, SIGCHLD);
	sigaddset(&s, SIGTERM);
	sigaddset(&s, SIGINT);
	sigaddset(&s, SIGHUP);
	sigprocmask(SIG_BLOCK, &s, NULL);
	signal(SIGPIPE, SIG_IGN);
	msfd = signalfd(-1, &s, SFD_CLOEXEC | SFD_NONBLOCK);
	return msfd;
}

static void reopen_stdin(void)
{
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (fd > 0) {
		dup2(fd, 0);
		close(fd);
	}
}

static void blocking(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	if (fl >= 0 && (fl & O_NONBLOCK))
		fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
}

/*
 * A boot that did not succeed removes the files its write-if-missing ops created,
 * resolved inside the root they were written in (the subhost's init script may
 * have run and replaced their directory with a link by now).
 */
static void remove_created(const struct prog *boot)
{
	for (int k = 0; k < n_created; k++) {
		int i = created[k];
		if (i < 0 || i >= boot->n || strcmp(boot->ops[i].name, "write-if-missing"))
			continue;
		struct root r = { .path = "", .len = 0, .fd = -1 };
		for (int j = 0; j < i; j++)
			if (!strcmp(boot->ops[j].name, "root") && root_set(&r, boot->ops[j].a[0]) < 0)
				logf_(50, "teardown: root ", boot->ops[j].a[0], NULL, errno);
		const char *path = boot->ops[i].a[0], *rel;
		char leaf[256];
		int d = root_rel(&r, path, &rel), pd = d == -1 ? -1 : in_parent(d, rel, leaf, sizeof(leaf));
		if (pd < 0 || (unlinkat(pd, leaf, 0) < 0 && errno != ENOENT))
			logf_(50, "teardown: unlink ", path, NULL, errno);
		if (pd >= 0)
			close(pd);
		if (r.fd >= 0)
			close(r.fd);
	}
}

static int boot_main(void)
{
	struct prog boot = { 0 }, td = { 0 };
	char e[512];
	struct buf err = BUF_INIT(e);
	mpid = getpid();
	status_fd = fcntl(3, F_SETFD, FD_CLOEXEC) == 0 ? 3 : -1;
	blocking(0);
	blocking(3); /* the library's pipes may come non-blocking (libuv) */
	int ctl = fcntl(4, F_SETFD, FD_CLOEXEC) == 0 ? 4 : -1;
	int rd = read_program(0);
	reopen_stdin();
	if (rd < 0) {
		b_str(&err, "reading the program: ");
		b_str(&err, strerror(errno));
	} else {
		int r = decode(&boot, IN_BOOT, &err);
		if (r == 0 && !err.len)
			b_str(&err, "no teardown op in boot program");
		else if (r == 1 && decode(&td, IN_TEARDOWN, &err) == 0)
			err.len = 0;
	}
	for (int i = 0; i < boot.n; i++)
		if (!strcmp(boot.ops[i].name, "name")) {
			set_name(boot.ops[i].a[0]);
			break;
		}
	if (err.len) {
		strcpy(m_step, "decode");
		m_fail(EINVAL, err.p);
		return 2;
	}
	if (setup_signals() < 0) {
		m_fail(errno, "signalfd failed");
		return 2;
	}
	prctl(PR_SET_CHILD_SUBREAPER, 1);

	int logp[2] = { -1, -1 }, stp[2] = { -1, -1 };
	if (pipe2(logp, O_CLOEXEC) < 0 || pipe2(stp, O_CLOEXEC) < 0) {
		m_fail(errno, "pipe failed");
		c_done = 1;
	} else {
		c_pid = fork();
		if (c_pid == 0)
			child_main(&boot, logp, stp, msfd);
		if (c_pid < 0) {
			m_fail(errno, "fork failed");
			c_done = 1;
		}
		close(logp[1]);
		close(stp[1]);
	}
	int logr = logp[0];
	str = stp[0];
	if (logr >= 0)
		fcntl(logr, F_SETFL, O_NONBLOCK);
	if (str >= 0)
		fcntl(str, F_SETFL, O_NONBLOCK);
	struct lines ll = { .len = 0, .max = LOG_LINE_MAX, .emit = emit_log, .ctx = "subhost" };
	st_lines = (struct lines){ .len = 0, .max = STATUS_LINE_MAX, .emit = on_status_line, .ctx = NULL };
	char cbuf[64];
	size_t clen = 0;

	while (!p_done && !(c_done && !p_pid)) {
		struct pollfd pf[4] = {
			{ msfd, POLLIN, 0 },
			{ logr, POLLIN, 0 },
			{ str, POLLIN, 0 },
			{ ctl, POLLIN, 0 },
		};
		if (poll(pf, 4, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (pf[2].revents)
			drain_status();
		if (pf[1].revents && !pump(logr, &ll)) {
			close(logr);
			logr = -1;
		}
		if (pf[3].revents) {
			ssize_t r = read(ctl, cbuf + clen, sizeof(cbuf) - 1 - clen);
			if (r > 0) {
				clen += (size_t)r;
				cbuf[clen] = 0;
				if (strstr(cbuf, "detach\n")) {
					detached = 1;
					close(ctl);
					ctl = -1;
					if (status_fd >= 0)
						close(status_fd);
					status_fd = -1;
				} else if (strstr(cbuf, "commit\n")) {
					/* committed, but the caller keeps reading status lines (tests, --foreground) */
					committed = 1;
					clen = 0;
				} else if (clen == sizeof(cbuf) - 1) {
					clen = 0;
				}
			} else if (r == 0 || (errno != EINTR && errno != EAGAIN)) {
				close(ctl);
				ctl = -1;
				/*
				 * The boot is committed only by `detach`: the library writes the
				 * state record between `ready` and `detach`, so a library that
				 * died before detaching may have left no record of this subhost.
				 * Undo it rather than leave a subhost nobody can find.
				 */
				if (!committed)
					do_abort(ready_seen ? "the library went away before detach" : "the control pipe was closed before ready");
			}
		}
		if (pf[0].revents)
			drain_signals();
	}

	/*
	 * While attached, the library may still be writing the state record (pids,
	 * phase): tearing down now could let it write a record after we removed it.
	 * It closes the control pipe as soon as it reads `fail`, `exit` or `ready`;
	 * wait (bounded) for that.
	 */
	if (ctl >= 0 && !detached) {
		struct pollfd pc = { ctl, POLLIN, 0 };
		for (int i = 0; i < 100 && ctl >= 0; i++) {
			if (poll(&pc, 1, 100) <= 0)
				continue;
			ssize_t r = read(ctl, cbuf, sizeof(cbuf));
			if (r <= 0 || memmem(cbuf, (size_t)r, "detach", 6)) {
				close(ctl);
				ctl = -1;
			}
		}
	}

	/* P (or C) has ended: collect what is left in the pipes, then tear down */
	drain_status();
	if (logr >= 0) {
		pump(logr, &ll);
		lines_flush(&ll);
		close(logr);
	}
	if (aborted && !fail_seen) {
		char m[128];
		struct buf b = BUF_INIT(m);
		b_str(&b, "boot aborted: ");
		b_str(&b, abort_why);
		m_fail(ECANCELED, m);
	}
	int code = 1;
	if (p_done) {
		code = WIFEXITED(p_status) ? WEXITSTATUS(p_status) : 128 + WTERMSIG(p_status);
		char l[32];
		struct buf b = BUF_INIT(l);
		b_str(&b, "exit ");
		b_num(&b, code);
		logf_(code ? 50 : 30, "pid 1 ended with status ", b.p + 5, NULL, 0);
		b_chr(&b, '\n');
		status_write(b.p, b.len);
	} else if (!fail_seen) {
		char m[96];
		struct buf b = BUF_INIT(m);
		if (c_pid > 0 && WIFSIGNALED(c_status)) {
			b_str(&b, "mount child killed by signal ");
			b_num(&b, WTERMSIG(c_status));
		} else if (c_pid > 0) {
			b_str(&b, "mount child exited with status ");
			b_num(&b, WEXITSTATUS(c_status));
		} else {
			b_str(&b, "no mount child");
		}
		m_fail(0, m);
	}
	if (!(ready_ok && (committed || detached)))
		remove_created(&boot);
	int ok = run_teardown(&td);
	status_write(ok ? "torn ok\n" : "torn fail\n", ok ? 8 : 10);
	if (str >= 0)
		close(str);
	if (status_fd >= 0)
		close(status_fd);
	return p_done && code == 0 && ok && !aborted && !fail_seen ? 0 : 1;
}

static int teardown_main(void)
{
	struct prog td = { 0 };
	char e[512];
	struct buf err = BUF_INIT(e);
	mpid = getpid();
	blocking(0);
	if (read_program(0) < 0) {
		b_str(&err, "reading the program: ");
		b_str(&err, strerror(errno));
	} else if (decode(&td, IN_TEARDOWN, &err) != 0 && !err.len) {
		b_str(&err, "bad teardown program");
	}
	reopen_stdin();
	if (err.len) {
		logf_(50, "teardown program refused: ", err.p, NULL, 0);
		return 2;
	}
	if (setup_signals() < 0)
		return 2;
	return run_teardown(&td) ? 0 : 1;
}

/* Pins PID (a subhost's pid 1, as the host sees it) by pidfd and start time, or fails. */
static int pin_arg(const char *pid_s, const char *start_s)
{
	unsigned long long pid, start;
	if (parse_num(pid_s, 10, &pid) != 0 || pid < 2 || parse_num(start_s, 10, &start) != 0)
		fail(EINVAL, "bad pid or start time:", pid_s, NULL);
	int fd = pin_process((long long)pid, (long long)start);
	if (fd < 0) {
		char m[96];
		struct buf b = BUF_INIT(m);
		b_str(&b, "PROCESS_CHANGED: pid ");
		b_num(&b, (long long)pid);
		b_str(&b, " is not the process that started at ");
		b_num(&b, (long long)start);
		b_str(&b, " (it ended, and the pid may be another's now)");
		fail(0, m, NULL, NULL);
	}
	return fd;
}

/*
 * ovb-launch share PID START SRC DST / unshare PID START DST: (un)bind a host
 * path into the mount namespace of a running subhost. After pivot_root the
 * host's paths are not visible in there, so the host path is cloned into a
 * detached mount first (open_tree), then attached inside (move_mount) onto DST
 * resolved inside the subhost's root. Errors are `fail` lines on stderr.
 */
static int share_main(int argc, char **argv)
{
	int sharing = !strcmp(argv[1], "share");
	const char *src = sharing ? argv[4] : NULL, *dst = argv[sharing ? 5 : 4];
	dup2(2, 3);
	cur_step = argv[1];
	(void)argc;
	if (dst[0] != '/')
		fail(EINVAL, "the subhost path must be absolute:", dst, NULL);
	int pfd = pin_arg(argv[2], argv[3]);
	int tree = -1;
	struct stat sb;
	if (sharing) {
		if (stat(src, &sb) < 0)
			fail(errno, "share", src, NULL);
		tree = (int)syscall(SYS_open_tree, AT_FDCWD, src, OVB_OPEN_TREE_CLONE | O_CLOEXEC | AT_RECURSIVE);
		if (tree < 0)
			fail(errno, "open_tree", src, NULL);
	}
	if (setns(pfd, CLONE_NEWNS) < 0)
		fail(errno, "setns", argv[2], NULL);
	close(pfd);
	if (chdir("/") < 0 || root_set(&root, "/") < 0)
		fail(errno, "chdir", "/", NULL);
	if (!sharing) {
		/* the last component alone, on its parent resolved inside, never followed */
		char leaf[256];
		int pd = parent_of("unshare", dst, leaf, sizeof(leaf));
		if (fchdir(pd) < 0 || umount2(leaf, MNT_DETACH | OVB_UMOUNT_NOFOLLOW) < 0)
			fail(errno, "umount", dst, NULL);
		return 0;
	}
	int tfd = bind_target("share", &sb, dst, 1);
	if (tfd < 0)
		fail(errno, "share", dst, NULL);
	if (syscall(SYS_move_mount, tree, "", tfd, "", OVB_MOVE_MOUNT_F_EMPTY_PATH | OVB_MOVE_MOUNT_T_EMPTY_PATH) < 0)
		fail(errno, "move_mount onto", dst, NULL);
	return 0;
}

/*
 * ovb-launch kill PID START SIGNAL: overlay-stop's signal to pid 1 or the monitor,
 * sent through a pidfd opened before the start time was checked, so a pid reused
 * since the state record was written is never signalled (exit 1, PROCESS_CHANGED).
 */
static int kill_main(char **argv)
{
	unsigned long long sig;
	dup2(2, 3);
	cur_step = "kill";
	if (parse_num(argv[4], 10, &sig) != 0 || sig < 1 || sig > 64)
		fail(EINVAL, "kill: bad signal", argv[4], NULL);
	int pfd = pin_arg(argv[2], argv[3]);
	if (ovb_pidfd_kill(pfd, (int)sig) < 0)
		fail(errno, "kill", argv[2], NULL);
	return 0;
}

/*
 * ovb-launch enter PID START [--] CMD...: overlay-go. Joins every namespace of
 * the pinned pid 1 through its pidfd (one setns), its root and working
 * directory "/", forks so that CMD is in the subhost's pid namespace, and exits
 * with CMD's status (or dies of its signal).
 */
static int enter_main(int argc, char **argv)
{
	/* fd 3: our `fail` line for the library (stderr when it gave none); never the command's */
	if (fcntl(3, F_GETFD) < 0)
		dup2(2, 3);
	fcntl(3, F_SETFD, FD_CLOEXEC);
	cur_step = "enter";
	int i = 4;
	if (i < argc && !strcmp(argv[i], "--"))
		i++;
	int pfd = pin_arg(argv[2], argv[3]);
	int ns = CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNET | CLONE_NEWPID | CLONE_NEWCGROUP | CLONE_NEWTIME;
	if (setns(pfd, ns) < 0 && (errno != EINVAL || setns(pfd, ns & ~CLONE_NEWTIME) < 0))
		fail(errno, "setns", argv[2], NULL);
	close(pfd);
	if (chdir("/") < 0)
		fail(errno, "chdir", "/", NULL);
	/* the terminal's ^C and ^\ are for CMD; we only wait for it */
	signal(SIGINT, SIG_IGN);
	signal(SIGQUIT, SIG_IGN);
	pid_t pid = fork();
	if (pid < 0)
		fail(errno, "enter: fork", NULL, NULL);
	if (pid == 0) {
		signal(SIGINT, SIG_DFL);
		signal(SIGQUIT, SIG_DFL);
		static char *shell[] = { "/bin/bash", NULL };
		if (i >= argc) /* the subhost's own shell */
			argv = shell, i = 0, shell[0] = access(shell[0], X_OK) == 0 ? "/bin/bash" : "/bin/sh";
		execvp(argv[i], argv + i);
		int e = errno;
		char m[512];
		struct buf b = BUF_INIT(m);
		b_str(&b, "overlay-go: ");
		b_line(&b, argv[i]);
		b_str(&b, ": ");
		b_str(&b, strerror(e));
		b_chr(&b, '\n');
		write_all(2, b.p, b.len);
		_exit(e == ENOENT ? 127 : 126);
	}
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return 1;
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	signal(WTERMSIG(st), SIG_DFL);
	kill(getpid(), WTERMSIG(st));
	return 128 + WTERMSIG(st);
}

int fast_stop_main(int argc, char **argv);

int main(int argc, char **argv)
{
	if (argc == 2 && !strcmp(argv[1], "--list-ops"))
		return list_ops();
	if (argc >= 2 && !strcmp(argv[1], "stop"))
		return fast_stop_main(argc, argv);
	if (argc == 6 && !strcmp(argv[1], "share"))
		return share_main(argc, argv);
	if (argc == 5 && !strcmp(argv[1], "unshare"))
		return share_main(argc, argv);
	if (argc == 5 && !strcmp(argv[1], "kill"))
		return kill_main(argv);
	if (argc >= 4 && !strcmp(argv[1], "enter"))
		return enter_main(argc, argv);
	if (argc == 2 && !strcmp(argv[1], "boot"))
		return boot_main();
	if (argc == 2 && !strcmp(argv[1], "teardown"))
		return teardown_main();
	static const char u[] = "usage: ovb-launch boot|teardown|share PID START SRC DST|unshare PID START DST|enter PID START -- CMD...|kill PID START SIG|stop [-q] [--timeout S] CONF  (see src/native/PROTOCOL.md)\n";
	write_all(2, u, sizeof(u) - 1);
	return 2;
}
