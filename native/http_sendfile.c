/*
 * http_sendfile: the body of a large HTTP response sent from a file by sendfile(2), on a few
 * native threads, without the bytes ever entering JavaScript.
 *
 * Why: piping a file read stream into a response moves every byte through a JS Buffer and the
 * event loop; for a 1 GiB rootfs to 50 machines that reaches about half of nginx's throughput
 * (sendfile) and the buffers make the process's memory grow with the number of clients
 * (bench/cache-serve.sh). Here the kernel copies page cache to socket, and each transfer holds
 * one small struct.
 *
 * How: JS writes the status line and headers through Node's http (so keep-alive, logging and
 * hooks work as usual), waits until they reached the kernel, then hands the socket's file
 * descriptor and the file's to send(). Both are dup()ed: JS closes its file descriptor at once,
 * and the connection stays open until the transfer ends (JS must cancel() it when Node closes
 * the socket). A few threads, each with its own epoll set, call sendfile on their transfers
 * while the socket accepts bytes (edge-triggered EPOLLOUT), a bounded amount per transfer per
 * round so that none starves the others. When a transfer ends — all bytes sent, the peer gone,
 * a stall, cancel() — its callback runs on Node's loop through a thread-safe function.
 *
 * An optional rate cap (bytes per second) is a token bucket per key (the client address), empty
 * at first and holding at most a quarter second of bytes:
 * every transfer with the same key is placed on the same thread and shares its bucket.
 *
 * JS surface (wrapped by src/http/sendfile.ts):
 *   send(socketFd, fileFd, offset, length, rate, rateKey, stallMs, cb) -> id
 *     cb(err, bytesSent): err null when all `length` bytes were sent, else an Error with
 *     code/errno/syscall (ECANCELED for cancel(), ETIMEDOUT for a stall, ENODATA when the file
 *     ended before the range did).
 *   cancel(id)   ends the transfer with ECANCELED; no effect once its callback is queued
 *   active() -> number of transfers not yet called back
 */
#include "napi_util.h"

#include <stdlib.h>

#ifdef __linux__
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/sendfile.h>
#include <time.h>
#include <unistd.h>

#define SF_MAX_THREADS 4
/* One sendfile call, and what one transfer may send before the thread turns to the next. */
#define SF_CHUNK (2u << 20)
#define SF_ROUND (8u << 20)
/* A capped transfer waits until its bucket holds this much (or the rest of the range). */
#define SF_MIN_TOKENS (16u << 10)
#define SF_KEY_MAX 64

typedef struct sf_bucket {
  struct sf_bucket *next;
  char key[SF_KEY_MAX];
  uint64_t rate;
  double tokens;
  uint64_t refill_ns;
  int refs;
} sf_bucket;

struct sf_thread;

typedef struct sf_job {
  struct sf_job *next;      /* in its thread's list (thread only), or its incoming queue */
  struct sf_job *live_next; /* in the pool's live list (loop thread only) */
  uint32_t id;
  int sock_fd;
  int file_fd;
  int64_t offset;
  uint64_t remaining;
  uint64_t sent;
  uint64_t rate;
  char key[SF_KEY_MAX];
  sf_bucket *bucket;
  uint64_t stall_ns;
  uint64_t progress_ns;
  int ready;
  int err;
  const char *err_syscall;
  atomic_int cancelled;
  napi_ref cb;
  struct sf_thread *thread;
} sf_job;

typedef struct sf_thread {
  pthread_t tid;
  int started;
  int ep;
  int wake_fd;
  pthread_mutex_t mu;
  sf_job *incoming;
  atomic_int stop;
  atomic_int load; /* transfers placed here and not yet ended */
  sf_job *jobs;
  sf_bucket *buckets;
  struct sf_pool *pool;
} sf_thread;

typedef struct sf_pool {
  napi_env env;
  napi_threadsafe_function tsfn;
  napi_async_context actx;
  int nthreads;
  sf_thread threads[SF_MAX_THREADS];
  sf_job *live;
  uint32_t next_id;
  uint32_t active;
  unsigned rr;
} sf_pool;

static uint64_t sf_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void sf_wake(sf_thread *t) {
  uint64_t one = 1;
  ssize_t r;
  do r = write(t->wake_fd, &one, sizeof one);
  while (r < 0 && errno == EINTR);
}

/* ---- on a sending thread ---- */

static sf_bucket *sf_bucket_get(sf_thread *t, const char *key, uint64_t rate) {
  sf_bucket *b;
  for (b = t->buckets; b != NULL; b = b->next)
    if (strcmp(b->key, key) == 0) break;
  if (b == NULL) {
    b = (sf_bucket *)calloc(1, sizeof *b);
    if (b == NULL) return NULL;
    snprintf(b->key, sizeof b->key, "%s", key);
    b->refill_ns = sf_now();
    b->next = t->buckets;
    t->buckets = b;
  }
  /* The newest transfer's cap wins: they all come from one configuration. */
  b->rate = rate;
  b->refs++;
  return b;
}

static void sf_bucket_put(sf_thread *t, sf_bucket *b) {
  sf_bucket **p;
  if (b == NULL || --b->refs > 0) return;
  for (p = &t->buckets; *p != NULL; p = &(*p)->next) {
    if (*p == b) {
      *p = b->next;
      free(b);
      return;
    }
  }
}

static void sf_bucket_refill(sf_bucket *b, uint64_t now) {
  double burst = (double)b->rate / 4.0;
  if (burst < (double)(64u << 10)) burst = (double)(64u << 10);
  b->tokens += (double)b->rate * (double)(now - b->refill_ns) / 1e9;
  if (b->tokens > burst) b->tokens = burst;
  b->refill_ns = now;
}

/* Nanoseconds until a capped transfer may send again; 0 if it may now. */
static uint64_t sf_throttle_wait(sf_job *j, uint64_t now) {
  double need;
  if (j->bucket == NULL) return 0;
  sf_bucket_refill(j->bucket, now);
  need = (double)(j->remaining < SF_MIN_TOKENS ? j->remaining : SF_MIN_TOKENS);
  if (j->bucket->tokens >= need) return 0;
  return (uint64_t)((need - j->bucket->tokens) * 1e9 / (double)j->bucket->rate) + 1;
}

/* Takes the transfer off its thread and queues its callback. */
static void sf_finish(sf_thread *t, sf_job *j, int err, const char *syscall) {
  sf_job **p;
  for (p = &t->jobs; *p != NULL; p = &(*p)->next) {
    if (*p == j) {
      *p = j->next;
      break;
    }
  }
  epoll_ctl(t->ep, EPOLL_CTL_DEL, j->sock_fd, NULL);
  close(j->sock_fd);
  close(j->file_fd);
  j->sock_fd = j->file_fd = -1;
  sf_bucket_put(t, j->bucket);
  j->bucket = NULL;
  j->err = err;
  j->err_syscall = syscall;
  atomic_fetch_sub(&t->load, 1);
  /* Blocking: the queue is unbounded, so this never waits. */
  napi_call_threadsafe_function(t->pool->tsfn, j, napi_tsfn_blocking);
}

/* Sends what the socket takes, up to a round's worth (and the bucket's tokens). */
static void sf_pump(sf_thread *t, sf_job *j, uint64_t now) {
  uint64_t round = 0;
  while (j->remaining > 0 && round < SF_ROUND) {
    size_t n = j->remaining < SF_CHUNK ? (size_t)j->remaining : SF_CHUNK;
    ssize_t r;
    if (j->bucket != NULL) {
      if (sf_throttle_wait(j, now) > 0) return;
      if ((double)n > j->bucket->tokens) n = (size_t)j->bucket->tokens;
    }
    r = sendfile(j->sock_fd, j->file_fd, &j->offset, n);
    if (r < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) {
        j->ready = 0;
        return;
      }
      sf_finish(t, j, errno, "sendfile");
      return;
    }
    if (r == 0) {
      sf_finish(t, j, ENODATA, "sendfile");
      return;
    }
    j->remaining -= (uint64_t)r;
    j->sent += (uint64_t)r;
    round += (uint64_t)r;
    j->progress_ns = now;
    if (j->bucket != NULL) j->bucket->tokens -= (double)r;
  }
  if (j->remaining == 0) sf_finish(t, j, 0, NULL);
}

static void sf_take_incoming(sf_thread *t) {
  sf_job *in, *next;
  pthread_mutex_lock(&t->mu);
  in = t->incoming;
  t->incoming = NULL;
  pthread_mutex_unlock(&t->mu);
  for (; in != NULL; in = next) {
    struct epoll_event ev;
    next = in->next;
    in->next = t->jobs;
    t->jobs = in;
    in->ready = 1;
    in->progress_ns = sf_now();
    if (in->rate > 0) {
      in->bucket = sf_bucket_get(t, in->key, in->rate);
      if (in->bucket == NULL) {
        sf_finish(t, in, ENOMEM, "calloc");
        continue;
      }
    }
    memset(&ev, 0, sizeof ev);
    ev.events = EPOLLOUT | EPOLLET;
    ev.data.ptr = in;
    if (epoll_ctl(t->ep, EPOLL_CTL_ADD, in->sock_fd, &ev) != 0) sf_finish(t, in, errno, "epoll_ctl");
  }
}

static void *sf_thread_main(void *arg) {
  sf_thread *t = (sf_thread *)arg;
  struct epoll_event evs[64];
  int timeout_ms = -1;
  while (!atomic_load(&t->stop)) {
    int n = epoll_wait(t->ep, evs, 64, timeout_ms);
    uint64_t now, next_ns = UINT64_MAX;
    sf_job *j, *next;
    for (int i = 0; i < n; i++) {
      if (evs[i].data.ptr == NULL) {
        uint64_t v;
        ssize_t r = read(t->wake_fd, &v, sizeof v);
        (void)r;
        sf_take_incoming(t);
      } else {
        ((sf_job *)evs[i].data.ptr)->ready = 1;
      }
    }
    now = sf_now();
    for (j = t->jobs; j != NULL; j = next) {
      next = j->next;
      if (atomic_load(&j->cancelled)) sf_finish(t, j, ECANCELED, "sendfile");
      else if (j->ready) sf_pump(t, j, now);
    }
    /* What to wait for next: a ready transfer now, a capped one when its bucket fills, a
     * stalled one when it times out. */
    now = sf_now();
    for (j = t->jobs; j != NULL; j = next) {
      uint64_t at;
      next = j->next;
      if (now - j->progress_ns >= j->stall_ns) {
        sf_finish(t, j, ETIMEDOUT, "sendfile");
        continue;
      }
      at = j->progress_ns + j->stall_ns;
      if (j->ready) {
        uint64_t wait = sf_throttle_wait(j, now);
        if (now + wait < at) at = now + wait;
      }
      if (at < next_ns) next_ns = at;
    }
    timeout_ms = next_ns == UINT64_MAX ? -1 : next_ns <= now ? 0 : (int)((next_ns - now + 999999) / 1000000);
  }
  return NULL;
}

/* ---- on Node's loop ---- */

static void sf_call_js(napi_env env, napi_value unused, void *context, void *data) {
  sf_pool *pool = (sf_pool *)context;
  sf_job *j = (sf_job *)data;
  sf_job **p;
  napi_value cb, recv, argv[2], result;
  if (env == NULL) {
    free(j);
    return;
  }
  for (p = &pool->live; *p != NULL; p = &(*p)->live_next) {
    if (*p == j) {
      *p = j->live_next;
      break;
    }
  }
  pool->active--;
  if (napi_get_reference_value(env, j->cb, &cb) == napi_ok && cb != NULL && napi_get_global(env, &recv) == napi_ok) {
    if (j->err == 0) napi_get_null(env, &argv[0]);
    else argv[0] = eb_errno_error(env, j->err_syscall, j->err, j->err == ENODATA ? "(the file ended before the range)" : NULL);
    napi_create_double(env, (double)j->sent, &argv[1]);
    if (argv[0] != NULL && napi_make_callback(env, pool->actx, recv, cb, 2, argv, &result) != napi_ok) {
      bool pending = false;
      napi_value exc;
      napi_is_exception_pending(env, &pending);
      if (pending && napi_get_and_clear_last_exception(env, &exc) == napi_ok) napi_fatal_exception(env, exc);
    }
  }
  napi_delete_reference(env, j->cb);
  free(j);
}

/* Closes and frees a list of transfers (linked by `next`) that no thread holds any more. */
static void sf_free_jobs(sf_job *j) {
  for (sf_job *next; j != NULL; j = next) {
    next = j->next;
    close(j->sock_fd);
    close(j->file_fd);
    free(j);
  }
}

/* Environment teardown (napi_add_env_cleanup_hook; a Worker's exit too). Every thread is stopped
 * and joined first, so nothing else touches a transfer while they are freed. */
static void sf_pool_destroy(void *arg) {
  sf_pool *pool = (sf_pool *)arg;
  for (int i = 0; i < pool->nthreads; i++) {
    sf_thread *t = &pool->threads[i];
    if (!t->started) continue;
    atomic_store(&t->stop, 1);
    sf_wake(t);
    pthread_join(t->tid, NULL);
  }
  /* Every transfer not yet called back holds a reference to its callback: dropped here, while
   * the environment still takes Node-API calls. */
  for (sf_job *j = pool->live; j != NULL; j = j->live_next) napi_delete_reference(pool->env, j->cb);
  pool->live = NULL;
  for (int i = 0; i < pool->nthreads; i++) {
    sf_thread *t = &pool->threads[i];
    if (!t->started) continue;
    /* The transfers still on the thread (running, or handed over and not yet taken) are freed
     * here; those that ended before are in the thread-safe function's queue, which frees them
     * (sf_call_js with env NULL) when it is released below. */
    sf_free_jobs(t->jobs);
    sf_free_jobs(t->incoming);
    t->jobs = t->incoming = NULL;
    while (t->buckets != NULL) {
      sf_bucket *b = t->buckets;
      t->buckets = b->next;
      free(b);
    }
    close(t->ep);
    close(t->wake_fd);
    pthread_mutex_destroy(&t->mu);
  }
  napi_async_destroy(pool->env, pool->actx);
  napi_release_threadsafe_function(pool->tsfn, napi_tsfn_abort);
  free(pool);
}

static int sf_thread_start(sf_pool *pool, sf_thread *t) {
  struct epoll_event ev;
  int rc;
  t->pool = pool;
  t->ep = epoll_create1(EPOLL_CLOEXEC);
  if (t->ep < 0) return errno;
  t->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (t->wake_fd < 0) {
    rc = errno;
    close(t->ep);
    return rc;
  }
  memset(&ev, 0, sizeof ev);
  ev.events = EPOLLIN;
  ev.data.ptr = NULL;
  if (epoll_ctl(t->ep, EPOLL_CTL_ADD, t->wake_fd, &ev) != 0) {
    rc = errno;
    close(t->ep);
    close(t->wake_fd);
    return rc;
  }
  pthread_mutex_init(&t->mu, NULL);
  rc = pthread_create(&t->tid, NULL, sf_thread_main, t);
  if (rc != 0) {
    close(t->ep);
    close(t->wake_fd);
    pthread_mutex_destroy(&t->mu);
    return rc;
  }
  t->started = 1;
  return 0;
}

static sf_pool *sf_pool_get(napi_env env) {
  sf_pool *pool = NULL;
  napi_value name;
  long cpus;
  if (napi_get_instance_data(env, (void **)&pool) == napi_ok && pool != NULL) return pool;
  pool = (sf_pool *)calloc(1, sizeof *pool);
  if (pool == NULL) {
    eb_throw_errno(env, "calloc", ENOMEM, NULL);
    return NULL;
  }
  pool->env = env;
  if (napi_create_string_utf8(env, "edgeboot:sendfile", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_create_threadsafe_function(env, NULL, NULL, name, 0, 1, NULL, NULL, pool, sf_call_js, &pool->tsfn) != napi_ok) {
    free(pool);
    eb_rethrow(env, "napi_create_threadsafe_function");
    return NULL;
  }
  /* Open sockets keep the process alive; the transfers need not. */
  napi_unref_threadsafe_function(env, pool->tsfn);
  if (napi_async_init(env, NULL, name, &pool->actx) != napi_ok) {
    napi_release_threadsafe_function(pool->tsfn, napi_tsfn_abort);
    free(pool);
    eb_rethrow(env, "napi_async_init");
    return NULL;
  }
  cpus = sysconf(_SC_NPROCESSORS_ONLN);
  pool->nthreads = cpus < 1 ? 1 : cpus > SF_MAX_THREADS ? SF_MAX_THREADS : (int)cpus;
  for (int i = 0; i < pool->nthreads; i++) {
    int rc = sf_thread_start(pool, &pool->threads[i]);
    if (rc != 0) {
      if (i == 0) {
        napi_release_threadsafe_function(pool->tsfn, napi_tsfn_abort);
        free(pool);
        eb_throw_errno(env, "pthread_create", rc, NULL);
        return NULL;
      }
      pool->nthreads = i;
      break;
    }
  }
  if (napi_set_instance_data(env, pool, NULL, NULL) != napi_ok || napi_add_env_cleanup_hook(env, sf_pool_destroy, pool) != napi_ok) {
    sf_pool_destroy(pool);
    eb_rethrow(env, "napi_set_instance_data");
    return NULL;
  }
  return pool;
}

/* Capped transfers of one key share a thread (and its bucket); the others go where fewest are. */
static sf_thread *sf_place(sf_pool *pool, const char *key, uint64_t rate) {
  if (rate > 0) {
    uint32_t h = 2166136261u;
    for (const char *c = key; *c; c++) h = (h ^ (unsigned char)*c) * 16777619u;
    return &pool->threads[h % (uint32_t)pool->nthreads];
  }
  sf_thread *best = &pool->threads[pool->rr++ % (unsigned)pool->nthreads];
  for (int i = 0; i < pool->nthreads; i++)
    if (atomic_load(&pool->threads[i].load) < atomic_load(&best->load)) best = &pool->threads[i];
  return best;
}

static napi_value sf_send(napi_env env, napi_callback_info info) {
  size_t argc = 8;
  napi_value argv[8], out;
  int64_t sock_fd, file_fd, offset, length, rate, stall_ms;
  char key[SF_KEY_MAX];
  napi_valuetype t;
  sf_pool *pool;
  sf_job *j;
  sf_thread *th;
  EB_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 8) return eb_throw_type(env, "send(socketFd, fileFd, offset, length, rate, rateKey, stallMs, cb)");
  if (eb_get_int(env, argv[0], 0, INT32_MAX, &sock_fd) != 0 || eb_get_int(env, argv[1], 0, INT32_MAX, &file_fd) != 0)
    return eb_throw_type(env, "socketFd and fileFd must be file descriptors");
  if (eb_get_int(env, argv[2], 0, INT64_C(1) << 52, &offset) != 0 || eb_get_int(env, argv[3], 1, INT64_C(1) << 52, &length) != 0)
    return eb_throw_type(env, "offset must be an integer >= 0 and length one >= 1");
  if (eb_get_int(env, argv[4], 0, INT64_C(1) << 52, &rate) != 0) return eb_throw_type(env, "rate must be bytes per second, 0 for no cap");
  if (eb_get_string(env, argv[5], key, sizeof key) != 0) return eb_throw_type(env, "rateKey must be a string of under 64 bytes");
  if (eb_get_int(env, argv[6], 1, INT32_MAX, &stall_ms) != 0) return eb_throw_type(env, "stallMs must be a positive integer");
  if (napi_typeof(env, argv[7], &t) != napi_ok || t != napi_function) return eb_throw_type(env, "cb must be a function");
  pool = sf_pool_get(env);
  if (pool == NULL) return NULL;
  j = (sf_job *)calloc(1, sizeof *j);
  if (j == NULL) return eb_throw_errno(env, "calloc", ENOMEM, NULL);
  j->sock_fd = fcntl((int)sock_fd, F_DUPFD_CLOEXEC, 0);
  if (j->sock_fd < 0) {
    int err = errno;
    free(j);
    return eb_throw_errno(env, "dup", err, "(socket)");
  }
  j->file_fd = fcntl((int)file_fd, F_DUPFD_CLOEXEC, 0);
  if (j->file_fd < 0) {
    int err = errno;
    close(j->sock_fd);
    free(j);
    return eb_throw_errno(env, "dup", err, "(file)");
  }
  if (napi_create_reference(env, argv[7], 1, &j->cb) != napi_ok) {
    close(j->sock_fd);
    close(j->file_fd);
    free(j);
    return eb_rethrow(env, "napi_create_reference");
  }
  j->id = ++pool->next_id;
  j->offset = offset;
  j->remaining = (uint64_t)length;
  j->rate = (uint64_t)rate;
  snprintf(j->key, sizeof j->key, "%s", key);
  j->stall_ns = (uint64_t)stall_ms * 1000000ull;
  th = sf_place(pool, key, j->rate);
  j->thread = th;
  j->live_next = pool->live;
  pool->live = j;
  pool->active++;
  atomic_fetch_add(&th->load, 1);
  pthread_mutex_lock(&th->mu);
  j->next = th->incoming;
  th->incoming = j;
  pthread_mutex_unlock(&th->mu);
  sf_wake(th);
  EB_CALL(env, napi_create_uint32(env, j->id, &out));
  return out;
}

static napi_value sf_cancel(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int64_t id;
  sf_pool *pool = NULL;
  EB_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || eb_get_int(env, argv[0], 1, UINT32_MAX, &id) != 0) return eb_throw_type(env, "cancel(id)");
  if (napi_get_instance_data(env, (void **)&pool) != napi_ok || pool == NULL) return NULL;
  for (sf_job *j = pool->live; j != NULL; j = j->live_next) {
    if (j->id == (uint32_t)id) {
      atomic_store(&j->cancelled, 1);
      sf_wake(j->thread);
      break;
    }
  }
  return NULL;
}

static napi_value sf_active(napi_env env, napi_callback_info info) {
  sf_pool *pool = NULL;
  napi_value out;
  napi_get_instance_data(env, (void **)&pool);
  EB_CALL(env, napi_create_uint32(env, pool == NULL ? 0 : pool->active, &out));
  return out;
}
#endif /* __linux__ */

NAPI_MODULE_INIT(/* napi_env env, napi_value exports */) {
#ifdef __linux__
  napi_property_descriptor props[] = {
      {"send", NULL, sf_send, NULL, NULL, NULL, napi_default, NULL},
      {"cancel", NULL, sf_cancel, NULL, NULL, NULL, napi_default, NULL},
      {"active", NULL, sf_active, NULL, NULL, NULL, napi_default, NULL},
  };
  if (napi_define_properties(env, exports, sizeof props / sizeof props[0], props) != napi_ok) return NULL;
#endif
  return exports;
}
