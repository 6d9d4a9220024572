/* M, the monitor: forks C, relays status and log lines, aborts or tears down (`ovb-launch boot`, `ovb-launch teardown`). */
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

struct monitor mon = {.m_step = "boot", .str = -1};
/* ------------------------------------------------------------------ M: the monitor */


void on_status_line(const char *s, size_t n, const void *ctx)
{
	(void)ctx;
	char l[STATUS_LINE_MAX + 2];
	if (n > STATUS_LINE_MAX) n = STATUS_LINE_MAX;
	memcpy(l, s, n);
	l[n] = 0;
	if (!strncmp(l, "step ", 5)) {
		const char *e = strchr(l + 5, ' ');
		size_t k = e ? (size_t)(e - (l + 5)) : strlen(l + 5);
		if (k >= sizeof(mon.m_step)) k = sizeof(mon.m_step) - 1;
		memcpy(mon.m_step, l + 5, k);
		mon.m_step[k] = 0;
	} else if (!strncmp(l, "pid1 ", 5)) {
		unsigned long long v;
		if (parse_num(l + 5, 10, &v) == 0) mon.p_pid = (pid_t)v;
		if (mon.aborted && mon.p_pid > 0) kill(mon.p_pid, SIGKILL);
	} else if (!strncmp(l, "fail ", 5)) {
		mon.fail_seen = 1;
		json_log(50, "ovb-launch", l, n);
	} else if (!strncmp(l, "hookpg ", 7)) {
		unsigned long long v;
		if (parse_num(l + 7, 10, &v) == 0) mon.hook_pg = (pid_t)v;
		return; /* internal */
	} else if (!strncmp(l, "created ", 8)) {
		unsigned long long v;
		if (parse_num(l + 8, 10, &v) == 0 &&
		    mon.n_created < (int)(sizeof(mon.created) / sizeof(mon.created[0])))
			mon.created[mon.n_created++] = (int)v;
		return; /* internal */
	} else if (!strncmp(l, "ready ", 6)) {
		mon.ready_seen = 1;
		mon.ready_ok = !strcmp(l, "ready 0");
		json_log(30, "ovb-launch", l, n);
	}
	l[n] = '\n';
	status_write(l, n + 1);
}

void drain_status(void)
{
	if (mon.str >= 0 && !pump(mon.str, &mon.st_lines)) {
		close(mon.str);
		mon.str = -1;
	}
}

void m_fail(int err, const char *msg)
{
	char l[STATUS_LINE_MAX];
	struct buf b = BUF_INIT(l);
	b_str(&b, "fail ");
	b_str(&b, mon.m_step);
	b_chr(&b, ' ');
	b_num(&b, err);
	b_chr(&b, ' ');
	b_str(&b, msg);
	on_status_line(b.p, b.len, NULL);
}

void do_abort(const char *why)
{
	if (mon.aborted || mon.p_done || (mon.c_done && !mon.p_pid)) return;
	mon.aborted = 1;
	mon.abort_why = why;
	if (mon.p_pid > 0)
		kill(mon.p_pid, SIGKILL);
	else if (!mon.c_done)
		kill(mon.c_pid, SIGKILL);
	if (mon.hook_pg > 0) kill(-mon.hook_pg, SIGKILL);
}

void reap_all(void)
{
	int st;
	pid_t r;
	while ((r = waitpid(-1, &st, WNOHANG)) > 0) {
		if (log_rotate_reaped(r, st)) continue;
		if (r != mon.c_pid && r != mon.p_pid && r != tds.run_pid)
			drain_status(); /* P may be reaped before its pid1 line was read */
		if (r == mon.c_pid) {
			mon.c_done = 1;
			mon.c_status = st;
			drain_status();
			if (mon.aborted && mon.p_pid > 0) kill(mon.p_pid, SIGKILL);
		} else if (r == mon.p_pid && mon.p_pid > 0) {
			mon.p_done = 1;
			mon.p_status = st;
		} else if (r == tds.run_pid && tds.run_pid > 0) {
			tds.run_done = 1;
			tds.run_status = st;
		}
	}
}

void on_signal(const struct signalfd_siginfo *si)
{
	if (si->ssi_signo == SIGCHLD) {
		reap_all();
		return;
	}
	/* SIGTERM, SIGINT, SIGHUP */
	if (mon.p_done || (mon.c_done && !mon.p_pid)) return;
	if (mon.ready_seen && mon.p_pid > 0)
		kill(mon.p_pid, SIGTERM);
	else
		do_abort(si->ssi_signo == SIGTERM ? "SIGTERM" : si->ssi_signo == SIGINT ? "SIGINT" : "SIGHUP");
}

int setup_signals(void)
{
	sigset_t s;
	sigemptyset(&s);
	sigaddset(&s, SIGCHLD);
	sigaddset(&s, SIGTERM);
	sigaddset(&s, SIGINT);
	sigaddset(&s, SIGHUP);
	sigprocmask(SIG_BLOCK, &s, NULL);
	signal(SIGPIPE, SIG_IGN);
	tds.sigfd = signalfd(-1, &s, SFD_CLOEXEC | SFD_NONBLOCK);
	return tds.sigfd;
}

void reopen_stdin(void)
{
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (fd > 0) {
		dup2(fd, 0);
		close(fd);
	}
}

void blocking(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	if (fl >= 0 && (fl & O_NONBLOCK)) fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
}

/*
 * A boot that did not succeed removes the files its write-if-missing ops created,
 * resolved inside the root they were written in (the subhost's init script may
 * have run and replaced their directory with a link by now).
 */
void remove_created(const struct prog *boot)
{
	for (int k = 0; k < mon.n_created; k++) {
		int i = mon.created[k];
		if (i < 0 || i >= boot->n || strcmp(boot->ops[i].name, "write-if-missing")) continue;
		struct root r = {.path = "", .len = 0, .fd = -1};
		for (int j = 0; j < i; j++)
			if (!strcmp(boot->ops[j].name, "root") && root_set(&r, boot->ops[j].a[0]) < 0)
				logf_(50, "teardown: root ", boot->ops[j].a[0], NULL, errno);
		const char *path = boot->ops[i].a[0], *rel;
		char leaf[256];
		int d = root_rel(&r, path, &rel), pd = d == -1 ? -1 : in_parent(d, rel, leaf, sizeof(leaf));
		if (pd < 0 || (unlinkat(pd, leaf, 0) < 0 && errno != ENOENT))
			logf_(50, "teardown: unlink ", path, NULL, errno);
		if (pd >= 0) close(pd);
		if (r.fd >= 0) close(r.fd);
	}
}

int boot_main(void)
{
	struct prog boot = {0}, td = {0};
	char e[512];
	struct buf err = BUF_INIT(e);
	lg.mpid = getpid();
	lg.status_fd = fcntl(3, F_SETFD, FD_CLOEXEC) == 0 ? 3 : -1;
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
	if (!err.len) log_rotate_setup(&boot);
	if (err.len) {
		strcpy(mon.m_step, "decode");
		m_fail(EINVAL, err.p);
		return 2;
	}
	if (setup_signals() < 0) {
		m_fail(errno, "signalfd failed");
		return 2;
	}
	prctl(PR_SET_CHILD_SUBREAPER, 1);

	int logp[2] = {-1, -1}, stp[2] = {-1, -1};
	if (pipe2(logp, O_CLOEXEC) < 0 || pipe2(stp, O_CLOEXEC) < 0) {
		m_fail(errno, "pipe failed");
		mon.c_done = 1;
	} else {
		mon.c_pid = fork();
		if (mon.c_pid == 0) child_main(&boot, logp, stp, tds.sigfd);
		if (mon.c_pid < 0) {
			m_fail(errno, "fork failed");
			mon.c_done = 1;
		}
		close(logp[1]);
		close(stp[1]);
	}
	int logr = logp[0];
	mon.str = stp[0];
	if (logr >= 0) fcntl(logr, F_SETFL, O_NONBLOCK);
	if (mon.str >= 0) fcntl(mon.str, F_SETFL, O_NONBLOCK);
	struct lines ll = {.len = 0, .max = LOG_LINE_MAX, .emit = emit_log, .ctx = "subhost"};
	mon.st_lines = (struct lines){.len = 0, .max = STATUS_LINE_MAX, .emit = on_status_line, .ctx = NULL};
	char cbuf[64];
	size_t clen = 0;

	while (!mon.p_done && !(mon.c_done && !mon.p_pid)) {
		struct pollfd pf[4] = {
			{tds.sigfd, POLLIN, 0},
			{logr, POLLIN, 0},
			{mon.str, POLLIN, 0},
			{ctl, POLLIN, 0},
		};
		if (poll(pf, 4, -1) < 0) {
			if (errno == EINTR) continue;
			break;
		}
		if (pf[2].revents) drain_status();
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
					mon.detached = 1;
					close(ctl);
					ctl = -1;
					if (lg.status_fd >= 0) close(lg.status_fd);
					lg.status_fd = -1;
				} else if (strstr(cbuf, "commit\n")) {
					/* committed, but the caller keeps reading status lines (tests, --foreground) */
					mon.committed = 1;
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
				if (!mon.committed)
					do_abort(mon.ready_seen ? "the library went away before detach"
								: "the control pipe was closed before ready");
			}
		}
		if (pf[0].revents) drain_signals();
	}

	/*
	 * While attached, the library may still be writing the state record (pids,
	 * phase): tearing down now could let it write a record after we removed it.
	 * It closes the control pipe as soon as it reads `fail`, `exit` or `ready`;
	 * wait (bounded) for that.
	 */
	if (ctl >= 0 && !mon.detached) {
		struct pollfd pc = {ctl, POLLIN, 0};
		for (int i = 0; i < 100 && ctl >= 0; i++) {
			if (poll(&pc, 1, 100) <= 0) continue;
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
	if (mon.aborted && !mon.fail_seen) {
		char m[128];
		struct buf b = BUF_INIT(m);
		b_str(&b, "boot aborted: ");
		b_str(&b, mon.abort_why);
		m_fail(ECANCELED, m);
	}
	int code = 1;
	if (mon.p_done) {
		code = WIFEXITED(mon.p_status) ? WEXITSTATUS(mon.p_status) : 128 + WTERMSIG(mon.p_status);
		char l[32];
		struct buf b = BUF_INIT(l);
		b_str(&b, "exit ");
		b_num(&b, code);
		logf_(code ? 50 : 30, "pid 1 ended with status ", b.p + 5, NULL, 0);
		b_chr(&b, '\n');
		status_write(b.p, b.len);
	} else if (!mon.fail_seen) {
		char m[96];
		struct buf b = BUF_INIT(m);
		if (mon.c_pid > 0 && WIFSIGNALED(mon.c_status)) {
			b_str(&b, "mount child killed by signal ");
			b_num(&b, WTERMSIG(mon.c_status));
		} else if (mon.c_pid > 0) {
			b_str(&b, "mount child exited with status ");
			b_num(&b, WEXITSTATUS(mon.c_status));
		} else {
			b_str(&b, "no mount child");
		}
		m_fail(0, m);
	}
	if (!(mon.ready_ok && (mon.committed || mon.detached))) remove_created(&boot);
	int ok = run_teardown(&td);
	log_rotate_finish();
	status_write(ok ? "torn ok\n" : "torn fail\n", ok ? 8 : 10);
	if (mon.str >= 0) close(mon.str);
	if (lg.status_fd >= 0) close(lg.status_fd);
	return mon.p_done && code == 0 && ok && !mon.aborted && !mon.fail_seen ? 0 : 1;
}

int teardown_main(void)
{
	struct prog td = {0};
	char e[512];
	struct buf err = BUF_INIT(e);
	lg.mpid = getpid();
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
	if (setup_signals() < 0) return 2;
	return run_teardown(&td) ? 0 : 1;
}
