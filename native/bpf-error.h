// SPDX-License-Identifier: GPL-2.0
// What libbpf says during one addon call, and the BpfError built from it.
#ifndef PAGEREF_BPF_ERROR_H
#define PAGEREF_BPF_ERROR_H

#include <napi.h>

#include <string>

namespace pageref {

// Routes libbpf's messages to the innermost live LibbpfLog on this thread.
// Called once when the module loads.
void InstallLibbpfPrint();

// While alive, collects libbpf's warnings and info messages (not debug).
// Create one at the start of every addon call that reaches libbpf.
class LibbpfLog {
 public:
  LibbpfLog();
  ~LibbpfLog();
  LibbpfLog(const LibbpfLog&) = delete;
  LibbpfLog& operator=(const LibbpfLog&) = delete;

  void Append(const std::string& text) { text_ += text; }
  const std::string& Text() const { return text_; }

 private:
  std::string text_;
  LibbpfLog* outer_;
};

// An Error named "BpfError": message "<what>: <strerror(err)>", and the
// properties errno (positive), libbpfLog and verifierLog. err may be
// negative (libbpf's convention) or positive (errno's).
Napi::Error BpfError(Napi::Env env, const std::string& what, int err, const LibbpfLog& log);

}  // namespace pageref

#endif  // PAGEREF_BPF_ERROR_H
