#define _GNU_SOURCE
#include "inroot.h"
#include "sys.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define IN_ROOT_RESOLVE (OVB_RESOLVE_IN_ROOT | OVB_RESOLVE_NO_MAGICLINKS)

int root_set(struct root *r, const char *dir)
{
	size_t l = strlen(dir);
	while (l > 1 && dir[l - 1] == '/') l--;
	if (!l || dir[0] != '/' || l >= sizeof(r->path)) {
		errno = EINVAL;
		return -1;
	}
	int fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) return -1;
	if (r->fd >= 0) close(r->fd);
	memcpy(r->path, dir, l);
	r->path[l] = 0;
	r->len = l;
	r->fd = fd;
	return 0;
}

int root_rel(const struct root *r, const char *path, const char **rel)
{
	if (r->fd < 0) {
		*rel = path;
		return AT_FDCWD;
	}
	if (r->len == 1) { /* "/" */
		if (path[0] != '/') {
			errno = EINVAL;
			return -1;
		}
		while (*path == '/') path++;
		*rel = *path ? path : ".";
		return r->fd;
	}
	if (strncmp(path, r->path, r->len) || (path[r->len] != '/' && path[r->len] != 0)) {
		*rel = path; /* a host path of the configuration (a cgroup, /run/netns/NAME, BASE) */
		return AT_FDCWD;
	}
	path += r->len;
	while (*path == '/') path++;
	*rel = *path ? path : ".";
	return r->fd;
}

int in_open(int dirfd, const char *rel, int flags, mode_t mode)
{
	if (dirfd == AT_FDCWD) return openat(dirfd, rel, flags | O_CLOEXEC, mode);
	int fd;
	do fd = ovb_openat2(dirfd, rel, flags | O_CLOEXEC, (flags & O_CREAT) ? mode : 0, IN_ROOT_RESOLVE);
	while (fd < 0 && errno == EAGAIN); /* a rename raced the lookup: the kernel asks to retry */
	return fd;
}

int in_parent(int dirfd, const char *rel, char *leaf, size_t cap)
{
	size_t l = strlen(rel);
	while (l > 1 && rel[l - 1] == '/') l--;
	size_t s = l;
	while (s > 0 && rel[s - 1] != '/') s--;
	size_t n = l - s;
	if (!n || n >= cap || (n == 1 && rel[s] == '.') || (n == 2 && rel[s] == '.' && rel[s + 1] == '.')) {
		errno = EINVAL;
		return -1;
	}
	memcpy(leaf, rel + s, n);
	leaf[n] = 0;
	char dir[4096];
	if (s >= sizeof(dir)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if (s == 0) {
		dir[0] = '.';
		dir[1] = 0;
	} else {
		memcpy(dir, rel, s);
		dir[s] = 0;
	}
	return in_open(dirfd, dir, O_PATH | O_DIRECTORY, 0);
}

int in_mkdir_p(int dirfd, const char *rel)
{
	char p[4096];
	size_t l = strlen(rel);
	if (l >= sizeof(p)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(p, rel, l + 1);
	/* Each prefix is resolved from the root, so a link in it is followed inside the root. */
	for (size_t i = 1; i <= l; i++) {
		if (p[i] != '/' && p[i] != 0) continue;
		char c = p[i];
		p[i] = 0;
		int fd = in_open(dirfd, p, O_PATH | O_DIRECTORY, 0);
		if (fd < 0 && errno == ENOENT) {
			char leaf[256];
			int parent = in_parent(dirfd, p, leaf, sizeof(leaf));
			if (parent < 0) return -1;
			int r = mkdirat(parent, leaf, 0755);
			int e = errno;
			close(parent);
			if (r < 0 && e != EEXIST) {
				errno = e;
				return -1;
			}
			fd = in_open(dirfd, p, O_PATH | O_DIRECTORY, 0);
		}
		if (fd < 0) return -1;
		p[i] = c;
		if (c)
			close(fd);
		else
			return fd;
	}
	return in_open(dirfd, ".", O_PATH | O_DIRECTORY, 0);
}

int in_touch(int dirfd, const char *rel)
{
	char leaf[256];
	int parent = in_parent(dirfd, rel, leaf, sizeof(leaf));
	if (parent < 0 && errno == ENOENT) {
		char d[4096];
		size_t l = strlen(rel) - strlen(leaf);
		if (l >= sizeof(d)) {
			errno = ENAMETOOLONG;
			return -1;
		}
		memcpy(d, rel, l);
		d[l] = 0;
		int fd = in_mkdir_p(dirfd, l ? d : ".");
		if (fd < 0) return -1;
		close(fd);
		parent = in_parent(dirfd, rel, leaf, sizeof(leaf));
	}
	if (parent < 0) return -1;
	close(parent);
	int fd = in_open(dirfd, rel, O_WRONLY | O_CREAT | O_NOCTTY, 0644);
	if (fd < 0) return -1;
	close(fd);
	return 0;
}

static int attach(int mnt, int tfd)
{
	int r = (int)syscall(SYS_move_mount, mnt, "", tfd, "",
			     OVB_MOVE_MOUNT_F_EMPTY_PATH | OVB_MOVE_MOUNT_T_EMPTY_PATH);
	int e = errno;
	close(mnt);
	errno = e;
	return r;
}

int mount_fs_at(int tfd, const char *fstype, const char *src, const char *data, unsigned attrs)
{
	int fs = (int)syscall(SYS_fsopen, fstype, OVB_FSOPEN_CLOEXEC);
	if (fs < 0) return -1;
	char opt[4096];
	int r = 0;
	if (*src) r = (int)syscall(SYS_fsconfig, fs, OVB_FSCONFIG_SET_STRING, "source", src, 0);
	/* data is mount(8)'s comma list: key=value or a flag */
	while (r == 0 && *data) {
		const char *e = strchr(data, ',');
		size_t n = e ? (size_t)(e - data) : strlen(data);
		if (n >= sizeof(opt)) {
			errno = E2BIG;
			r = -1;
			break;
		}
		memcpy(opt, data, n);
		opt[n] = 0;
		char *eq = strchr(opt, '=');
		if (eq) *eq = 0;
		if (n)
			r = (int)syscall(SYS_fsconfig, fs, eq ? OVB_FSCONFIG_SET_STRING : OVB_FSCONFIG_SET_FLAG, opt,
					 eq ? eq + 1 : NULL, 0);
		data += n + (e ? 1 : 0);
	}
	if (r == 0) r = (int)syscall(SYS_fsconfig, fs, OVB_FSCONFIG_CMD_CREATE, NULL, NULL, 0);
	int m = r == 0 ? (int)syscall(SYS_fsmount, fs, OVB_FSMOUNT_CLOEXEC, attrs) : -1;
	int e = errno;
	close(fs);
	errno = e;
	return m < 0 ? -1 : attach(m, tfd);
}

static int fs_set(int fs, const char *key, struct layer l)
{
	if (l.fd >= 0) return (int)syscall(SYS_fsconfig, fs, OVB_FSCONFIG_SET_FD, key, NULL, l.fd);
	return (int)syscall(SYS_fsconfig, fs, OVB_FSCONFIG_SET_STRING, key, l.path, 0);
}

int mount_overlay_layers_at(int tfd, struct layer upper, struct layer work, const struct layer *lowers, int n)
{
	int fs = (int)syscall(SYS_fsopen, "overlay", OVB_FSOPEN_CLOEXEC);
	if (fs < 0) return -1;
	int r = 0;
	for (int i = 0; r == 0 && i < n; i++) {
		r = fs_set(fs, "lowerdir+", lowers[i]);
		if (r < 0 && errno == EINVAL && n == 1 && lowers[i].fd < 0) r = fs_set(fs, "lowerdir", lowers[i]);
	}
	if (r == 0) r = fs_set(fs, "upperdir", upper);
	if (r == 0) r = fs_set(fs, "workdir", work);
	if (r == 0) r = (int)syscall(SYS_fsconfig, fs, OVB_FSCONFIG_CMD_CREATE, NULL, NULL, 0);
	int m = r == 0 ? (int)syscall(SYS_fsmount, fs, OVB_FSMOUNT_CLOEXEC, 0) : -1;
	int e = errno;
	close(fs);
	errno = e;
	return m < 0 ? -1 : attach(m, tfd);
}

int mount_overlay_at(int tfd, const char *upper, const char *work, char *const *lowers, int n)
{
	struct layer l[OVB_MAX_LAYERS];
	if (n > OVB_MAX_LAYERS) {
		errno = E2BIG;
		return -1;
	}
	for (int i = 0; i < n; i++) l[i] = (struct layer){lowers[i], -1};
	return mount_overlay_layers_at(tfd, (struct layer){upper, -1}, (struct layer){work, -1}, l, n);
}

int setattr_at(int fd, int rec, unsigned attrs, unsigned long long prop)
{
	struct ovb_mount_attr a = {attrs, 0, prop, 0};
	return (int)syscall(SYS_mount_setattr, fd, "", AT_EMPTY_PATH | (rec ? AT_RECURSIVE : 0), &a, sizeof(a));
}

int bind_at(int sfd, const char *src, int tfd, int rec, unsigned attrs)
{
	int m = (int)syscall(SYS_open_tree, sfd, src,
			     OVB_OPEN_TREE_CLONE | O_CLOEXEC | (rec ? AT_RECURSIVE : 0) | (*src ? 0 : AT_EMPTY_PATH));
	if (m < 0) return -1;
	if (attrs && setattr_at(m, rec, attrs, 0) < 0) {
		int e = errno;
		close(m);
		errno = e;
		return -1;
	}
	return attach(m, tfd);
}
