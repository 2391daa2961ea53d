// SPDX-License-Identifier: GPL-2.0
/*
 * A process whose exit holds its pages in the exit path's batched freeing
 * while a CMA allocation runs over them: the case of the commit that added
 * the page_ref tracepoints (95813b8f), where isolation failed at a page that
 * release_pages <- free_pages_and_swap_cache <- tlb_flush_mmu <-
 * tlb_finish_mmu <- exit_mmap <- mmput <- do_exit had yet to free.
 *
 * usage: exit-race MIB [--cpu N] [--hog-ms MS] [--cma-range START-END]
 *
 * Pins itself to CPU N (default: the last one), faults in MIB of anonymous
 * base pages (MADV_NOHUGEPAGE; MADV_DONTFORK so the hog below shares none of
 * them) and prints "ready PAGES pages, K in [START, END)" (K only with
 * --cma-range; pfns come from pagemap, which needs root). Then waits for
 * SIGUSR1 and exits; SIGTERM exits at once without the hog.
 *
 * With --hog-ms MS > 0, on SIGUSR1 it first forks a hog: a SCHED_FIFO task
 * pinned to the same CPU that spins for MS milliseconds. The exit then runs
 * only in the slices that RT throttling (sched_rt_runtime_us of
 * sched_rt_period_us) leaves to normal tasks on that CPU. exit_mmap()'s
 * unmap_vmas() gathers up to ~10,000 unmapped pages in its mmu_gather and
 * frees them only when the batch is full or in tlb_finish_mmu(); preempted
 * in between (cond_resched() in zap_pmd_range()), the exiting task keeps
 * those pages referenced for as long as the hog runs, so a CMA allocation
 * meets them: migration cannot move a page with the batch's extra
 * reference, and test_pages_isolated() fails at it. Without the hog the
 * window is the few milliseconds a batch lives.
 *
 * Prints "exiting" (after the hog took the CPU) just before exit(0).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define PM_PRESENT (1ULL << 63)
#define PM_PFN_MASK ((1ULL << 55) - 1)

static void die(const char *what)
{
	fprintf(stderr, "exit-race: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void usage(void)
{
	fprintf(stderr, "usage: exit-race MIB [--cpu N] [--hog-ms MS] [--cma-range START-END]\n");
	exit(2);
}

static void pin_to(int cpu)
{
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set) < 0)
		die("sched_setaffinity");
}

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* How many of the pages at mem have a pfn in [lo, hi). */
static size_t pages_in(char *mem, size_t pages, long page, uint64_t lo, uint64_t hi)
{
	uint64_t *map = malloc(pages * sizeof(*map));
	if (!map)
		die("malloc");
	int fd = open("/proc/self/pagemap", O_RDONLY);
	if (fd < 0)
		die("open /proc/self/pagemap");
	size_t want = pages * sizeof(*map);
	if (pread(fd, map, want, (off_t)((uintptr_t)mem / page) * sizeof(*map)) != (ssize_t)want)
		die("read /proc/self/pagemap");
	close(fd);
	size_t n = 0;
	for (size_t i = 0; i < pages; i++) {
		uint64_t pfn = map[i] & PM_PFN_MASK;
		n += (map[i] & PM_PRESENT) && pfn >= lo && pfn < hi;
	}
	free(map);
	return n;
}

/* Forks the hog; returns once it runs SCHED_FIFO on cpu. */
static void start_hog(int cpu, long ms)
{
	int p[2];
	if (pipe(p) < 0)
		die("pipe");
	pid_t pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) {
		close(p[0]);
		pin_to(cpu);
		struct sched_param sp = { .sched_priority = 1 };
		if (sched_setscheduler(0, SCHED_FIFO, &sp) < 0)
			die("sched_setscheduler(SCHED_FIFO)");
		if (write(p[1], "h", 1) != 1)
			die("write");
		close(p[1]);
		uint64_t end = now_ms() + (uint64_t)ms;
		while (now_ms() < end)
			;
		_exit(0);
	}
	close(p[1]);
	char c;
	if (read(p[0], &c, 1) != 1) {
		fprintf(stderr, "exit-race: the hog did not start\n");
		exit(1);
	}
	close(p[0]);
}

int main(int argc, char **argv)
{
	if (argc < 2 || atol(argv[1]) <= 0)
		usage();
	size_t bytes = (size_t)atol(argv[1]) << 20;
	long page = sysconf(_SC_PAGESIZE);
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	int cpu = cpus > 0 ? (int)cpus - 1 : 0;
	long hog_ms = 0;
	uint64_t lo = 0, hi = 0;

	for (int i = 2; i < argc; i++) {
		char *end;
		if (strcmp(argv[i], "--cpu") == 0 && i + 1 < argc) {
			cpu = (int)strtol(argv[++i], &end, 10);
			if (*end || cpu < 0)
				usage();
		} else if (strcmp(argv[i], "--hog-ms") == 0 && i + 1 < argc) {
			hog_ms = strtol(argv[++i], &end, 10);
			if (*end || hog_ms < 0)
				usage();
		} else if (strcmp(argv[i], "--cma-range") == 0 && i + 1 < argc) {
			lo = strtoull(argv[++i], &end, 0);
			if (*end != '-')
				usage();
			hi = strtoull(end + 1, &end, 0);
			if (*end || hi <= lo)
				usage();
		} else {
			usage();
		}
	}

	pin_to(cpu);
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigprocmask(SIG_BLOCK, &set, NULL);

	char *mem = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		die("mmap");
	/* Base pages, each freed on its own; and none shared with the hog. */
	madvise(mem, bytes, MADV_NOHUGEPAGE);
	if (madvise(mem, bytes, MADV_DONTFORK) < 0)
		die("madvise(MADV_DONTFORK)");
	for (size_t off = 0; off < bytes; off += page)
		mem[off] = (char)off | 1;

	if (hi > lo)
		printf("ready %zu pages, %zu in [0x%llx, 0x%llx)\n", bytes / page,
		       pages_in(mem, bytes / page, page, lo, hi), (unsigned long long)lo,
		       (unsigned long long)hi);
	else
		printf("ready %zu pages\n", bytes / page);
	fflush(stdout);

	int sig;
	if (sigwait(&set, &sig) != 0)
		die("sigwait");
	if (sig == SIGUSR1 && hog_ms > 0)
		start_hog(cpu, hog_ms);
	printf("exiting\n");
	fflush(stdout);
	exit(0);
}
