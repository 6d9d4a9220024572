/* ovb-launch's parts (PROTOCOL.md): the op table and decoder, the monitor's log, the
 * boot ops (C and P), the teardown ops, the monitor (M), and share/enter/kill. Each part's
 * state is one struct, declared here. */
#ifndef OVB_LAUNCH_H
#define OVB_LAUNCH_H
#include <stddef.h>
#include <sys/types.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include "inroot.h"
#include "util.h"

#define LOG_LINE_MAX	4096
#define STATUS_LINE_MAX 4000 /* < PIPE_BUF */
#define KILL_WAIT_MS	5000 /* bound on waiting for a SIGKILLed child */

struct opdef;

struct op {
	const char *name;
	char **a; /* arguments, NULL-terminated */
	int n;
	const struct opdef *def;
};

struct prog {
	struct op *ops;
	int n, cap;
};

enum { IN_BOOT = 1, IN_TEARDOWN = 2 };

/* Boot ops run in C or P and end the process on failure (fail); teardown ops return 1 done, 0 failed. */
void op_bind_optional(struct op *o);
void op_bind_share(struct op *o);
void op_cgroup(struct op *o);
void op_cgroup_delegate(struct op *o);
void op_chown_root(struct op *o);
void op_confine(struct op *o);
void op_copy(struct op *o);
void op_exec(struct op *o);
void op_fail(struct op *o);
void op_fork_pid1(struct op *o);
void op_hook(struct op *o);
void op_hostname(struct op *o);
void op_idmap_lower(struct op *o);
void op_idmap_overlay(struct op *o);
void op_link_up(struct op *o);
void op_mask_proc(struct op *o);
void op_mkdir(struct op *o);
void op_mknod(struct op *o);
void op_mount(struct op *o);
void op_mount_overlay(struct op *o);
void op_log_rotate(struct op *o);
void op_name(struct op *o);
void op_netns(struct op *o);
void op_open_exec(struct op *o);
void op_pivot(struct op *o);
void op_root(struct op *o);
void op_setenv(struct op *o);
void op_step(struct op *o);
void op_symlink(struct op *o);
void op_userns(struct op *o);
void op_write(struct op *o);
int td_del_link(struct op *o);
int td_del_netns(struct op *o);
int td_log(struct op *o);
int td_name(struct op *o);
int td_rmdir(struct op *o);
int td_run(struct op *o);
int td_setenv(struct op *o);
int td_umount(struct op *o);
int td_unlink(struct op *o);

struct opdef {
	const char *name;
	int fixed;    /* number of fixed arguments (each may be empty) */
	int variadic; /* then 1 or more non-empty arguments up to the terminator */
	int where;    /* IN_BOOT, IN_TEARDOWN */
	void (*boot)(struct op *);
	int (*teardown)(struct op *);
};

extern const struct opdef opdefs[];
extern const size_t n_opdefs;

/* Splits a byte stream into lines of at most max bytes. */
struct lines {
	char buf[LOG_LINE_MAX];
	size_t len, max;
	void (*emit)(const char *, size_t, const void *);
	const void *ctx;
};

/* decode.c: the program read from fd 0 */
struct reader {
	char *buf;
	size_t len, pos;
};
extern struct reader rd;

/* log.c: M's log lines and status pipe */
struct logstate {
	char subhost[256];
	long mpid;
	int status_fd; /* fd 3 towards the library, -1 once closed */
};
extern struct logstate lg;

/* logrotate.c: M rotates LOG (op log-rotate) */
struct prog;
void log_rotate_setup(const struct prog *boot);
void log_rotate_check(size_t n);
int log_rotate_reaped(pid_t pid, int status);
void log_rotate_finish(void);

/* bootops.c: C and P */
struct bootstate {
	const char *step; /* the current step, for fail lines */
	int sigfd;	  /* signalfd for SIGCHLD */
	int exec_fd;	  /* open-exec */
	int is_pid1;	  /* after fork-pid1, in P */
	int op;		  /* index of the running op (`created` lines) */
	struct root root; /* paths below it are resolved inside it */
};
extern struct bootstate bs;

/* teardown.c: M running a teardown program */
struct tdstate {
	int sigfd; /* signalfd (SIGCHLD, SIGTERM, SIGINT, SIGHUP) */
	pid_t run_pid;
	int run_status, run_done;
};
extern struct tdstate tds;

/* monitor.c: M */
struct monitor {
	pid_t c_pid, p_pid, hook_pg;
	int c_done, c_status, p_done, p_status;
	int ready_seen, ready_ok, fail_seen, detached, committed, aborted;
	int created[16], n_created; /* indexes of write-if-missing ops that created their file */
	const char *abort_why;
	char m_step[128];
	int str; /* read end of the internal status pipe */
	struct lines st_lines;
};
extern struct monitor mon;

char *next_str(void);
int bind_target(const char *what, const struct stat *src, const char *dst, int make);
int boot_main(void);
int create_file(const char *what, const char *dst, unsigned long long mode, int in, const char *buf);
int decode(struct prog *p, int where, struct buf *err);
int del_link(const char *ifname);
int enter_main(int argc, char **argv);
int kill_main(char **argv);
int list_ops(void);
int mkdir_p(const char *what, const char *path);
int parent_of(const char *what, const char *path, char *leaf, size_t cap);
int pin_arg(const char *pid_s, const char *start_s);
int pump(int fd, struct lines *l);
int read_program(int fd);
int run_teardown(struct prog *t);
int setup_signals(void);
int share_main(int argc, char **argv);
int sub_path(const char *what, const char *path, const char **rel);
int teardown_main(void);
int wait_child(pid_t pid, int *st, long long deadline);
void __attribute__((noreturn)) child_main(struct prog *boot, const int logp[2], const int stp[2], int msfd);
void __attribute__((noreturn)) fail(int err, const char *what, const char *path, const char *more);
void __attribute__((noreturn)) fail_mount(int e, const char *what, const char *src, const char *tgt);
void blocking(int fd);
void do_abort(const char *why);
void drain_signals(void);
void drain_status(void);
void emit_log(const char *s, size_t n, const void *ctx);
void hook_pgrp(pid_t pg);
void json_log(int level, const char *source, const char *msg, size_t n);
void lines_feed(struct lines *l, const char *p, size_t n);
void lines_flush(struct lines *l);
void logf_(int level, const char *a, const char *b_, const char *c, int err);
void m_fail(int err, const char *msg);
void mount_in_root(struct op *o, const char *rel, unsigned long fl, unsigned long prop);
void on_signal(const struct signalfd_siginfo *si);
void on_status_line(const char *s, size_t n, const void *ctx);
void reap_all(void);
void remove_created(const struct prog *boot);
void reopen_stdin(void);
void run_boot(struct prog *p);
void set_name(const char *n);
void st_line(struct buf *b);
void status_write(const char *s, size_t n);
int fast_stop_main(int argc, char **argv);
int userns_main(char **argv);
int in_other_userns(pid_t pid);
int confine_self(void);

#endif
