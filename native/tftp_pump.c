/*
 * tftp_pump: the socket of one TFTP read transfer, with the steady state of the transfer done
 * in native code.
 *
 * Why: in lock-step TFTP (windowsize 1) every block waits for one round trip, and the time the
 * server takes to turn an ACK into the next DATA is the transfer's speed. Through Node's event
 * loop and dgram that turn costs more than the whole round trip of tftpd-hpa (measured: a bare
 * dgram lock-step sender reaches 0.7x of tftpd-hpa on loopback). Here the one common case — the
 * ACK of the last block sent, acknowledging the whole window — is answered in C on the loop
 * thread: read the next window from the file (pread, the page cache) or the buffer, send it.
 * Everything else (the first ACK, duplicate and stale ACKs, an ACK inside the window, the ACK
 * of the final block, ERRORs, garbage, receive errors) goes to JavaScript, where the transfer
 * state machine (src/tftp/transfer.ts) decides, and tells the pump which blocks to send.
 * The pump reports how far it got with every packet it hands up, and on request (the JS
 * retransmission timer asks before deciding a timeout).
 *
 * The socket is bound to the local address the client sent its request to and connected to the
 * client's address and port (RFC 1350 §4 transfer IDs): the kernel keeps other senders out.
 *
 * JS surface (wrapped by src/tftp/pump.ts):
 *   open(localAddress, clientAddress, clientPort, cb) -> handle
 *     cb(err, data, acked, sent): err is null and data a Buffer for a packet JS must handle;
 *     err an Error (code/errno/syscall) when receiving or sending failed.
 *   configure(handle, source, size, blksize, windowsize)  source: a file descriptor or a Buffer
 *   sendBlocks(handle, from, to, acked) -> blocks sent   absolute numbers; sets the state
 *   sendRaw(handle, data)                                 e.g. the OACK
 *   progress(handle) -> [acked, sent, blocksSent, bytesSent, msSinceLastSend]
 *   localPort(handle) -> port
 *   close(handle)                                         idempotent; the fd of a source is the caller's
 */
#include "napi_util.h"

#include <errno.h>
#include <stdlib.h>

#ifdef __linux__
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>
#endif

/* Largest datagram a client sends (an ERROR with a long message); longer ones are cut. */
#define TP_RECV_MAX 2048
#define TP_BATCH 64
#define TP_HEADER 4

static const napi_type_tag tp_tag = {0x6564676562756f74ULL, 0x746674705f70756dULL};

typedef struct tp_sock {
  eb_sock base;
  napi_ref source_ref; /* a Buffer source, kept alive while configured */
  /* The content: a file descriptor (pread) or a buffer. */
  int source_fd;
  const unsigned char *source_buf;
  uint64_t size;
  uint32_t blksize;
  uint32_t windowsize;
  /* Absolute block numbers, as in transfer.ts. */
  uint64_t acked;
  uint64_t sent;
  uint64_t last;
  uint64_t blocks_sent;
  uint64_t bytes_sent;
  uint64_t last_send_ns; /* uv_hrtime() of the last block sent */
  unsigned char *block; /* TP_HEADER + blksize */
  unsigned char rbuf[TP_RECV_MAX];
} tp_sock;

#ifdef __linux__

/* Drops what a transfer holds beyond the socket (eb_sock's release). */
static void tp_release(eb_sock *base) {
  tp_sock *s = (tp_sock *)base;
  if (s->source_ref != NULL) napi_delete_reference(base->env, s->source_ref);
  s->source_ref = NULL;
  free(s->block);
  s->block = NULL;
}


/* cb(err, data, acked, sent): a packet (err null) or an error (data null). */
static void tp_deliver(tp_sock *s, const char *syscall, int err, size_t n) {
  napi_env env = s->base.env;
  napi_handle_scope scope;
  napi_value argv[4];
  void *copy = NULL;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  int ok;
  if (syscall != NULL) {
    argv[0] = eb_errno_error(env, syscall, err, NULL);
    ok = argv[0] != NULL && napi_get_null(env, &argv[1]) == napi_ok;
  } else {
    ok = napi_get_null(env, &argv[0]) == napi_ok &&
         napi_create_buffer_copy(env, n, s->rbuf, &copy, &argv[1]) == napi_ok;
  }
  if (ok && napi_create_double(env, (double)s->acked, &argv[2]) == napi_ok &&
      napi_create_double(env, (double)s->sent, &argv[3]) == napi_ok)
    eb_invoke(&s->base, 4, argv);
  napi_close_handle_scope(env, scope);
}

/* Sends absolute blocks [from, to]; returns how many left, or -errno. EAGAIN/ENOBUFS stop the
 * burst without an error: the blocks count as lost and the retransmission timer resends them. */
static int64_t tp_send_blocks(tp_sock *s, uint64_t from, uint64_t to) {
  int64_t count = 0;
  uint64_t n;
  for (n = from; n <= to; n++) {
    uint64_t pos = (n - 1) * (uint64_t)s->blksize;
    size_t len = pos >= s->size ? 0 : (size_t)(s->size - pos < s->blksize ? s->size - pos : s->blksize);
    ssize_t w;
    s->block[0] = 0;
    s->block[1] = 3;
    s->block[2] = (unsigned char)((n >> 8) & 0xff);
    s->block[3] = (unsigned char)(n & 0xff);
    if (len > 0) {
      if (s->source_buf != NULL) {
        memcpy(s->block + TP_HEADER, s->source_buf + pos, len);
      } else {
        size_t got = 0;
        while (got < len) {
          ssize_t r = pread(s->source_fd, s->block + TP_HEADER + got, len - got, (off_t)(pos + got));
          if (r < 0 && errno == EINTR) continue;
          if (r < 0) return -errno;
          if (r == 0) return -EIO; /* the file shrank under the transfer */
          got += (size_t)r;
        }
      }
    }
    do {
      w = send(s->base.fd, s->block, TP_HEADER + len, MSG_DONTWAIT);
    } while (w < 0 && errno == EINTR);
    if (w < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS) return count;
      return -errno;
    }
    s->blocks_sent++;
    s->bytes_sent += (uint64_t)w;
    s->last_send_ns = uv_hrtime();
    count++;
  }
  return count;
}

static void tp_on_poll(uv_poll_t *h, int status, int events) {
  tp_sock *s = (tp_sock *)h->data;
  int i;
  (void)events;
  if (s->base.closing) return;
  if (status < 0) {
    tp_deliver(s, "poll", -status, 0);
    return;
  }
  for (i = 0; i < TP_BATCH && !s->base.closing; i++) {
    ssize_t n = recv(s->base.fd, s->rbuf, sizeof s->rbuf, MSG_DONTWAIT);
    if (n < 0) {
      int err = errno;
      if (err == EINTR) continue;
      if (err == EAGAIN || err == EWOULDBLOCK) break;
      tp_deliver(s, "recv", err, 0);
      break;
    }
    /* The fast path: the ACK of the last block sent, with more to send (RFC 7440 §4: it
     * acknowledges the whole window, and the next window follows). */
    if (n >= 4 && s->rbuf[0] == 0 && s->rbuf[1] == 4 && s->sent > s->acked && s->sent < s->last &&
        (((unsigned)s->rbuf[2] << 8) | s->rbuf[3]) == (s->sent & 0xffff)) {
      uint64_t to = s->sent + s->windowsize;
      int64_t r;
      if (to > s->last) to = s->last;
      s->acked = s->sent;
      r = tp_send_blocks(s, s->acked + 1, to);
      if (r < 0) {
        tp_deliver(s, s->source_buf == NULL ? "pread/send" : "send", (int)-r, 0);
        break;
      }
      s->sent = to;
      /* The client's next ACK needs this window first: go back to the loop rather than try a
       * recv that would only say EAGAIN (poll is level-triggered: anything queued still wakes). */
      break;
    }
    tp_deliver(s, NULL, 0, (size_t)n);
  }
}

/* open(localAddress, clientAddress, clientPort, cb) -> handle */
static napi_value tp_open(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  napi_valuetype t;
  char local_s[64], client_s[64], detail[96];
  int64_t lport, cport;
  struct sockaddr_in local, client;
  int fd;
  tp_sock *s;
  const char *bad;

  EB_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 4) return eb_throw_type(env, "open(localAddress, clientAddress, clientPort, callback)");
  {
    napi_value zero;
    EB_CALL(env, napi_create_uint32(env, 0, &zero));
    bad = eb_get_sockaddr(env, argv[0], zero, 0, &local, local_s, sizeof local_s, &lport);
    if (bad != NULL) return eb_throw_type(env, bad);
  }
  bad = eb_get_sockaddr(env, argv[1], argv[2], 1, &client, client_s, sizeof client_s, &cport);
  if (bad != NULL) return eb_throw_type(env, bad);
  if (napi_typeof(env, argv[3], &t) != napi_ok || t != napi_function)
    return eb_throw_type(env, "callback must be a function");

  fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return eb_throw_errno(env, "socket", errno, NULL);
  if (bind(fd, (struct sockaddr *)&local, sizeof local) != 0) {
    int err = errno;
    close(fd);
    snprintf(detail, sizeof detail, "%s:0", local_s);
    return eb_throw_errno(env, "bind", err, detail);
  }
  if (connect(fd, (struct sockaddr *)&client, sizeof client) != 0) {
    int err = errno;
    close(fd);
    snprintf(detail, sizeof detail, "%s:%d", client_s, (int)cport);
    return eb_throw_errno(env, "connect", err, detail);
  }

  s = (tp_sock *)calloc(1, sizeof *s);
  if (s == NULL) {
    close(fd);
    return eb_throw_errno(env, "calloc", ENOMEM, NULL);
  }
  s->base.fd = fd;
  s->base.release = tp_release;
  s->source_fd = -1;
  return eb_sock_start(env, &s->base, argv[3], &tp_tag, "edgeboot:tftp_pump", tp_on_poll);
}

/* The open transfer behind a handle, or NULL with an exception pending. */
static tp_sock *tp_open_sock(napi_env env, napi_value handle) {
  return (tp_sock *)eb_unwrap_open(env, handle, &tp_tag, "tftp_pump: not a transfer handle");
}

/* configure(handle, source, size, blksize, windowsize) */
static napi_value tp_configure(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  int64_t size, blksize, windowsize, sfd;
  bool is_buffer = false;
  tp_sock *s;
  unsigned char *block;
  EB_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 5) return eb_throw_type(env, "configure(handle, source, size, blksize, windowsize)");
  s = tp_open_sock(env, argv[0]);
  if (s == NULL) return NULL;
  if (eb_get_int(env, argv[2], 0, (int64_t)1 << 52, &size) != 0) return eb_throw_type(env, "size must be a non-negative integer");
  if (eb_get_int(env, argv[3], 8, 65464, &blksize) != 0) return eb_throw_type(env, "blksize must be an integer from 8 to 65464");
  if (eb_get_int(env, argv[4], 1, 65535, &windowsize) != 0) return eb_throw_type(env, "windowsize must be an integer from 1 to 65535");
  EB_CALL(env, napi_is_buffer(env, argv[1], &is_buffer));
  if (s->source_ref != NULL || s->block != NULL) return eb_throw_code(env, "ERR_INVALID_STATE", "transfer already configured");
  block = (unsigned char *)malloc(TP_HEADER + (size_t)blksize);
  if (block == NULL) return eb_throw_errno(env, "malloc", ENOMEM, NULL);
  if (is_buffer) {
    void *data = NULL;
    size_t len = 0;
    if (napi_get_buffer_info(env, argv[1], &data, &len) != napi_ok || (int64_t)len < size) {
      free(block);
      return eb_throw_type(env, "source buffer is shorter than size");
    }
    if (napi_create_reference(env, argv[1], 1, &s->source_ref) != napi_ok) {
      free(block);
      return eb_rethrow(env, "napi_create_reference");
    }
    s->source_buf = (const unsigned char *)data;
  } else {
    if (eb_get_int(env, argv[1], 0, INT32_MAX, &sfd) != 0) {
      free(block);
      return eb_throw_type(env, "source must be a file descriptor or a Buffer");
    }
    s->source_fd = (int)sfd;
    /* Sequential reads: ask for a larger read-ahead so a cold file streams from the disk. */
    (void)posix_fadvise(s->source_fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  }
  s->block = block;
  s->size = (uint64_t)size;
  s->blksize = (uint32_t)blksize;
  s->windowsize = (uint32_t)windowsize;
  s->last = (uint64_t)size / (uint64_t)blksize + 1;
  return NULL;
}

/* sendBlocks(handle, from, to, acked) -> blocks sent */
static napi_value tp_send_blocks_js(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4], result;
  int64_t from, to, acked, r;
  tp_sock *s;
  EB_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 4) return eb_throw_type(env, "sendBlocks(handle, from, to, acked)");
  s = tp_open_sock(env, argv[0]);
  if (s == NULL) return NULL;
  if (s->block == NULL) return eb_throw_code(env, "ERR_INVALID_STATE", "transfer not configured");
  if (eb_get_int(env, argv[1], 1, (int64_t)1 << 52, &from) != 0 || eb_get_int(env, argv[2], 0, (int64_t)s->last, &to) != 0 ||
      eb_get_int(env, argv[3], 0, (int64_t)s->last, &acked) != 0 || acked >= from)
    return eb_throw_type(env, "blocks must satisfy acked < from, to <= last");
  s->acked = (uint64_t)acked;
  r = tp_send_blocks(s, (uint64_t)from, (uint64_t)to);
  if (r < 0) return eb_throw_errno(env, s->source_buf == NULL ? "pread/send" : "send", (int)-r, NULL);
  if ((uint64_t)to > s->sent) s->sent = (uint64_t)to;
  EB_CALL(env, napi_create_int64(env, r, &result));
  return result;
}

/* sendRaw(handle, data) */
static napi_value tp_send_raw(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  void *data = NULL;
  size_t len = 0;
  bool is_buffer = false;
  ssize_t w;
  tp_sock *s;
  EB_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 2) return eb_throw_type(env, "sendRaw(handle, data)");
  s = tp_open_sock(env, argv[0]);
  if (s == NULL) return NULL;
  EB_CALL(env, napi_is_buffer(env, argv[1], &is_buffer));
  if (!is_buffer) return eb_throw_type(env, "data must be a Buffer");
  EB_CALL(env, napi_get_buffer_info(env, argv[1], &data, &len));
  do {
    w = send(s->base.fd, data, len, MSG_DONTWAIT);
  } while (w < 0 && errno == EINTR);
  if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != ENOBUFS) return eb_throw_errno(env, "send", errno, NULL);
  return NULL;
}

/* progress(handle) -> [acked, sent, blocksSent, bytesSent, msSinceLastSend] */
static napi_value tp_progress(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], arr, v;
  tp_sock *s;
  double values[5];
  uint32_t i;
  EB_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1) return eb_throw_type(env, "progress(handle)");
  s = tp_open_sock(env, argv[0]);
  if (s == NULL) return NULL;
  values[0] = (double)s->acked;
  values[1] = (double)s->sent;
  values[2] = (double)s->blocks_sent;
  values[3] = (double)s->bytes_sent;
  values[4] = s->last_send_ns == 0 ? 0 : (double)(uv_hrtime() - s->last_send_ns) / 1e6;
  EB_CALL(env, napi_create_array_with_length(env, 5, &arr));
  for (i = 0; i < 5; i++) {
    EB_CALL(env, napi_create_double(env, values[i], &v));
    EB_CALL(env, napi_set_element(env, arr, i, v));
  }
  return arr;
}

static napi_value tp_local_port(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], v;
  struct sockaddr_in sa;
  socklen_t salen = sizeof sa;
  tp_sock *s;
  EB_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1) return eb_throw_type(env, "localPort(handle)");
  s = tp_open_sock(env, argv[0]);
  if (s == NULL) return NULL;
  if (getsockname(s->base.fd, (struct sockaddr *)&sa, &salen) != 0) return eb_throw_errno(env, "getsockname", errno, NULL);
  EB_CALL(env, napi_create_uint32(env, ntohs(sa.sin_port), &v));
  return v;
}

static napi_value tp_close(napi_env env, napi_callback_info info) {
  return eb_close_js(env, info, &tp_tag, "tftp_pump: not a transfer handle");
}

#else /* !__linux__ */

static napi_value tp_unsupported(napi_env env, napi_callback_info info) {
  (void)info;
  return eb_throw_code(env, "ERR_TFTP_PUMP_UNSUPPORTED", "tftp_pump: Linux only");
}
#define tp_open tp_unsupported
#define tp_configure tp_unsupported
#define tp_send_blocks_js tp_unsupported
#define tp_send_raw tp_unsupported
#define tp_progress tp_unsupported
#define tp_local_port tp_unsupported
#define tp_close tp_unsupported

#endif /* __linux__ */

NAPI_MODULE_INIT() {
  napi_property_descriptor props[] = {
      {"open", NULL, tp_open, NULL, NULL, NULL, napi_enumerable, NULL},
      {"configure", NULL, tp_configure, NULL, NULL, NULL, napi_enumerable, NULL},
      {"sendBlocks", NULL, tp_send_blocks_js, NULL, NULL, NULL, napi_enumerable, NULL},
      {"sendRaw", NULL, tp_send_raw, NULL, NULL, NULL, napi_enumerable, NULL},
      {"progress", NULL, tp_progress, NULL, NULL, NULL, napi_enumerable, NULL},
      {"localPort", NULL, tp_local_port, NULL, NULL, NULL, napi_enumerable, NULL},
      {"close", NULL, tp_close, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  EB_CALL(env, napi_define_properties(env, exports, sizeof props / sizeof props[0], props));
  return exports;
}
