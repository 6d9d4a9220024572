/* Processes named by pid and start time, pinned with a pidfd (issue 11). */
#define _GNU_SOURCE
#include "sys.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

long long proc_start_time(long long pid)
{
	char p[64], s[1024];
	struct buf b = BUF_INIT(p);
	b_str(&b, "/proc/");
	b_num(&b, pid);
	b_str(&b, "/stat");
	int fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd < 0) return -1;
	ssize_t n = read(fd, s, sizeof(s) - 1);
	close(fd);
	if (n <= 0) return -1;
	s[n] = 0;
	char *c = strrchr(s, ')');
	if (!c || c[1] != ' ') return -1;
	c += 2;
	if (*c == 'Z') return -1;
	for (int field = 3; field < 22; field++) {
		c = strchr(c, ' ');
		if (!c) return -1;
		c++;
	}
	unsigned long long v;
	char *e = strchr(c, ' ');
	if (!e) return -1; /* a cut line: field 22 is never the last */
	*e = 0;
	return parse_num(c, 10, &v) ? -1 : (long long)v;
}

int pin_process(long long pid, long long start)
{
	if (pid < 1 || pid > 0x7fffffff) {
		errno = ESRCH;
		return -1;
	}
	int fd = ovb_pidfd_open((int)pid);
	if (fd < 0) return -1;
	/* after the pidfd: the process it pins is the one whose start time matches */
	if (proc_start_time(pid) != start) {
		close(fd);
		errno = ESRCH;
		return -1;
	}
	return fd;
}
