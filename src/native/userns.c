/*
 * Unprivileged subhosts (PRIVILEGED=no, PROTOCOL.md "User namespaces"): the subhost's
 * user namespace and the network namespace it owns (`ovb-launch userns`, a host step),
 * LOWER and LAYERS seen through idmapped mounts (`idmap-lower`, `idmap-overlay`), and C's switch into the user
 * namespace before `fork-pid1` (`userns`).
 *
 * The root is still mounted by C as the host's root, in the private mount namespace:
 * idmapped mounts need CAP_SYS_ADMIN over LOWER's superblock, which only the host's
 * root has. The `userns` op then copies that mount namespace into one the user
 * namespace owns, so every mount of the boot is locked there (the subhost can neither
 * unmount /sys nor make it writable), and the pid, ipc, uts and time namespaces of
 * `fork-pid1` belong to the user namespace.
 */
#define _GNU_SOURCE
#include "ovb-launch.h"
#include "sys.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define OVB_MOUNT_ATTR_IDMAP 0x00100000

/* Writes "0 BASE COUNT" to /proc/PID/FILE. */
static int write_map(pid_t pid, const char *file, const char *base, const char *count)
{
	char p[64], m[96];
	struct buf bp = BUF_INIT(p), bm = BUF_INIT(m);
	b_str(&bp, "/proc/");
	b_num(&bp, pid);
	b_chr(&bp, '/');
	b_str(&bp, file);
	b_str(&bm, "0 ");
	b_str(&bm, base);
	b_chr(&bm, ' ');
	b_str(&bm, count);
	b_chr(&bm, '\n');
	int fd = open(p, O_WRONLY | O_CLOEXEC);
	if (fd < 0) return -1;
	int r = write_all(fd, bm.p, bm.len);
	int e = errno;
	close(fd);
	errno = e;
	return r;
}

/* Bind-mounts /proc/PID/ns/NS onto a new empty file at dst (O_EXCL: never over another's). */
static void persist_ns(pid_t pid, const char *ns, const char *dst)
{
	char p[64];
	struct buf b = BUF_INIT(p);
	b_str(&b, "/proc/");
	b_num(&b, pid);
	b_str(&b, "/ns/");
	b_str(&b, ns);
	int fd = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0444);
	if (fd < 0) fail(errno, "userns: create", dst, NULL);
	close(fd);
	if (mount(p, dst, NULL, MS_BIND, NULL) < 0) fail(errno, "userns: bind", p, dst);
}

/*
 * ovb-launch userns NAME FILE BASE COUNT: a new user namespace with ids 0..COUNT-1
 * mapped to BASE..BASE+COUNT-1, kept by a bind mount on FILE, and a network namespace
 * owned by it, kept on /run/netns/NAME like `ip netns add` keeps its own (so `ip -n NAME`
 * and the cables work as for any subhost, and the subhost's root may configure its
 * interfaces). The undo is the plan's: del-netns NAME, umount FILE, unlink FILE.
 */
int userns_main(char **argv)
{
	const char *name = argv[2], *file = argv[3], *base = argv[4], *count = argv[5];
	unsigned long long nb, nc;
	dup2(2, 3);
	bs.step = "userns";
	if (parse_num(base, 10, &nb) != 0 || parse_num(count, 10, &nc) != 0 || nb < 1 || nc < 1 ||
	    nb + nc > 0xffffffffULL)
		fail(EINVAL, "userns: bad range", base, count);
	if (!*name || strchr(name, '/') || name[0] == '.') fail(EINVAL, "userns: bad name", name, NULL);
	char netns[300];
	struct buf nb_ = BUF_INIT(netns);
	b_str(&nb_, "/run/netns/");
	b_str(&nb_, name);
	if (nb_.over) fail(ENAMETOOLONG, "userns", name, NULL);

	int go[2], ready[2];
	if (pipe2(go, O_CLOEXEC) < 0 || pipe2(ready, O_CLOEXEC) < 0) fail(errno, "userns: pipe", NULL, NULL);
	pid_t pid = fork();
	if (pid < 0) fail(errno, "userns: fork", NULL, NULL);
	if (pid == 0) {
		/* X: makes both namespaces, then waits (its only job is to be their first member) */
		close(go[1]);
		close(ready[0]);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		char c = unshare(CLONE_NEWUSER) == 0 && unshare(CLONE_NEWNET) == 0 ? 'y' : 'n';
		int e = errno;
		write_all(ready[1], &c, 1);
		if (c != 'y') write_all(ready[1], &e, sizeof(e));
		while (read(go[0], &c, 1) < 0 && errno == EINTR)
			;
		_exit(0);
	}
	close(go[0]);
	close(ready[1]);
	char c = 0;
	int e = EPROTO;
	ssize_t r;
	while ((r = read(ready[0], &c, 1)) < 0 && errno == EINTR)
		;
	if (r == 1 && c != 'y' && read(ready[0], &e, sizeof(e)) != (ssize_t)sizeof(e)) e = EPROTO;
	if (r != 1 || c != 'y') {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		fail(e, "userns: unshare", NULL, NULL);
	}
	if (write_map(pid, "uid_map", base, count) < 0)
		e = errno;
	else if (write_map(pid, "gid_map", base, count) < 0)
		e = errno;
	else
		e = 0;
	if (!e) {
		mkdir("/run/netns", 0755);
		persist_ns(pid, "user", file);
		persist_ns(pid, "net", netns);
	}
	close(go[1]);
	waitpid(pid, NULL, 0);
	if (e) fail(e, "userns: id map", base, NULL);
	return 0;
}

static int open_userns(const char *file)
{
	int fd = open(file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) fail(errno, "open user namespace", file, NULL);
	return fd;
}

/* A detached clone of the mount at src (open_tree, not recursive), idmapped with the user namespace ufd. */
static int idmapped_clone(const char *what, const char *src, int ufd)
{
	int t = (int)syscall(SYS_open_tree, AT_FDCWD, src, OVB_OPEN_TREE_CLONE | O_CLOEXEC);
	if (t < 0) fail(errno, what, src, ": open_tree");
	struct ovb_mount_attr a = {OVB_MOUNT_ATTR_IDMAP, 0, 0, (uint64_t)ufd};
	if (syscall(SYS_mount_setattr, t, "", AT_EMPTY_PATH, &a, sizeof(a)) < 0) fail(errno, what, src, ": idmapped mount");
	return t;
}

/*
 * idmap-lower SRC DST USERNS (C, before the overlay): a clone of the mount at SRC,
 * idmapped with the user namespace kept at USERNS, on DST (a host path: LIVE, which the
 * overlay then covers with lowerdir=LIVE). Inside the namespace, LOWER's files keep
 * their owners (host uid 0 is 0 there) while the overlay stores the subhost's writes in
 * UPPER under the mapped ids.
 */
void op_idmap_lower(struct op *o)
{
	const char *src = o->a[0], *dst = o->a[1];
	int ufd = open_userns(o->a[2]);
	int t = idmapped_clone("idmap-lower", src, ufd);
	if (syscall(SYS_move_mount, t, "", AT_FDCWD, dst, OVB_MOVE_MOUNT_F_EMPTY_PATH) < 0)
		fail(errno, "idmap-lower: move_mount onto", dst, NULL);
	close(t);
	close(ufd);
}

/* dir/rel for a path below dir (both absolute, clean): rel, or "." for dir itself. */
static const char *below_dir(const char *dir, const char *path)
{
	size_t n = strlen(dir);
	const char *rel = path + (n == 1 ? 1 : n + 1);
	return *rel ? rel : ".";
}

/* The deepest directory that holds both a and b (absolute, clean paths), into out. */
static void common_dir(const char *a, const char *b, char *out, size_t cap)
{
	size_t end = 1; /* "/" */
	for (size_t i = 1; a[i] && a[i] == b[i]; i++)
		if (a[i + 1] == '/' || a[i + 1] == 0)
			if (b[i + 1] == '/' || b[i + 1] == 0) end = i + 1;
	if (a[0] != '/' || b[0] != '/' || end >= cap) fail(EINVAL, "idmap-overlay: not absolute or too long", a, b);
	memcpy(out, a, end);
	out[end] = 0;
}

/*
 * idmap-overlay TARGET UPPER WORK USERNS MODE LOWER... (C, PRIVILEGED=no with LAYERS): the
 * overlay on TARGET with each lower a detached idmapped clone of its mount (fsconfig
 * FSCONFIG_SET_FD, Linux 6.15), so every layer shows its real owners inside while the
 * subhost's writes land in UPPER under the mapped ids. MODE `lowers`: every lower so, UPPER
 * and WORK by path; `lowers-but-last`: the last lower by path too (an inner overlay that
 * already shows mapped ids: an overlay cannot be idmapped itself); `all`: UPPER and WORK
 * as well, below one idmapped clone of their common directory (overlayfs wants both on one
 * mount). With `all` the kernel cannot make WORK's entries as the host's root through the
 * idmapped mount (the id is not mapped), so the overlay is read-only: the inner overlay,
 * whose upper is a read-only layer.
 */
void op_idmap_overlay(struct op *o)
{
	const char *tgt = o->a[0], *upper = o->a[1], *work = o->a[2], *mode = o->a[4], *rel;
	int all = !strcmp(mode, "all"), but_last = !strcmp(mode, "lowers-but-last");
	if (!all && !but_last && strcmp(mode, "lowers")) fail(EINVAL, "idmap-overlay: bad mode", mode, NULL);
	int n = o->n - 5;
	if (n > OVB_MAX_LAYERS) fail(E2BIG, "idmap-overlay: more lower layers than overlayfs takes", NULL, NULL);
	int ufd = open_userns(o->a[3]);
	struct layer l[OVB_MAX_LAYERS], u = {upper, -1}, w = {work, -1};
	int t = -1; /* the clone UPPER and WORK are below: open until the overlay has them (closing it unmounts it) */
	for (int i = 0; i < n; i++)
		l[i] = (struct layer){o->a[5 + i], but_last && i == n - 1 ? -1 : idmapped_clone("idmap-overlay", o->a[5 + i], ufd)};
	if (all) {
		char dir[4096];
		common_dir(upper, work, dir, sizeof(dir));
		t = idmapped_clone("idmap-overlay", dir, ufd);
		u.fd = openat(t, below_dir(dir, upper), O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (u.fd < 0) fail(errno, "idmap-overlay: open", upper, NULL);
		w.fd = openat(t, below_dir(dir, work), O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (w.fd < 0) fail(errno, "idmap-overlay: open", work, NULL);
	}
	int d = sub_path("mount", tgt, &rel);
	int tfd = in_open(d, rel, O_PATH | O_DIRECTORY, 0);
	if (tfd < 0) fail(errno, "mount", tgt, NULL);
	if (mount_overlay_layers_at(tfd, u, w, l, n) < 0) fail_mount(errno, "mount", "idmapped overlay", tgt);
	close(tfd);
	for (int i = 0; i < n; i++)
		if (l[i].fd >= 0) close(l[i].fd);
	if (all) {
		close(u.fd);
		close(w.fd);
		close(t);
	}
	close(ufd);
}

/*
 * chown-root PATH UID GID: PATH (resolved inside the root, never followed) to UID:GID
 * when the host's root owns it: UPPER's top and what the built-in premount made there,
 * so that they are the subhost's root's own inside. Anything else is left as it is.
 */
void op_chown_root(struct op *o)
{
	unsigned long long uid, gid;
	if (parse_num(o->a[1], 10, &uid) != 0 || parse_num(o->a[2], 10, &gid) != 0)
		fail(EINVAL, "chown-root: bad id", o->a[1], o->a[2]);
	const char *rel;
	int dfd = sub_path("chown-root", o->a[0], &rel);
	int fd = in_open(dfd, rel, O_PATH | O_NOFOLLOW, 0);
	if (fd < 0) {
		if (errno == ENOENT) return;
		fail(errno, "chown-root", o->a[0], NULL);
	}
	struct stat st;
	if (fstat(fd, &st) < 0) fail(errno, "chown-root", o->a[0], NULL);
	if (st.st_uid == 0 && st.st_gid == 0 && fchownat(fd, "", (uid_t)uid, (gid_t)gid, AT_EMPTY_PATH) < 0)
		fail(errno, "chown-root", o->a[0], NULL);
	close(fd);
}

/*
 * userns FILE (C, before fork-pid1): join the user namespace as its root, then a copy of
 * the mount namespace that it owns (every mount made so far is locked in there), and
 * open the root again in that copy; and a cgroup namespace rooted at the subhost's cgroups.
 */
void op_userns(struct op *o)
{
	if (bs.is_pid1) fail(EINVAL, "userns", NULL, ": after fork-pid1");
	/* The root is found again through the working directory, which the kernel carries into
	 * the mount namespace copy: by path, LIVE's parents may be closed to the namespace's root. */
	if (bs.root.fd >= 0 && fchdir(bs.root.fd) < 0) fail(errno, "userns: chdir", bs.root.path, NULL);
	int ufd = open_userns(o->a[0]);
	if (setns(ufd, CLONE_NEWUSER) < 0) fail(errno, "userns: setns", o->a[0], NULL);
	close(ufd);
	if (setgroups(0, NULL) < 0 || setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0)
		fail(errno, "userns: become root of", o->a[0], NULL);
	if (unshare(CLONE_NEWNS) < 0) fail(errno, "userns: unshare the mount namespace", NULL, NULL);
	/* C is in the subhost's cgroups by now: they are the new namespace's roots (a delegated v2 cgroup is its own) */
	if (unshare(CLONE_NEWCGROUP) < 0) fail(errno, "userns: unshare the cgroup namespace", NULL, NULL);
	if (bs.root.fd >= 0) {
		int fd = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0) fail(errno, "userns: open", bs.root.path, NULL);
		close(bs.root.fd);
		bs.root.fd = fd;
	}
}

/* 1 when pid (pinned by the caller) is in another user namespace than ours, else 0. */
int in_other_userns(pid_t pid)
{
	char p[64];
	struct buf b = BUF_INIT(p);
	b_str(&b, "/proc/");
	b_num(&b, pid);
	b_str(&b, "/ns/user");
	struct stat theirs, ours;
	if (stat(p, &theirs) < 0 || stat("/proc/self/ns/user", &ours) < 0) return 0;
	return theirs.st_ino != ours.st_ino || theirs.st_dev != ours.st_dev;
}

/*
 * cgroup-delegate DIR UID GID (C, PRIVILEGED=no, after `cgroup`): the v2 cgroup DIR given to
 * the subhost's root as cgroup v2 delegates one (cgroup-v2.rst "Delegation"): the directory,
 * cgroup.procs, cgroup.threads and cgroup.subtree_control. Its limit files (memory.max, ...)
 * stay the host root's: the subhost manages its own cgroups below DIR, never its limits.
 */
void op_cgroup_delegate(struct op *o)
{
	static const char *const files[] = {".", "cgroup.procs", "cgroup.threads", "cgroup.subtree_control"};
	unsigned long long uid, gid;
	if (parse_num(o->a[1], 10, &uid) != 0 || parse_num(o->a[2], 10, &gid) != 0)
		fail(EINVAL, "cgroup-delegate: bad id", o->a[1], o->a[2]);
	int d = open(o->a[0], O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (d < 0) fail(errno, "cgroup-delegate", o->a[0], NULL);
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
		if (fchownat(d, files[i], (uid_t)uid, (gid_t)gid, AT_SYMLINK_NOFOLLOW) < 0 && errno != ENOENT)
			fail(errno, "cgroup-delegate", o->a[0], files[i]);
	close(d);
}
