{
  "targets": [
    {
      "target_name": "udp_pktinfo",
      "sources": ["native/udp_pktinfo.c"],
      "defines": ["NAPI_VERSION=8"],
      "cflags_c": ["-std=gnu11", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Werror=implicit-function-declaration"]
    },
    {
      "target_name": "tftp_pump",
      "sources": ["native/tftp_pump.c"],
      "defines": ["NAPI_VERSION=8", "_GNU_SOURCE"],
      "cflags_c": ["-std=gnu11", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Werror=implicit-function-declaration"]
    },
    {
      "target_name": "http_sendfile",
      "sources": ["native/http_sendfile.c"],
      "defines": ["NAPI_VERSION=8", "_GNU_SOURCE"],
      "cflags_c": ["-std=gnu11", "-O2", "-pthread", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Werror=implicit-function-declaration"],
      "ldflags": ["-pthread"]
    }
  ]
}
