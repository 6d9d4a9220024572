/* The op table (one row an op: arity, program, handler) and the decoder of programs (PROTOCOL.md). */
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

struct reader rd;


/*
 * The op protocol in one table (PROTOCOL.md; src/plan/types.ts NATIVE_OPS mirrors it and
 * test/native/protocol.test.ts checks the three agree; `ovb-launch --list-ops` prints it).
 */
const struct opdef opdefs[] = {
	{"name", 1, 0, IN_BOOT | IN_TEARDOWN, op_name, td_name},
	{"setenv", 2, 0, IN_BOOT | IN_TEARDOWN, op_setenv, td_setenv},
	{"step", 1, 0, IN_BOOT, op_step, NULL},
	{"hook", 2, 0, IN_BOOT, op_hook, NULL},
	{"root", 1, 0, IN_BOOT, op_root, NULL},
	{"write-if-missing", 3, 0, IN_BOOT, op_write, NULL},
	{"mkdir", 2, 0, IN_BOOT, op_mkdir, NULL},
	{"mount", 5, 0, IN_BOOT, op_mount, NULL},
	{"mount-overlay", 3, 1, IN_BOOT, op_mount_overlay, NULL},
	{"log-rotate", 3, 0, IN_BOOT, op_log_rotate, NULL},
	{"mknod", 7, 0, IN_BOOT, op_mknod, NULL},
	{"symlink", 2, 0, IN_BOOT, op_symlink, NULL},
	{"copy-if-missing", 3, 0, IN_BOOT, op_copy, NULL},
	{"bind-share", 2, 0, IN_BOOT, op_bind_share, NULL},
	{"bind-optional", 2, 0, IN_BOOT, op_bind_optional, NULL},
	{"cgroup", 1, 0, IN_BOOT, op_cgroup, NULL},
	{"cgroup-delegate", 3, 0, IN_BOOT, op_cgroup_delegate, NULL},
	{"netns", 1, 0, IN_BOOT, op_netns, NULL},
	{"link-up", 1, 0, IN_BOOT, op_link_up, NULL},
	{"open-exec", 1, 0, IN_BOOT, op_open_exec, NULL},
	{"idmap-lower", 3, 0, IN_BOOT, op_idmap_lower, NULL},
	{"idmap-overlay", 5, 1, IN_BOOT, op_idmap_overlay, NULL},
	{"chown-root", 3, 0, IN_BOOT, op_chown_root, NULL},
	{"userns", 1, 0, IN_BOOT, op_userns, NULL},
	{"fork-pid1", 0, 0, IN_BOOT, op_fork_pid1, NULL},
	{"hostname", 1, 0, IN_BOOT, op_hostname, NULL},
	{"pivot", 1, 0, IN_BOOT, op_pivot, NULL},
	{"mask-proc", 0, 0, IN_BOOT, op_mask_proc, NULL},
	{"confine", 0, 0, IN_BOOT, op_confine, NULL},
	{"exec", 0, 1, IN_BOOT, op_exec, NULL},
	{"fail", 1, 0, IN_BOOT, op_fail, NULL},
	{"teardown", 0, 0, IN_BOOT, NULL, NULL},
	{"log", 1, 0, IN_TEARDOWN, NULL, td_log},
	{"run", 2, 1, IN_TEARDOWN, NULL, td_run},
	{"del-netns", 1, 0, IN_TEARDOWN, NULL, td_del_netns},
	{"rmdir", 2, 0, IN_TEARDOWN, NULL, td_rmdir},
	{"unlink", 1, 0, IN_TEARDOWN, NULL, td_unlink},
	{"umount", 1, 0, IN_TEARDOWN, NULL, td_umount},
	{"del-link", 1, 0, IN_TEARDOWN, NULL, td_del_link},
};


char *next_str(void)
{
	if (rd.pos >= rd.len) return NULL;
	char *s = rd.buf + rd.pos, *z = memchr(s, 0, rd.len - rd.pos);
	if (!z) return NULL;
	rd.pos = (size_t)(z - rd.buf) + 1;
	return s;
}

int read_program(int fd)
{
	size_t cap = 65536;
	rd.buf = malloc(cap);
	if (!rd.buf) return -1;
	for (;;) {
		if (rd.len == cap) {
			char *n = realloc(rd.buf, cap *= 2);
			if (!n) return -1;
			rd.buf = n;
		}
		ssize_t r = read(fd, rd.buf + rd.len, cap - rd.len);
		if (r < 0 && errno == EINTR) continue;
		if (r < 0) return -1;
		if (r == 0) return 0;
		rd.len += (size_t)r;
	}
}

/* Decodes ops into p until the end of input or (in a boot program) the `teardown` op.
 * Returns 1 when `teardown` was met, 0 at the end, -1 on error (message in err). */
int decode(struct prog *p, int where, struct buf *err)
{
	for (;;) {
		if (rd.pos >= rd.len) return 0;
		char *name = next_str();
		if (!name) {
			b_str(err, "truncated program");
			return -1;
		}
		const struct opdef *d = NULL;
		for (size_t i = 0; i < n_opdefs; i++)
			if (!strcmp(opdefs[i].name, name) && (opdefs[i].where & where)) d = &opdefs[i];
		if (!d) {
			b_str(err, "unknown op \"");
			b_line(err, name);
			b_str(err, where == IN_BOOT ? "\" in boot program" : "\" in teardown program");
			return -1;
		}
		struct op o = {name, NULL, 0, d};
		int cap = d->fixed + 4;
		o.a = malloc(sizeof(char *) * (size_t)(cap + 1));
		if (!o.a) return -1;
		for (;;) {
			char *s = next_str();
			if (!s) {
				b_str(err, "truncated program in op ");
				b_str(err, name);
				return -1;
			}
			if (o.n >= d->fixed) {
				if (!*s) break;
				if (!d->variadic) {
					b_str(err, "too many arguments for op ");
					b_str(err, name);
					return -1;
				}
			}
			if (o.n == cap) {
				char **na = realloc(o.a, sizeof(char *) * (size_t)((cap *= 2) + 1));
				if (!na) return -1;
				o.a = na;
			}
			o.a[o.n++] = s;
		}
		o.a[o.n] = NULL;
		if (d->variadic && o.n == d->fixed) {
			b_str(err, "missing arguments for op ");
			b_str(err, name);
			return -1;
		}
		if (!strcmp(name, "teardown")) return 1;
		if (p->n == p->cap) {
			p->cap = p->cap ? p->cap * 2 : 64;
			struct op *no = realloc(p->ops, sizeof(struct op) * (size_t)p->cap);
			if (!no) return -1;
			p->ops = no;
		}
		p->ops[p->n++] = o;
	}
}

/* `ovb-launch --list-ops`: the table, one op a line: NAME FIXED variadic|fixed boot|teardown|boot,teardown */
int list_ops(void)
{
	char l[128];
	for (size_t i = 0; i < n_opdefs; i++) {
		const struct opdef *d = &opdefs[i];
		struct buf b = BUF_INIT(l);
		b_str(&b, d->name);
		b_chr(&b, ' ');
		b_num(&b, d->fixed);
		b_str(&b, d->variadic ? " variadic " : " fixed ");
		b_str(&b, d->where == (IN_BOOT | IN_TEARDOWN) ? "boot,teardown\n"
			  : d->where == IN_BOOT		      ? "boot\n"
							      : "teardown\n");
		write_all(1, b.p, b.len);
	}
	return 0;
}

const size_t n_opdefs = sizeof(opdefs) / sizeof(opdefs[0]);
