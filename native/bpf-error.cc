// SPDX-License-Identifier: GPL-2.0
#include "bpf-error.h"

#include <bpf/libbpf.h>

#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace pageref {
namespace {

// Each Node worker thread has its own JavaScript calls, hence thread_local.
thread_local LibbpfLog* current_log = nullptr;

int OnLibbpfPrint(enum libbpf_print_level level, const char* format, va_list args) {
  if (level == LIBBPF_DEBUG || current_log == nullptr) return 0;
  va_list copy;
  va_copy(copy, args);
  int n = vsnprintf(nullptr, 0, format, copy);
  va_end(copy);
  if (n <= 0) return 0;
  std::string text(static_cast<size_t>(n) + 1, '\0');
  vsnprintf(&text[0], text.size(), format, args);
  text.resize(static_cast<size_t>(n));
  current_log->Append(text);
  return n;
}

// libbpf prints a failed program's verifier log between these markers
// (bpf_object_load_prog in libbpf 1.1's libbpf.c).
std::string VerifierLog(const std::string& log) {
  static const char kBegin[] = "-- BEGIN PROG LOAD LOG --\n";
  static const char kEnd[] = "-- END PROG LOAD LOG --";
  size_t begin = log.find(kBegin);
  if (begin == std::string::npos) return "";
  begin += sizeof(kBegin) - 1;
  size_t end = log.find(kEnd, begin);
  return log.substr(begin, end == std::string::npos ? std::string::npos : end - begin);
}

}  // namespace

void InstallLibbpfPrint() { libbpf_set_print(OnLibbpfPrint); }

LibbpfLog::LibbpfLog() : outer_(current_log) { current_log = this; }

LibbpfLog::~LibbpfLog() { current_log = outer_; }

Napi::Error BpfError(Napi::Env env, const std::string& what, int err, const LibbpfLog& log) {
  int code = std::abs(err);
  if (code == 0) code = EINVAL;  // a failure without an errno still needs one
  char buf[128];
  Napi::Error error = Napi::Error::New(env, what + ": " + strerror_r(code, buf, sizeof(buf)));
  Napi::Object obj = error.Value();
  obj.Set("name", "BpfError");
  obj.Set("errno", code);
  obj.Set("libbpfLog", log.Text());
  obj.Set("verifierLog", VerifierLog(log.Text()));
  return error;
}

}  // namespace pageref
