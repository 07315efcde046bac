{
  "targets": [
    {
      "target_name": "checkout_native",
      "sources": ["checkout_native.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-std=gnu11"],
      "libraries": ["-lpthread"]
    }
  ]
}
