/* The teardown ops, run by M or `ovb-launch teardown`: idempotent, an error logged and the rest still run. */
#define _GNU_SOURCE
#include "ovb-launch.h"
#include "sys.h"

#include <dirent.h>
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
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef PR_SET_CHILD_SUBREAPER
#define PR_SET_CHILD_SUBREAPER 36
#endif


extern char **environ;

struct tdstate tds = {.sigfd = -1};
/* ------------------------------------------------------------------ M: teardown */


void drain_signals(void)
{
	struct signalfd_siginfo si;
	while (read(tds.sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) on_signal(&si);
}

int td_run(struct op *o)
{
	unsigned long long ms;
	const char *text = o->a[1];
	char **argv = o->a + 2;
	if (parse_num(o->a[0], 10, &ms)) {
		logf_(50, "teardown: run ", argv[0], ": bad timeout", 0);
		return 0;
	}
	int in[2], out[2];
	if (pipe2(in, O_CLOEXEC) < 0) goto err;
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
	struct lines l = {.len = 0, .max = LOG_LINE_MAX, .emit = emit_log, .ctx = "teardown"};
	tds.run_pid = pid;
	tds.run_done = 0;
	long long deadline = mono_ms() + (long long)ms;
	int timed_out = 0;
	while (!tds.run_done) {
		struct pollfd pf[3] = {{tds.sigfd, POLLIN, 0}, {outr, POLLIN, 0}, {inw, POLLOUT, 0}};
		long long left = deadline - mono_ms();
		if (left <= 0) {
			if (timed_out) break; /* the SIGKILLed child did not go: give up waiting */
			timed_out = 1;
			kill(-pid, SIGKILL);
			kill(pid, SIGKILL);
			deadline = mono_ms() + KILL_WAIT_MS;
			continue;
		}
		if (poll(pf, 3, (int)(left > 1000000000 ? 1000000000 : left)) < 0 && errno != EINTR) break;
		if (pf[0].revents) drain_signals();
		if (pf[1].revents && !pump(outr, &l)) {
			close(outr);
			outr = -1;
		}
		if (pf[2].revents) {
			ssize_t w = write(inw, text + toff, tlen - toff);
			if (w > 0) toff += (size_t)w;
			if ((w < 0 && errno != EAGAIN && errno != EINTR) || toff == tlen) {
				close(inw);
				inw = -1;
			}
		}
	}
	tds.run_pid = 0;
	if (inw >= 0) close(inw);
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
	if (!tds.run_done || !WIFEXITED(tds.run_status) || WEXITSTATUS(tds.run_status)) {
		char m[64];
		struct buf b = BUF_INIT(m);
		if (tds.run_done && WIFEXITED(tds.run_status)) {
			b_str(&b, " exited with status ");
			b_num(&b, WEXITSTATUS(tds.run_status));
		} else if (tds.run_done) {
			b_str(&b, " killed by signal ");
			b_num(&b, WTERMSIG(tds.run_status));
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
int del_link(const char *ifname)
{
	size_t len = strlen(ifname);
	if (!len || len >= IFNAMSIZ) return EINVAL;
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (fd < 0) return errno;
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
	struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
	int err = 0;
	if (sendto(fd, &req, req.nh.nlmsg_len, 0, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		err = errno;
	} else {
		char buf[512];
		struct pollfd pf = {fd, POLLIN, 0};
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

#define CGROUP1_MAGIC 0x27e0eb
#define CGROUP2_MAGIC 0x63677270

/*
 * Removes the child cgroups below dir, deepest first (a delegated cgroup may have made
 * some; rmdir of a cgroup with children is EBUSY). Only on a cgroup filesystem, whose
 * directories are cgroups and hold no links. Errors are left to the caller's retry.
 */
static void rm_child_cgroups(const char *dir, int depth)
{
	struct statfs sf;
	if (depth > 32 || statfs(dir, &sf) < 0 || (sf.f_type != CGROUP2_MAGIC && sf.f_type != CGROUP1_MAGIC)) return;
	DIR *d = opendir(dir);
	if (!d) return;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_type != DT_DIR || !strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
		char p[4096];
		struct buf b = BUF_INIT(p);
		b_str(&b, dir);
		b_chr(&b, '/');
		b_str(&b, e->d_name);
		if (b.over) continue;
		rm_child_cgroups(p, depth + 1);
		rmdir(p);
	}
	closedir(d);
}

int td_rmdir(struct op *o)
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
		if (rmdir(o->a[0]) == 0 || errno == ENOENT) return 1;
		if (errno != EBUSY || mono_ms() >= deadline) break;
		rm_child_cgroups(o->a[0], 0);
		poll(NULL, 0, wait_ms);
		if (wait_ms < 20) wait_ms *= 2;
	}
	logf_(50, "teardown: rmdir ", o->a[0], NULL, errno);
	return 0;
}

int td_name(struct op *o)
{
	set_name(o->a[0]);
	return 1;
}

int td_setenv(struct op *o)
{
	if (setenv(o->a[0], o->a[1], 1) == 0) return 1;
	logf_(50, "teardown: setenv ", o->a[0], NULL, errno);
	return 0;
}

int td_log(struct op *o)
{
	json_log(30, "ovb-launch", o->a[0], strlen(o->a[0]));
	return 1;
}

int td_del_netns(struct op *o)
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

int td_unlink(struct op *o)
{
	if (unlink(o->a[0]) == 0 || errno == ENOENT) return 1;
	logf_(50, "teardown: unlink ", o->a[0], NULL, errno);
	return 0;
}

int td_umount(struct op *o)
{
	if (umount2(o->a[0], MNT_DETACH) == 0 || errno == EINVAL || errno == ENOENT) return 1;
	logf_(50, "teardown: umount ", o->a[0], NULL, errno);
	return 0;
}

int td_del_link(struct op *o)
{
	int r = del_link(o->a[0]);
	if (r == 0 || r == ENODEV) return 1;
	logf_(50, "teardown: del-link ", o->a[0], NULL, r);
	return 0;
}

int run_teardown(struct prog *t)
{
	int ok = 1;
	for (int i = 0; i < t->n; i++) ok &= t->ops[i].def->teardown(&t->ops[i]);
	return ok;
}
