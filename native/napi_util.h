/*
 * Helpers shared by the Node-API addons (udp_pktinfo.c, tftp_pump.c): errors shaped like Node's
 * system errors, and argument readers that refuse anything but the expected type and range.
 */
#ifndef EDGEBOOT_NAPI_UTIL_H
#define EDGEBOOT_NAPI_UTIL_H
#ifndef NAPI_VERSION
#define NAPI_VERSION 8
#endif
#include <node_api.h>
#include <uv.h>

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#ifdef __linux__
#include <arpa/inet.h>
#include <netinet/in.h>
#endif

#define PK_CALL(env, call)                                                                        \
  do {                                                                                            \
    if ((call) != napi_ok) return pk_rethrow(env, #call);                                         \
  } while (0)

/* If a Node-API call failed without a pending JS exception, throw a generic one. */
static inline napi_value pk_rethrow(napi_env env, const char *what) {
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
static inline napi_value pk_errno_error(napi_env env, const char *syscall, int err, const char *detail) {
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

static inline napi_value pk_throw_errno(napi_env env, const char *syscall, int err, const char *detail) {
  napi_value e = pk_errno_error(env, syscall, err, detail);
  if (e != NULL) napi_throw(env, e);
  return NULL;
}

static inline napi_value pk_throw_code(napi_env env, const char *code, const char *msg) {
  napi_throw_error(env, code, msg);
  return NULL;
}

static inline napi_value pk_throw_type(napi_env env, const char *msg) {
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
  return NULL;
}

/* Reads a JS string into buf (NUL-terminated); fails if it does not fit. */
static inline int pk_get_string(napi_env env, napi_value v, char *buf, size_t size) {
  napi_valuetype t;
  size_t len = 0;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_string) return -1;
  if (napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok) return -1;
  if (len + 1 > size) return -1;
  if (napi_get_value_string_utf8(env, v, buf, size, &len) != napi_ok) return -1;
  return 0;
}

/* A number that is an integer in [min, max]. */
static inline int pk_get_int(napi_env env, napi_value v, int64_t min, int64_t max, int64_t *out) {
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
static inline const char *pk_get_sockaddr(napi_env env, napi_value addr, napi_value port_v, int64_t min_port,
                                   struct sockaddr_in *sa, char *addr_s, size_t size, int64_t *port) {
  memset(sa, 0, sizeof *sa);
  sa->sin_family = AF_INET;
  if (pk_get_string(env, addr, addr_s, size) != 0 || inet_pton(AF_INET, addr_s, &sa->sin_addr) != 1)
    return "address must be a dotted-quad IPv4 address";
  if (pk_get_int(env, port_v, min_port, 65535, port) != 0)
    return min_port == 0 ? "port must be an integer from 0 to 65535" : "port must be an integer from 1 to 65535";
  sa->sin_port = htons((uint16_t)*port);
  return NULL;
}

static inline int pk_is_nullish(napi_env env, napi_value v) {
  napi_valuetype t;
  return napi_typeof(env, v, &t) == napi_ok && (t == napi_undefined || t == napi_null);
}

#endif
