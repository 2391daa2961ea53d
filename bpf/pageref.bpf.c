// SPDX-License-Identifier: GPL-2.0
/*
 * Kernel side of pageref: one program per tracepoint in PAGEREF_EVENTS.
 * Each one counts, filters and samples (page_ref events only), adds to
 * the per-pfn totals (--aggregate), and reserves a record, fills every
 * byte of it and submits it. What to keep is decided here, before a
 * record is reserved; how to interpret it is user space's business.
 */
#include <linux/types.h>
#include <linux/bpf.h>
#include <stdbool.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "tracepoint-types.h"
#include "pageref.h"

char LICENSE[] SEC("license") = "GPL";

/* Set by user space before load; the verifier prunes what they switch off. */
const volatile bool filter_pids = false;
const volatile bool filter_comms = false;
const volatile __u32 stacks_mode = PAGEREF_STACKS_NONE;
const volatile __u32 stack_sample = 1;    /* PAGEREF_STACKS_SAMPLED: 1 in N pfns get stacks */
const volatile __u32 sample_pfn = 1;      /* keep the pfns whose hash % N == 0 */
const volatile __u32 sample_events = 1;   /* keep 1 in N events, per CPU and event type */
const volatile bool aggregate = false;
/*
 * The tracer's own process (0: none). Its page references are what tracing
 * costs, not what is traced: writing a capture allocates page cache, whose
 * events would become records, whose writing allocates more. Like --pid,
 * this looks at the current task, so an interrupt that lands in the tracer
 * is not traced either.
 */
const volatile __u32 self_tgid = 0;
const volatile __u64 aggregate_slots = 0; /* entries of pfn_stats */
/* No ranges: every pfn, and a pfn's slot is the pfn itself. */
const volatile __u32 pfn_range_count = 0;
const volatile struct pageref_pfn_range pfn_ranges[PAGEREF_MAX_PFN_RANGES] = {};
const volatile __u64 pfn_range_slot[PAGEREF_MAX_PFN_RANGES] = {}; /* slot of each range's start */

/*
 * Isolation failures seen with --stacks armed. Written only by
 * test_pages_isolated, which is rare; two CPUs failing at the same moment
 * may both take the same entry, and then one range is armed a little later.
 */
struct pageref_pfn_range armed[PAGEREF_ARMED_RANGES] = {};
__u32 armed_next = 0;

/*
 * x86-64 keeps struct pages in one virtual array from vmemmap_base, which
 * KASLR moves: read once (libbpf finds the variable's address in kallsyms).
 * Kernels without CONFIG_RANDOMIZE_MEMORY have no such variable and use
 * the fixed base of 4-level paging.
 */
extern const void vmemmap_base __ksym __weak;
#define VMEMMAP_BASE_4_LEVEL 0xffffea0000000000ULL

/*
 * The pfn is the page's place in that array, so the program needs the
 * page's address as a number. The verifier allows no arithmetic on a BTF
 * pointer, but for a privileged loader the difference of two pointers is
 * a number: page - &pfn_origin. The first event learns what that
 * difference is at pfn 0 (one bpf_probe_read_kernel of its page's address);
 * after that a pfn costs a subtraction and a division, not a helper call
 * per event. &pfn_origin is only an address that never moves (.bss), and
 * one variable, so another CPU sees it learnt whole or not at all.
 */
__u64 pfn_origin = 0;       /* vmemmap_base - &pfn_origin; 0 until learnt */

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 22); /* resized before load */
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, PAGEREF_FAILURE_RING_BYTES);
} failures SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(max_entries, 1);       /* resized before load */
	__uint(key_size, sizeof(__u32));
	__uint(value_size, PAGEREF_STACK_DEPTH * sizeof(__u64));
} stacks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, PAGEREF_EV_COUNT);
	__type(key, __u32);
	__type(value, struct pageref_counters);
} counters SEC(".maps");

/*
 * --aggregate: an array indexed by slot, not a hash: the JIT inlines an
 * array lookup into a few instructions, and nothing is ever evicted; pfns
 * without a slot are counted as overflow.
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);       /* resized before load */
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct pageref_pfn_stats);
} pfn_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);           /* tgid */
	__type(value, __u8);
} pid_filter SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, char[PAGEREF_COMM_LEN]);
	__type(value, __u8);
} comm_filter SEC(".maps");

/*
 * Per-CPU counters are bumped without atomics: tracepoint programs run
 * with bpf_prog_active held, so no other one runs on this CPU meanwhile
 * (the kernel counts those skips as recursion_misses instead).
 */
static __always_inline struct pageref_counters *count_seen(__u32 type)
{
	struct pageref_counters *c = bpf_map_lookup_elem(&counters, &type);

	if (c)
		c->seen++;
	return c;
}

/* Reserves a record in ring (events or failures) and fills the fields every event has. */
static __always_inline struct pageref_record *
begin_record(void *ctx, void *ring, __u8 type, struct pageref_counters *c, bool with_stack,
	     __u64 pid_tgid, const struct task_struct *task, const char *comm)
{
	struct pageref_record *r = bpf_ringbuf_reserve(ring, sizeof(*r), 0);

	if (!r) {
		c->dropped++;
		return NULL;
	}
	r->ts_ns = bpf_ktime_get_ns();
	r->pid = (__u32)pid_tgid;
	r->tgid = pid_tgid >> 32;
	r->cpu = bpf_get_smp_processor_id();
	r->type = type;
	/* The task's comm is NUL-padded to its 16 bytes (__set_task_comm), so
	 * two loads give what bpf_get_current_comm's strscpy_pad would. comm:
	 * what the --comm filter read already, not read a second time. */
	if (comm)
		__builtin_memcpy(r->comm, comm, sizeof(r->comm));
	else if (task)
		__builtin_memcpy(r->comm, task->comm, sizeof(r->comm));
	else
		bpf_get_current_comm(r->comm, sizeof(r->comm));
	r->stack_id = PAGEREF_STACK_NONE;
	if (with_stack) {
		long id = bpf_get_stackid(ctx, &stacks, 0);

		if (id < 0)
			c->stack_lost++;
		r->stack_id = id;
	}
	return r;
}

/*
 * BPF_RB_NO_WAKEUP: user space drains on a timer, so waking a poller per
 * record would only add an irq_work per page reference for nothing.
 */
static __always_inline void submit_record(struct pageref_record *r, struct pageref_counters *c)
{
	bpf_ringbuf_submit(r, BPF_RB_NO_WAKEUP);
	c->emitted++;
}

/* Whether pfn is in the traced ranges, and its slot in pfn_stats. */
static __always_inline bool pfn_slot(__u64 pfn, __u64 *slot)
{
	if (pfn_range_count == 0) {
		*slot = pfn;
		return true;
	}
	for (int i = 0; i < PAGEREF_MAX_PFN_RANGES; i++) {
		if (i >= pfn_range_count)
			break;
		if (pfn >= pfn_ranges[i].start && pfn < pfn_ranges[i].end) {
			*slot = pfn_range_slot[i] + (pfn - pfn_ranges[i].start);
			return true;
		}
	}
	return false;
}

/* The current task by BTF, fetched at most once per event: *task caches it. */
static __always_inline struct task_struct *current_task(struct task_struct **task)
{
	if (!*task)
		*task = bpf_get_current_task_btf();
	return *task;
}

/*
 * The current task's tgid and pid, as bpf_get_current_pid_tgid gives them.
 * By BTF, read from the task itself, which also gives the record its comm
 * (*task): one helper call where there were two.
 */
static __always_inline __u64 current_pid_tgid(bool by_btf, struct task_struct **task)
{
	if (by_btf) {
		struct task_struct *t = current_task(task);

		return (__u64)(__u32)t->tgid << 32 | (__u32)t->pid;
	}
	return bpf_get_current_pid_tgid();
}

/* The current task's comm into comm[PAGEREF_COMM_LEN], the same way the record reads it. */
static __always_inline void current_comm(bool by_btf, struct task_struct **task, char *comm)
{
	if (by_btf)
		__builtin_memcpy(comm, current_task(task)->comm, PAGEREF_COMM_LEN);
	else
		bpf_get_current_comm(comm, PAGEREF_COMM_LEN);
}

/*
 * What the filters read of the current task is on return for the record to
 * reuse: with --pid, *pid_tgid (and by BTF *task); with --comm, comm.
 */
static __always_inline bool page_ref_wanted(__u64 pfn, __u64 *slot, bool by_btf, __u64 *pid_tgid,
					    struct task_struct **task, char *comm)
{
	if (!pfn_slot(pfn, slot))
		return false;
	if (filter_pids) {
		__u32 tgid;

		*pid_tgid = current_pid_tgid(by_btf, task);
		tgid = *pid_tgid >> 32;
		if (!bpf_map_lookup_elem(&pid_filter, &tgid))
			return false;
	}
	if (filter_comms) {
		current_comm(by_btf, task, comm);
		if (!bpf_map_lookup_elem(&comm_filter, comm))
			return false;
	}
	return true;
}

/* By pfn, so every kept page's history is whole; by event, per CPU, after that. */
static __always_inline bool sampled_in(struct pageref_counters *c, __u64 pfn)
{
	if (sample_pfn > 1 && pageref_pfn_hash(pfn) % sample_pfn != 0)
		return false;
	if (sample_events > 1 && (c->seen - 1) % sample_events != 0)
		return false;
	return true;
}

static __always_inline bool pfn_armed(__u64 pfn)
{
	for (int i = 0; i < PAGEREF_ARMED_RANGES; i++)
		if (pfn >= armed[i].start && pfn < armed[i].end)
			return true;
	return false;
}

static __always_inline void arm_range(__u64 start, __u64 end)
{
	for (int i = 0; i < PAGEREF_ARMED_RANGES; i++)
		if (armed[i].start == start && armed[i].end == end)
			return;
	__u32 at = armed_next++ % PAGEREF_ARMED_RANGES;
	/* end first: a reader never sees the new start with an old, wider end */
	armed[at].end = 0;
	armed[at].start = start;
	armed[at].end = end;
}

/* src/holds/reference-delta.ts says the same: set, freeze, unfreeze begin a new life. */
static __always_inline int reference_delta(__u8 type, int val, int ret)
{
	switch (type) {
	case PAGEREF_EV_PAGE_REF_MOD:
	case PAGEREF_EV_PAGE_REF_MOD_AND_TEST:
	case PAGEREF_EV_PAGE_REF_MOD_AND_RETURN:
		return val;
	case PAGEREF_EV_PAGE_REF_MOD_UNLESS:
		return ret ? val : 0;
	default:
		return 0;
	}
}

/* Other CPUs update the same pfn: the sums are atomic, the last-* fields are last writer wins. */
static __always_inline void aggregate_event(struct pageref_counters *c, __u64 slot, __u8 type,
					    int val, int ret, int count, __u64 now)
{
	struct pageref_pfn_stats *s;
	__u32 key = slot;
	int delta;

	if (slot >= aggregate_slots || !(s = bpf_map_lookup_elem(&pfn_stats, &key))) {
		c->overflow++;
		return;
	}
	delta = reference_delta(type, val, ret);
	if (delta > 0)
		__sync_fetch_and_add(&s->gets, delta);
	else if (delta < 0)
		__sync_fetch_and_add(&s->puts, -delta);
	__sync_fetch_and_add(&s->events, 1);
	s->last_count = count;
	s->last_ts_ns = now;
	c->aggregated++;
}

/*
 * Where a page_ref event's page fields are: the struct page itself (tp_btf)
 * or the perf tracepoint's formatted event, in one of its two templates.
 * They are read only once the event is kept: an event filtered or sampled
 * out costs no load from the page. kind is a constant in each program, so
 * each compiles to one branch of the switches below; deciding by whether
 * a pointer is NULL instead let clang merge loads from two templates into
 * a load through a modified ctx pointer, which the verifier refuses.
 */
enum page_source_kind {
	PAGE_FROM_BTF,        /* at: struct page */
	PAGE_FROM_MOD,        /* at: trace_event_raw_page_ref_mod_template */
	PAGE_FROM_TEST,       /* at: trace_event_raw_page_ref_mod_and_test_template */
};

struct page_source {
	enum page_source_kind kind;
	const void *at;
};

/* The page's refcount after the change. */
static __always_inline int source_count(const struct page_source *from)
{
	switch (from->kind) {
	case PAGE_FROM_BTF:
		return ((const struct page *)from->at)->_refcount.counter;
	case PAGE_FROM_MOD:
		return ((const struct trace_event_raw_page_ref_mod_template *)from->at)->count;
	default:
		return ((const struct trace_event_raw_page_ref_mod_and_test_template *)from->at)->count;
	}
}

/* The record's page fields. mapcount is page->_mapcount (-1: not mapped), as
 * the tracepoint itself reports it in recent kernels; by BTF the pageblock's
 * migrate type is not computed. */
static __always_inline void fill_page_fields(struct pageref_record *r, const struct page_source *from)
{
	const struct page *page = from->at;
	const struct trace_event_raw_page_ref_mod_template *mod = from->at;
	const struct trace_event_raw_page_ref_mod_and_test_template *test = from->at;
	__u64 flags;

	switch (from->kind) {
	case PAGE_FROM_BTF:
		flags = page->flags;
		r->page.mapping = (__u64)page->mapping;
		r->count = page->_refcount.counter;
		r->mapcount = page->_mapcount.counter;
		r->mt = PAGEREF_MT_UNKNOWN;
		break;
	case PAGE_FROM_MOD:
		flags = mod->flags;
		r->page.mapping = (__u64)mod->mapping;
		r->count = mod->count;
		r->mapcount = mod->mapcount;
		r->mt = mod->mt;
		break;
	default:
		flags = test->flags;
		r->page.mapping = (__u64)test->mapping;
		r->count = test->count;
		r->mapcount = test->mapcount;
		r->mt = test->mt;
		break;
	}
	/* The bits above the page flags hold node, zone and section numbers. */
	r->page.flags = flags & ((1ULL << bpf_core_enum_value(enum pageflags, __NR_PAGEFLAGS)) - 1);
}

/* The one body of the seven page_ref programs; ret is 0 for the events without it. */
static __always_inline int page_ref_event(void *ctx, __u8 type, __u64 pfn, const struct page_source *from,
					  int val, int ret, bool by_btf)
{
	struct pageref_counters *c = count_seen(type);
	struct pageref_record *r;
	bool with_stack;
	__u64 slot = 0;
	__u64 pid_tgid = 0;
	struct task_struct *task = NULL;
	/* Filled by the --comm filter, unused without it. Aligned so that
	 * copying it into the record takes two loads, not sixteen. */
	char comm[PAGEREF_COMM_LEN] __attribute__((aligned(8)));

	if (!c)
		return 0;
	if (!page_ref_wanted(pfn, &slot, by_btf, &pid_tgid, &task, comm)) {
		c->filtered++;
		return 0;
	}
	if (!sampled_in(c, pfn)) {
		c->sampled_out++;
		return 0;
	}
	/* After sampling, so that events sampled out do not pay for the helper
	 * call; --pid has made it already. */
	if (!filter_pids)
		pid_tgid = current_pid_tgid(by_btf, &task);
	if (self_tgid && pid_tgid >> 32 == self_tgid) {
		c->filtered++;
		return 0;
	}
	/* Not bpf_ktime_get_coarse_ns(), which would do for a "last event"
	 * time: the kernel refuses it to tracing programs. */
	if (aggregate)
		aggregate_event(c, slot, type, val, ret, source_count(from), bpf_ktime_get_ns());
	if (stacks_mode == PAGEREF_STACKS_ARMED) {
		if (!pfn_armed(pfn)) {
			c->counted_only++;
			return 0;
		}
		with_stack = true;
	} else if (aggregate) {
		c->counted_only++;
		return 0;
	} else {
		with_stack = stacks_mode == PAGEREF_STACKS_ALL ||
			     (stacks_mode == PAGEREF_STACKS_SAMPLED &&
			      pageref_pfn_hash(pfn ^ PAGEREF_STACK_SAMPLE_SALT) % stack_sample == 0);
	}
	r = begin_record(ctx, &events, type, c, with_stack, pid_tgid, task, filter_comms ? comm : NULL);
	if (!r)
		return 0;
	r->pfn = pfn;
	fill_page_fields(r, from);
	r->val = val;
	r->ret = ret;
	__builtin_memset(r->name, 0, sizeof(r->name));
	submit_record(r, c);
	return 0;
}

static __always_inline int mod_event(struct trace_event_raw_page_ref_mod_template *tp, __u8 type)
{
	struct page_source from = { PAGE_FROM_MOD, tp };

	return page_ref_event(tp, type, tp->pfn, &from, tp->val, 0, false);
}

static __always_inline int test_event(struct trace_event_raw_page_ref_mod_and_test_template *tp,
				      __u8 type)
{
	struct page_source from = { PAGE_FROM_TEST, tp };

	return page_ref_event(tp, type, tp->pfn, &from, tp->val, tp->ret, false);
}

SEC("tp/page_ref/page_ref_set")
int page_ref_set(struct trace_event_raw_page_ref_mod_template *tp)
{
	return mod_event(tp, PAGEREF_EV_PAGE_REF_SET);
}

SEC("tp/page_ref/page_ref_mod")
int page_ref_mod(struct trace_event_raw_page_ref_mod_template *tp)
{
	return mod_event(tp, PAGEREF_EV_PAGE_REF_MOD);
}

SEC("tp/page_ref/page_ref_mod_and_test")
int page_ref_mod_and_test(struct trace_event_raw_page_ref_mod_and_test_template *tp)
{
	return test_event(tp, PAGEREF_EV_PAGE_REF_MOD_AND_TEST);
}

SEC("tp/page_ref/page_ref_mod_and_return")
int page_ref_mod_and_return(struct trace_event_raw_page_ref_mod_and_test_template *tp)
{
	return test_event(tp, PAGEREF_EV_PAGE_REF_MOD_AND_RETURN);
}

SEC("tp/page_ref/page_ref_mod_unless")
int page_ref_mod_unless(struct trace_event_raw_page_ref_mod_and_test_template *tp)
{
	return test_event(tp, PAGEREF_EV_PAGE_REF_MOD_UNLESS);
}

SEC("tp/page_ref/page_ref_freeze")
int page_ref_freeze(struct trace_event_raw_page_ref_mod_and_test_template *tp)
{
	return test_event(tp, PAGEREF_EV_PAGE_REF_FREEZE);
}

SEC("tp/page_ref/page_ref_unfreeze")
int page_ref_unfreeze(struct trace_event_raw_page_ref_mod_template *tp)
{
	return mod_event(tp, PAGEREF_EV_PAGE_REF_UNFREEZE);
}

/*
 * The same seven events attached by BTF (tp_btf, a raw tracepoint): the
 * program gets the tracepoint's own arguments, the struct page and the
 * values, before the kernel formats an event. The perf tracepoint path
 * above first fills a trace record (page_to_pfn, page_mapcount, the
 * pageblock's migrate type) that the program then copies; here only the
 * fields pageref keeps are read (fill_page_fields), and the migrate type
 * is not computed. Which of the two user space attaches is chosen by
 * measurement (BENCHMARKS.md, with raw tracepoints too).
 */
/* page - &pfn_origin, as a number; the asm keeps clang from reordering it
 * into arithmetic on one pointer, which the verifier would refuse. */
static __always_inline __u64 offset_from_origin(const struct page *page)
{
	__u64 offset = (__u64)page;

	asm volatile("%[offset] -= %[origin]" : [offset] "+r"(offset) : [origin] "r"(&pfn_origin));
	return offset;
}

static __always_inline void learn_pfn_origin(__u64 *ctx, const struct page *page)
{
	__u64 base = VMEMMAP_BASE_4_LEVEL;
	__u64 address = 0;

	if (&vmemmap_base)
		bpf_probe_read_kernel(&base, sizeof(base), &vmemmap_base);
	/* ctx[0] is the page's address: read as a number, it is not a pointer. */
	bpf_probe_read_kernel(&address, sizeof(address), ctx);
	/* &pfn_origin = address - offset, so vmemmap_base - &pfn_origin is: */
	pfn_origin = base - (address - offset_from_origin(page));
}

/* The page's place in the vmemmap array. struct page is 64 bytes in every
 * configuration seen; then the division is a shift (the verifier drops the
 * branch not taken, the size being a constant once relocated). */
static __always_inline __u64 page_pfn(const struct page *page)
{
	__u64 offset = offset_from_origin(page) - pfn_origin;

	if (bpf_core_type_size(struct page) == 64)
		return offset >> 6;
	return offset / bpf_core_type_size(struct page);
}

static __always_inline int btf_event(__u64 *ctx, __u8 type, struct page *page, int val, int ret)
{
	if (!pfn_origin)
		learn_pfn_origin(ctx, page);
	struct page_source from = { PAGE_FROM_BTF, page };

	return page_ref_event(ctx, type, page_pfn(page), &from, val, ret, true);
}

SEC("tp_btf/page_ref_set")
int BPF_PROG(btf_page_ref_set, struct page *page, int v)
{
	return btf_event(ctx, PAGEREF_EV_PAGE_REF_SET, page, v, 0);
}

SEC("tp_btf/page_ref_mod")
int BPF_PROG(btf_page_ref_mod, struct page *page, int v)
{
	return btf_event(ctx, PAGEREF_EV_PAGE_REF_MOD, page, v, 0);
}

SEC("tp_btf/page_ref_mod_and_test")
int BPF_PROG(btf_page_ref_mod_and_test, struct page *page, int v, int ret)
{
	return btf_event(ctx, PAGEREF_EV_PAGE_REF_MOD_AND_TEST, page, v, ret);
}

SEC("tp_btf/page_ref_mod_and_return")
int BPF_PROG(btf_page_ref_mod_and_return, struct page *page, int v, int ret)
{
	return btf_event(ctx, PAGEREF_EV_PAGE_REF_MOD_AND_RETURN, page, v, ret);
}

SEC("tp_btf/page_ref_mod_unless")
int BPF_PROG(btf_page_ref_mod_unless, struct page *page, int v, int u)
{
	return btf_event(ctx, PAGEREF_EV_PAGE_REF_MOD_UNLESS, page, v, u);
}

SEC("tp_btf/page_ref_freeze")
int BPF_PROG(btf_page_ref_freeze, struct page *page, int v, int ret)
{
	return btf_event(ctx, PAGEREF_EV_PAGE_REF_FREEZE, page, v, ret);
}

SEC("tp_btf/page_ref_unfreeze")
int BPF_PROG(btf_page_ref_unfreeze, struct page *page, int v)
{
	return btf_event(ctx, PAGEREF_EV_PAGE_REF_UNFREEZE, page, v, 0);
}

/* Isolation and CMA events are never filtered: they are rare, they mark
 * the failure, and the allocating task is not the one holding the page.
 * They go to the failures ring, which page_ref records cannot fill. */
SEC("tp/page_isolation/test_pages_isolated")
int test_pages_isolated(struct trace_event_raw_test_pages_isolated *tp)
{
	struct pageref_counters *c = count_seen(PAGEREF_EV_TEST_PAGES_ISOLATED);
	struct pageref_record *r;

	if (!c)
		return 0;
	if (stacks_mode == PAGEREF_STACKS_ARMED && tp->fin_pfn < tp->end_pfn)
		arm_range(tp->start_pfn, tp->end_pfn);
	r = begin_record(tp, &failures, PAGEREF_EV_TEST_PAGES_ISOLATED, c, stacks_mode != PAGEREF_STACKS_NONE,
			 bpf_get_current_pid_tgid(), NULL, NULL);
	if (!r)
		return 0;
	r->pfn = tp->start_pfn;
	r->isolation.end_pfn = tp->end_pfn;
	r->isolation.fin_pfn = tp->fin_pfn;
	r->count = 0;
	r->mapcount = 0;
	r->val = 0;
	r->ret = 0;
	r->mt = 0;
	__builtin_memset(r->name, 0, sizeof(r->name));
	submit_record(r, c);
	return 0;
}

/* name_loc is the event's __data_loc_name; pfn is all ones for events without one.
 * page is the event's struct page pointer (NULL for a failed allocation, and for
 * cma_alloc_start, which has none): only whether it is NULL goes to user space. */
static __always_inline int cma_event(void *ctx, __u8 type, __u32 name_loc, __u64 pfn,
				     const void *page, __u64 count, __u64 align, int ret)
{
	struct pageref_counters *c = count_seen(type);
	struct pageref_record *r;

	if (!c)
		return 0;
	r = begin_record(ctx, &failures, type, c, stacks_mode != PAGEREF_STACKS_NONE, bpf_get_current_pid_tgid(), NULL, NULL);
	if (!r)
		return 0;
	r->pfn = pfn;
	r->cma.count = count;
	r->cma.align = align;
	r->count = 0;
	r->mapcount = 0;
	r->val = page != 0;
	r->ret = ret;
	r->mt = 0;
	/* Zeroed first: a short or failed copy must not leave ring bytes behind. */
	__builtin_memset(r->name, 0, sizeof(r->name));
	bpf_probe_read_kernel_str(r->name, sizeof(r->name), ctx + (name_loc & 0xffff));
	submit_record(r, c);
	return 0;
}

SEC("tp/cma/cma_alloc_start")
int cma_alloc_start(struct trace_event_raw_cma_alloc_start *tp)
{
	return cma_event(tp, PAGEREF_EV_CMA_ALLOC_START, tp->__data_loc_name, ~0ULL, 0,
			 tp->count, tp->align, 0);
}

SEC("tp/cma/cma_alloc_finish")
int cma_alloc_finish(void *ctx)
{
	/* Since "cma:tracing: Print alloc result in trace_cma_alloc_finish"
	 * (v6.3) the event has its own type with errorno; before, the class. */
	if (bpf_core_type_exists(struct trace_event_raw_cma_alloc_finish)) {
		struct trace_event_raw_cma_alloc_finish *tp = ctx;
		int err = 0;

		if (bpf_core_field_exists(tp->errorno))
			err = tp->errorno;
		return cma_event(ctx, PAGEREF_EV_CMA_ALLOC_FINISH, tp->__data_loc_name, tp->pfn,
				 tp->page, tp->count, tp->align, err);
	} else {
		struct trace_event_raw_cma_alloc_class *tp = ctx;

		return cma_event(ctx, PAGEREF_EV_CMA_ALLOC_FINISH, tp->__data_loc_name, tp->pfn,
				 tp->page, tp->count, tp->align, 0);
	}
}

SEC("tp/cma/cma_alloc_busy_retry")
int cma_alloc_busy_retry(void *ctx)
{
	/* Same change: the shared class became one type per event. */
	if (bpf_core_type_exists(struct trace_event_raw_cma_alloc_busy_retry)) {
		struct trace_event_raw_cma_alloc_busy_retry *tp = ctx;

		return cma_event(ctx, PAGEREF_EV_CMA_ALLOC_BUSY_RETRY, tp->__data_loc_name,
				 tp->pfn, tp->page, tp->count, tp->align, 0);
	} else {
		struct trace_event_raw_cma_alloc_class *tp = ctx;

		return cma_event(ctx, PAGEREF_EV_CMA_ALLOC_BUSY_RETRY, tp->__data_loc_name,
				 tp->pfn, tp->page, tp->count, tp->align, 0);
	}
}

SEC("tp/cma/cma_release")
int cma_release(struct trace_event_raw_cma_release *tp)
{
	return cma_event(tp, PAGEREF_EV_CMA_RELEASE, tp->__data_loc_name, tp->pfn, tp->page, tp->count, 0, 0);
}
