/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The few kernel types pageref.bpf.c reads, written by hand instead of a
 * generated vmlinux.h. preserve_access_index makes every field access a
 * CO-RE relocation, so only the names below have to match the running
 * kernel's BTF; offsets and sizes come from it at load time.
 * Layouts checked against the BTF of 6.1.192 and 6.12.117.
 */
#ifndef PAGEREF_TRACEPOINT_TYPES_H
#define PAGEREF_TRACEPOINT_TYPES_H

#pragma clang attribute push(__attribute__((preserve_access_index)), apply_to = record)

/* The current task, read by tp_btf programs instead of two helper calls. */
struct task_struct {
	int pid;
	int tgid;
	/* Copied in two 8-byte loads, not sixteen byte loads. It is 8-aligned in
	 * 6.1 and 6.12; elsewhere x86 loads it unaligned, which it allows. */
	char comm[16] __attribute__((aligned(8)));
};

struct trace_entry {
	unsigned short type;
	unsigned char flags;
	unsigned char preempt_count;
	int pid;
};

/* page_ref_set, page_ref_mod, page_ref_unfreeze */
struct trace_event_raw_page_ref_mod_template {
	struct trace_entry ent;
	unsigned long pfn;
	unsigned long flags;
	int count;
	int mapcount;
	void *mapping;
	int mt;
	int val;
};

/* page_ref_mod_and_test, page_ref_mod_and_return, page_ref_mod_unless, page_ref_freeze */
struct trace_event_raw_page_ref_mod_and_test_template {
	struct trace_entry ent;
	unsigned long pfn;
	unsigned long flags;
	int count;
	int mapcount;
	void *mapping;
	int mt;
	int val;
	int ret;
};

struct trace_event_raw_test_pages_isolated {
	struct trace_entry ent;
	unsigned long start_pfn;
	unsigned long end_pfn;
	unsigned long fin_pfn;
};

/* __data_loc_name: offset of the string from the start of the record in
 * the low 16 bits, its length (with the NUL) in the high 16 bits. */
struct trace_event_raw_cma_alloc_start {
	struct trace_entry ent;
	__u32 __data_loc_name;
	unsigned long count;
	unsigned int align;
};

struct trace_event_raw_cma_release {
	struct trace_entry ent;
	__u32 __data_loc_name;
	unsigned long pfn;
	const void *page;
	unsigned long count;
};

/*
 * Before "cma:tracing: Print alloc result in trace_cma_alloc_finish"
 * (v6.3), cma_alloc_finish and cma_alloc_busy_retry shared this class and
 * had no error code. That change gave each event its own type, below.
 */
struct trace_event_raw_cma_alloc_class {
	struct trace_entry ent;
	__u32 __data_loc_name;
	unsigned long pfn;
	const void *page;
	unsigned long count;
	unsigned int align;
};

struct trace_event_raw_cma_alloc_finish {
	struct trace_entry ent;
	__u32 __data_loc_name;
	unsigned long pfn;
	const void *page;
	unsigned long count;
	unsigned int align;
	int errorno;
};

struct trace_event_raw_cma_alloc_busy_retry {
	struct trace_entry ent;
	__u32 __data_loc_name;
	unsigned long pfn;
	const void *page;
	unsigned long count;
	unsigned int align;
};

/*
 * The tp_btf programs read the page itself. Only the fields named here must
 * exist in the running kernel's struct page (inside its unions is fine);
 * _refcount and _mapcount are atomic_t.
 */
struct pageref_atomic {
	int counter;
};

struct page {
	unsigned long flags;
	void *mapping;
	struct pageref_atomic _mapcount;
	struct pageref_atomic _refcount;
};

#pragma clang attribute pop

/* Only the enumerator is used: bpf_core_enum_value() takes its value from
 * the running kernel, where it depends on the configuration. */
enum pageflags {
	__NR_PAGEFLAGS = 0,
};

#endif /* PAGEREF_TRACEPOINT_TYPES_H */
