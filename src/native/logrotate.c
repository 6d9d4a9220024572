/*
 * LOG rotation (op `log-rotate`, PROTOCOL.md): M is the one long-lived writer of LOG (every
 * line of the subhost, its hooks and services reaches LOG through M), so M rotates it: before
 * a line would take LOG past its size, LOG is renamed LOG.1 and a new LOG opened (O_EXCL,
 * O_NOFOLLOW, root's), and /bin/gzip -n compresses LOG.1 into LOG.1.gz in a child that M
 * reaps, so M's relaying never waits for compression unless a second rotation comes before
 * the first compression ended. When it has, the older logs shift (LOG.k.gz -> LOG.k+1.gz),
 * LOG.1.gz takes its place and LOG.1 goes; LOG.KEEP.gz is removed as LOG.1 appears, so at
 * most KEEP rotated files exist at any time.
 */
#define _GNU_SOURCE
#include "ovb-launch.h"
#include "sys.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define GZIP_PATH    "/bin/gzip"
#define ROT_PATH_MAX 4200

static struct {
	const char *path; /* LOG; NULL: no rotation */
	unsigned long long max;
	int keep;
	pid_t owner;  /* M: a child inherits this state but never rotates */
	pid_t gz_pid; /* the running gzip, 0 when none */
	int busy;     /* rotating: lines it logs itself do not rotate again */
} rot;

/* LOG.k plus suffix ("" for the plain piece, ".gz", ".gz.tmp"); 0, or -1 when too long. */
static int rot_name(char *out, size_t cap, int k, const char *suffix)
{
	struct buf b = {out, 0, cap, 0};
	b_str(&b, rot.path);
	if (k > 0) {
		b_chr(&b, '.');
		b_num(&b, k);
	}
	b_str(&b, suffix);
	return b.over ? -1 : 0;
}

static void rot_error(const char *what, const char *path, int err)
{
	logf_(50, "log rotation: ", what, path, err);
}

/* Reads the op `log-rotate PATH MAX KEEP` from the boot program (C ignores it). */
void log_rotate_setup(const struct prog *boot)
{
	for (int i = 0; i < boot->n; i++) {
		if (strcmp(boot->ops[i].name, "log-rotate")) continue;
		unsigned long long max, keep;
		if (parse_num(boot->ops[i].a[1], 10, &max) || parse_num(boot->ops[i].a[2], 10, &keep) || !max ||
		    !keep || keep > 1000 || strlen(boot->ops[i].a[0]) > ROT_PATH_MAX - 32 ||
		    boot->ops[i].a[0][0] != '/') {
			rot_error("bad log-rotate op for ", boot->ops[i].a[0], EINVAL);
			return;
		}
		rot.path = boot->ops[i].a[0];
		rot.max = max;
		rot.keep = (int)keep;
		rot.owner = getpid();
	}
}

/* C and P read the op only so that the program decodes; M acts on it. */
void op_log_rotate(struct op *o)
{
	(void)o;
}

/* Shifts LOG.k.gz up and puts the finished compression in LOG.1.gz; the plain LOG.1 goes. */
static void rot_complete(int status)
{
	char plain[ROT_PATH_MAX], tmp[ROT_PATH_MAX], from[ROT_PATH_MAX], to[ROT_PATH_MAX];
	int busy = rot.busy, ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
	rot.busy = 1;
	rot.gz_pid = 0;
	rot_name(plain, sizeof(plain), 1, "");
	rot_name(tmp, sizeof(tmp), 1, ".gz.tmp");
	for (int k = rot.keep - 1; ok && k >= 1; k--) {
		rot_name(from, sizeof(from), k, ".gz");
		rot_name(to, sizeof(to), k + 1, ".gz");
		if (rename(from, to) < 0 && errno != ENOENT) rot_error("rename ", from, errno);
	}
	/* LOG.1 goes before LOG.1.gz comes: never more than KEEP rotated files */
	if (unlink(plain) < 0 && errno != ENOENT) rot_error("unlink ", plain, errno);
	rot_name(to, sizeof(to), 1, ".gz");
	if (!ok) {
		/* The piece is dropped rather than kept uncompressed: the disk bound holds. */
		rot_error("gzip failed; dropped ", plain, 0);
		unlink(tmp);
	} else if (rename(tmp, to) < 0) {
		rot_error("rename ", tmp, errno);
	}
	rot.busy = busy;
}

/* Called by M's reaper: 1 when pid was the gzip child, whose work is then completed. */
int log_rotate_reaped(pid_t pid, int status)
{
	if (!rot.gz_pid || pid != rot.gz_pid) return 0;
	rot_complete(status);
	return 1;
}

/* Waits for the running compression (if any) and completes it. */
static void rot_wait(void)
{
	while (rot.gz_pid) {
		int st;
		pid_t r = waitpid(rot.gz_pid, &st, 0);
		if (r == rot.gz_pid)
			rot_complete(st);
		else if (r < 0 && errno != EINTR)
			rot_complete(1 << 8); /* not ours to wait for any more: its outcome is unknown */
	}
}

/* fork + exec /bin/gzip -n -c, reading `in` (LOG.1) and writing LOG.1.gz.tmp. */
static void rot_compress(int in)
{
	char tmp[ROT_PATH_MAX];
	rot_name(tmp, sizeof(tmp), 1, ".gz.tmp");
	int out = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0640);
	if (out < 0 && errno == EEXIST && unlink(tmp) == 0)
		out = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0640);
	if (out < 0) {
		rot_error("create ", tmp, errno);
		return;
	}
	pid_t pid = fork();
	if (pid == 0) {
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		signal(SIGPIPE, SIG_DFL);
		int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
		if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || (null >= 0 && dup2(null, 2) < 0)) _exit(126);
		char *argv[] = {"gzip", "-n", "-c", NULL};
		char *envp[] = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", NULL};
		execve(GZIP_PATH, argv, envp);
		_exit(127);
	}
	close(out);
	if (pid < 0) {
		rot_error("fork gzip for ", tmp, errno);
		unlink(tmp);
		return;
	}
	rot.gz_pid = pid;
}

/* Opens a new LOG as fd 1 and 2: created here (O_EXCL), or else an existing regular file of root's. */
static int rot_reopen(void)
{
	int fl = O_WRONLY | O_APPEND | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC;
	int fd = open(rot.path, fl | O_CREAT | O_EXCL, 0640);
	if (fd < 0 && errno == EEXIST) {
		/* someone made LOG in between: take it only as openLogFile would */
		fd = open(rot.path, fl);
		struct stat st;
		if (fd >= 0 && (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != 0)) {
			close(fd);
			fd = -1;
			errno = EPERM;
		}
	}
	if (fd < 0) return -1;
	dup2(fd, 1);
	dup2(fd, 2);
	close(fd);
	return 0;
}

static void rotate(void)
{
	char one[ROT_PATH_MAX], last[ROT_PATH_MAX];
	struct stat cur, at;
	rot_wait();
	if (fstat(1, &cur) < 0) return;
	/* Only our own LOG is renamed: a path that now names another file is left alone. */
	if (lstat(rot.path, &at) < 0 || at.st_dev != cur.st_dev || at.st_ino != cur.st_ino) {
		rot_error("LOG is no longer the file being written, not rotated: ", rot.path, 0);
		rot.path = NULL;
		return;
	}
	rot_name(one, sizeof(one), 1, "");
	rot_name(last, sizeof(last), rot.keep, ".gz");
	if (unlink(last) < 0 && errno != ENOENT) rot_error("unlink ", last, errno);
	if (rename(rot.path, one) < 0) {
		rot_error("rename ", rot.path, errno);
		rot.path = NULL;
		return;
	}
	int in = open(one, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	struct stat ist;
	if (in >= 0 && (fstat(in, &ist) < 0 || ist.st_dev != cur.st_dev || ist.st_ino != cur.st_ino)) {
		close(in);
		in = -1;
	}
	if (rot_reopen() < 0) {
		int e = errno;
		rename(one, rot.path); /* keep writing where LOG was */
		rot_error("open a new ", rot.path, e);
		rot.path = NULL;
	} else if (in >= 0) {
		rot_compress(in);
	}
	if (in >= 0) close(in);
}

/* Before M writes n bytes to LOG: rotates first when they would take it past its size. */
void log_rotate_check(size_t n)
{
	struct stat st;
	if (!rot.path || rot.busy || getpid() != rot.owner) return;
	if (fstat(1, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size == 0 ||
	    (unsigned long long)st.st_size + n <= rot.max)
		return;
	rot.busy = 1;
	rotate();
	rot.busy = 0;
}

/* At M's end: the running compression is finished, so no plain LOG.1 is left behind. */
void log_rotate_finish(void)
{
	if (rot.owner && getpid() == rot.owner) rot_wait();
}
