{
  "targets": [
    {
      "target_name": "imapfs_fuse",
      "sources": ["src/fuse/native/imapfs_fuse.c"],
      "defines": ["NAPI_VERSION=8", "FUSE_USE_VERSION=35", "_FILE_OFFSET_BITS=64"],
      "cflags": ["<!@(pkg-config --cflags fuse3)", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "cflags_c": ["-std=gnu11"],
      "libraries": ["<!@(pkg-config --libs fuse3)"]
    },
    {
      "target_name": "imapfs_span_io",
      "sources": ["src/map/native/span_io.c", "src/map/native/block_fix.c", "src/map/native/uring.c"],
      "defines": ["NAPI_VERSION=8", "_FILE_OFFSET_BITS=64"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "cflags_c": ["-std=gnu11"]
    }
  ]
}
