/* Commands on a running subhost's pid 1, pinned by pidfd and start time: share, unshare, kill, enter. */
#define _GNU_SOURCE
#include "ovb-launch.h"
#include "sys.h"

#include <errno.h>
#include <grp.h>
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

/* Pins PID (a subhost's pid 1, as the host sees it) by pidfd and start time, or fails. */
int pin_arg(const char *pid_s, const char *start_s)
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
int share_main(int argc, char **argv)
{
	int sharing = !strcmp(argv[1], "share");
	const char *src = sharing ? argv[4] : NULL, *dst = argv[sharing ? 5 : 4];
	dup2(2, 3);
	bs.step = argv[1];
	(void)argc;
	if (dst[0] != '/') fail(EINVAL, "the subhost path must be absolute:", dst, NULL);
	int pfd = pin_arg(argv[2], argv[3]);
	int tree = -1;
	struct stat sb;
	if (sharing) {
		if (stat(src, &sb) < 0) fail(errno, "share", src, NULL);
		tree = (int)syscall(SYS_open_tree, AT_FDCWD, src, OVB_OPEN_TREE_CLONE | O_CLOEXEC | AT_RECURSIVE);
		if (tree < 0) fail(errno, "open_tree", src, NULL);
	}
	if (setns(pfd, CLONE_NEWNS) < 0) fail(errno, "setns", argv[2], NULL);
	close(pfd);
	if (chdir("/") < 0 || root_set(&bs.root, "/") < 0) fail(errno, "chdir", "/", NULL);
	if (!sharing) {
		/* the last component alone, on its parent resolved inside, never followed */
		char leaf[256];
		int pd = parent_of("unshare", dst, leaf, sizeof(leaf));
		if (fchdir(pd) < 0 || umount2(leaf, MNT_DETACH | OVB_UMOUNT_NOFOLLOW) < 0)
			fail(errno, "umount", dst, NULL);
		return 0;
	}
	int tfd = bind_target("share", &sb, dst, 1);
	if (tfd < 0) fail(errno, "share", dst, NULL);
	if (syscall(SYS_move_mount, tree, "", tfd, "", OVB_MOVE_MOUNT_F_EMPTY_PATH | OVB_MOVE_MOUNT_T_EMPTY_PATH) < 0)
		fail(errno, "move_mount onto", dst, NULL);
	return 0;
}

/*
 * ovb-launch kill PID START SIGNAL: overlay-stop's signal to pid 1 or the monitor,
 * sent through a pidfd opened before the start time was checked, so a pid reused
 * since the state record was written is never signalled (exit 1, PROCESS_CHANGED).
 */
int kill_main(char **argv)
{
	unsigned long long sig;
	dup2(2, 3);
	bs.step = "kill";
	if (parse_num(argv[4], 10, &sig) != 0 || sig < 1 || sig > 64) fail(EINVAL, "kill: bad signal", argv[4], NULL);
	int pfd = pin_arg(argv[2], argv[3]);
	if (ovb_pidfd_kill(pfd, (int)sig) < 0) fail(errno, "kill", argv[2], NULL);
	return 0;
}

/*
 * ovb-launch enter PID START [--] CMD...: overlay-go. Joins every namespace of
 * the pinned pid 1 through its pidfd (one setns), its root and working
 * directory "/", forks so that CMD is in the subhost's pid namespace, and exits
 * with CMD's status (or dies of its signal).
 */
int enter_main(int argc, char **argv)
{
	/* fd 3: our `fail` line for the library (stderr when it gave none); never the command's */
	if (fcntl(3, F_GETFD) < 0) dup2(2, 3);
	fcntl(3, F_SETFD, FD_CLOEXEC);
	bs.step = "enter";
	int i = 4;
	if (i < argc && !strcmp(argv[i], "--")) i++;
	int pfd = pin_arg(argv[2], argv[3]);
	int ns = CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNET | CLONE_NEWPID | CLONE_NEWCGROUP |
		 CLONE_NEWTIME;
	/* an unprivileged subhost: its user namespace first (one setns does it), then be its root */
	int userns = in_other_userns(atoi(argv[2]));
	if (userns) ns |= CLONE_NEWUSER;
	if (setns(pfd, ns) < 0 && (errno != EINVAL || setns(pfd, ns & ~CLONE_NEWTIME) < 0))
		fail(errno, "setns", argv[2], NULL);
	close(pfd);
	if (userns && (setgroups(0, NULL) < 0 || setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0))
		fail(errno, "enter: become root of the user namespace of", argv[2], NULL);
	/* what pid 1 of an unprivileged subhost runs under (confine.c), for what we run in it too */
	if (userns && confine_self() < 0) fail(errno, "enter: confine", NULL, NULL);
	if (chdir("/") < 0) fail(errno, "chdir", "/", NULL);
	/* the terminal's ^C and ^\ are for CMD; we only wait for it */
	signal(SIGINT, SIG_IGN);
	signal(SIGQUIT, SIG_IGN);
	pid_t pid = fork();
	if (pid < 0) fail(errno, "enter: fork", NULL, NULL);
	if (pid == 0) {
		signal(SIGINT, SIG_DFL);
		signal(SIGQUIT, SIG_DFL);
		static char *shell[] = {"/bin/bash", NULL};
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
		if (errno != EINTR) return 1;
	if (WIFEXITED(st)) return WEXITSTATUS(st);
	signal(WTERMSIG(st), SIG_DFL);
	kill(getpid(), WTERMSIG(st));
	return 128 + WTERMSIG(st);
}
