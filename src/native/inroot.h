/*
 * Paths resolved inside a subhost's root (issue 11): a subhost's root can plant
 * symlinks in UPPER between boots, so no path below LIVE (or UPPER) may be
 * resolved by the host's rules. Every lookup goes through openat2 with
 * RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS from an O_PATH descriptor of the root,
 * and the change is made on the descriptor it returns (mkdirat, mknodat, ...).
 * With no root (dirfd AT_FDCWD) the same helpers resolve like the host does.
 */
#ifndef OVB_INROOT_H
#define OVB_INROOT_H
#include <stddef.h>
#include <sys/types.h>

/* The directory that paths below it are resolved inside (`root` op; "/" after pivot). */
struct root {
	char path[4096];
	size_t len;
	int fd; /* O_PATH; -1: no root, paths are host paths */
};

/* Sets r to dir (opened O_PATH|O_DIRECTORY by the host's rules: dir is a configuration path). */
int root_set(struct root *r, const char *dir);
/*
 * When r is set and path is r->path or below it, *rel is the rest ("." for the
 * root itself) and the root's fd is returned; otherwise (no root, or a host path
 * of the configuration such as a cgroup) *rel = path and AT_FDCWD is returned.
 * -1 (EINVAL) for a relative path once the root is "/".
 */
int root_rel(const struct root *r, const char *path, const char **rel);
/* open inside the root at dirfd (openat2 IN_ROOT|NO_MAGICLINKS), or openat for AT_FDCWD. O_CLOEXEC always. */
int in_open(int dirfd, const char *rel, int flags, mode_t mode);
/*
 * The parent directory of rel (O_PATH), resolved inside the root; its last
 * component is copied to leaf (refused when empty, "." or ".."). -1 with errno.
 */
int in_parent(int dirfd, const char *rel, char *leaf, size_t cap);
/*
 * mkdir -p inside the root: each missing directory created 0755 on the
 * resolved parent (mkdirat); returns an O_PATH fd of the final directory, or -1
 * with errno (ENOTDIR when something else stands there, ENOENT for a dangling link).
 */
int in_mkdir_p(int dirfd, const char *rel);
/* Create rel as an empty file unless it exists (its parents with in_mkdir_p). 0 or -1. */
int in_touch(int dirfd, const char *rel);


/* The new mount API, onto a target fd (from in_open O_PATH); attrs are OVB_MOUNT_ATTR_*. 0 or -1. */
/* A new filesystem: fsopen, fsconfig (source, then data as mount(8)'s comma list), fsmount, move_mount. */
int mount_fs_at(int tfd, const char *fstype, const char *src, const char *data, unsigned attrs);
/* A bind mount of sfd/src (src "" for sfd itself): open_tree(OPEN_TREE_CLONE), then attrs, move_mount. */
/*
 * An overlay of upper (with work) over lowers[0..n) (top first) attached on tfd, each
 * lower given alone as fsconfig "lowerdir+" (Linux 6.8), so no option string limits their
 * number or length and ',' ':' in them are plain characters. A kernel without "lowerdir+"
 * gets a single lower as "lowerdir" instead.
 */
int mount_overlay_at(int tfd, const char *upper, const char *work, char *const *lowers, int n);
/* overlayfs takes at most 500 lower layers. */
#define OVB_MAX_LAYERS 500
/* A layer of an overlay: a host path, or (fd >= 0) a directory descriptor, such as a detached idmapped mount. */
struct layer {
	const char *path;
	int fd;
};
/* mount_overlay_at with layers that may be descriptors (fsconfig FSCONFIG_SET_FD: Linux 6.13; detached mounts 6.15). */
int mount_overlay_layers_at(int tfd, struct layer upper, struct layer work, const struct layer *lowers, int n);
int bind_at(int sfd, const char *src, int tfd, int rec, unsigned attrs);
/* mount_setattr on the mount at fd: attrs set, propagation (MS_PRIVATE, MS_SLAVE or 0). */
int setattr_at(int fd, int rec, unsigned attrs, unsigned long long prop);

#endif
