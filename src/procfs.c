/* Process figures from /proc, read when /metrics is scraped: three small
 * files and one directory listing (O(open fds)). */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "procfs.h"

/* Fields of /proc/self/stat counted from the state field (field 3) on,
 * since the command name before it may hold spaces and parentheses. */
#define STAT_UTIME     (14 - 3)
#define STAT_STIME     (15 - 3)
#define STAT_STARTTIME (22 - 3)
#define STAT_RSS       (24 - 3)

int
procfs_parse_stat(const char *stat, long ticks, long page_size, double boot_time,
                  struct proc_figures *out)
{
	const char *p = strrchr(stat, ')');
	double field[STAT_RSS + 1];
	char *end;

	if (p == NULL || ticks <= 0)
		return -1;
	p++;
	for (int i = 0; i <= STAT_RSS; i++) {
		while (*p == ' ')
			p++;
		if (i == 0) { /* the state, a letter */
			if (*p == '\0' || *p == ' ')
				return -1;
			p++;
			continue;
		}
		field[i] = strtod(p, &end);
		if (end == p || (*end != ' ' && *end != '\n' && *end != '\0'))
			return -1;
		p = end;
	}
	out->cpu_seconds = (field[STAT_UTIME] + field[STAT_STIME]) / (double)ticks;
	out->start_time = boot_time + field[STAT_STARTTIME] / (double)ticks;
	out->resident_bytes = field[STAT_RSS] * (double)page_size;
	return 0;
}

static int
read_small(const char *path, char *dst, size_t size)
{
	FILE *f = fopen(path, "re");
	size_t n;

	if (f == NULL)
		return -1;
	n = fread(dst, 1, size - 1, f);
	fclose(f);
	dst[n] = '\0';
	return n > 0 ? 0 : -1;
}

/* The btime line of /proc/stat, after a line per CPU and the long intr line. */
static double
boot_time(void)
{
	FILE *f = fopen("/proc/stat", "re");
	char *line = NULL;
	size_t cap = 0;
	double t = 0;

	if (f == NULL)
		return 0;
	while (getline(&line, &cap, f) > 0)
		if (strncmp(line, "btime ", 6) == 0) {
			t = strtod(line + 6, NULL);
			break;
		}
	free(line);
	fclose(f);
	return t;
}

static long
open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	long n = 0;

	if (d == NULL)
		return -1;
	while ((e = readdir(d)) != NULL)
		n += e->d_name[0] != '.';
	closedir(d);
	return n - 1; /* the listing's own descriptor */
}

int
procfs_read(struct proc_figures *out)
{
	char stat[1024];
	struct rlimit rl;

	out->open_fds = open_fds();
	out->max_fds = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY
	                   ? (long)rl.rlim_cur
	                   : -1;
	if (read_small("/proc/self/stat", stat, sizeof(stat)) < 0)
		return -1;
	return procfs_parse_stat(stat, sysconf(_SC_CLK_TCK), sysconf(_SC_PAGESIZE), boot_time(),
	                         out);
}
