/*
 * The new system calls ovb-launch uses (openat2, the new mount API, pidfds):
 * musl has no wrappers and musl-gcc no <linux/...> headers, so the numbers and
 * structures are here. The numbers are the generic ones, the same on x86_64 and aarch64.
 */
#ifndef OVB_SYS_H
#define OVB_SYS_H
#include <stdint.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif
#ifndef SYS_open_tree
#define SYS_open_tree 428
#endif
#ifndef SYS_move_mount
#define SYS_move_mount 429
#endif
#ifndef SYS_fsopen
#define SYS_fsopen 430
#endif
#ifndef SYS_fsconfig
#define SYS_fsconfig 431
#endif
#ifndef SYS_fsmount
#define SYS_fsmount 432
#endif
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_openat2
#define SYS_openat2 437
#endif
#ifndef SYS_mount_setattr
#define SYS_mount_setattr 442
#endif

struct ovb_open_how {
	uint64_t flags, mode, resolve;
};
#define OVB_RESOLVE_NO_MAGICLINKS 0x02
#define OVB_RESOLVE_BENEATH	  0x08
#define OVB_RESOLVE_IN_ROOT	  0x10

struct ovb_mount_attr {
	uint64_t attr_set, attr_clr, propagation, userns_fd;
};
#define OVB_MOUNT_ATTR_RDONLY 0x01
#define OVB_MOUNT_ATTR_NOSUID 0x02
#define OVB_MOUNT_ATTR_NODEV  0x04
#define OVB_MOUNT_ATTR_NOEXEC 0x08

#define OVB_OPEN_TREE_CLONE	    1
#define OVB_MOVE_MOUNT_F_EMPTY_PATH 0x04
#define OVB_MOVE_MOUNT_T_EMPTY_PATH 0x40
#define OVB_FSOPEN_CLOEXEC	    1
#define OVB_FSMOUNT_CLOEXEC	    1
#define OVB_FSCONFIG_SET_FLAG	    0
#define OVB_FSCONFIG_SET_STRING	    1
#define OVB_FSCONFIG_SET_FD	    5
#define OVB_FSCONFIG_CMD_CREATE	    6
#ifndef AT_RECURSIVE
#define AT_RECURSIVE 0x8000
#endif
#ifndef AT_EMPTY_PATH
#define AT_EMPTY_PATH 0x1000
#endif
#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif
#define OVB_UMOUNT_NOFOLLOW 0x8

static inline int ovb_openat2(int dirfd, const char *path, int flags, unsigned mode, uint64_t resolve)
{
	struct ovb_open_how how = {(uint64_t)flags, mode, resolve};
	return (int)syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
}

static inline int ovb_pidfd_open(int pid)
{
	return (int)syscall(SYS_pidfd_open, pid, 0);
}

static inline int ovb_pidfd_kill(int pidfd, int sig)
{
	return (int)syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0);
}

/* Field 22 of /proc/PID/stat (start time in clock ticks), or -1 (gone or a zombie). */
long long proc_start_time(long long pid);

/*
 * Pins pid: pidfd_open first, then the start time is compared, so the pidfd
 * names the process that had that start time (a reused pid fails the check).
 * Returns the pidfd, or -1 with errno ESRCH (gone or another process).
 */
int pin_process(long long pid, long long start);

#endif
