/*
 * Defence in depth for unprivileged subhosts (PRIVILEGED=no; SECURITY.md): /proc masked
 * as runc masks it (`mask-proc`), then the capability bounding set cut to Docker's
 * default set and a seccomp filter refusing what moby's default profile refuses
 * (`confine`, the last op before `exec`; `enter` applies the same to what overlay-go runs).
 *
 * no_new_privs is not set: it would break the setuid programs of the host's root that an
 * overlay subhost uses (su, passwd, ping). Without it a setuid program can raise nothing
 * beyond the bounding set, and installing the filter needs CAP_SYS_ADMIN in the user
 * namespace, which pid 1 has until it drops it here.
 */
#define _GNU_SOURCE
#include "ovb-launch.h"
#include "sys.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

/* classic BPF and seccomp, from <linux/filter.h> and <linux/seccomp.h> (musl-gcc has no <linux/...>) */
struct sock_filter {
	uint16_t code;
	uint8_t jt, jf;
	uint32_t k;
};
struct sock_fprog {
	unsigned short len;
	struct sock_filter *filter;
};
struct seccomp_data {
	int nr;
	uint32_t arch;
	uint64_t instruction_pointer;
	uint64_t args[6];
};
#define BPF_LD	 0x00
#define BPF_W	 0x00
#define BPF_ABS	 0x20
#define BPF_JMP	 0x05
#define BPF_JEQ	 0x10
#define BPF_JGE	 0x30
#define BPF_JSET 0x40
#define BPF_K	 0x00
#define BPF_RET	 0x06
#define BPF_STMT(c, v)                                                                                                 \
	{                                                                                                              \
		(uint16_t)(c), 0, 0, (uint32_t)(v)                                                                     \
	}
#define BPF_JUMP(c, v, t, f)                                                                                           \
	{                                                                                                              \
		(uint16_t)(c), (uint8_t)(t), (uint8_t)(f), (uint32_t)(v)                                               \
	}
#define SECCOMP_MODE_FILTER	 2
#define SECCOMP_RET_KILL_PROCESS 0x80000000U
#define SECCOMP_RET_ERRNO	 0x00050000U
#define SECCOMP_RET_ALLOW	 0x7fff0000U
#define SECCOMP_RET_DATA	 0x0000ffffU

#if defined(__x86_64__)
#define OVB_AUDIT_ARCH 0xc000003eU /* AUDIT_ARCH_X86_64 */
#elif defined(__aarch64__)
#define OVB_AUDIT_ARCH 0xc00000b7U /* AUDIT_ARCH_AARCH64 */
#else
#error "confine.c: add this architecture's AUDIT_ARCH"
#endif

/*
 * Docker's default capabilities, plus CAP_NET_ADMIN: the subhost's network namespace is
 * its user namespace's, so it reaches only its own interfaces (which its init configures:
 * the cables). Every other capability leaves the bounding set.
 */
static const int keep_caps[] = {
	0,  /* CAP_CHOWN */
	1,  /* CAP_DAC_OVERRIDE */
	3,  /* CAP_FOWNER */
	4,  /* CAP_FSETID */
	5,  /* CAP_KILL */
	6,  /* CAP_SETGID */
	7,  /* CAP_SETUID */
	8,  /* CAP_SETPCAP */
	10, /* CAP_NET_BIND_SERVICE */
	12, /* CAP_NET_ADMIN (see above) */
	13, /* CAP_NET_RAW */
	18, /* CAP_SYS_CHROOT */
	27, /* CAP_MKNOD (a node it makes is useless: the user namespace's mounts are nodev) */
	29, /* CAP_AUDIT_WRITE */
	31, /* CAP_SETFCAP */
};

#ifndef SYS_fspick
#define SYS_fspick 433
#endif

/* Refused with EPERM: moby's default profile's refusals that a subhost's root could still reach. */
static const long refused[] = {
	SYS_kexec_load,
#ifdef SYS_kexec_file_load
	SYS_kexec_file_load,
#endif
	SYS_init_module,
	SYS_finit_module,
	SYS_delete_module,
	SYS_bpf,
	SYS_keyctl,
	SYS_add_key,
	SYS_request_key,
	SYS_reboot,
	SYS_swapon,
	SYS_swapoff,
	SYS_open_by_handle_at,
	SYS_perf_event_open,
	SYS_userfaultfd,
	SYS_acct,
	SYS_settimeofday,
	SYS_clock_settime,
	SYS_clock_adjtime,
	SYS_adjtimex,
	SYS_quotactl,
	SYS_fanotify_init,
	SYS_unshare,
	SYS_setns,
	SYS_pivot_root,
	SYS_mount,
	SYS_umount2,
	SYS_fsopen,
	SYS_fsmount,
	SYS_fspick,
	SYS_open_tree,
	SYS_move_mount,
	SYS_mount_setattr,
#ifdef SYS_iopl
	SYS_iopl,
	SYS_ioperm,
#endif
#ifdef SYS_lookup_dcookie
	SYS_lookup_dcookie,
#endif
#ifdef SYS_uselib
	SYS_uselib,
#endif
#ifdef SYS_nfsservctl
	SYS_nfsservctl,
#endif
};

#ifndef SYS_clone3
#define SYS_clone3 435
#endif
#define NS_FLAGS                                                                                                       \
	(CLONE_NEWNS | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWCGROUP |   \
	 CLONE_NEWTIME)

#define LD(off)	     BPF_STMT(BPF_LD | BPF_W | BPF_ABS, (off))
#define RET(v)	     BPF_STMT(BPF_RET | BPF_K, (v))
#define JEQ(k, t, f) BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (k), (t), (f))
#define ERRNO(e)     (SECCOMP_RET_ERRNO | ((e)&SECCOMP_RET_DATA))
#define N_REFUSED    (sizeof(refused) / sizeof(refused[0]))

/*
 * The filter: a foreign architecture (or x86_64's x32 numbers) is killed; each refused
 * number returns EPERM; clone with a namespace flag EPERM; clone3 ENOSYS (its flags are
 * behind a pointer a filter cannot read; the C library then falls back to clone).
 */
static int install_filter(void)
{
	struct sock_filter f[8 + 2 * N_REFUSED + 8];
	size_t n = 0;
	f[n++] = (struct sock_filter)LD(offsetof(struct seccomp_data, arch));
	f[n++] = (struct sock_filter)JEQ(OVB_AUDIT_ARCH, 1, 0);
	f[n++] = (struct sock_filter)RET(SECCOMP_RET_KILL_PROCESS);
	f[n++] = (struct sock_filter)LD(offsetof(struct seccomp_data, nr));
#if defined(__x86_64__)
	f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 0x40000000, 0, 1);
	f[n++] = (struct sock_filter)RET(SECCOMP_RET_KILL_PROCESS);
#endif
	for (size_t i = 0; i < N_REFUSED; i++) {
		f[n++] = (struct sock_filter)JEQ((unsigned)refused[i], 0, 1);
		f[n++] = (struct sock_filter)RET(ERRNO(EPERM));
	}
	f[n++] = (struct sock_filter)JEQ(SYS_clone3, 0, 1);
	f[n++] = (struct sock_filter)RET(ERRNO(ENOSYS));
	f[n++] = (struct sock_filter)JEQ(SYS_clone, 0, 3);
	/* clone's flags: the first argument on x86_64 and aarch64 (its low 32 bits: little-endian) */
	f[n++] = (struct sock_filter)LD(offsetof(struct seccomp_data, args[0]));
	f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, NS_FLAGS, 0, 1);
	f[n++] = (struct sock_filter)RET(ERRNO(EPERM));
	f[n++] = (struct sock_filter)RET(SECCOMP_RET_ALLOW);
	struct sock_fprog prog = {(unsigned short)n, f};
	return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0);
}

/* The bounding set cut to keep_caps, then the filter. 0, or -1 with errno. */
int confine_self(void)
{
	for (int c = 0; c <= 63; c++) {
		int keep = 0;
		for (size_t i = 0; i < sizeof(keep_caps) / sizeof(keep_caps[0]); i++) keep |= keep_caps[i] == c;
		if (keep) continue;
		if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0) {
			if (errno == EINVAL) break; /* past the kernel's last capability */
			return -1;
		}
	}
	return install_filter();
}

void op_confine(struct op *o)
{
	(void)o;
	if (!bs.is_pid1) fail(EINVAL, "confine before fork-pid1", NULL, NULL);
	if (confine_self() < 0) fail(errno, "confine", NULL, NULL);
}

/* runc's masked paths: files covered by /dev/null, directories by an empty read-only tmpfs. */
static const char *const masked[] = {
	"/proc/kcore", "/proc/kmsg",	    "/proc/sysrq-trigger", "/proc/timer_list",
	"/proc/keys",  "/proc/sched_debug", "/proc/latency_stats", "/proc/timer_stats",
	"/proc/acpi",  "/proc/scsi",	    "/sys/firmware",
};
/* runc's read-only paths. */
static const char *const readonly[] = {"/proc/sys", "/proc/bus", "/proc/irq", "/proc/fs"};

static void move_onto(int tree, const char *dst)
{
	if (syscall(SYS_move_mount, tree, "", AT_FDCWD, dst, OVB_MOVE_MOUNT_F_EMPTY_PATH) < 0)
		fail(errno, "mask-proc: move_mount onto", dst, NULL);
	close(tree);
}

/*
 * mask-proc (P, after pivot and /proc): what runc hides of /proc (and /sys/firmware) hidden,
 * what it keeps read-only kept read-only. A path this kernel lacks is skipped. The subhost
 * cannot undo it: umount needs CAP_SYS_ADMIN, which `confine` takes away.
 */
void op_mask_proc(struct op *o)
{
	(void)o;
	struct ovb_mount_attr ro = {OVB_MOUNT_ATTR_RDONLY, 0, 0, 0};
	for (size_t i = 0; i < sizeof(masked) / sizeof(masked[0]); i++) {
		struct stat st;
		if (lstat(masked[i], &st) < 0) continue;
		int t;
		if (S_ISDIR(st.st_mode)) {
			int fs = (int)syscall(SYS_fsopen, "tmpfs", OVB_FSOPEN_CLOEXEC);
			if (fs < 0 || syscall(SYS_fsconfig, fs, OVB_FSCONFIG_SET_STRING, "size", "0", 0) < 0 ||
			    syscall(SYS_fsconfig, fs, OVB_FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
				fail(errno, "mask-proc: tmpfs for", masked[i], NULL);
			t = (int)syscall(SYS_fsmount, fs, OVB_FSMOUNT_CLOEXEC, OVB_MOUNT_ATTR_RDONLY);
			close(fs);
		} else {
			t = (int)syscall(SYS_open_tree, AT_FDCWD, "/dev/null", OVB_OPEN_TREE_CLONE | O_CLOEXEC);
		}
		if (t < 0) fail(errno, "mask-proc: mount for", masked[i], NULL);
		move_onto(t, masked[i]);
	}
	for (size_t i = 0; i < sizeof(readonly) / sizeof(readonly[0]); i++) {
		int t = (int)syscall(SYS_open_tree, AT_FDCWD, readonly[i],
				     OVB_OPEN_TREE_CLONE | O_CLOEXEC | AT_RECURSIVE);
		if (t < 0 && errno == ENOENT) continue;
		if (t < 0 || syscall(SYS_mount_setattr, t, "", AT_EMPTY_PATH | AT_RECURSIVE, &ro, sizeof(ro)) < 0)
			fail(errno, "mask-proc: read-only", readonly[i], NULL);
		move_onto(t, readonly[i]);
	}
}
