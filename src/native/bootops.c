/* The boot ops, run by C (the mount child) and P (pid 1): paths below the root resolved inside it. */
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

struct bootstate bs = {.step = "boot", .sigfd = -1, .exec_fd = -1, .root = {.fd = -1}};
/* ------------------------------------------------------------------ C and P: boot ops */


void st_line(struct buf *b)
{
	b_chr(b, '\n');
	write_all(3, b->p, b->len);
}

/* Reports a failure on fd 3 and ends C or P. */
void __attribute__((noreturn)) fail(int err, const char *what, const char *path, const char *more)
{
	char l[STATUS_LINE_MAX + 2];
	struct buf b = {l, 0, STATUS_LINE_MAX, 0};
	b_str(&b, "fail ");
	b_line(&b, bs.step);
	b_chr(&b, ' ');
	b_num(&b, err);
	b_chr(&b, ' ');
	b_line(&b, what);
	if (path) {
		b_chr(&b, ' ');
		b_line(&b, path);
	}
	if (more) b_line(&b, more);
	if (err) {
		b_str(&b, ": ");
		b_str(&b, strerror(err));
	}
	b.cap = sizeof(l);
	st_line(&b);
	_exit(1);
}

/* Waits for pid until deadline (ms, CLOCK_MONOTONIC). Returns 1 reaped, 0 timed out. */
int wait_child(pid_t pid, int *st, long long deadline)
{
	for (;;) {
		pid_t r = waitpid(pid, st, WNOHANG);
		if (r == pid) return 1;
		if (r < 0 && errno != EINTR) return 1; /* not our child any more: nothing to wait for */
		long long left = deadline - mono_ms();
		if (left <= 0) return 0;
		struct pollfd pf = {bs.sigfd, POLLIN, 0};
		if (poll(&pf, 1, left > 1000000000 ? 1000000000 : (int)left) > 0) {
			struct signalfd_siginfo si;
			while (read(bs.sigfd, &si, sizeof(si)) > 0)
				;
		}
	}
}

/* Tells M the process group of the running hook (M kills it when the boot is aborted);
 * M keeps these lines to itself. */
void hook_pgrp(pid_t pg)
{
	char l[32];
	struct buf b = BUF_INIT(l);
	b_str(&b, "hookpg ");
	b_num(&b, pg);
	st_line(&b);
}

void op_hook(struct op *o)
{
	unsigned long long ms;
	if (parse_num(o->a[0], 10, &ms)) fail(EINVAL, "hook", NULL, ": bad timeout");
	pid_t pid = fork();
	if (pid < 0) fail(errno, "hook", NULL, ": fork");
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
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0) return;
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
int sub_path(const char *what, const char *path, const char **rel)
{
	int d = root_rel(&bs.root, path, rel);
	if (d == -1) fail(errno, what, path, NULL);
	return d;
}

/* mkdir -p inside the root (created directories 0755); returns an O_PATH fd of it. */
int mkdir_p(const char *what, const char *path)
{
	const char *rel;
	int d = sub_path(what, path, &rel);
	int fd = in_mkdir_p(d, rel);
	if (fd < 0) fail(errno, what, path, NULL);
	return fd;
}

void op_mkdir(struct op *o)
{
	unsigned long long mode;
	if (parse_num(o->a[1], 8, &mode) || mode > 07777) fail(EINVAL, "mkdir", o->a[0], ": bad mode");
	int fd = mkdir_p("mkdir", o->a[0]);
	/* fchmod needs a real descriptor; "." of the resolved directory follows nothing */
	int w = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (w < 0 || fchmod(w, (mode_t)mode) < 0) fail(errno, "chmod", o->a[0], NULL);
	close(w);
	close(fd);
}

void __attribute__((noreturn)) fail_mount(int e, const char *what, const char *src, const char *tgt)
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
void mount_in_root(struct op *o, const char *rel, unsigned long fl, unsigned long prop)
{
	const char *src = o->a[0], *tgt = o->a[1], *fs = o->a[2], *data = o->a[4];
	unsigned attrs = (fl & MS_RDONLY ? OVB_MOUNT_ATTR_RDONLY : 0) | (fl & MS_NOSUID ? OVB_MOUNT_ATTR_NOSUID : 0) |
			 (fl & MS_NODEV ? OVB_MOUNT_ATTR_NODEV : 0) | (fl & MS_NOEXEC ? OVB_MOUNT_ATTR_NOEXEC : 0);
	int rec = !!(fl & MS_REC);
	int tfd = in_open(bs.root.fd, rel, O_PATH, 0);
	if (tfd < 0) fail(errno, "mount", tgt, NULL);
	if (*fs) {
		if (mount_fs_at(tfd, fs, src, data, attrs) < 0) fail_mount(errno, "mount", fs, tgt);
	} else if (fl & MS_BIND) {
		const char *srel;
		int sd = sub_path("mount", src, &srel);
		int sfd = in_open(sd, srel, O_PATH, 0);
		if (sfd < 0) fail(errno, "mount", src, NULL);
		if (bind_at(sfd, "", tfd, rec, attrs) < 0) fail_mount(errno, "mount", src, tgt);
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

/* mount-overlay target upper work lower...: the overlay root, one lower layer an argument. */
void op_mount_overlay(struct op *o)
{
	const char *tgt = o->a[0], *rel;
	int d = sub_path("mount", tgt, &rel);
	int tfd = in_open(d, rel, O_PATH | O_DIRECTORY, 0);
	if (tfd < 0) fail(errno, "mount", tgt, NULL);
	if (mount_overlay_at(tfd, o->a[1], o->a[2], o->a + 3, o->n - 3) < 0) fail_mount(errno, "mount", "overlay", tgt);
	close(tfd);
}

void op_mount(struct op *o)
{
	const char *src = o->a[0], *tgt = o->a[1], *fs = o->a[2], *data = o->a[4];
	unsigned long fl = 0, prop = 0;
	static const struct {
		const char *n;
		unsigned long f, prop;
	} names[] = {
		{"bind", MS_BIND, 0},	      {"rec", MS_REC, 0},
		{"private", 0, MS_PRIVATE},   {"rprivate", MS_REC, MS_PRIVATE},
		{"slave", 0, MS_SLAVE},	      {"nosuid", MS_NOSUID, 0},
		{"nodev", MS_NODEV, 0},	      {"noexec", MS_NOEXEC, 0},
		{"ro", MS_RDONLY, 0},	      {"remount", MS_REMOUNT, 0},
		{"relatime", MS_RELATIME, 0},
	};
	const char *f = o->a[3];
	while (*f) {
		const char *e = strchr(f, ',');
		size_t n = e ? (size_t)(e - f) : strlen(f);
		size_t i;
		for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
			if (strlen(names[i].n) == n && !memcmp(names[i].n, f, n)) break;
		if (i == sizeof(names) / sizeof(names[0])) {
			if (n) fail(EINVAL, "mount", tgt, ": unknown flag in the flag list");
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
int parent_of(const char *what, const char *path, char *leaf, size_t cap)
{
	const char *rel;
	int d = sub_path(what, path, &rel);
	int fd = in_parent(d, rel, leaf, cap);
	if (fd < 0) fail(errno, what, path, NULL);
	return fd;
}

void op_mknod(struct op *o)
{
	unsigned long long maj, min, mode, uid, gid;
	const char *path = o->a[0];
	char leaf[256];
	mode_t type = !strcmp(o->a[1], "c") ? S_IFCHR : !strcmp(o->a[1], "b") ? S_IFBLK : 0;
	if (!type || parse_num(o->a[2], 10, &maj) || parse_num(o->a[3], 10, &min) || parse_num(o->a[4], 8, &mode) ||
	    mode > 07777 || parse_num(o->a[5], 10, &uid) || parse_num(o->a[6], 10, &gid))
		fail(EINVAL, "mknod", path, ": bad arguments");
	dev_t dev = makedev((unsigned)maj, (unsigned)min);
	int pd = parent_of("mknod", path, leaf, sizeof(leaf));
	if (mknodat(pd, leaf, type | (mode_t)mode, dev) < 0) {
		struct stat sb;
		if (errno != EEXIST || fstatat(pd, leaf, &sb, AT_SYMLINK_NOFOLLOW) < 0 ||
		    (sb.st_mode & S_IFMT) != type || sb.st_rdev != dev)
			fail(errno == EEXIST ? EEXIST : errno, "mknod", path, NULL);
	}
	/* leaf is that node (checked above, never a link): fchmodat cannot follow anything */
	if (fchmodat(pd, leaf, (mode_t)mode, 0) < 0) fail(errno, "chmod", path, NULL);
	if (fchownat(pd, leaf, (uid_t)uid, (gid_t)gid, AT_SYMLINK_NOFOLLOW) < 0) fail(errno, "chown", path, NULL);
	close(pd);
}

void op_symlink(struct op *o)
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
int create_file(const char *what, const char *dst, unsigned long long mode, int in, const char *buf)
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
			if (r < 0 && errno == EINTR) continue;
			if (r < 0 || (r > 0 && write_all(out, b, (size_t)r) < 0)) {
				bad = 1;
				break;
			}
			if (r == 0) break;
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

void op_copy(struct op *o)
{
	const char *src = o->a[0], *dst = o->a[1];
	unsigned long long mode;
	char leaf[256];
	struct stat sb;
	if (parse_num(o->a[2], 8, &mode) || mode > 07777) fail(EINVAL, "copy-if-missing", dst, ": bad mode");
	int pd = parent_of("copy-if-missing", dst, leaf, sizeof(leaf));
	int there = fstatat(pd, leaf, &sb, AT_SYMLINK_NOFOLLOW) == 0;
	close(pd);
	if (there) return;
	const char *srel;
	int sd = sub_path("copy-if-missing", src, &srel);
	int in = in_open(sd, srel, O_RDONLY, 0);
	if (in < 0) fail(errno, "copy-if-missing", src, NULL);
	create_file("copy-if-missing", dst, mode, in, NULL);
	close(in);
}

/* write-if-missing PATH MODE CONTENT: the built-in premount's /etc/network/interfaces in UPPER. */
void op_write(struct op *o)
{
	unsigned long long mode;
	if (parse_num(o->a[1], 8, &mode) || mode > 07777) fail(EINVAL, "write-if-missing", o->a[0], ": bad mode");
	char dir[4096];
	const char *rel;
	sub_path("write-if-missing", o->a[0], &rel);
	size_t l = strlen(o->a[0]);
	while (l > 1 && o->a[0][l - 1] != '/') l--;
	if (l >= sizeof(dir) || l < 2) fail(EINVAL, "write-if-missing", o->a[0], NULL);
	memcpy(dir, o->a[0], l - 1);
	dir[l - 1] = 0;
	close(mkdir_p("write-if-missing", dir));
	if (create_file("write-if-missing", o->a[0], mode, -1, o->a[2])) {
		/* M removes it again when the boot does not succeed */
		char m[32];
		struct buf b = BUF_INIT(m);
		b_str(&b, "created ");
		b_num(&b, bs.op);
		st_line(&b);
	}
}

/* Opens dst (inside the root) for a bind mount: created as src's kind when make is set. */
int bind_target(const char *what, const struct stat *src, const char *dst, int make)
{
	const char *rel;
	int d = sub_path(what, dst, &rel);
	if (make && S_ISDIR(src->st_mode))
		close(mkdir_p(what, dst));
	else if (make && in_touch(d, rel) < 0)
		fail(errno, what, dst, NULL);
	return in_open(d, rel, O_PATH, 0);
}

void op_bind_share(struct op *o)
{
	const char *src = o->a[0], *dst = o->a[1];
	struct stat sb;
	if (stat(src, &sb) < 0) fail(errno, "bind-share", src, NULL);
	int tfd = bind_target("bind-share", &sb, dst, 1);
	if (tfd < 0) fail(errno, "bind-share", dst, NULL);
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

void op_bind_optional(struct op *o)
{
	struct stat a;
	if (stat(o->a[0], &a) < 0) return;
	int tfd = bind_target("bind-optional", &a, o->a[1], 0);
	if (tfd < 0) return;
	(void)bind_at(AT_FDCWD, o->a[0], tfd, 0, 0);
	close(tfd);
}

void op_cgroup(struct op *o)
{
	size_t l = strlen(o->a[0]);
	char *p = malloc(l + 16);
	if (!p) fail(ENOMEM, "cgroup", o->a[0], NULL);
	memcpy(p, o->a[0], l);
	memcpy(p + l, "/cgroup.procs", 14);
	char n[24];
	struct buf b = BUF_INIT(n);
	b_num(&b, getpid());
	b_chr(&b, '\n');
	int fd = open(p, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write_all(fd, b.p, b.len) < 0) fail(errno, "cgroup", p, NULL);
	close(fd);
	free(p);
}

void op_netns(struct op *o)
{
	int fd = open(o->a[0], O_RDONLY | O_CLOEXEC);
	if (fd < 0 || setns(fd, CLONE_NEWNET) < 0) fail(errno, "netns", o->a[0], NULL);
	close(fd);
}

/* Bring an interface of the current network namespace up (loopback after joining). */
void op_link_up(struct op *o)
{
	struct ifreq ifr;
	size_t l = strlen(o->a[0]);
	if (!l || l >= IFNAMSIZ) fail(EINVAL, "link-up", o->a[0], NULL);
	int sk = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (sk < 0) fail(errno, "link-up: socket", NULL, NULL);
	memset(&ifr, 0, sizeof(ifr));
	memcpy(ifr.ifr_name, o->a[0], l);
	if (ioctl(sk, SIOCGIFFLAGS, &ifr) < 0) fail(errno, "link-up", o->a[0], NULL);
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(sk, SIOCSIFFLAGS, &ifr) < 0) fail(errno, "link-up", o->a[0], NULL);
	close(sk);
}

void op_open_exec(struct op *o)
{
	if (bs.exec_fd >= 0) close(bs.exec_fd);
	const char *rel;
	int d = sub_path("open-exec", o->a[0], &rel);
	bs.exec_fd = in_open(d, rel, O_RDONLY, 0);
	if (bs.exec_fd < 0) fail(errno, "open-exec", o->a[0], NULL);
}

void op_fork_pid1(struct op *o)
{
	(void)o;
	if (bs.is_pid1) fail(EINVAL, "fork-pid1", NULL, ": already pid 1");
	int fl = CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWTIME;
	if (unshare(fl) < 0 && (errno != EINVAL || unshare(fl & ~CLONE_NEWTIME) < 0))
		fail(errno, "fork-pid1", NULL, ": unshare");
	int sync[2];
	if (pipe2(sync, O_CLOEXEC) < 0) fail(errno, "fork-pid1", NULL, ": pipe");
	pid_t pid = fork();
	if (pid < 0) fail(errno, "fork-pid1", NULL, ": fork");
	if (pid == 0) {
		/* P: go on only once C has reported our pid (else M could not find us) */
		char c;
		close(sync[1]);
		ssize_t r;
		while ((r = read(sync[0], &c, 1)) < 0 && errno == EINTR)
			;
		if (r != 1) _exit(1);
		close(sync[0]);
		bs.is_pid1 = 1;
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

/* A recursive bind of the working directory on itself, and into it (by its descriptor, no path lookup). */
static void bind_cwd_on_itself(const char *dir)
{
	int m = (int)syscall(SYS_open_tree, AT_FDCWD, ".", OVB_OPEN_TREE_CLONE | O_CLOEXEC | AT_RECURSIVE);
	if (m < 0 || syscall(SYS_move_mount, m, "", AT_FDCWD, ".", OVB_MOVE_MOUNT_F_EMPTY_PATH) < 0 || fchdir(m) < 0)
		fail(errno, "pivot: bind", dir, " on itself");
	close(m);
}

void op_pivot(struct op *o)
{
	const char *dir = o->a[0], *rel;
	struct stat a, b;
	/* dir is the root itself (LIVE, a configuration path) or a host path, never below the root */
	int d = sub_path("pivot", dir, &rel);
	if (d != AT_FDCWD && strcmp(rel, ".")) fail(EINVAL, "pivot", dir, ": below the root");
	/* Into the root by its descriptor: in a user namespace, LIVE's parents on the host may be
	 * closed to the subhost's root (a DU's unit directory is root's, mode 0700). */
	if ((d != AT_FDCWD ? fchdir(d) : chdir(dir)) < 0) fail(errno, "pivot", dir, NULL);
	if (stat(".", &a) < 0 || stat("..", &b) < 0) fail(errno, "pivot", dir, NULL);
	if (a.st_dev == b.st_dev && a.st_ino != b.st_ino) bind_cwd_on_itself(dir);
	/* in a user namespace the root is a locked mount (PROTOCOL.md): pivot to a bind of it */
	if (syscall(SYS_pivot_root, ".", ".") < 0) {
		if (errno != EINVAL) fail(errno, "pivot_root", dir, NULL);
		bind_cwd_on_itself(dir);
		if (syscall(SYS_pivot_root, ".", ".") < 0) fail(errno, "pivot_root", dir, NULL);
	}
	if (umount2(".", MNT_DETACH) < 0) fail(errno, "pivot: detach the old root", NULL, NULL);
	if (chdir("/") < 0) fail(errno, "pivot: chdir", "/", NULL);
	/* from here on every path is the subhost's own */
	if (root_set(&bs.root, "/") < 0) fail(errno, "pivot: open", "/", NULL);
}

void op_exec(struct op *o)
{
	if (!bs.is_pid1) fail(EINVAL, "exec before fork-pid1", NULL, NULL);
	sigset_t none;
	sigemptyset(&none);
	if (!getenv("OVB_STATUS_FD")) setenv("OVB_STATUS_FD", "3", 1);
	fcntl(3, F_SETFD, 0);
	sigprocmask(SIG_SETMASK, &none, NULL);
	if (bs.exec_fd >= 0)
		syscall(SYS_execveat, bs.exec_fd, "", o->a, environ, AT_EMPTY_PATH);
	else
		execv(o->a[0], o->a);
	int e = errno;
	fcntl(3, F_SETFD, FD_CLOEXEC);
	fail(e, "exec", o->a[0], NULL);
}

void op_step(struct op *o)
{
	bs.step = o->a[0];
	char l[STATUS_LINE_MAX + 2];
	struct buf b = {l, 0, STATUS_LINE_MAX, 0};
	b_str(&b, "step ");
	b_line(&b, bs.step);
	b_chr(&b, ' ');
	b_num(&b, mono_us());
	b.cap = sizeof(l);
	st_line(&b);
}

void op_name(struct op *o)
{
	(void)o; /* read by M */
}

void op_setenv(struct op *o)
{
	if (setenv(o->a[0], o->a[1], 1) < 0) fail(errno, "setenv", o->a[0], NULL);
}

void op_root(struct op *o)
{
	if (root_set(&bs.root, o->a[0]) < 0) fail(errno, "root", o->a[0], NULL);
}

void op_hostname(struct op *o)
{
	if (!bs.is_pid1) fail(EPERM, "hostname before fork-pid1 (it would rename the host)", NULL, NULL);
	if (sethostname(o->a[0], strlen(o->a[0])) < 0) fail(errno, "hostname", o->a[0], NULL);
}

/* fault injection: prove that the step's undo and the ones before it run */
void op_fail(struct op *o)
{
	fail(0, o->a[0], NULL, NULL);
}

void run_boot(struct prog *p)
{
	for (int i = 0; i < p->n; i++) {
		bs.op = i;
		p->ops[i].def->boot(&p->ops[i]);
	}
	fail(EINVAL, bs.is_pid1 ? "program ended without exec" : "program ended without fork-pid1", NULL, NULL);
}

/* C: the mount child. Never returns. */
void __attribute__((noreturn)) child_main(struct prog *boot, const int logp[2], const int stp[2], int msfd)
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
	bs.sigfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
	if (bs.sigfd < 0) fail(errno, "signalfd", NULL, NULL);
	umask(0);
	if (unshare(CLONE_NEWNS) < 0) fail(errno, "unshare", "mount namespace", NULL);
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) fail(errno, "mount --make-rprivate on", "/", NULL);
	run_boot(boot);
	_exit(1);
}
