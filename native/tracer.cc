// SPDX-License-Identifier: GPL-2.0
// The pageref addon: one NativeTracer per loaded and attached BPF object
// (src/native/addon.d.ts is its contract), plus the record layout as the C
// compiler sees it. Everything runs on the calling JavaScript thread:
// JavaScript drains the ring buffer on a timer into a buffer it owns.
#include <napi.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <string>
#include <vector>

#include "bpf-error.h"
#include "crc32.h"
#include "pointer-hash.h"
#include "pageref.h"
#include "pageref.skel.h"

namespace pageref {
namespace {

struct EventName {
  const char* subsystem;
  const char* name;
};

#define PAGEREF_EVENT_NAME(suffix, subsystem, name) {subsystem, name},
const EventName kEvents[PAGEREF_EV_COUNT] = {PAGEREF_EVENTS(PAGEREF_EVENT_NAME)};
#undef PAGEREF_EVENT_NAME

constexpr size_t kRecordSize = sizeof(struct pageref_record);

// Returned by the ring buffer callback to stop ring_buffer__consume() when
// the caller's buffer is full; never a real error of consume.
constexpr int kBufferFull = -ENOBUFS;

int EventIndex(const std::string& name) {
  for (int i = 0; i < PAGEREF_EV_COUNT; i++)
    if (name == kEvents[i].name) return i;
  return -1;
}

bool IsWholeNumber(const Napi::Value& v, double max) {
  if (!v.IsNumber()) return false;
  double d = v.As<Napi::Number>().DoubleValue();
  return d >= 0 && d <= max && d == static_cast<double>(static_cast<uint64_t>(d));
}

bool IsUint8Array(const Napi::Value& v) {
  return v.IsTypedArray() && v.As<Napi::TypedArray>().TypedArrayType() == napi_uint8_array;
}

constexpr double kMaxSafeInteger = 9007199254740991.0;

[[noreturn]] void ThrowType(Napi::Env env, const std::string& message) {
  throw Napi::TypeError::New(env, "NativeTracer: " + message);
}

struct Options {
  bool events[PAGEREF_EV_COUNT] = {};
  uint32_t ring_bytes = 0;
  uint32_t stack_entries = 0;
  std::vector<uint32_t> pids;
  std::vector<std::string> comms;
  std::vector<pageref_pfn_range> pfn_ranges;
  uint32_t stacks_mode = PAGEREF_STACKS_NONE;
  uint32_t stack_sample = 1;
  uint32_t sample_pfn = 1;
  uint32_t sample_events = 1;
  uint32_t aggregate_slots = 0;  // 0: no --aggregate
  uint32_t self_tgid = 0;        // the tracer's own process, not traced; 0: none
  bool attach_btf = false;       // page_ref events by tp_btf programs, not perf tracepoints
};

uint32_t PositiveUint32(const Napi::Object& o, const char* key) {
  Napi::Value v = o.Get(key);
  if (!IsWholeNumber(v, 4294967295.0) || v.As<Napi::Number>().Uint32Value() == 0)
    ThrowType(o.Env(), std::string("options.") + key + " must be an integer from 1 to 2^32-1");
  return v.As<Napi::Number>().Uint32Value();
}


Options ParseOptions(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 1 || !info[0].IsObject()) ThrowType(env, "expected one options object");
  Napi::Object o = info[0].As<Napi::Object>();
  Options opts;

  Napi::Value events = o.Get("events");
  if (!events.IsArray() || events.As<Napi::Array>().Length() == 0)
    ThrowType(env, "options.events must be a non-empty array of event names");
  Napi::Array ev = events.As<Napi::Array>();
  for (uint32_t i = 0; i < ev.Length(); i++) {
    Napi::Value v = ev.Get(i);
    int index = v.IsString() ? EventIndex(v.As<Napi::String>().Utf8Value()) : -1;
    if (index < 0)
      ThrowType(env, "unknown event " + (v.IsString() ? "'" + v.As<Napi::String>().Utf8Value() + "'"
                                                      : std::string("(not a string)")));
    opts.events[index] = true;
  }

  Napi::Value ring = o.Get("ringBytes");
  long page = sysconf(_SC_PAGESIZE);
  if (!IsWholeNumber(ring, 1u << 31)) ThrowType(env, "options.ringBytes must be a power of two");
  opts.ring_bytes = ring.As<Napi::Number>().Uint32Value();
  if (opts.ring_bytes == 0 || (opts.ring_bytes & (opts.ring_bytes - 1)) != 0 ||
      opts.ring_bytes % page != 0)
    ThrowType(env, "options.ringBytes must be a power of two and a multiple of the page size");

  Napi::Value stacks = o.Get("stackEntries");
  if (!IsWholeNumber(stacks, 1u << 24)) ThrowType(env, "options.stackEntries must be 0 to 2^24");
  opts.stack_entries = stacks.As<Napi::Number>().Uint32Value();

  Napi::Value pids = o.Get("pids");
  if (!pids.IsArray()) ThrowType(env, "options.pids must be an array");
  for (uint32_t i = 0; i < pids.As<Napi::Array>().Length(); i++) {
    Napi::Value v = pids.As<Napi::Array>().Get(i);
    if (!IsWholeNumber(v, 4294967295.0)) ThrowType(env, "options.pids must hold process ids");
    opts.pids.push_back(v.As<Napi::Number>().Uint32Value());
  }

  Napi::Value self = o.Get("selfTgid");
  if (!IsWholeNumber(self, 4294967295.0)) ThrowType(env, "options.selfTgid must be a process id, or 0");
  opts.self_tgid = self.As<Napi::Number>().Uint32Value();

  Napi::Value comms = o.Get("comms");
  if (!comms.IsArray()) ThrowType(env, "options.comms must be an array");
  for (uint32_t i = 0; i < comms.As<Napi::Array>().Length(); i++) {
    Napi::Value v = comms.As<Napi::Array>().Get(i);
    if (!v.IsString()) ThrowType(env, "options.comms must hold strings");
    std::string comm = v.As<Napi::String>().Utf8Value();
    if (comm.empty() || comm.size() >= PAGEREF_COMM_LEN || comm.find('\0') != std::string::npos)
      ThrowType(env, "options.comms entries must be 1 to 15 bytes");
    opts.comms.push_back(comm);
  }

  Napi::Value ranges = o.Get("pfnRanges");
  if (!ranges.IsArray() || ranges.As<Napi::Array>().Length() > PAGEREF_MAX_PFN_RANGES)
    ThrowType(env, "options.pfnRanges must be an array of at most " +
                       std::to_string(PAGEREF_MAX_PFN_RANGES) + " ranges");
  for (uint32_t i = 0; i < ranges.As<Napi::Array>().Length(); i++) {
    Napi::Value v = ranges.As<Napi::Array>().Get(i);
    if (!v.IsObject()) ThrowType(env, "options.pfnRanges must hold {start, end} objects");
    Napi::Value start = v.As<Napi::Object>().Get("start"), end = v.As<Napi::Object>().Get("end");
    if (!IsWholeNumber(start, kMaxSafeInteger) || !IsWholeNumber(end, kMaxSafeInteger) ||
        start.As<Napi::Number>().DoubleValue() >= end.As<Napi::Number>().DoubleValue())
      ThrowType(env, "options.pfnRanges entries must have safe integers start < end");
    opts.pfn_ranges.push_back({static_cast<uint64_t>(start.As<Napi::Number>().DoubleValue()),
                               static_cast<uint64_t>(end.As<Napi::Number>().DoubleValue())});
  }

  std::string mode = o.Get("stacks").IsString() ? o.Get("stacks").As<Napi::String>().Utf8Value() : "";
  if (mode == "none") opts.stacks_mode = PAGEREF_STACKS_NONE;
  else if (mode == "all") opts.stacks_mode = PAGEREF_STACKS_ALL;
  else if (mode == "sampled") opts.stacks_mode = PAGEREF_STACKS_SAMPLED;
  else if (mode == "armed") opts.stacks_mode = PAGEREF_STACKS_ARMED;
  else ThrowType(env, "options.stacks must be none, all, sampled or armed");
  if ((opts.stacks_mode == PAGEREF_STACKS_NONE) != (opts.stack_entries == 0))
    ThrowType(env, "options.stackEntries must be 0 exactly when options.stacks is none");
  opts.stack_sample = PositiveUint32(o, "stackSample");
  opts.sample_pfn = PositiveUint32(o, "samplePfn");
  opts.sample_events = PositiveUint32(o, "sampleEvents");

  std::string attach = o.Get("attach").IsString() ? o.Get("attach").As<Napi::String>().Utf8Value() : "";
  if (attach != "btf" && attach != "tracepoint") ThrowType(env, "options.attach must be btf or tracepoint");
  opts.attach_btf = attach == "btf";

  Napi::Value slots = o.Get("aggregateSlots");
  if (!IsWholeNumber(slots, 1u << 30)) ThrowType(env, "options.aggregateSlots must be 0 to 2^30");
  opts.aggregate_slots = slots.As<Napi::Number>().Uint32Value();
  return opts;
}

// The share of a BPF ring buffer's data area that records not yet consumed
// take up, from the positions the kernel keeps in the map's first two pages:
// consumer_pos on page 0, producer_pos on page 1 (kernel/bpf/ringbuf.c;
// libbpf 1.1 has no ring__avail_data_size). Mapped read-only once and kept:
// mapping and unmapping them for each read took 45 to 90 us on this 2-CPU
// host, and the live source reads the fill before every drain.
class RingPositions {
 public:
  ~RingPositions() { Unmap(); }

  // Returns 0 and sets *fill (0 to 1), or an errno.
  int Fill(int map_fd, uint32_t ring_bytes, double* fill) {
    size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    if (!pages_) {
      void* pages = mmap(nullptr, 2 * page, PROT_READ, MAP_SHARED, map_fd, 0);
      if (pages == MAP_FAILED) return errno;
      pages_ = static_cast<const uint8_t*>(pages);
      bytes_ = 2 * page;
    }
    // Acquire, as a consumer reads them: the kernel publishes both with release stores.
    unsigned long consumer = __atomic_load_n(reinterpret_cast<const unsigned long*>(pages_), __ATOMIC_ACQUIRE);
    unsigned long producer = __atomic_load_n(reinterpret_cast<const unsigned long*>(pages_ + page), __ATOMIC_ACQUIRE);
    // The producer never runs more than the ring's size ahead (bpf_ringbuf_reserve
    // fails instead); the two loads are not one snapshot, hence the bound.
    double share = static_cast<double>(producer - consumer) / ring_bytes;
    *fill = share > 1 ? 1 : share;
    return 0;
  }

  void Unmap() {
    if (pages_) munmap(const_cast<uint8_t*>(pages_), bytes_);
    pages_ = nullptr;
  }

 private:
  const uint8_t* pages_ = nullptr;
  size_t bytes_ = 0;
};

class NativeTracer : public Napi::ObjectWrap<NativeTracer> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "NativeTracer",
                       {
                           InstanceMethod<&NativeTracer::Drain>("drain"),
                           InstanceMethod<&NativeTracer::HashPointers>("hashPointers"),
                           InstanceMethod<&NativeTracer::ReadStack>("readStack"),
                           InstanceMethod<&NativeTracer::ReadCounters>("readCounters"),
                           InstanceMethod<&NativeTracer::ReadPfnStats>("readPfnStats"),
                           InstanceMethod<&NativeTracer::ArmedRanges>("armedRanges"),
                           InstanceMethod<&NativeTracer::ReadRingFill>("ringFill"),
                           InstanceMethod<&NativeTracer::Detach>("detach"),
                           InstanceAccessor<&NativeTracer::Attached>("attached"),
                           InstanceMethod<&NativeTracer::Close>("close"),
                       });
  }

  explicit NativeTracer(const Napi::CallbackInfo& info)
      : Napi::ObjectWrap<NativeTracer>(info), env_(info.Env()) {
    Options opts = ParseOptions(info);
    LibbpfLog log;
    try {
      Open(opts, log);
    } catch (...) {
      Free();  // the contract: a failed constructor leaves nothing loaded
      throw;
    }
    napi_add_env_cleanup_hook(env_, &NativeTracer::OnEnvCleanup, this);
    hooked_ = true;
  }

  ~NativeTracer() override { Free(); }

 private:
  // Open, configure, load, fill the filters, attach; throws BpfError.
  void Open(const Options& opts, LibbpfLog& log) {
    skel_ = pageref_bpf__open();
    if (!skel_) throw BpfError(env_, "opening the BPF object", errno, log);

    skel_->rodata->filter_pids = !opts.pids.empty();
    skel_->rodata->filter_comms = !opts.comms.empty();
    skel_->rodata->self_tgid = opts.self_tgid;
    skel_->rodata->stacks_mode = opts.stacks_mode;
    skel_->rodata->stack_sample = opts.stack_sample;
    skel_->rodata->sample_pfn = opts.sample_pfn;
    skel_->rodata->sample_events = opts.sample_events;
    skel_->rodata->aggregate = opts.aggregate_slots > 0;
    skel_->rodata->aggregate_slots = opts.aggregate_slots;
    skel_->rodata->pfn_range_count = static_cast<uint32_t>(opts.pfn_ranges.size());
    uint64_t slot = 0;
    for (size_t i = 0; i < opts.pfn_ranges.size(); i++) {
      skel_->rodata->pfn_ranges[i] = opts.pfn_ranges[i];
      skel_->rodata->pfn_range_slot[i] = slot;
      slot += opts.pfn_ranges[i].end - opts.pfn_ranges[i].start;
    }
    Check(bpf_map__set_max_entries(skel_->maps.pfn_stats, opts.aggregate_slots ? opts.aggregate_slots : 1),
          "sizing the per-pfn totals", log);
    Check(bpf_map__set_max_entries(skel_->maps.events, opts.ring_bytes), "sizing the ring buffer",
          log);
    // A stack map cannot have 0 entries; with stacks off it is never written.
    Check(bpf_map__set_max_entries(skel_->maps.stacks, opts.stack_entries ? opts.stack_entries : 1),
          "sizing the stack map", log);

    // Each page_ref event has two programs, "NAME" (perf tracepoint) and
    // "btf_NAME" (tp_btf); one of them is loaded.
    std::string wanted;
    for (int i = 0; i < PAGEREF_EV_COUNT; i++) {
      std::string name = kEvents[i].name;
      bpf_program* btf = bpf_object__find_program_by_name(skel_->obj, ("btf_" + name).c_str());
      bpf_program* tracepoint = bpf_object__find_program_by_name(skel_->obj, name.c_str());
      if (!tracepoint) throw BpfError(env_, "no program for " + name, ENOENT, log);
      progs_[i] = btf && opts.attach_btf ? btf : tracepoint;
      if (btf) Check(bpf_program__set_autoload(btf, opts.events[i] && progs_[i] == btf), "selecting programs", log);
      Check(bpf_program__set_autoload(tracepoint, opts.events[i] && progs_[i] == tracepoint), "selecting programs", log);
      if (opts.events[i]) wanted += std::string(wanted.empty() ? "" : ", ") + name;
    }
    Check(pageref_bpf__load(skel_), "loading the programs for " + wanted, log);

    if (opts.aggregate_slots > 0) {
      stats_bytes_ = static_cast<size_t>(opts.aggregate_slots) * sizeof(pageref_pfn_stats);
      size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
      stats_map_bytes_ = (stats_bytes_ + page - 1) / page * page;
      void* stats = mmap(nullptr, stats_map_bytes_, PROT_READ, MAP_SHARED, bpf_map__fd(skel_->maps.pfn_stats), 0);
      if (stats == MAP_FAILED) throw BpfError(env_, "mapping the per-pfn totals", errno, log);
      stats_ = static_cast<const uint8_t*>(stats);
    }

    const uint8_t one = 1;
    for (uint32_t pid : opts.pids)
      Check(bpf_map__update_elem(skel_->maps.pid_filter, &pid, sizeof(pid), &one, sizeof(one), BPF_ANY),
            "filling the pid filter", log);
    for (const std::string& comm : opts.comms) {
      char key[PAGEREF_COMM_LEN] = {};
      memcpy(key, comm.data(), comm.size());
      Check(bpf_map__update_elem(skel_->maps.comm_filter, key, sizeof(key), &one, sizeof(one), BPF_ANY),
            "filling the comm filter", log);
    }

    for (int i = 0; i < PAGEREF_EV_COUNT; i++) {
      if (!opts.events[i]) continue;
      links_[i] = bpf_program__attach(progs_[i]);
      if (!links_[i]) {
        int err = errno;
        throw BpfError(env_, std::string("attaching to ") + kEvents[i].subsystem + ":" + kEvents[i].name,
                       err, log);
      }
      attached_.push_back(kEvents[i].name);
    }

    ring_ = ring_buffer__new(bpf_map__fd(skel_->maps.events), &NativeTracer::OnSample, this, nullptr);
    if (!ring_) throw BpfError(env_, "opening the ring buffer", errno, log);
    failure_ring_ = ring_buffer__new(bpf_map__fd(skel_->maps.failures), &NativeTracer::OnFailure, this, nullptr);
    if (!failure_ring_) throw BpfError(env_, "opening the failures ring buffer", errno, log);
  }

  void Check(int err, const std::string& what, const LibbpfLog& log) {
    if (err) throw BpfError(env_, what, err, log);
  }

  // Unregistering the last perf user of a tracepoint waits for running
  // probes (tracepoint_synchronize_unregister), so once this returns no
  // record is added; with another perf user of the same tracepoint (perf,
  // bpftrace) a run already under way may still finish its record.
  void DestroyLinks() {
    for (auto& link : links_) {
      bpf_link__destroy(link);
      link = nullptr;
    }
    attached_.clear();
  }

  // Detaches and frees everything; safe to call more than once.
  void Free() {
    ring_positions_.Unmap();
    if (hooked_) {
      napi_remove_env_cleanup_hook(env_, &NativeTracer::OnEnvCleanup, this);
      hooked_ = false;
    }
    DestroyLinks();
    ring_buffer__free(ring_);
    ring_ = nullptr;
    ring_buffer__free(failure_ring_);
    failure_ring_ = nullptr;
    pending_failures_.clear();
    if (stats_) munmap(const_cast<uint8_t*>(stats_), stats_map_bytes_);
    stats_ = nullptr;
    pageref_bpf__destroy(skel_);
    skel_ = nullptr;
  }

  static void OnEnvCleanup(void* arg) {
    auto* self = static_cast<NativeTracer*>(arg);
    self->hooked_ = false;  // Node is running this hook; do not remove it
    self->Free();
  }

  void CheckOpen(Napi::Env env) {
    if (!skel_) throw Napi::Error::New(env, "tracer is closed");
  }

  // libbpf has already moved past the sample when this returns, error or
  // not (ringbuf_process_ring), so copy first and only then ask to stop.
  static int OnSample(void* ctx, void* data, size_t size) {
    auto* self = static_cast<NativeTracer*>(ctx);
    if (size != kRecordSize) return 0;  // not ours: the program only writes records
    uint8_t* record = self->out_ + self->out_len_;
    memcpy(record, data, kRecordSize);
    if (self->hash_pointers_) self->HashMapping(record);
    self->out_len_ += kRecordSize;
    return self->out_cap_ - self->out_len_ < kRecordSize ? kBufferFull : 0;
  }

  void HashMapping(uint8_t* record) {
    if (record[offsetof(pageref_record, type)] > PAGEREF_EV_PAGE_REF_UNFREEZE) return;
    uint64_t mapping;
    memcpy(&mapping, record + offsetof(pageref_record, page.mapping), sizeof(mapping));
    mapping = HashPointer(mapping, pointer_key_);
    memcpy(record + offsetof(pageref_record, page.mapping), &mapping, sizeof(mapping));
  }

  // hashPointers(key): from now on drain() hands out page.mapping hashed
  // under the 16-byte key, never the kernel's pointer.
  Napi::Value HashPointers(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    CheckOpen(env);
    if (info.Length() != 1 || !IsUint8Array(info[0]) ||
        info[0].As<Napi::Uint8Array>().ByteLength() != sizeof(pointer_key_))
      throw Napi::TypeError::New(env, "hashPointers: expected a 16-byte Uint8Array key");
    memcpy(pointer_key_, info[0].As<Napi::Uint8Array>().Data(), sizeof(pointer_key_));
    hash_pointers_ = true;
    return env.Undefined();
  }

  static int OnFailure(void* ctx, void* data, size_t size) {
    auto* self = static_cast<NativeTracer*>(ctx);
    if (size != kRecordSize) return 0;
    auto* bytes = static_cast<const uint8_t*>(data);
    self->pending_failures_.insert(self->pending_failures_.end(), bytes, bytes + kRecordSize);
    return 0;
  }

  static uint64_t Timestamp(const uint8_t* record) {
    uint64_t ts;
    memcpy(&ts, record + offsetof(pageref_record, ts_ns), sizeof(ts));
    return ts;
  }

  // Drains both rings into the caller's buffer as one stream in time order:
  // blame must see an isolation failure between the page_ref events before
  // and after it, and the two rings are drained separately. A failure later
  // than every page_ref record of this batch waits for the next drain while
  // the events ring still holds records: those may be older than it.
  Napi::Value Drain(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    CheckOpen(env);
    if (info.Length() != 1 || !IsUint8Array(info[0]))
      throw Napi::TypeError::New(env, "drain: expected a Uint8Array");
    Napi::Uint8Array into = info[0].As<Napi::Uint8Array>();
    size_t capacity = into.ByteLength() / kRecordSize * kRecordSize;
    if (capacity == 0) return Napi::Number::New(env, 0);
    LibbpfLog log;
    int failures = ring_buffer__consume(failure_ring_);
    if (failures < 0) throw BpfError(env, "draining the failures ring buffer", failures, log);
    // Room kept for failures; page_ref records get at least half the buffer.
    size_t reserved = std::min(pending_failures_.size(), capacity / 2 / kRecordSize * kRecordSize);
    out_ = into.Data();
    out_cap_ = capacity - reserved;
    out_len_ = 0;
    int n = out_cap_ >= kRecordSize ? ring_buffer__consume(ring_) : kBufferFull;
    size_t written = out_len_;
    out_ = nullptr;
    if (n < 0 && n != kBufferFull) throw BpfError(env, "draining the ring buffer", n, log);
    if (!pending_failures_.empty()) written = MergeFailures(into.Data(), written, capacity, n != kBufferFull);
    return Napi::Number::New(env, static_cast<double>(written));
  }

  // Merges the pending failures due now into out[0, used), which holds
  // page_ref records, and returns the new length.
  size_t MergeFailures(uint8_t* out, size_t used, size_t capacity, bool events_ring_empty) {
    size_t pending = pending_failures_.size() / kRecordSize;
    std::vector<uint8_t> sorted(pending_failures_.size());
    std::vector<size_t> order(pending);
    for (size_t i = 0; i < pending; i++) order[i] = i;
    const uint8_t* from = pending_failures_.data();
    std::stable_sort(order.begin(), order.end(), [from](size_t a, size_t b) {
      return Timestamp(from + a * kRecordSize) < Timestamp(from + b * kRecordSize);
    });
    for (size_t i = 0; i < pending; i++) memcpy(&sorted[i * kRecordSize], from + order[i] * kRecordSize, kRecordSize);

    uint64_t due_until = UINT64_MAX;
    if (!events_ring_empty) {
      due_until = 0;
      for (size_t at = 0; at < used; at += kRecordSize) due_until = std::max(due_until, Timestamp(out + at));
    }
    size_t due = 0;
    size_t room = (capacity - used) / kRecordSize;
    while (due < pending && due < room && Timestamp(&sorted[due * kRecordSize]) <= due_until) due++;

    // Backwards, so that every record moves at most once and nothing is overwritten unread.
    size_t events = used / kRecordSize;
    size_t i = events, j = due, w = events + due;
    while (j > 0) {
      const uint8_t* failure = &sorted[(j - 1) * kRecordSize];
      if (i > 0 && Timestamp(out + (i - 1) * kRecordSize) > Timestamp(failure)) {
        memcpy(out + (w - 1) * kRecordSize, out + (i - 1) * kRecordSize, kRecordSize);
        i--;
      } else {
        memcpy(out + (w - 1) * kRecordSize, failure, kRecordSize);
        j--;
      }
      w--;
    }
    pending_failures_.assign(sorted.begin() + due * kRecordSize, sorted.end());
    return used + due * kRecordSize;
  }

  Napi::Value ReadStack(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    CheckOpen(env);
    if (info.Length() != 1 || !info[0].IsNumber())
      throw Napi::TypeError::New(env, "readStack: expected a stack id");
    double id = info[0].As<Napi::Number>().DoubleValue();
    if (!(id >= 0 && id <= 4294967295.0) || id != static_cast<uint32_t>(id)) return env.Null();
    uint32_t key = static_cast<uint32_t>(id);
    uint64_t ips[PAGEREF_STACK_DEPTH] = {};
    LibbpfLog log;
    if (bpf_map__lookup_elem(skel_->maps.stacks, &key, sizeof(key), ips, sizeof(ips), 0)) {
      int err = errno;
      if (err == ENOENT) return env.Null();
      throw BpfError(env, "reading stack " + std::to_string(key), err, log);
    }
    size_t depth = 0;
    while (depth < PAGEREF_STACK_DEPTH && ips[depth] != 0) depth++;
    Napi::BigUint64Array out = Napi::BigUint64Array::New(env, depth);
    memcpy(out.Data(), ips, depth * sizeof(uint64_t));
    return out;
  }

  Napi::Value ReadCounters(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    CheckOpen(env);
    LibbpfLog log;
    int cpus = libbpf_num_possible_cpus();
    if (cpus <= 0) throw BpfError(env, "counting possible CPUs", cpus, log);
    std::vector<pageref_counters> per_cpu(static_cast<size_t>(cpus));
    // Field order of struct pageref_counters, then the kernel's own count.
    const char* names[] = {"seen",    "filtered",  "sampledOut", "countedOnly",    "emitted",
                           "dropped", "stackLost", "aggregated", "aggregateOverflow", "recursionMisses"};
    constexpr int kFields = sizeof(pageref_counters) / sizeof(uint64_t);
    static_assert(kFields == 9, "names[] follows struct pageref_counters");
    Napi::Array rows[kFields + 1];
    for (int f = 0; f <= kFields; f++) rows[f] = Napi::Array::New(env, PAGEREF_EV_COUNT);

    for (uint32_t type = 0; type < PAGEREF_EV_COUNT; type++) {
      if (bpf_map__lookup_elem(skel_->maps.counters, &type, sizeof(type), per_cpu.data(),
                               per_cpu.size() * sizeof(pageref_counters), 0))
        throw BpfError(env, "reading the counters", errno, log);
      uint64_t sum[kFields] = {};
      for (const pageref_counters& c : per_cpu) {
        const uint64_t* fields = reinterpret_cast<const uint64_t*>(&c);
        for (int f = 0; f < kFields; f++) sum[f] += fields[f];
      }
      for (int f = 0; f < kFields; f++) rows[f].Set(type, static_cast<double>(sum[f]));
      rows[kFields].Set(type, static_cast<double>(RecursionMisses(progs_[type])));
    }
    Napi::Object out = Napi::Object::New(env);
    for (int f = 0; f <= kFields; f++) out.Set(names[f], rows[f]);
    return out;
  }

  // Copies the --aggregate slots (struct pageref_pfn_stats each) into the
  // caller's buffer; returns the bytes copied (0 without --aggregate). The
  // programs keep adding meanwhile: each slot is as of some moment of the copy.
  Napi::Value ReadPfnStats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    CheckOpen(env);
    if (info.Length() != 1 || !IsUint8Array(info[0]))
      throw Napi::TypeError::New(env, "readPfnStats: expected a Uint8Array");
    Napi::Uint8Array into = info[0].As<Napi::Uint8Array>();
    if (into.ByteLength() < stats_bytes_)
      throw Napi::RangeError::New(env, "readPfnStats: the buffer needs " + std::to_string(stats_bytes_) + " bytes");
    if (stats_) memcpy(into.Data(), stats_, stats_bytes_);
    return Napi::Number::New(env, static_cast<double>(stats_bytes_));
  }

  // The pfn ranges --stacks armed has armed so far: [{start, end}].
  Napi::Value ArmedRanges(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    CheckOpen(env);
    Napi::Array out = Napi::Array::New(env);
    for (const pageref_pfn_range& r : skel_->bss->armed) {
      if (r.end <= r.start) continue;
      Napi::Object range = Napi::Object::New(env);
      range.Set("start", static_cast<double>(r.start));
      range.Set("end", static_cast<double>(r.end));
      out.Set(out.Length(), range);
    }
    return out;
  }

  // The ring buffer's fill now, 0 to 1 (RingPositions above).
  Napi::Value ReadRingFill(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    CheckOpen(env);
    LibbpfLog log;
    double fill = 0;
    int err = ring_positions_.Fill(bpf_map__fd(skel_->maps.events), bpf_map__max_entries(skel_->maps.events), &fill);
    if (err) throw BpfError(env, "mapping the ring buffer's positions", err, log);
    return Napi::Number::New(env, fill);
  }

  // 0 for programs that were not loaded, and on kernels without the field.
  static uint64_t RecursionMisses(const bpf_program* prog) {
    int fd = bpf_program__fd(prog);
    if (fd < 0) return 0;
    bpf_prog_info prog_info = {};
    uint32_t len = sizeof(prog_info);
    if (bpf_obj_get_info_by_fd(fd, &prog_info, &len)) return 0;
    return prog_info.recursion_misses;
  }

  Napi::Value Attached(const Napi::CallbackInfo& info) {
    Napi::Array out = Napi::Array::New(info.Env(), attached_.size());
    for (uint32_t i = 0; i < attached_.size(); i++) out.Set(i, attached_[i]);
    return out;
  }

  // Maps stay open: what is in the ring buffer, stacks and counters can
  // still be read. Idempotent until close().
  Napi::Value Detach(const Napi::CallbackInfo& info) {
    CheckOpen(info.Env());
    DestroyLinks();
    return info.Env().Undefined();
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    CheckOpen(info.Env());
    Free();
    return info.Env().Undefined();
  }

  napi_env env_;
  bool hooked_ = false;
  pageref_bpf* skel_ = nullptr;
  ring_buffer* ring_ = nullptr;
  // Isolation and CMA records: their own ring, merged in by time on drain.
  ring_buffer* failure_ring_ = nullptr;
  std::vector<uint8_t> pending_failures_;
  // hashPointers(key): page.mapping of every drained page_ref record is
  // replaced by its keyed hash (pointer-hash.h) as it is copied out.
  bool hash_pointers_ = false;
  uint32_t pointer_key_[4] = {};
  bpf_program* progs_[PAGEREF_EV_COUNT] = {};
  bpf_link* links_[PAGEREF_EV_COUNT] = {};
  std::vector<std::string> attached_;
  // --aggregate: pfn_stats mapped read-only.
  const uint8_t* stats_ = nullptr;
  size_t stats_bytes_ = 0;
  size_t stats_map_bytes_ = 0;
  // The caller's buffer, only during Drain().
  uint8_t* out_ = nullptr;
  size_t out_cap_ = 0;
  size_t out_len_ = 0;
  // The events ring's positions, mapped at the first ringFill().
  RingPositions ring_positions_;
};

Napi::Object Field(Napi::Env env, size_t offset, size_t size) {
  Napi::Object f = Napi::Object::New(env);
  f.Set("offset", static_cast<double>(offset));
  f.Set("size", static_cast<double>(size));
  return f;
}

#define LAYOUT_FIELD(obj, type, key, member) \
  obj.Set(key, Field(env, offsetof(type, member), sizeof(((type*)nullptr)->member)))

Napi::Object RecordLayout(Napi::Env env) {
  Napi::Object fields = Napi::Object::New(env);
  LAYOUT_FIELD(fields, pageref_record, "ts_ns", ts_ns);
  LAYOUT_FIELD(fields, pageref_record, "pfn", pfn);
  LAYOUT_FIELD(fields, pageref_record, "page.flags", page.flags);
  LAYOUT_FIELD(fields, pageref_record, "page.mapping", page.mapping);
  LAYOUT_FIELD(fields, pageref_record, "isolation.end_pfn", isolation.end_pfn);
  LAYOUT_FIELD(fields, pageref_record, "isolation.fin_pfn", isolation.fin_pfn);
  LAYOUT_FIELD(fields, pageref_record, "cma.count", cma.count);
  LAYOUT_FIELD(fields, pageref_record, "cma.align", cma.align);
  LAYOUT_FIELD(fields, pageref_record, "pid", pid);
  LAYOUT_FIELD(fields, pageref_record, "tgid", tgid);
  LAYOUT_FIELD(fields, pageref_record, "count", count);
  LAYOUT_FIELD(fields, pageref_record, "mapcount", mapcount);
  LAYOUT_FIELD(fields, pageref_record, "val", val);
  LAYOUT_FIELD(fields, pageref_record, "ret", ret);
  LAYOUT_FIELD(fields, pageref_record, "stack_id", stack_id);
  LAYOUT_FIELD(fields, pageref_record, "cpu", cpu);
  LAYOUT_FIELD(fields, pageref_record, "type", type);
  LAYOUT_FIELD(fields, pageref_record, "mt", mt);
  LAYOUT_FIELD(fields, pageref_record, "comm", comm);
  LAYOUT_FIELD(fields, pageref_record, "name", name);
  Napi::Object layout = Napi::Object::New(env);
  layout.Set("size", static_cast<double>(sizeof(pageref_record)));
  layout.Set("fields", fields);
  return layout;
}

Napi::Object CountersLayout(Napi::Env env) {
  Napi::Object fields = Napi::Object::New(env);
  LAYOUT_FIELD(fields, pageref_counters, "seen", seen);
  LAYOUT_FIELD(fields, pageref_counters, "filtered", filtered);
  LAYOUT_FIELD(fields, pageref_counters, "sampled_out", sampled_out);
  LAYOUT_FIELD(fields, pageref_counters, "counted_only", counted_only);
  LAYOUT_FIELD(fields, pageref_counters, "emitted", emitted);
  LAYOUT_FIELD(fields, pageref_counters, "dropped", dropped);
  LAYOUT_FIELD(fields, pageref_counters, "stack_lost", stack_lost);
  LAYOUT_FIELD(fields, pageref_counters, "aggregated", aggregated);
  LAYOUT_FIELD(fields, pageref_counters, "overflow", overflow);
  Napi::Object layout = Napi::Object::New(env);
  layout.Set("size", static_cast<double>(sizeof(pageref_counters)));
  layout.Set("fields", fields);
  return layout;
}

Napi::Object PfnStatsLayout(Napi::Env env) {
  Napi::Object fields = Napi::Object::New(env);
  LAYOUT_FIELD(fields, pageref_pfn_stats, "last_ts_ns", last_ts_ns);
  LAYOUT_FIELD(fields, pageref_pfn_stats, "gets", gets);
  LAYOUT_FIELD(fields, pageref_pfn_stats, "puts", puts);
  LAYOUT_FIELD(fields, pageref_pfn_stats, "events", events);
  LAYOUT_FIELD(fields, pageref_pfn_stats, "last_count", last_count);
  Napi::Object layout = Napi::Object::New(env);
  layout.Set("size", static_cast<double>(sizeof(pageref_pfn_stats)));
  layout.Set("fields", fields);
  return layout;
}

#undef LAYOUT_FIELD

// probeRingBuffer(): libbpf_probe_bpf_map_type(BPF_MAP_TYPE_RINGBUF): 1 when the
// kernel creates a ring buffer map (5.8+), 0 when it does not, -errno when the
// probe itself failed (EPERM without CAP_BPF). Both of pageref's rings are one.
Napi::Value ProbeRingBuffer(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), libbpf_probe_bpf_map_type(BPF_MAP_TYPE_RINGBUF, nullptr));
}

// hashPointer(key, lo, hi): HashPointer of the pointer hi:lo, as [lo, hi]
// words, for the test that holds it equal to PointerHasher.hash.
Napi::Value HashPointerOf(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 3 || !IsUint8Array(info[0]) ||
      info[0].As<Napi::Uint8Array>().ByteLength() != 16 || !IsWholeNumber(info[1], 4294967295.0) ||
      !IsWholeNumber(info[2], 4294967295.0))
    throw Napi::TypeError::New(env, "hashPointer: expected a 16-byte key and two 32-bit words");
  uint32_t key[4];
  memcpy(key, info[0].As<Napi::Uint8Array>().Data(), sizeof(key));
  uint64_t pointer = static_cast<uint64_t>(info[2].As<Napi::Number>().Uint32Value()) << 32 |
                     info[1].As<Napi::Number>().Uint32Value();
  uint64_t hash = HashPointer(pointer, key);
  Napi::Array words = Napi::Array::New(env, 2);
  words.Set(0u, Napi::Number::New(env, static_cast<uint32_t>(hash)));
  words.Set(1u, Napi::Number::New(env, static_cast<uint32_t>(hash >> 32)));
  return words;
}

// crc32(bytes, initial): zlib's crc32(initial, bytes), folded (crc32.cc).
Napi::Value Crc32Of(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 2 || !IsUint8Array(info[0]) || !IsWholeNumber(info[1], 4294967295.0))
    throw Napi::TypeError::New(env, "crc32: expected a Uint8Array and a 32-bit initial value");
  Napi::Uint8Array bytes = info[0].As<Napi::Uint8Array>();
  uint32_t initial = info[1].As<Napi::Number>().Uint32Value();
  return Napi::Number::New(env, Crc32(initial, bytes.Data(), bytes.ByteLength()));
}

}  // namespace

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  InstallLibbpfPrint();
  exports.Set("NativeTracer", NativeTracer::Define(env));
  exports.Set("recordLayout", RecordLayout(env));
  exports.Set("countersLayout", CountersLayout(env));
  exports.Set("pfnStatsLayout", PfnStatsLayout(env));
  exports.Set("maxPfnRanges", PAGEREF_MAX_PFN_RANGES);
  Napi::Array events = Napi::Array::New(env, PAGEREF_EV_COUNT);
  for (uint32_t i = 0; i < PAGEREF_EV_COUNT; i++) {
    Napi::Array pair = Napi::Array::New(env, 2);
    pair.Set(0u, kEvents[i].subsystem);
    pair.Set(1u, kEvents[i].name);
    events.Set(i, pair);
  }
  exports.Set("events", events);
  exports.Set("stackDepth", PAGEREF_STACK_DEPTH);
  exports.Set("stackNone", PAGEREF_STACK_NONE);
  exports.Set("libbpfVersion", libbpf_version_string());
  exports.Set("probeRingBuffer", Napi::Function::New(env, ProbeRingBuffer, "probeRingBuffer"));
  exports.Set("crc32", Napi::Function::New(env, Crc32Of, "crc32"));
  exports.Set("hashPointer", Napi::Function::New(env, HashPointerOf, "hashPointer"));
  exports.Set("crc32Folds", Crc32Folds());
  return exports;
}

}  // namespace pageref

static Napi::Object InitPageref(Napi::Env env, Napi::Object exports) {
  return pageref::Init(env, exports);
}

NODE_API_MODULE(pageref, InitPageref)
