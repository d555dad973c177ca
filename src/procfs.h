/* The process's own figures from /proc/self, for /metrics: CPU time,
 * resident memory, file descriptors and start time. */
#ifndef CONCH_PROCFS_H
#define CONCH_PROCFS_H

struct proc_figures {
	double cpu_seconds; /* user + system */
	double resident_bytes;
	double start_time; /* Unix seconds */
	long open_fds;
	long max_fds; /* the soft RLIMIT_NOFILE */
};

/* Reads them; -1 when /proc/self/stat cannot be read (not Linux). Fields
 * that cannot be read are -1. */
int procfs_read(struct proc_figures *out);

/* Parses the text of /proc/self/stat given the clock ticks a second, the
 * page size and the boot time (btime of /proc/stat); -1 when malformed. */
int procfs_parse_stat(const char *stat, long ticks, long page_size, double boot_time,
                      struct proc_figures *out);

#endif
