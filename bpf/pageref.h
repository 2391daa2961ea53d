/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The one definition of what the BPF program hands to user space: the
 * record layout, the event types and the per-CPU counters. Included by
 * bpf/pageref.bpf.c and native/tracer.cc; the TypeScript decoder
 * (src/record/layout.ts) and proto/capture.proto follow it, and
 * test/layout.test.ts proves they agree field by field.
 */
#ifndef PAGEREF_H
#define PAGEREF_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define PAGEREF_COMM_LEN 16
#define PAGEREF_NAME_LEN 16

/*
 * Every event pageref attaches to: X(ENUM_SUFFIX, "subsystem", "event").
 * The order is the numbering of the record's `type` byte and is part of
 * the capture format: append, never reorder.
 */
#define PAGEREF_EVENTS(X)                                                   \
	X(PAGE_REF_SET, "page_ref", "page_ref_set")                             \
	X(PAGE_REF_MOD, "page_ref", "page_ref_mod")                             \
	X(PAGE_REF_MOD_AND_TEST, "page_ref", "page_ref_mod_and_test")           \
	X(PAGE_REF_MOD_AND_RETURN, "page_ref", "page_ref_mod_and_return")       \
	X(PAGE_REF_MOD_UNLESS, "page_ref", "page_ref_mod_unless")               \
	X(PAGE_REF_FREEZE, "page_ref", "page_ref_freeze")                       \
	X(PAGE_REF_UNFREEZE, "page_ref", "page_ref_unfreeze")                   \
	X(TEST_PAGES_ISOLATED, "page_isolation", "test_pages_isolated")         \
	X(CMA_ALLOC_START, "cma", "cma_alloc_start")                            \
	X(CMA_ALLOC_FINISH, "cma", "cma_alloc_finish")                          \
	X(CMA_ALLOC_BUSY_RETRY, "cma", "cma_alloc_busy_retry")                  \
	X(CMA_RELEASE, "cma", "cma_release")

#define PAGEREF_ENUM_ENTRY(suffix, subsystem, name) PAGEREF_EV_##suffix,
enum pageref_event_type {
	PAGEREF_EVENTS(PAGEREF_ENUM_ENTRY)
	PAGEREF_EV_COUNT
};
#undef PAGEREF_ENUM_ENTRY

/* stack_id when stacks were not requested; other negative values are -errno. */
#define PAGEREF_STACK_NONE (-1)

/* record.mt of page_ref records made by the tp_btf programs. */
#define PAGEREF_MT_UNKNOWN 0xff

/* Depth of one stack in the stack map: enough to reach the syscall entry. */
#define PAGEREF_STACK_DEPTH 32

/*
 * Isolation and CMA records have a ring buffer of their own, so that a
 * flood of page_ref records can never crowd out the failures they explain.
 * 4 MiB holds 43,690 records: minutes of the worst failure rate seen
 * (~700 isolation failures a second) if user space stops draining.
 */
#define PAGEREF_FAILURE_RING_BYTES (1 << 22)

/*
 * One fixed-size record per event, 96 bytes. The three 64-bit words after
 * pfn mean different things per event family; the unions name them.
 */
struct pageref_record {
	__u64 ts_ns;          /* bpf_ktime_get_ns(): CLOCK_MONOTONIC */
	__u64 pfn;            /* page_ref: pfn; isolation: start_pfn; cma: pfn (all ones: none) */
	union {
		struct {
			__u64 flags;  /* page->flags, masked to the page-flag bits */
			__u64 mapping;/* page->mapping (a kernel pointer; never written raw to disk) */
		} page;
		struct {
			__u64 end_pfn;
			__u64 fin_pfn;/* first pfn not isolated; >= end_pfn on success (free buddy blocks may overshoot) */
		} isolation;
		struct {
			__u64 count;  /* pages requested or released */
			__u64 align;
		} cma;
	};
	__u32 pid;            /* thread id of the task the event ran in */
	__u32 tgid;           /* its process id */
	__s32 count;          /* page_ref: refcount after the change */
	__s32 mapcount;
	__s32 val;            /* page_ref: the delta, or the value set;
	                         cma: 1 if the event's struct page was not NULL (6.1 reports a
	                         failed allocation only that way), else 0 */
	__s32 ret;            /* page_ref *_and_test/_return/_unless/freeze: ret;
	                         cma_alloc_finish: errorno where the kernel has it */
	__s32 stack_id;       /* kernel stack in the stacks map, or PAGEREF_STACK_NONE / -errno */
	__u16 cpu;
	__u8 type;            /* enum pageref_event_type */
	__u8 mt;              /* page_ref: migrate type of the page's pageblock;
	                         PAGEREF_MT_UNKNOWN when attached by BTF (not computed) */
	char comm[PAGEREF_COMM_LEN];
	char name[PAGEREF_NAME_LEN]; /* cma: the CMA area's name, truncated */
};

/*
 * Per CPU and per event type; user space sums over CPUs. For page_ref
 * events every run ends in exactly one of filtered, sampled_out,
 * counted_only, emitted or dropped, so those five add up to seen.
 */
struct pageref_counters {
	__u64 seen;           /* the program ran for this event */
	__u64 filtered;       /* rejected by the pid, comm or pfn filter, or the tracer's own */
	__u64 sampled_out;    /* rejected by --sample-pfn or --sample-events */
	__u64 counted_only;   /* kept, but by design no record: --aggregate, or not armed */
	__u64 emitted;        /* submitted to the ring buffer */
	__u64 dropped;        /* ring buffer full: the record is lost */
	__u64 stack_lost;     /* a stack was wanted but bpf_get_stackid() failed */
	__u64 aggregated;     /* --aggregate: added to the pfn's slot in pfn_stats */
	__u64 overflow;       /* --aggregate: the pfn has no slot (beyond --max-pfns) */
};

/* --pfn and --cma ranges, half-open: start <= pfn < end. */
#define PAGEREF_MAX_PFN_RANGES 16
struct pageref_pfn_range {
	__u64 start;
	__u64 end;
};

/* Isolation failures remembered by --stacks armed (the newest replace the oldest). */
#define PAGEREF_ARMED_RANGES 16

enum pageref_stacks_mode {
	PAGEREF_STACKS_NONE,    /* no stacks */
	PAGEREF_STACKS_ALL,     /* a stack on every record */
	PAGEREF_STACKS_SAMPLED, /* stacks on the records of 1 in stack_sample pfns */
	PAGEREF_STACKS_ARMED,   /* page_ref records (with stacks) only for armed pfns */
};

/*
 * --aggregate: one slot per traced pfn in an mmap-able array that user
 * space copies every interval. Totals since the start; 24 bytes.
 */
struct pageref_pfn_stats {
	__u64 last_ts_ns;     /* bpf_ktime_get_ns() of the pfn's last event */
	__u32 gets;           /* references taken */
	__u32 puts;           /* references dropped */
	__u32 events;         /* page_ref events of any kind */
	__s32 last_count;     /* refcount after the last event */
};

/*
 * Which pfns --sample-pfn keeps: hash % N == 0. A finalizer of murmur3 over
 * the pfn's two halves, so that neighbouring pfns (one allocation) spread.
 * src/record/pfn-hash.ts computes the same.
 */
static inline __u32 pageref_pfn_hash(__u64 pfn)
{
	__u32 x = (__u32)pfn ^ ((__u32)(pfn >> 32) * 0x9e3779b1u);

	x ^= x >> 16;
	x *= 0x85ebca6bu;
	x ^= x >> 13;
	x *= 0xc2b2ae35u;
	x ^= x >> 16;
	return x;
}

/* --stacks sampled picks its pfns by the hash of pfn ^ this, independently of --sample-pfn. */
#define PAGEREF_STACK_SAMPLE_SALT 0x5bd1e995u

#endif /* PAGEREF_H */
