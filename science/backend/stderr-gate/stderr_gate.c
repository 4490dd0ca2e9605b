/*
 * Points file descriptor 2 at /dev/null and back, for the moment TensorFlow's shared library is loaded: its static
 * initialisers write two absl log lines straight to stderr, which no environment variable filters (see
 * tensorFlowSettings in ../select.ts). silence() and restore() return nothing and never throw: if a step fails,
 * stderr is simply left as it was.
 */
#include <fcntl.h>
#include <node_api.h>
#include <stdio.h>
#include <unistd.h>

/* The real stderr while silenced, else -1. */
static int saved_stderr = -1;

static napi_value silence(napi_env env, napi_callback_info info) {
  (void)env;
  (void)info;
  if (saved_stderr >= 0) return NULL;
  int null_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
  if (null_fd < 0) return NULL;
  fflush(stderr);
  saved_stderr = fcntl(2, F_DUPFD_CLOEXEC, 3);
  if (saved_stderr >= 0 && dup2(null_fd, 2) < 0) {
    close(saved_stderr);
    saved_stderr = -1;
  }
  close(null_fd);
  return NULL;
}

static napi_value restore(napi_env env, napi_callback_info info) {
  (void)env;
  (void)info;
  if (saved_stderr < 0) return NULL;
  fflush(stderr);
  dup2(saved_stderr, 2);
  close(saved_stderr);
  saved_stderr = -1;
  return NULL;
}

NAPI_MODULE_INIT() {
  napi_property_descriptor methods[] = {
      {"silence", NULL, silence, NULL, NULL, NULL, napi_enumerable, NULL},
      {"restore", NULL, restore, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  if (napi_define_properties(env, exports, 2, methods) != napi_ok) return NULL;
  return exports;
}
