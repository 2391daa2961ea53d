// SPDX-License-Identifier: GPL-2.0
/*
 * Holds anonymous pages with extra references, the way a buggy driver or a
 * stuck pipe reader would: the pages are faulted in, then vmsplice()d into
 * pipes that nobody reads. vmsplice pins each page through GUP, so the
 * kernel cannot migrate it and CMA allocations over it fail isolation.
 *
 * usage: vmsplice-hold MIB
 * Prints "holding PAGES pages" when every page is pinned, then sleeps until
 * SIGINT or SIGTERM; exiting frees the pipes and so drops the references.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/uio.h>
#include <unistd.h>

#define PIPE_BYTES (4 << 20) /* root may exceed pipe-max-size: fewer pipes, fewer fds */

static volatile sig_atomic_t stop;

static void on_signal(int sig) { (void)sig; stop = 1; }

static void die(const char *what)
{
	fprintf(stderr, "vmsplice-hold: %s: %s\n", what, strerror(errno));
	exit(1);
}

int main(int argc, char **argv)
{
	if (argc != 2 || atol(argv[1]) <= 0) {
		fprintf(stderr, "usage: vmsplice-hold MIB\n");
		return 2;
	}
	size_t bytes = (size_t)atol(argv[1]) << 20;
	long page = sysconf(_SC_PAGESIZE);

	struct rlimit fds = { 65536, 65536 };
	setrlimit(RLIMIT_NOFILE, &fds);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);

	char *mem = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		die("mmap");
	/* Base pages only: a THP would be one compound page, pinned as a unit. */
	madvise(mem, bytes, MADV_NOHUGEPAGE);
	for (size_t off = 0; off < bytes; off += page)
		mem[off] = (char)off | 1;

	size_t done = 0;
	while (done < bytes) {
		int p[2];
		if (pipe(p) < 0)
			die("pipe");
		int size = fcntl(p[1], F_SETPIPE_SZ, PIPE_BYTES);
		if (size < 0)
			size = 16 * page;
		size_t chunk = bytes - done < (size_t)size ? bytes - done : (size_t)size;
		struct iovec iov = { mem + done, chunk };
		while (iov.iov_len > 0) {
			ssize_t n = vmsplice(p[1], &iov, 1, 0);
			if (n < 0)
				die("vmsplice");
			iov.iov_base = (char *)iov.iov_base + n;
			iov.iov_len -= n;
		}
		done += chunk;
	}
	printf("holding %zu pages\n", bytes / page);
	fflush(stdout);
	while (!stop)
		pause();
	return 0;
}
