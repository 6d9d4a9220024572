/*
 * ovb-launch peercred: the credentials of the peer of the Unix socket on fd 3, for
 * overlay-pkgd, which cannot ask the kernel itself (Node.js has no getsockopt). Node
 * passes an accepted connection as fd 3 (a net.Socket in spawn's stdio array); the
 * daemon reads nothing from the connection before it has this line.
 *
 *   stdout: peercred PID UID GID GROUPS\n    GROUPS: the supplementary gids, comma-separated, or -
 *   stderr: fail peercred ERRNO MESSAGE\n    (exit 1)
 *
 * SO_PEERCRED and SO_PEERGROUPS are the peer's at connect(2) time. Nothing is written
 * to fd 3: it is the client's connection.
 */
#define _GNU_SOURCE
#include "util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef SO_PEERGROUPS
#define SO_PEERGROUPS 59
#endif

static int peercred_fail(const char *what)
{
	int e = errno;
	char l[256];
	struct buf b = BUF_INIT(l);
	b_str(&b, "fail peercred ");
	b_num(&b, e);
	b_str(&b, " ");
	b_str(&b, what);
	b_str(&b, ": ");
	b_line(&b, strerror(e));
	b_chr(&b, '\n');
	write_all(2, b.p, b.len);
	return 1;
}

int peercred_main(void)
{
	struct ucred uc;
	socklen_t len = sizeof(uc);
	if (getsockopt(3, SOL_SOCKET, SO_PEERCRED, &uc, &len) < 0) return peercred_fail("getsockopt SO_PEERCRED");
	/* NGROUPS_MAX is 65536; ask with a small buffer first, the kernel says how much it needs */
	gid_t small[64], *groups = small;
	socklen_t glen = sizeof(small);
	int ng = 0;
	if (getsockopt(3, SOL_SOCKET, SO_PEERGROUPS, groups, &glen) < 0) {
		if (errno == ERANGE && (groups = malloc(glen)) && getsockopt(3, SOL_SOCKET, SO_PEERGROUPS, groups, &glen) == 0)
			ng = (int)(glen / sizeof(gid_t));
		else if (errno != ENOPROTOOPT) /* kernels before 4.13: the primary gid only */
			return peercred_fail("getsockopt SO_PEERGROUPS");
	} else {
		ng = (int)(glen / sizeof(gid_t));
	}
	/* 65536 groups of at most 10 digits and a comma each */
	size_t cap = 64 + (size_t)ng * 11;
	char *l = malloc(cap);
	if (!l) return peercred_fail("malloc");
	struct buf b = {l, 0, cap, 0};
	b_str(&b, "peercred ");
	b_num(&b, uc.pid);
	b_chr(&b, ' ');
	b_num(&b, uc.uid);
	b_chr(&b, ' ');
	b_num(&b, uc.gid);
	b_chr(&b, ' ');
	if (ng == 0) b_chr(&b, '-');
	for (int i = 0; i < ng; i++) {
		if (i) b_chr(&b, ',');
		b_num(&b, groups[i]);
	}
	b_chr(&b, '\n');
	if (b.over) {
		errno = EOVERFLOW;
		return peercred_fail("format");
	}
	if (write_all(1, b.p, b.len) < 0) return peercred_fail("write");
	return 0;
}
