/*
 * udp_pktinfo: an AF_INET UDP socket that knows the interface a datagram arrived on and can send
 * a reply out of a chosen interface with a chosen source address.
 *
 * Why: a DHCP server on a multi-homed host binds 0.0.0.0:67 (a socket bound to a unicast address
 * never sees 255.255.255.255), so it must learn the ingress interface of each broadcast request
 * and answer out of that same interface with that interface's address as source. Node's dgram
 * offers neither IP_PKTINFO (ip(7)) nor SO_BINDTODEVICE (socket(7)).
 *
 * Node-API only (node_api.h), plus libuv from Node's own headers for uv_poll_t. Linux only: on
 * any other system open() throws.
 *
 * JS surface (wrapped by src/net/pktinfo-socket.ts):
 *   open(address, port, device|null, cb) -> handle
 *     cb(err, data, fromAddress, fromPort, ifindex, to, local, truncated)
 *       err is null for a datagram, an Error (code/errno/syscall) for a receive error.
 *   send(handle, data, address, port, ifindex, source) -> bytes sent
 *   close(handle)                       idempotent
 *   localAddress(handle) -> { address, port }
 *
 * Lifetime: as every polled socket of the addons (eb_sock in napi_util.h).
 */
#ifndef NAPI_VERSION
#define NAPI_VERSION 8
#endif
#include "napi_util.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef __linux__
#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#endif

/* Receive buffer: a DHCP/BOOTP datagram is at most 576 bytes unless option 57 says otherwise;
 * anything longer than this is delivered cut and flagged, for the caller to drop. */
#define PK_RECV_MAX 4096
/* Datagrams read per readable event before yielding back to the loop (poll is level-triggered,
 * so the rest are read on the next turn). */
#define PK_BATCH 64

static const napi_type_tag pk_tag = {0x6564676562756f74ULL, 0x7564705f706b7469ULL};

typedef struct pk_sock {
  eb_sock base;
  unsigned char buf[PK_RECV_MAX];
} pk_sock;

static pk_sock *pk_open_sock(napi_env env, napi_value handle) {
  return (pk_sock *)eb_unwrap_open(env, handle, &pk_tag, "udp_pktinfo: not a socket handle");
}

#ifdef __linux__

static void pk_report_error(pk_sock *s, const char *syscall, int err) {
  napi_env env = s->base.env;
  napi_handle_scope scope;
  napi_value e;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  e = eb_errno_error(env, syscall, err, NULL);
  if (e != NULL) eb_invoke(&s->base, 1, &e);
  napi_close_handle_scope(env, scope);
}

/* One datagram -> cb(null, data, fromAddress, fromPort, ifindex, to, local, truncated). */
static void pk_deliver(pk_sock *s, size_t n, const struct sockaddr_in *from,
                       const struct in_pktinfo *pi, int truncated) {
  napi_env env = s->base.env;
  napi_handle_scope scope;
  napi_value argv[8];
  char from_s[INET_ADDRSTRLEN] = "0.0.0.0", to_s[INET_ADDRSTRLEN] = "0.0.0.0",
       local_s[INET_ADDRSTRLEN] = "0.0.0.0";
  void *copy = NULL;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  inet_ntop(AF_INET, &from->sin_addr, from_s, sizeof from_s);
  if (pi != NULL) {
    inet_ntop(AF_INET, &pi->ipi_addr, to_s, sizeof to_s);
    inet_ntop(AF_INET, &pi->ipi_spec_dst, local_s, sizeof local_s);
  }
  if (napi_get_null(env, &argv[0]) == napi_ok &&
      napi_create_buffer_copy(env, n, s->buf, &copy, &argv[1]) == napi_ok &&
      napi_create_string_latin1(env, from_s, NAPI_AUTO_LENGTH, &argv[2]) == napi_ok &&
      napi_create_uint32(env, ntohs(from->sin_port), &argv[3]) == napi_ok &&
      napi_create_uint32(env, pi != NULL ? (uint32_t)pi->ipi_ifindex : 0, &argv[4]) == napi_ok &&
      napi_create_string_latin1(env, to_s, NAPI_AUTO_LENGTH, &argv[5]) == napi_ok &&
      napi_create_string_latin1(env, local_s, NAPI_AUTO_LENGTH, &argv[6]) == napi_ok &&
      napi_get_boolean(env, truncated != 0, &argv[7]) == napi_ok) {
    eb_invoke(&s->base, 8, argv);
  }
  napi_close_handle_scope(env, scope);
}

static void pk_on_poll(uv_poll_t *h, int status, int events) {
  pk_sock *s = (pk_sock *)h->data;
  int i;
  (void)events;
  if (s->base.closing) return;
  if (status < 0) {
    pk_report_error(s, "poll", -status);
    return;
  }
  for (i = 0; i < PK_BATCH && !s->base.closing; i++) {
    struct sockaddr_in from;
    struct iovec iov;
    struct msghdr msg;
    union {
      char buf[CMSG_SPACE(sizeof(struct in_pktinfo))];
      struct cmsghdr align;
    } ctl;
    struct cmsghdr *c;
    const struct in_pktinfo *pi = NULL;
    struct in_pktinfo pi_copy;
    ssize_t n;

    memset(&from, 0, sizeof from);
    memset(&msg, 0, sizeof msg);
    iov.iov_base = s->buf;
    iov.iov_len = sizeof s->buf;
    msg.msg_name = &from;
    msg.msg_namelen = sizeof from;
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = ctl.buf;
    msg.msg_controllen = sizeof ctl.buf;

    n = recvmsg(s->base.fd, &msg, MSG_DONTWAIT);
    if (n < 0) {
      int err = errno;
      if (err == EINTR) continue;
      if (err == EAGAIN || err == EWOULDBLOCK) break;
      pk_report_error(s, "recvmsg", err);
      break;
    }
    for (c = CMSG_FIRSTHDR(&msg); c != NULL; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO &&
          c->cmsg_len >= CMSG_LEN(sizeof(struct in_pktinfo))) {
        memcpy(&pi_copy, CMSG_DATA(c), sizeof pi_copy);
        pi = &pi_copy;
      }
    }
    pk_deliver(s, (size_t)n, &from, pi, (msg.msg_flags & MSG_TRUNC) != 0);
  }
}

/* open(address, port, device|null, cb) -> handle */
static napi_value pk_open(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  napi_valuetype t;
  char addr_s[64], dev[IFNAMSIZ], detail[96];
  int have_dev = 0, fd, one = 1, zero = 0;
  int64_t port;
  struct sockaddr_in sa;
  pk_sock *s;

  EB_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 4) return eb_throw_type(env, "open(address, port, device, callback)");
  const char *bad_addr = eb_get_sockaddr(env, argv[0], argv[1], 0, &sa, addr_s, sizeof addr_s, &port);
  if (bad_addr != NULL) return eb_throw_type(env, bad_addr);
  if (!eb_is_nullish(env, argv[2])) {
    if (eb_get_string(env, argv[2], dev, sizeof dev) != 0 || dev[0] == '\0')
      return eb_throw_type(env, "device must be an interface name shorter than IFNAMSIZ");
    have_dev = 1;
  }
  if (napi_typeof(env, argv[3], &t) != napi_ok || t != napi_function)
    return eb_throw_type(env, "callback must be a function");

  snprintf(detail, sizeof detail, "%s:%d", addr_s, (int)port);
  fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return eb_throw_errno(env, "socket", errno, NULL);
  /* SO_REUSEADDR off: a clash with another DHCP daemon on the same port must be an error. */
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &zero, sizeof zero) != 0 ||
      setsockopt(fd, SOL_SOCKET, SO_BROADCAST, &one, sizeof one) != 0 ||
      setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof one) != 0) {
    int err = errno;
    close(fd);
    return eb_throw_errno(env, "setsockopt", err, detail);
  }
  /* A boot storm arrives in bursts while the event loop is busy (a lease commit, a reply):
   * ask for a 4 MiB receive queue. SO_RCVBUFFORCE passes net.core.rmem_max for root; without
   * the privilege SO_RCVBUF gets what rmem_max allows. Either way a smaller queue still works,
   * it only drops sooner, so a refusal here is not an error. */
  {
    int want = 4 * 1024 * 1024;
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &want, sizeof want) != 0)
      (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &want, sizeof want);
  }
  if (have_dev &&
      setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, dev, (socklen_t)strlen(dev) + 1) != 0) {
    int err = errno;
    close(fd);
    return eb_throw_errno(env, "setsockopt SO_BINDTODEVICE", err, dev);
  }
  if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
    int err = errno;
    close(fd);
    return eb_throw_errno(env, "bind", err, detail);
  }

  s = (pk_sock *)calloc(1, sizeof *s);
  if (s == NULL) {
    close(fd);
    return eb_throw_errno(env, "calloc", ENOMEM, NULL);
  }
  s->base.fd = fd;
  return eb_sock_start(env, &s->base, argv[3], &pk_tag, "edgeboot:udp_pktinfo", pk_on_poll);
}

/* send(handle, data, address, port, ifindex, source) -> bytes sent. Synchronous: a UDP sendmsg
 * does not block for long, and EAGAIN (send buffer full) is thrown like any other errno. */
static napi_value pk_send(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6], result;
  char addr_s[64], src_s[64], detail[96];
  int64_t port, ifindex;
  bool is_ta = false;
  void *data = NULL;
  size_t len = 0;
  struct sockaddr_in to;
  struct in_addr src;
  struct iovec iov;
  struct msghdr msg;
  union {
    char buf[CMSG_SPACE(sizeof(struct in_pktinfo))];
    struct cmsghdr align;
  } ctl;
  ssize_t n;
  pk_sock *s;

  EB_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 6) return eb_throw_type(env, "send(handle, data, address, port, ifindex, source)");
  s = pk_open_sock(env, argv[0]);
  if (s == NULL) return NULL;

  EB_CALL(env, napi_is_typedarray(env, argv[1], &is_ta));
  if (is_ta) {
    napi_typedarray_type tt;
    size_t count;
    napi_value ab;
    size_t off;
    EB_CALL(env, napi_get_typedarray_info(env, argv[1], &tt, &count, &data, &ab, &off));
    if (tt != napi_uint8_array && tt != napi_uint8_clamped_array && tt != napi_int8_array)
      return eb_throw_type(env, "data must be a Buffer or Uint8Array");
    len = count;
  } else {
    return eb_throw_type(env, "data must be a Buffer or Uint8Array");
  }

  const char *bad_to = eb_get_sockaddr(env, argv[2], argv[3], 1, &to, addr_s, sizeof addr_s, &port);
  if (bad_to != NULL) return eb_throw_type(env, bad_to);
  if (eb_get_int(env, argv[4], 0, INT32_MAX, &ifindex) != 0)
    return eb_throw_type(env, "ifindex must be a non-negative integer");
  if (eb_get_string(env, argv[5], src_s, sizeof src_s) != 0 ||
      inet_pton(AF_INET, src_s, &src) != 1)
    return eb_throw_type(env, "source must be a dotted-quad IPv4 address");

  memset(&msg, 0, sizeof msg);
  iov.iov_base = data;
  iov.iov_len = len;
  msg.msg_name = &to;
  msg.msg_namelen = sizeof to;
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  if (ifindex != 0 || src.s_addr != htonl(INADDR_ANY)) {
    /* ip(7) IP_PKTINFO on sendmsg: ipi_ifindex picks the outgoing interface (also for the
     * limited broadcast 255.255.255.255), ipi_spec_dst the source address. */
    struct cmsghdr *c;
    struct in_pktinfo pi;
    memset(&ctl, 0, sizeof ctl);
    memset(&pi, 0, sizeof pi);
    pi.ipi_ifindex = (int)ifindex;
    pi.ipi_spec_dst = src;
    msg.msg_control = ctl.buf;
    msg.msg_controllen = sizeof ctl.buf;
    c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = IPPROTO_IP;
    c->cmsg_type = IP_PKTINFO;
    c->cmsg_len = CMSG_LEN(sizeof pi);
    memcpy(CMSG_DATA(c), &pi, sizeof pi);
  }
  do {
    n = sendmsg(s->base.fd, &msg, MSG_DONTWAIT);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    snprintf(detail, sizeof detail, "%s:%d", addr_s, (int)port);
    return eb_throw_errno(env, "sendmsg", errno, detail);
  }
  EB_CALL(env, napi_create_int64(env, (int64_t)n, &result));
  return result;
}

static napi_value pk_close(napi_env env, napi_callback_info info) {
  return eb_close_js(env, info, &pk_tag, "udp_pktinfo: not a socket handle");
}

/* localAddress(handle) -> { address, port } from getsockname (the real port after port 0). */
static napi_value pk_local_address(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], obj, v;
  pk_sock *s;
  struct sockaddr_in sa;
  socklen_t salen = sizeof sa;
  char addr_s[INET_ADDRSTRLEN];
  EB_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1) return eb_throw_type(env, "localAddress(handle)");
  s = pk_open_sock(env, argv[0]);
  if (s == NULL) return NULL;
  if (getsockname(s->base.fd, (struct sockaddr *)&sa, &salen) != 0)
    return eb_throw_errno(env, "getsockname", errno, NULL);
  inet_ntop(AF_INET, &sa.sin_addr, addr_s, sizeof addr_s);
  EB_CALL(env, napi_create_object(env, &obj));
  EB_CALL(env, napi_create_string_latin1(env, addr_s, NAPI_AUTO_LENGTH, &v));
  EB_CALL(env, napi_set_named_property(env, obj, "address", v));
  EB_CALL(env, napi_create_uint32(env, ntohs(sa.sin_port), &v));
  EB_CALL(env, napi_set_named_property(env, obj, "port", v));
  return obj;
}

#else /* !__linux__ */

static napi_value pk_unsupported(napi_env env, napi_callback_info info) {
  (void)info;
  return eb_throw_code(env, "ERR_UDP_PKTINFO_UNSUPPORTED", "udp_pktinfo: Linux only");
}
#define pk_open pk_unsupported
#define pk_send pk_unsupported
#define pk_close pk_unsupported
#define pk_local_address pk_unsupported

#endif /* __linux__ */

static napi_value pk_init(napi_env env, napi_value exports) {
  napi_value recv_max;
  napi_property_descriptor props[] = {
      {"open", NULL, pk_open, NULL, NULL, NULL, napi_enumerable, NULL},
      {"send", NULL, pk_send, NULL, NULL, NULL, napi_enumerable, NULL},
      {"close", NULL, pk_close, NULL, NULL, NULL, napi_enumerable, NULL},
      {"localAddress", NULL, pk_local_address, NULL, NULL, NULL, napi_enumerable, NULL},
      {"RECV_MAX", NULL, NULL, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  EB_CALL(env, napi_create_uint32(env, PK_RECV_MAX, &recv_max));
  props[4].value = recv_max;
  EB_CALL(env, napi_define_properties(env, exports, sizeof props / sizeof props[0], props));
  return exports;
}

NAPI_MODULE_INIT() { return pk_init(env, exports); }
