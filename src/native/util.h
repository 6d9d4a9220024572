/* Small helpers shared by ovb-launch and reaper (no stdio: keeps the static binaries small). */
#ifndef OVB_UTIL_H
#define OVB_UTIL_H
#include <stddef.h>

/*
 * A bounded string builder: appends stop at the capacity (always NUL-terminated) and
 * set `over`; a message may be cut, a path or a record must check `over` and fail.
 */
struct buf {
	char *p;
	size_t len, cap;
	int over;
};
#define BUF_INIT(arr)                                                                                                  \
	{                                                                                                              \
		(arr), 0, sizeof(arr), 0                                                                               \
	}

void b_mem(struct buf *b, const char *s, size_t n);
void b_str(struct buf *b, const char *s);
void b_chr(struct buf *b, char c);
void b_num(struct buf *b, long long v);
/* Appends s with newlines and other control characters replaced by '?' (one-line messages). */
void b_line(struct buf *b, const char *s);

/* write(2) until done; retries on EINTR. Returns 0, or -1 with errno set. */
int write_all(int fd, const void *p, size_t n);
/* Parses an unsigned number in base (8, 10); returns 0 when the whole string is a number. */
int parse_num(const char *s, int base, unsigned long long *out);
/* CLOCK_MONOTONIC in milliseconds / microseconds. */
long long mono_ms(void);
long long mono_us(void);

void b_json(struct buf *b, const char *s, size_t n);

#endif
