/*
 * reaper: pid 1 of a subhost (see PROTOCOL.md, "reaper").
 *
 *   reaper NAME      environment: OVB_STATUS_FD, OVB_INIT, OVB_STOP_TIMEOUT, OVB_DUMMY
 *   dummy_service    (argv[0]) the placeholder service, see start_dummy()
 *
 * Runs OVB_INIT with /bin/sh -c as its first child, writes "ready <status>\n" on
 * OVB_STATUS_FD when that child ends, reaps every child (orphans included) without
 * polling, and exits when none is left. TERM/INT/HUP/PWR/SIGRTMIN+3/SIGRTMIN+4 start a
 * graceful shutdown: TERM to every process, KILL after OVB_STOP_TIMEOUT seconds or at a
 * second such signal. One line on stderr tells how it ended.
 */
#define _GNU_SOURCE
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *name = "";
static pid_t self;

static void report(const char *how, int status)
{
	char s[512];
	struct buf b = BUF_INIT(s);
	b_str(&b, "reaper ");
	b_line(&b, name);
	b_str(&b, ": ");
	b_str(&b, how);
	if (status >= 0) {
		b_str(&b, " (init script status ");
		b_num(&b, status);
		b_chr(&b, ')');
	}
	b_chr(&b, '\n');
	write_all(2, b.p, b.len);
}

static const char *signame(int sig)
{
	switch (sig) {
	case SIGTERM: return "SIGTERM";
	case SIGINT: return "SIGINT";
	case SIGHUP: return "SIGHUP";
	case SIGPWR: return "SIGPWR";
	}
	return sig == SIGRTMIN + 3 ? "SIGRTMIN+3" : "SIGRTMIN+4";
}

static pid_t init_pgrp;

/* Signals every other process: the whole pid namespace when pid 1; otherwise (a reaper
 * run outside a pid namespace, for tests) only the init script's process group. */
static void kill_all(int sig)
{
	if (self == 1)
		kill(-1, sig);
	else if (init_pgrp > 0)
		kill(-init_pgrp, sig);
}

#define DUMMY_FIFO "/run/dummy_service"

/*
 * The shell tool's dummy_service: a process that keeps pid 1 company when no
 * service was started, until something is written to its fifo or it gets a
 * signal. It is this same binary re-executed, so that ps shows its name.
 */
static int dummy_main(void)
{
	char c;
	prctl(PR_SET_NAME, "dummy_service");
	if (mkfifo(DUMMY_FIFO, 0600) < 0 && errno != EEXIST) {
		write_all(2, "dummy_service: cannot make " DUMMY_FIFO "\n", 28 + sizeof(DUMMY_FIFO) - 1);
		return 1;
	}
	int fd = open(DUMMY_FIFO, O_RDONLY);
	if (fd < 0)
		return 1;
	while (read(fd, &c, 1) < 0 && errno == EINTR)
		;
	close(fd);
	unlink(DUMMY_FIFO);
	return 0;
}

static void start_dummy(const sigset_t *none)
{
	pid_t p = fork();
	if (p == 0) {
		sigprocmask(SIG_SETMASK, none, NULL);
		char *argv[] = { "dummy_service", NULL };
		execv("/proc/self/exe", argv);
		_exit(dummy_main());
	}
}

int main(int argc, char **argv)
{
	const char *s;
	if (argc > 0 && !strcmp(argv[0], "dummy_service"))
		return dummy_main();
	const char *dummy = getenv("OVB_DUMMY");
	int want_dummy = dummy && !strcmp(dummy, "1"), check_dummy = 0;
	int status_fd = -1, init_status = -1;
	unsigned long long v, grace_s = 10;
	const char *init = getenv("OVB_INIT");

	if (argc > 1)
		name = argv[1];
	self = getpid();
	if ((s = getenv("OVB_STATUS_FD")) && parse_num(s, 10, &v) == 0 && v < 1024 &&
	    fcntl((int)v, F_SETFD, FD_CLOEXEC) == 0)
		status_fd = (int)v;
	if ((s = getenv("OVB_STOP_TIMEOUT")) && parse_num(s, 10, &v) == 0 && v < 86400 * 365)
		grace_s = v;
	/* init keeps pointing at the initial environment block, which unsetenv never frees */
	unsetenv("OVB_STATUS_FD");
	unsetenv("OVB_INIT");
	unsetenv("OVB_STOP_TIMEOUT");
	unsetenv("OVB_DUMMY");

	sigset_t set, none;
	sigemptyset(&none);
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGPWR);
	sigaddset(&set, SIGRTMIN + 3);
	sigaddset(&set, SIGRTMIN + 4);
	sigprocmask(SIG_SETMASK, &set, NULL);
	setsid();

	pid_t init_pid = 0;
	if (init) {
		init_pid = fork();
		if (init_pid == 0) {
			int fd = open("/dev/null", O_RDONLY);
			if (fd > 0) {
				dup2(fd, 0);
				close(fd);
			}
			sigprocmask(SIG_SETMASK, &none, NULL);
			if (self != 1)
				setpgid(0, 0);
			execl("/bin/sh", "sh", "-c", init, (char *)0);
			char m[64];
			struct buf b = BUF_INIT(m);
			b_str(&b, "reaper: cannot exec /bin/sh: errno ");
			b_num(&b, errno);
			b_chr(&b, '\n');
			write_all(2, b.p, b.len);
			_exit(127);
		}
		if (init_pid > 0 && self != 1) {
			setpgid(init_pid, init_pid);
			init_pgrp = init_pid;
		}
		if (init_pid < 0) {
			init_pid = 0;
			init_status = 127;
			report("cannot fork the init script", -1);
			if (status_fd >= 0) {
				write_all(status_fd, "ready 127\n", 10);
				close(status_fd);
				status_fd = -1;
			}
		}
	}

	int stop_sig = 0, killed = 0;
	const char *kill_why = "";
	long long deadline = 0;
	for (;;) {
		int st;
		pid_t r;
		while ((r = waitpid(-1, &st, WNOHANG)) > 0) {
			if (r != init_pid)
				continue;
			init_pid = 0;
			init_status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
			check_dummy = want_dummy && init_status == 0;
			if (status_fd >= 0) {
				char l[32];
				struct buf b = BUF_INIT(l);
				b_str(&b, "ready ");
				b_num(&b, init_status);
				b_chr(&b, '\n');
				write_all(status_fd, b.p, b.len);
				close(status_fd);
				status_fd = -1;
			}
		}
		/* no service left running right after the init script: SPEC's dummy_service */
		if (check_dummy) {
			check_dummy = 0;
			if (r < 0 && errno == ECHILD && !stop_sig) {
				start_dummy(&none);
				continue;
			}
		}
		if (r < 0 && errno == ECHILD && !init_pid)
			break;

		struct timespec ts, *tp = NULL;
		if (stop_sig && !killed) {
			long long left = deadline - mono_ms();
			if (left < 0)
				left = 0;
			ts.tv_sec = left / 1000;
			ts.tv_nsec = (left % 1000) * 1000000;
			tp = &ts;
		}
		int sig = sigtimedwait(&set, NULL, tp);
		if (sig < 0) {
			if (errno == EAGAIN && stop_sig && !killed) {
				kill_all(SIGKILL);
				killed = 1;
				kill_why = "KILL after the grace period";
			}
			continue;
		}
		if (sig == SIGCHLD)
			continue;
		if (!stop_sig) {
			stop_sig = sig;
			deadline = mono_ms() + (long long)grace_s * 1000;
			kill_all(SIGTERM);
			kill_all(SIGCONT);
		} else if (!killed) {
			kill_all(SIGKILL);
			killed = 1;
			kill_why = "KILL at a second signal";
		}
	}

	char how[128];
	struct buf b = BUF_INIT(how);
	if (stop_sig) {
		b_str(&b, "stopped by ");
		b_str(&b, signame(stop_sig));
		b_str(&b, killed ? ", " : ", all processes ended");
		b_str(&b, kill_why);
	} else {
		b_str(&b, "ended: no process left");
	}
	report(b.p, init_status);
	return 0;
}
