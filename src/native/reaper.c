/*
 * reaper: pid 1 of a subhost (see PROTOCOL.md, "reaper", and reaper(8)).
 *
 *   reaper NAME      environment: OVB_STATUS_FD, OVB_INIT, OVB_STOP, OVB_RUN,
 *                    OVB_STOP_TIMEOUT, OVB_DUMMY (all removed before anything starts)
 *   dummy_service    (argv[0]) the placeholder service, see start_dummy()
 *
 * Runs OVB_INIT with /bin/sh -c as its first child, writes "ready <status>\n" on
 * OVB_STATUS_FD when that child ends, then starts the supervised RUN services (each a
 * `/bin/sh -c` command line in its own session) and restarts one that exits, with
 * back-off. Reaps every child (orphans included) without polling: it sleeps in
 * sigtimedwait, with a timeout only while a back-off or a grace deadline is pending.
 * TERM/INT/HUP/PWR/SIGRTMIN+3/SIGRTMIN+4 start a graceful shutdown: the OVB_STOP script
 * (START services' stop commands, reverse order), then TERM to the RUN services' groups
 * and to every process, KILL at OVB_STOP_TIMEOUT seconds or at a second such signal.
 * USR1, USR2 and WINCH are forwarded to the RUN services' process groups.
 * Its state goes to /run/overlay-boot-reaper.json (as pid 1 only) on every change.
 * It exits when no process is left; one line on stderr tells how it ended.
 */
#define _GNU_SOURCE
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h> /* rename(2) only */
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Supervision numbers (documented in reaper(8) and overlay-boot.conf(5)). */
#define BACKOFF_FIRST_MS 1000LL	 /* delay before the first restart */
#define BACKOFF_MAX_MS	 30000LL /* the delay doubles up to this */
#define BACKOFF_RESET_MS 60000LL /* a run this long resets the delay */
#define RAPID_MS	 10000LL /* an exit this soon after start is a rapid failure */
#define RAPID_GIVE_UP	 5	 /* this many rapid failures in a row: given up */
#define MAX_RUN		 64
#define REKILL_MS	 1000LL /* after KILL, again every second while processes remain */

/*
 * systemd, docker and lxc mean the kernel's real-time signal numbering with glibc's
 * SIGRTMIN (34): SIGRTMIN+3 is 37. musl's SIGRTMIN is 35, so the numbers are fixed here.
 */
#define SIG_RT3 37
#define SIG_RT4 38

#define REPORT_PATH "/run/overlay-boot-reaper.json"
#define REPORT_TMP  "/run/.overlay-boot-reaper.json.tmp"

enum { S_RUNNING, S_BACKOFF, S_FAILED, S_STOPPED };
static const char *const state_names[] = {"running", "backoff", "failed", "stopped"};

struct svc {
	const char *cmd;
	pid_t pid;
	int state, restarts, last_exit, rapid;
	long long started, restart_at, delay;
};

static const char *name = "";
static pid_t self;
static sigset_t none;
static struct svc svcs[MAX_RUN];
static int nsvc;

static pid_t init_pid, init_pgrp, stop_pid;
static int init_status = -1;
static enum { P_STARTING, P_RUNNING, P_STOPPING } phase = P_STARTING;
static int stop_sig, termed, killed;

static char *report_buf;
static size_t report_cap;

static void say(const char *a, const char *b, const char *c)
{
	char s[1024];
	struct buf m = BUF_INIT(s);
	b_str(&m, "reaper ");
	b_line(&m, name);
	b_str(&m, ": ");
	b_line(&m, a);
	if (b) b_line(&m, b);
	if (c) b_line(&m, c);
	b_chr(&m, '\n');
	write_all(2, m.p, m.len);
}

static const char *signame(int sig)
{
	switch (sig) {
	case SIGTERM:
		return "SIGTERM";
	case SIGINT:
		return "SIGINT";
	case SIGHUP:
		return "SIGHUP";
	case SIGPWR:
		return "SIGPWR";
	case SIG_RT3:
		return "SIGRTMIN+3";
	case SIG_RT4:
		return "SIGRTMIN+4";
	}
	return "a signal";
}

static int exit_code(int st)
{
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void json_str(struct buf *b, const char *s)
{
	b_chr(b, '"');
	b_json(b, s, strlen(s));
	b_chr(b, '"');
}

static void json_num_or_null(struct buf *b, long long v, int present)
{
	if (present)
		b_num(b, v);
	else
		b_str(b, "null");
}

/* The state report: a temp file renamed over the last one; skipped quietly when /run is not writable. */
static void write_report(void)
{
	static const char *const phases[] = {"starting", "running", "stopping"};
	if (self != 1 || !report_buf) return;
	struct buf b = {report_buf, 0, report_cap, 0};
	b_str(&b, "{\"name\":");
	json_str(&b, name);
	b_str(&b, ",\"phase\":\"");
	b_str(&b, phases[phase]);
	b_str(&b, "\",\"initStatus\":");
	json_num_or_null(&b, init_status, init_status >= 0);
	b_str(&b, ",\"stopSignal\":");
	if (stop_sig) {
		b_chr(&b, '"');
		b_str(&b, signame(stop_sig));
		b_chr(&b, '"');
	} else {
		b_str(&b, "null");
	}
	b_str(&b, ",\"services\":[");
	for (int i = 0; i < nsvc; i++) {
		struct svc *s = &svcs[i];
		b_str(&b, i ? ",{\"command\":" : "{\"command\":");
		json_str(&b, s->cmd);
		b_str(&b, ",\"pid\":");
		json_num_or_null(&b, s->pid, s->pid > 0);
		b_str(&b, ",\"restarts\":");
		b_num(&b, s->restarts);
		b_str(&b, ",\"state\":\"");
		b_str(&b, state_names[s->state]);
		b_str(&b, "\",\"lastExit\":");
		json_num_or_null(&b, s->last_exit, s->last_exit >= 0);
		b_chr(&b, '}');
	}
	b_str(&b, "]}\n");
	if (b.over) /* sized for the worst case; a cut report would not parse: keep the last one */
		return;
	int fd = open(REPORT_TMP, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0) return;
	int bad = write_all(fd, b.p, b.len);
	if (close(fd) < 0 || bad || rename(REPORT_TMP, REPORT_PATH) < 0) unlink(REPORT_TMP);
}

/* Signals every other process: the whole pid namespace when pid 1; otherwise (a reaper
 * run outside a pid namespace, for tests) only the groups of its own children. */
static void kill_all(int sig)
{
	if (self == 1) {
		kill(-1, sig);
		return;
	}
	if (init_pgrp > 0) kill(-init_pgrp, sig);
	if (stop_pid > 0) kill(-stop_pid, sig);
	for (int i = 0; i < nsvc; i++)
		if (svcs[i].pid > 0) kill(-svcs[i].pid, sig);
}

static void kill_services(int sig)
{
	for (int i = 0; i < nsvc; i++)
		if (svcs[i].pid > 0) kill(-svcs[i].pid, sig);
}

/* fork + exec /bin/sh -c cmd with stdin /dev/null and an empty signal mask; mode 0: same
 * process group (own group when not pid 1), 1: own process group, 2: own session. */
static pid_t spawn_sh(const char *cmd, int mode)
{
	pid_t p = fork();
	if (p != 0) return p;
	if (mode == 2)
		setsid();
	else if (mode == 1 || self != 1)
		setpgid(0, 0);
	int fd = open("/dev/null", O_RDONLY);
	if (fd > 0) {
		dup2(fd, 0);
		close(fd);
	}
	sigprocmask(SIG_SETMASK, &none, NULL);
	execl("/bin/sh", "sh", "-c", cmd, (char *)0);
	char m[64];
	struct buf b = BUF_INIT(m);
	b_str(&b, "reaper: cannot exec /bin/sh: errno ");
	b_num(&b, errno);
	b_chr(&b, '\n');
	write_all(2, b.p, b.len);
	_exit(127);
}

static void service_exited(struct svc *s, int code);

static void start_service(struct svc *s)
{
	s->started = mono_ms();
	s->pid = spawn_sh(s->cmd, 2);
	if (s->pid < 0) {
		s->pid = 0;
		service_exited(s, 127);
		return;
	}
	s->state = S_RUNNING;
}

static void service_exited(struct svc *s, int code)
{
	long long now = mono_ms(), ran = now - s->started;
	char t[160];
	struct buf b = BUF_INIT(t);
	s->pid = 0;
	s->last_exit = code;
	if (phase == P_STOPPING) {
		s->state = S_STOPPED;
		return;
	}
	if (ran >= BACKOFF_RESET_MS) s->delay = BACKOFF_FIRST_MS;
	s->rapid = ran < RAPID_MS ? s->rapid + 1 : 0;
	b_str(&b, ") exited with status ");
	b_num(&b, code);
	b_str(&b, " after ");
	b_num(&b, ran / 1000);
	b_chr(&b, '.');
	b_num(&b, ran / 100 % 10);
	b_str(&b, " s; ");
	if (s->rapid >= RAPID_GIVE_UP) {
		s->state = S_FAILED;
		b_str(&b, "given up after ");
		b_num(&b, s->rapid);
		b_str(&b, " rapid failures");
	} else {
		s->state = S_BACKOFF;
		s->restart_at = now + s->delay;
		b_str(&b, "restart ");
		b_num(&b, s->restarts + 1);
		b_str(&b, " in ");
		b_num(&b, s->delay / 1000);
		if (s->delay % 1000) {
			b_chr(&b, '.');
			b_num(&b, s->delay / 100 % 10);
		}
		b_str(&b, " s");
		s->delay = s->delay * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : s->delay * 2;
	}
	say("RUN service (", s->cmd, b.p);
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
	if (fd < 0) return 1;
	while (read(fd, &c, 1) < 0 && errno == EINTR)
		;
	close(fd);
	unlink(DUMMY_FIFO);
	return 0;
}

static void start_dummy(void)
{
	pid_t p = fork();
	if (p == 0) {
		sigprocmask(SIG_SETMASK, &none, NULL);
		char *argv[] = {"dummy_service", NULL};
		execv("/proc/self/exe", argv);
		_exit(dummy_main());
	}
}

/* OVB_RUN: one command line per line (empty lines skipped), copied. */
static void parse_run(const char *run)
{
	size_t need = 256 + 6 * strlen(name);
	while (run && *run && nsvc < MAX_RUN) {
		const char *e = strchr(run, '\n');
		size_t n = e ? (size_t)(e - run) : strlen(run);
		if (n) {
			char *c = malloc(n + 1);
			if (!c) break;
			memcpy(c, run, n);
			c[n] = 0;
			svcs[nsvc] =
				(struct svc){.cmd = c, .last_exit = -1, .delay = BACKOFF_FIRST_MS, .state = S_BACKOFF};
			nsvc++;
			need += 6 * n + 128;
		}
		run = e ? e + 1 : "";
	}
	report_buf = malloc(need);
	report_cap = report_buf ? need : 0;
}

/* Graceful shutdown, step 2 and 3: TERM (and CONT) to the RUN services' groups, then to all. */
static void term_all(void)
{
	termed = 1;
	kill_services(SIGTERM);
	kill_services(SIGCONT);
	kill_all(SIGTERM);
	kill_all(SIGCONT);
}

int main(int argc, char **argv)
{
	const char *s;
	if (argc > 0 && !strcmp(argv[0], "dummy_service")) return dummy_main();
	const char *dummy = getenv("OVB_DUMMY");
	int want_dummy = dummy && !strcmp(dummy, "1"), check_dummy = 0;
	int status_fd = -1;
	unsigned long long v, grace_s = 10;
	/* these keep pointing at the initial environment block, which unsetenv never frees */
	const char *init = getenv("OVB_INIT");
	const char *stop = getenv("OVB_STOP");

	if (argc > 1) name = argv[1];
	self = getpid();
	if ((s = getenv("OVB_STATUS_FD")) && parse_num(s, 10, &v) == 0 && v < 1024 &&
	    fcntl((int)v, F_SETFD, FD_CLOEXEC) == 0)
		status_fd = (int)v;
	if ((s = getenv("OVB_STOP_TIMEOUT")) && parse_num(s, 10, &v) == 0 && v < 86400 * 365) grace_s = v;
	parse_run(getenv("OVB_RUN"));
	if (stop && !*stop) stop = NULL;
	unsetenv("OVB_STATUS_FD");
	unsetenv("OVB_INIT");
	unsetenv("OVB_STOP");
	unsetenv("OVB_RUN");
	unsetenv("OVB_STOP_TIMEOUT");
	unsetenv("OVB_DUMMY");

	sigset_t set, fwd;
	sigemptyset(&none);
	sigemptyset(&set);
	sigemptyset(&fwd);
	sigaddset(&fwd, SIGUSR1);
	sigaddset(&fwd, SIGUSR2);
	sigaddset(&fwd, SIGWINCH);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGPWR);
	sigaddset(&set, SIG_RT3);
	sigaddset(&set, SIG_RT4);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGUSR2);
	sigaddset(&set, SIGWINCH);
	/* blocked, so that pid 1 receives them at all (a namespace init drops unhandled signals) */
	sigprocmask(SIG_SETMASK, &set, NULL);
	setsid();

	int init_done = 0;
	if (init) {
		init_pid = spawn_sh(init, 0);
		if (init_pid > 0 && self != 1) {
			setpgid(init_pid, init_pid);
			init_pgrp = init_pid;
		}
		if (init_pid < 0) {
			init_pid = 0;
			init_status = 127;
			init_done = 1;
			say("cannot fork the init script", NULL, NULL);
			if (status_fd >= 0) {
				write_all(status_fd, "ready 127\n", 10);
				close(status_fd);
				status_fd = -1;
			}
		}
	} else {
		init_done = 1;
	}
	if (init_done) {
		phase = P_RUNNING;
		for (int i = 0; i < nsvc; i++) start_service(&svcs[i]);
	}
	write_report();

	const char *kill_why = "";
	long long deadline = 0, term_at = 0, rekill_at = 0;
	for (;;) {
		int st, changed = 0;
		pid_t r;
		while ((r = waitpid(-1, &st, WNOHANG)) > 0) {
			if (r == init_pid) {
				init_pid = 0;
				init_status = exit_code(st);
				check_dummy = want_dummy && init_status == 0 && nsvc == 0;
				changed = 1;
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
				if (phase == P_STARTING) {
					phase = P_RUNNING;
					for (int i = 0; i < nsvc; i++) start_service(&svcs[i]);
				}
				continue;
			}
			if (r == stop_pid) {
				stop_pid = 0;
				if (!termed && !killed) term_all();
				continue;
			}
			for (int i = 0; i < nsvc; i++) {
				if (svcs[i].pid == r) {
					service_exited(&svcs[i], exit_code(st));
					changed = 1;
					break;
				}
			}
		}
		int no_child = r < 0 && errno == ECHILD;

		/* timers: back-off restarts, the stop script's share of the grace period, the grace limit */
		long long now = mono_ms(), next = -1;
#define NEXT(t) (next = next < 0 || (t) < next ? (t) : next)
		if (phase == P_RUNNING) {
			for (int i = 0; i < nsvc; i++) {
				struct svc *sv = &svcs[i];
				if (sv->state != S_BACKOFF) continue;
				if (sv->restart_at <= now) {
					sv->restarts++;
					start_service(sv);
					changed = 1;
					no_child = 0;
				}
				if (sv->state == S_BACKOFF) NEXT(sv->restart_at);
			}
		} else if (phase == P_STOPPING) {
			if (!killed && now >= deadline) {
				kill_services(SIGKILL);
				kill_all(SIGKILL);
				killed = 1;
				kill_why = "KILL after the grace period";
				rekill_at = now + REKILL_MS;
			}
			if (!killed && !termed && now >= term_at) term_all();
			if (killed && now >= rekill_at) {
				kill_all(SIGKILL);
				rekill_at = now + REKILL_MS;
			}
			if (killed)
				NEXT(rekill_at);
			else
				NEXT(termed ? deadline : term_at);
		}
		if (changed) write_report();

		/* no service left running right after the init script: SPEC's dummy_service */
		if (check_dummy) {
			check_dummy = 0;
			if (no_child && phase == P_RUNNING) {
				start_dummy();
				continue;
			}
		}
		int waiting = 0;
		for (int i = 0; i < nsvc; i++) waiting |= svcs[i].state == S_BACKOFF && phase == P_RUNNING;
		if (no_child && !init_pid && !waiting) break;

		struct timespec ts, *tp = NULL;
		if (next >= 0) {
			long long left = next - mono_ms();
			if (left < 0) left = 0;
			ts.tv_sec = left / 1000;
			ts.tv_nsec = (left % 1000) * 1000000;
			tp = &ts;
		}
		int sig = sigtimedwait(&set, NULL, tp);
		if (sig < 0 || sig == SIGCHLD) continue;
		if (sigismember(&fwd, sig)) {
			kill_services(sig);
			continue;
		}
		if (!stop_sig) {
			/* graceful shutdown: the stop script first (3/4 of the grace period at most), then TERM */
			stop_sig = sig;
			phase = P_STOPPING;
			now = mono_ms();
			deadline = now + (long long)grace_s * 1000;
			term_at = now + (long long)grace_s * 750;
			for (int i = 0; i < nsvc; i++)
				if (svcs[i].state == S_BACKOFF) svcs[i].state = S_STOPPED;
			if (init_pid > 0) kill(init_pid, SIGTERM);
			if (stop) {
				stop_pid = spawn_sh(stop, 1);
				if (stop_pid < 0)
					stop_pid = 0;
				else
					setpgid(stop_pid, stop_pid);
			}
			if (!stop_pid) term_all();
			write_report();
		} else if (!killed) {
			kill_services(SIGKILL);
			kill_all(SIGKILL);
			killed = 1;
			kill_why = "KILL at a second signal";
			rekill_at = mono_ms() + REKILL_MS;
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
	if (init_status >= 0) {
		b_str(&b, " (init script status ");
		b_num(&b, init_status);
		b_chr(&b, ')');
	}
	say(b.p, NULL, NULL);
	if (self == 1) unlink(REPORT_PATH);
	return 0;
}
