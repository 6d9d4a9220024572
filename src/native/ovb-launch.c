/*
 * ovb-launch: interprets the programs described in PROTOCOL.md.
 *
 *   ovb-launch boot       fd 0 program, fd 1/2 log file, fd 3 status pipe, fd 4 control pipe
 *   ovb-launch teardown   fd 0 teardown program, fd 1/2 log file
 *
 * Processes: M (this process, the monitor), C (mount child, new mount namespace),
 * P (pid 1 of the subhost, forked by C in fork-pid1, reparented to M).
 */
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

int fast_stop_main(int argc, char **argv);
int peercred_main(void);

int main(int argc, char **argv)
{
	if (argc == 2 && !strcmp(argv[1], "--list-ops")) return list_ops();
	if (argc >= 2 && !strcmp(argv[1], "stop")) return fast_stop_main(argc, argv);
	if (argc == 6 && !strcmp(argv[1], "share")) return share_main(argc, argv);
	if (argc == 5 && !strcmp(argv[1], "unshare")) return share_main(argc, argv);
	if (argc == 5 && !strcmp(argv[1], "kill")) return kill_main(argv);
	if (argc >= 4 && !strcmp(argv[1], "enter")) return enter_main(argc, argv);
	if (argc == 6 && !strcmp(argv[1], "userns")) return userns_main(argv);
	if (argc == 2 && !strcmp(argv[1], "boot")) return boot_main();
	if (argc == 2 && !strcmp(argv[1], "teardown")) return teardown_main();
	if (argc == 2 && !strcmp(argv[1], "peercred")) return peercred_main();
	static const char u[] =
		"usage: ovb-launch boot|teardown|share PID START SRC DST|unshare PID START DST|enter PID START -- "
		"CMD...|kill PID START SIG|userns NAME FILE BASE COUNT|stop [-q] [--timeout S] CONF  (see "
		"src/native/PROTOCOL.md)\n";
	write_all(2, u, sizeof(u) - 1);
	return 2;
}
