/*
 * Helpers shared by the Node-API addons (udp_pktinfo.c, tftp_pump.c, http_sendfile.c), all named
 * eb_* / EB_* (each addon keeps its own prefix: pk_, tp_, sf_): errors shaped like Node's system
 * errors, and argument readers that refuse anything but the expected type and range.
 */
#ifndef EDGEBOOT_NAPI_UTIL_H
#define EDGEBOOT_NAPI_UTIL_H
#ifndef NAPI_VERSION
#define NAPI_VERSION 8
#endif
#include <node_api.h>
#include <uv.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#ifdef __linux__
#include <arpa/inet.h>
#include <netinet/in.h>
#endif

#define EB_CALL(env, call)                                                                        \
  do {                                                                                            \
    if ((call) != napi_ok) return eb_rethrow(env, #call);                                         \
  } while (0)

/* If a Node-API call failed without a pending JS exception, throw a generic one. */
static inline napi_value eb_rethrow(napi_env env, const char *what) {
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  if (!pending) {
    const napi_extended_error_info *info = NULL;
    char msg[256];
    napi_get_last_error_info(env, &info);
    snprintf(msg, sizeof msg, "edgeboot addon: %s failed: %s", what,
             info && info->error_message ? info->error_message : "unknown error");
    napi_throw_error(env, NULL, msg);
  }
  return NULL;
}

/* An Error like Node's system errors: message "<syscall> <detail>: CODE (text)", with code,
 * errno (negative, as libuv and Node report it) and syscall. */
static inline napi_value eb_errno_error(napi_env env, const char *syscall, int err, const char *detail) {
  char msg[256];
  const char *name = uv_err_name(-err);
  napi_value m, e, v;
  snprintf(msg, sizeof msg, "%s%s%s: %s (%s)", syscall, detail && *detail ? " " : "",
           detail ? detail : "", name, uv_strerror(-err));
  if (napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &m) != napi_ok) return NULL;
  if (napi_create_error(env, NULL, m, &e) != napi_ok) return NULL;
  if (napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &v) == napi_ok)
    napi_set_named_property(env, e, "code", v);
  if (napi_create_int32(env, -err, &v) == napi_ok) napi_set_named_property(env, e, "errno", v);
  if (napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &v) == napi_ok)
    napi_set_named_property(env, e, "syscall", v);
  return e;
}

static inline napi_value eb_throw_errno(napi_env env, const char *syscall, int err, const char *detail) {
  napi_value e = eb_errno_error(env, syscall, err, detail);
  if (e != NULL) napi_throw(env, e);
  return NULL;
}

static inline napi_value eb_throw_code(napi_env env, const char *code, const char *msg) {
  napi_throw_error(env, code, msg);
  return NULL;
}

static inline napi_value eb_throw_type(napi_env env, const char *msg) {
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
  return NULL;
}

/* Reads a JS string into buf (NUL-terminated); fails if it does not fit. */
static inline int eb_get_string(napi_env env, napi_value v, char *buf, size_t size) {
  napi_valuetype t;
  size_t len = 0;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_string) return -1;
  if (napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok) return -1;
  if (len + 1 > size) return -1;
  if (napi_get_value_string_utf8(env, v, buf, size, &len) != napi_ok) return -1;
  return 0;
}

/* A number that is an integer in [min, max]. */
static inline int eb_get_int(napi_env env, napi_value v, int64_t min, int64_t max, int64_t *out) {
  napi_valuetype t;
  double d;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_number) return -1;
  if (napi_get_value_double(env, v, &d) != napi_ok) return -1;
  if (!(d >= (double)min && d <= (double)max) || d != (double)(int64_t)d) return -1;
  *out = (int64_t)d;
  return 0;
}

/* An IPv4 address and port from JS into `sa` (address text kept in `addr_s` for messages).
 * Returns NULL, or the TypeError message to throw. */
static inline const char *eb_get_sockaddr(napi_env env, napi_value addr, napi_value port_v, int64_t min_port,
                                   struct sockaddr_in *sa, char *addr_s, size_t size, int64_t *port) {
  memset(sa, 0, sizeof *sa);
  sa->sin_family = AF_INET;
  if (eb_get_string(env, addr, addr_s, size) != 0 || inet_pton(AF_INET, addr_s, &sa->sin_addr) != 1)
    return "address must be a dotted-quad IPv4 address";
  if (eb_get_int(env, port_v, min_port, 65535, port) != 0)
    return min_port == 0 ? "port must be an integer from 0 to 65535" : "port must be an integer from 1 to 65535";
  sa->sin_port = htons((uint16_t)*port);
  return NULL;
}

static inline int eb_is_nullish(napi_env env, napi_value v) {
  napi_valuetype t;
  return napi_typeof(env, v, &t) == napi_ok && (t == napi_undefined || t == napi_null);
}


#ifdef __linux__
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

/*
 * A socket polled on Node's loop that calls one JS callback: the lifecycle both addons share.
 * An addon's state struct starts with an eb_sock. While open, it holds strong references to
 * the callback and to its handle object, so an open socket stays alive as a dgram socket does;
 * close (or environment teardown, through an async cleanup hook) releases them. The handle
 * object owns a small eb_box pointing at the eb_sock while it is open. The state is freed in
 * the uv_close callback, after `release` (if set) let the addon drop what it holds.
 */
typedef struct eb_box eb_box;
typedef struct eb_sock eb_sock;
struct eb_sock {
  uv_poll_t poll;
  int fd;
  int closing;
  napi_env env;
  napi_ref cb_ref;
  napi_ref self_ref;
  napi_async_context actx;
  napi_async_cleanup_hook_handle cleanup;
  eb_box *box;
  void (*release)(eb_sock *s);
};
struct eb_box {
  eb_sock *sock; /* NULL once closing has begun */
};

static inline void eb_on_closed(uv_handle_t *h) {
  eb_sock *s = (eb_sock *)h->data;
  napi_env env = s->env;
  napi_handle_scope scope = NULL;
  napi_open_handle_scope(env, &scope);
  if (s->cb_ref != NULL) napi_delete_reference(env, s->cb_ref);
  if (s->self_ref != NULL) napi_delete_reference(env, s->self_ref);
  if (s->release != NULL) s->release(s);
  if (s->actx != NULL) napi_async_destroy(env, s->actx);
  if (scope != NULL) napi_close_handle_scope(env, scope);
  if (s->cleanup != NULL) napi_remove_async_cleanup_hook(s->cleanup);
  free(s);
}

/* Stops receiving at once and starts the asynchronous close. Idempotent. The references are
 * released in eb_on_closed, never here: close() may be called from inside the JS callback,
 * while napi_make_callback is still using them. libuv allows closing the fd right after
 * uv_poll_stop()/uv_close(); doing it now frees the port as soon as close() returns. */
static inline void eb_begin_close(eb_sock *s) {
  if (s->closing) return;
  s->closing = 1;
  if (s->box != NULL) s->box->sock = NULL;
  s->box = NULL;
  uv_poll_stop(&s->poll);
  uv_close((uv_handle_t *)&s->poll, eb_on_closed);
  if (s->fd >= 0) close(s->fd);
  s->fd = -1;
}

static inline void eb_cleanup_hook(napi_async_cleanup_hook_handle handle, void *arg) {
  (void)handle;
  eb_begin_close((eb_sock *)arg);
}

static inline void eb_box_finalize(napi_env env, void *data, void *hint) {
  eb_box *box = (eb_box *)data;
  (void)env;
  (void)hint;
  /* An open socket holds a strong reference to its handle, so this only finds one open during
   * environment teardown; the cleanup hook closes it. */
  if (box->sock != NULL) box->sock->box = NULL;
  free(box);
}

/* The open socket behind a handle; NULL (nothing thrown) if closed. Throws a TypeError and sets
 * *bad if the value is not a handle with this tag. */
static inline eb_sock *eb_unwrap(napi_env env, napi_value handle, const napi_type_tag *tag, const char *what, int *bad) {
  bool ours = false;
  napi_valuetype t;
  void *p = NULL;
  *bad = 1;
  if (napi_typeof(env, handle, &t) != napi_ok || t != napi_object ||
      napi_check_object_type_tag(env, handle, tag, &ours) != napi_ok || !ours ||
      napi_unwrap(env, handle, &p) != napi_ok || p == NULL) {
    eb_throw_type(env, what);
    return NULL;
  }
  *bad = 0;
  return ((eb_box *)p)->sock;
}

/* The open socket behind a handle, or NULL with an exception pending: a TypeError for a value
 * that is not ours, ERR_SOCKET_DGRAM_NOT_RUNNING once it is closed. */
static inline eb_sock *eb_unwrap_open(napi_env env, napi_value handle, const napi_type_tag *tag, const char *what) {
  int bad;
  eb_sock *s = eb_unwrap(env, handle, tag, what, &bad);
  if (bad) return NULL;
  if (s == NULL) eb_throw_code(env, "ERR_SOCKET_DGRAM_NOT_RUNNING", "socket is closed");
  return s;
}

/* close(handle) of either addon: idempotent. */
static inline napi_value eb_close_js(napi_env env, napi_callback_info info, const napi_type_tag *tag, const char *what) {
  size_t argc = 1;
  napi_value argv[1];
  int bad;
  eb_sock *s;
  EB_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1) return eb_throw_type(env, "close(handle)");
  s = eb_unwrap(env, argv[0], tag, what, &bad);
  if (bad) return NULL;
  if (s != NULL) eb_begin_close(s);
  return NULL;
}

/* Calls the JS callback; a throw becomes an uncaught exception, as in a dgram listener. */
static inline void eb_invoke(eb_sock *s, size_t argc, napi_value *argv) {
  napi_env env = s->env;
  napi_value cb, recv, result;
  if (napi_get_reference_value(env, s->cb_ref, &cb) != napi_ok || cb == NULL) return;
  if (napi_get_global(env, &recv) != napi_ok) return;
  if (napi_make_callback(env, s->actx, recv, cb, argc, argv, &result) != napi_ok) {
    bool pending = false;
    napi_is_exception_pending(env, &pending);
    if (pending) {
      napi_value exc;
      if (napi_get_and_clear_last_exception(env, &exc) == napi_ok) napi_fatal_exception(env, exc);
    }
  }
}

/* Makes the handle object for `s` (calloc'ed by the caller, fd open and bound, release set)
 * and starts polling it for reading. On failure everything is released — s, its fd and what
 * `release` drops — and NULL is returned with an exception pending. */
static inline napi_value eb_sock_start(napi_env env, eb_sock *s, napi_value cb, const napi_type_tag *tag,
                                       const char *resource, uv_poll_cb on_poll) {
  napi_value handle, resource_name;
  uv_loop_t *loop = NULL;
  eb_box *box = (eb_box *)calloc(1, sizeof *box);
  int rc;
  s->env = env;
  if (box == NULL || napi_get_uv_event_loop(env, &loop) != napi_ok) {
    free(box);
    if (s->release != NULL) s->release(s);
    close(s->fd);
    free(s);
    return box == NULL ? eb_throw_errno(env, "calloc", ENOMEM, NULL) : eb_rethrow(env, "napi_get_uv_event_loop");
  }
  s->box = box;
  box->sock = s;
  if (napi_create_object(env, &handle) != napi_ok || napi_wrap(env, handle, box, eb_box_finalize, NULL, NULL) != napi_ok) {
    free(box);
    if (s->release != NULL) s->release(s);
    close(s->fd);
    free(s);
    return eb_rethrow(env, "napi_wrap");
  }
  /* From here the box belongs to the handle object's finalizer. */
  if (napi_type_tag_object(env, handle, tag) != napi_ok || napi_create_reference(env, cb, 1, &s->cb_ref) != napi_ok ||
      napi_create_reference(env, handle, 1, &s->self_ref) != napi_ok ||
      napi_create_string_utf8(env, resource, NAPI_AUTO_LENGTH, &resource_name) != napi_ok ||
      napi_async_init(env, handle, resource_name, &s->actx) != napi_ok) {
    napi_value exc = NULL;
    bool pending = false;
    napi_is_exception_pending(env, &pending);
    if (pending) napi_get_and_clear_last_exception(env, &exc);
    if (s->cb_ref != NULL) napi_delete_reference(env, s->cb_ref);
    if (s->self_ref != NULL) napi_delete_reference(env, s->self_ref);
    if (s->release != NULL) s->release(s);
    box->sock = NULL;
    close(s->fd);
    free(s);
    if (exc != NULL) {
      napi_throw(env, exc);
      return NULL;
    }
    return eb_rethrow(env, "napi_create_reference");
  }
  rc = uv_poll_init_socket(loop, &s->poll, s->fd);
  if (rc != 0) {
    napi_delete_reference(env, s->cb_ref);
    napi_delete_reference(env, s->self_ref);
    if (s->release != NULL) s->release(s);
    napi_async_destroy(env, s->actx);
    box->sock = NULL;
    close(s->fd);
    free(s);
    return eb_throw_errno(env, "uv_poll_init_socket", -rc, NULL);
  }
  s->poll.data = s;
  /* From here every failure goes through eb_begin_close, which frees in the uv_close callback. */
  if (napi_add_async_cleanup_hook(env, eb_cleanup_hook, s, &s->cleanup) != napi_ok) {
    s->cleanup = NULL;
    eb_begin_close(s);
    return eb_rethrow(env, "napi_add_async_cleanup_hook");
  }
  rc = uv_poll_start(&s->poll, UV_READABLE, on_poll);
  if (rc != 0) {
    eb_begin_close(s);
    return eb_throw_errno(env, "uv_poll_start", -rc, NULL);
  }
  return handle;
}
#endif /* __linux__ */

#endif
