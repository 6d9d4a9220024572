#define _GNU_SOURCE
#include "util.h"

#include <errno.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

void b_mem(struct buf *b, const char *s, size_t n)
{
	if (b->cap == 0) return;
	size_t room = b->cap - 1 - b->len;
	if (n > room) {
		n = room;
		b->over = 1;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = 0;
}

void b_str(struct buf *b, const char *s)
{
	b_mem(b, s, strlen(s));
}

void b_chr(struct buf *b, char c)
{
	b_mem(b, &c, 1);
}

void b_num(struct buf *b, long long v)
{
	char t[24], *e = t + sizeof(t), *q = e;
	unsigned long long u = v < 0 ? -(unsigned long long)v : (unsigned long long)v;
	do *--q = (char)('0' + u % 10);
	while (u /= 10);
	if (v < 0) *--q = '-';
	b_mem(b, q, (size_t)(e - q));
}

void b_line(struct buf *b, const char *s)
{
	for (; *s; s++) b_chr(b, (unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s);
}

int write_all(int fd, const void *p, size_t n)
{
	const char *c = p;
	while (n) {
		ssize_t w = write(fd, c, n);
		if (w < 0) {
			if (errno == EINTR) continue;
			return -1;
		}
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

int parse_num(const char *s, int base, unsigned long long *out)
{
	unsigned long long v = 0;
	if (!*s) return -1;
	for (; *s; s++) {
		unsigned d = (unsigned)(*s - '0');
		if (d >= (unsigned)base) return -1;
		if (v > (~0ULL - d) / (unsigned)base) return -1;
		v = v * (unsigned)base + d;
	}
	*out = v;
	return 0;
}

long long mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

long long mono_ms(void)
{
	return mono_us() / 1000;
}

/* Append s[0..n) escaped for a JSON string (no quotes): shared by the monitor's log and the reaper's report. */
void b_json(struct buf *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '"' || c == '\\') {
			b_chr(b, '\\');
			b_chr(b, (char)c);
		} else if (c == '\n') {
			b_str(b, "\\n");
		} else if (c == '\r') {
			b_str(b, "\\r");
		} else if (c == '\t') {
			b_str(b, "\\t");
		} else if (c < 0x20 || c == 0x7f) {
			b_str(b, "\\u00");
			b_chr(b, hex[c >> 4]);
			b_chr(b, hex[c & 15]);
		} else {
			b_chr(b, (char)c);
		}
	}
}
