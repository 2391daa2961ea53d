// SPDX-License-Identifier: GPL-2.0
/*
 * A fixed page-churning workload: maps anonymous memory, touches every page,
 * unmaps it, ROUNDS times. Each round allocates and frees MIB of base pages,
 * so every page goes through page_ref_set, gets and puts.
 *
 * usage: page-churn MIB ROUNDS [-t]
 * Reads one byte from stdin before it starts, so that tracers can attach
 * first (give it /dev/null to start at once). Prints "done PAGES pages";
 * with -t, then "elapsed NS ns": the rounds alone, timed by CLOCK_MONOTONIC
 * (test/bench/kernel.ts compares tracers by it, without process start-up).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int main(int argc, char **argv)
{
	int timed = argc == 4 && strcmp(argv[3], "-t") == 0;

	if ((argc != 3 && !timed) || atol(argv[1]) <= 0 || atol(argv[2]) <= 0) {
		fprintf(stderr, "usage: page-churn MIB ROUNDS [-t]\n");
		return 2;
	}
	size_t bytes = (size_t)atol(argv[1]) << 20;
	long rounds = atol(argv[2]);
	long page = sysconf(_SC_PAGESIZE);
	long long start;
	char go;

	if (read(0, &go, 1) < 0) {
		perror("page-churn: read");
		return 1;
	}
	start = now_ns();
	for (long r = 0; r < rounds; r++) {
		char *mem = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (mem == MAP_FAILED) {
			perror("page-churn: mmap");
			return 1;
		}
		madvise(mem, bytes, MADV_NOHUGEPAGE);
		for (size_t off = 0; off < bytes; off += page)
			mem[off] = 1;
		munmap(mem, bytes);
	}
	long long elapsed = now_ns() - start;
	printf("done %ld pages\n", (long)(bytes / page) * rounds);
	if (timed)
		printf("elapsed %lld ns\n", elapsed);
	return 0;
}
