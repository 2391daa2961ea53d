{
  "targets": [
    {
      # The addon, with the BPF object embedded through bpftool's skeleton.
      "target_name": "pageref",
      "sources": ["native/tracer.cc", "native/bpf-error.cc", "native/crc32.cc"],
      "include_dirs": ["bpf", "<(INTERMEDIATE_DIR)"],
      "dependencies": ["<!(node -p \"require('node-addon-api').targets\"):node_addon_api_except"],
      "cflags_cc": ["-std=c++17", "-Wall", "-Wextra"],
      # Debian's libbpf.a is not built with -fPIC, so it cannot go into a
      # shared object: -lbpf resolves to libbpf.so.1 (the same 1.1.2).
      "libraries": ["<!@(pkg-config --static --libs libbpf)"],
      "actions": [
        {
          "action_name": "bpf_skeleton",
          "inputs": [
            "bpf/build.sh",
            "bpf/pageref.bpf.c",
            "bpf/pageref.h",
            "bpf/tracepoint-types.h"
          ],
          "outputs": [
            "<(INTERMEDIATE_DIR)/pageref.bpf.o",
            "<(INTERMEDIATE_DIR)/pageref.skel.h"
          ],
          "action": ["sh", "bpf/build.sh", "<(INTERMEDIATE_DIR)"],
          "message": "BPF pageref.bpf.c -> pageref.skel.h"
        }
      ]
    },
    {
      "target_name": "vmsplice-hold",
      "type": "executable",
      "sources": ["vm/workloads/vmsplice-hold.c"]
    },
    {
      "target_name": "page-churn",
      "type": "executable",
      "sources": ["vm/workloads/page-churn.c"]
    },
    {
      "target_name": "exit-race",
      "type": "executable",
      "sources": ["vm/workloads/exit-race.c"]
    }
  ]
}
