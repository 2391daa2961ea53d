// SPDX-License-Identifier: GPL-2.0
/*
 * Holds anonymous pages with extra references, the way a buggy driver or a
 * stuck pipe reader would: the pages are faulted in, then vmsplice()d into
 * pipes that nobody reads. vmsplice pins each page through GUP, so the
 * kernel cannot migrate it and CMA allocations over it fail isolation.
 *
 * usage: vmsplice-hold MIB [--pin-range START-END [--pins N] [--gate [--keep-range START-END]]]
 *
 * Without options every page of MIB is pinned; prints "holding PAGES pages".
 *
 * With --pin-range (pfns, decimal or 0x hex, END excluded) only up to N pages
 * (default 16) whose pfn is in the range are pinned, spread evenly over the
 * range; the rest of MIB is given back. This makes a few known pages block a
 * CMA allocation, instead of tens of thousands (vm/cma-workload.sh). Prints
 * "holding K pages: 0xPFN 0xPFN ..." (pfns ascending). Needs root: pagemap
 * shows pfns only to CAP_SYS_ADMIN. The other pages are given back before
 * the pins are taken. With --gate it prints "ready to pin" once MIB is
 * faulted in, and goes on (gives back, pins) only on SIGUSR1: a tracer
 * started in between sees the pins without the hundreds of thousands of
 * events of faulting in MIB. It starts while MIB still fills the CMA area,
 * so that its own memory lands outside it, as without the gate: pages of
 * the tracer's in the CMA area, migrated by the allocation, made isolation
 * fail at them too. With --keep-range (the CMA area) it first gives back
 * its pages outside that range: the area stays full, and the tracer has
 * the rest of memory (filling the area fills nearly all of it: the page
 * allocator keeps free CMA pages at about half of the free pages).
 *
 * Then sleeps until SIGINT or SIGTERM; exiting frees the pipes and so drops
 * the references.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/uio.h>
#include <unistd.h>

#define PIPE_BYTES (4 << 20) /* root may exceed pipe-max-size: fewer pipes, fewer fds */
#define PM_PRESENT (1ULL << 63)
#define PM_PFN_MASK ((1ULL << 55) - 1)

static volatile sig_atomic_t stop;

static void on_signal(int sig) { stop = sig; }

static void die(const char *what)
{
	fprintf(stderr, "vmsplice-hold: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void usage(void)
{
	fprintf(stderr, "usage: vmsplice-hold MIB [--pin-range START-END [--pins N] [--gate [--keep-range START-END]]]\n");
	exit(2);
}

/* Decimal, or hex with 0x: plain strtoul(.., 0) would read a leading 0 as octal. */
static int parse_pfn(const char *s, char **end, uint64_t *out)
{
	int base = (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) ? 16 : 10;
	if (base == 16)
		s += 2;
	if (*s < '0' || (*s > '9' && base == 10) || *s == '\0')
		return -1;
	errno = 0;
	*out = strtoull(s, end, base);
	return errno ? -1 : 0;
}

struct candidate {
	uint64_t pfn;
	size_t index; /* page number within the mapping */
};

static int by_pfn(const void *a, const void *b)
{
	uint64_t x = ((const struct candidate *)a)->pfn, y = ((const struct candidate *)b)->pfn;
	return x < y ? -1 : x > y;
}

/* vmsplice len bytes at addr into pipes; a new pipe whenever the current one is full. */
static void splice_all(char *addr, size_t len, long page)
{
	static int fd = -1;
	static size_t room; /* bytes the current pipe can still take without blocking */

	while (len > 0) {
		if (fd < 0 || room == 0) {
			int p[2];
			if (pipe(p) < 0)
				die("pipe");
			int size = fcntl(p[1], F_SETPIPE_SZ, PIPE_BYTES);
			room = size < 0 ? 16 * (size_t)page : (size_t)size;
			fd = p[1];
		}
		struct iovec iov = { addr, len < room ? len : room };
		ssize_t n = vmsplice(fd, &iov, 1, 0);
		if (n < 0)
			die("vmsplice");
		/* A pipe slot holds at most one page, so count whole pages. */
		size_t used = ((size_t)n + page - 1) / page * page;
		room = used < room ? room - used : 0;
		addr += n;
		len -= n;
	}
}

/* The pagemap entries of pages pages from addr. */
static void read_pagemap(char *addr, size_t pages, long page, uint64_t *map)
{
	int fd = open("/proc/self/pagemap", O_RDONLY);
	if (fd < 0)
		die("open /proc/self/pagemap");
	size_t want = pages * sizeof(*map);
	if (pread(fd, map, want, (off_t)((uintptr_t)addr / page) * sizeof(*map)) != (ssize_t)want)
		die("read /proc/self/pagemap");
	close(fd);
}

/* Gives back (MADV_DONTNEED) every page i of mem with !keep[i], in runs. */
static void give_back_unkept(char *mem, size_t pages, long page, const char *keep)
{
	size_t run = 0;
	for (size_t i = 0; i <= pages; i++) {
		if (i < pages && !keep[i])
			continue;
		if (i > run && madvise(mem + run * page, (i - run) * page, MADV_DONTNEED) < 0)
			die("madvise(MADV_DONTNEED)");
		run = i + 1;
	}
}

/* Gives back the pages of mem whose pfn is outside [lo, hi). */
static void give_back_outside(char *mem, size_t pages, long page, uint64_t lo, uint64_t hi)
{
	uint64_t *map = malloc(pages * sizeof(*map));
	char *keep = malloc(pages);
	if (!map || !keep)
		die("malloc");
	read_pagemap(mem, pages, page, map);
	for (size_t i = 0; i < pages; i++) {
		uint64_t pfn = map[i] & PM_PFN_MASK;
		keep[i] = (map[i] & PM_PRESENT) && pfn >= lo && pfn < hi;
	}
	give_back_unkept(mem, pages, page, keep);
	free(map);
	free(keep);
}

/*
 * Chooses up to pins pages of mem whose pfn is in [lo, hi) and gives back all
 * the others, so that the CMA area is free apart from the chosen pages: a
 * failed allocation then stops at a chosen page, not at whatever else was
 * there. Returns how many were chosen; their page numbers go to chosen[].
 */
static size_t choose_in_range(char *mem, size_t pages, long page, uint64_t lo, uint64_t hi, size_t pins,
			      size_t *chosen)
{
	uint64_t *map = malloc(pages * sizeof(*map));
	struct candidate *cand = malloc(pages * sizeof(*cand));
	char *keep = calloc(pages, 1);
	if (!map || !cand || !keep)
		die("malloc");
	read_pagemap(mem, pages, page, map);

	size_t n = 0, present = 0, zero = 0;
	for (size_t i = 0; i < pages; i++) {
		if (!(map[i] & PM_PRESENT))
			continue;
		present++;
		uint64_t pfn = map[i] & PM_PFN_MASK;
		zero += pfn == 0;
		if (pfn >= lo && pfn < hi)
			cand[n++] = (struct candidate){ pfn, i };
	}
	if (present > 0 && zero == present) {
		fprintf(stderr, "vmsplice-hold: pagemap shows no pfns (needs CAP_SYS_ADMIN)\n");
		exit(1);
	}

	/*
	 * Spread the choice over the pfn range rather than take the lowest: then
	 * every part of the range is blocked, whichever window an allocation
	 * tries.
	 */
	qsort(cand, n, sizeof(*cand), by_pfn);
	size_t k = n < pins ? n : pins;
	for (size_t j = 0; j < k; j++) {
		/* The middle of each of k equal slices of the candidates. */
		chosen[j] = cand[(2 * j + 1) * n / (2 * k)].index;
		keep[chosen[j]] = 1;
	}
	if (k == 0) {
		fprintf(stderr, "vmsplice-hold: none of %zu pages had a pfn in [0x%llx, 0x%llx)\n", pages,
			(unsigned long long)lo, (unsigned long long)hi);
		exit(1);
	}

	give_back_unkept(mem, pages, page, keep);
	free(map);
	free(cand);
	free(keep);
	return k;
}

/* Pins the chosen pages and prints "holding K pages: 0xPFN ..." with the pfns they have now. */
static void pin_chosen(char *mem, long page, const size_t *chosen, size_t k)
{
	uint64_t pfns[k];
	for (size_t j = 0; j < k; j++) {
		splice_all(mem + chosen[j] * page, page, page);
		/* Read after the pin: a pinned page can no longer move. */
		read_pagemap(mem + chosen[j] * page, 1, page, &pfns[j]);
		pfns[j] &= PM_PFN_MASK;
	}
	printf("holding %zu pages:", k);
	for (size_t j = 0; j < k; j++)
		printf(" 0x%llx", (unsigned long long)pfns[j]);
	printf("\n");
}

/* With --gate: says "ready" and waits for SIGUSR1 (or the end) before giving back and pinning. */
static volatile sig_atomic_t go;

static void on_go(int sig) { (void)sig; go = 1; }

static void wait_for_go(void)
{
	/* Blocked until sigsuspend: a signal between the test and the wait is not missed. */
	sigset_t block, old;
	sigemptyset(&block);
	sigaddset(&block, SIGUSR1);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	sigprocmask(SIG_BLOCK, &block, &old);
	/* Told to stop while faulting in (the caller's watchdog, on a host so
	 * busy that it took minutes): not ready, and the status says why. */
	if (stop)
		exit(128 + stop);
	printf("ready to pin\n");
	fflush(stdout);
	while (!go && !stop)
		sigsuspend(&old);
	sigprocmask(SIG_SETMASK, &old, NULL);
	if (stop)
		exit(128 + stop);
}

int main(int argc, char **argv)
{
	if (argc < 2 || atol(argv[1]) <= 0)
		usage();
	size_t bytes = (size_t)atol(argv[1]) << 20;
	long page = sysconf(_SC_PAGESIZE);

	int ranged = 0, gate = 0, keep_ranged = 0;
	uint64_t lo = 0, hi = 0, keep_lo = 0, keep_hi = 0;
	long pins = 0;
	for (int i = 2; i < argc; i++) {
		char *end;
		if (strcmp(argv[i], "--pin-range") == 0 && i + 1 < argc) {
			const char *s = argv[++i];
			if (parse_pfn(s, &end, &lo) < 0 || *end != '-' || parse_pfn(end + 1, &end, &hi) < 0 ||
			    *end != '\0' || hi <= lo) {
				fprintf(stderr, "vmsplice-hold: --pin-range wants START-END with START < END, not '%s'\n", s);
				exit(2);
			}
			ranged = 1;
		} else if (strcmp(argv[i], "--keep-range") == 0 && i + 1 < argc) {
			const char *s = argv[++i];
			if (parse_pfn(s, &end, &keep_lo) < 0 || *end != '-' ||
			    parse_pfn(end + 1, &end, &keep_hi) < 0 || *end != '\0' || keep_hi <= keep_lo) {
				fprintf(stderr, "vmsplice-hold: --keep-range wants START-END with START < END, not '%s'\n", s);
				exit(2);
			}
			keep_ranged = 1;
		} else if (strcmp(argv[i], "--gate") == 0) {
			gate = 1;
		} else if (strcmp(argv[i], "--pins") == 0 && i + 1 < argc) {
			pins = strtol(argv[++i], &end, 10);
			if (*end != '\0' || pins <= 0) {
				fprintf(stderr, "vmsplice-hold: --pins wants a positive number, not '%s'\n", argv[i]);
				exit(2);
			}
		} else {
			usage();
		}
	}

	if (((pins || gate) && !ranged) || (keep_ranged && !gate))
		usage();
	if (!pins)
		pins = 16;

	struct rlimit fds = { 65536, 65536 };
	setrlimit(RLIMIT_NOFILE, &fds);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGUSR1, on_go);

	char *mem = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		die("mmap");
	/* Base pages only: a THP would be one compound page, pinned as a unit. */
	madvise(mem, bytes, MADV_NOHUGEPAGE);
	for (size_t off = 0; off < bytes; off += page)
		mem[off] = (char)off | 1;

	if (ranged) {
		size_t chosen[pins];
		if (keep_ranged)
			give_back_outside(mem, bytes / page, page, keep_lo, keep_hi);
		if (gate)
			wait_for_go();
		size_t k = choose_in_range(mem, bytes / page, page, lo, hi, (size_t)pins, chosen);
		pin_chosen(mem, page, chosen, k);
	} else {
		splice_all(mem, bytes, page);
		printf("holding %zu pages\n", bytes / page);
	}
	fflush(stdout);
	while (!stop)
		pause();
	return 0;
}
