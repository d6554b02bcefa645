/*
 * One write of a publication to a socket's file descriptor, for the fan-out's direct writes
 * (src/transports/direct-write.ts).
 *
 * Why in C: a lone publication to N subscribers is N writes, and the syscall is almost all of
 * each. Node's own path to it (the handle's writeBuffer: StreamBase's bookkeeping, then libuv's
 * uv_try_write) adds 0.4 to 0.8 micro-seconds per write on the bench machine, 4-9 % of the hub's
 * CPU per delivery (scripts/lone-publication.mjs); this call goes from JavaScript to send(2) with
 * nothing between. It is used only when neither node's stream nor
 * libuv holds anything for the socket, so the bytes cannot overtake a write queued before them;
 * what the kernel does not take at once goes back to the handle, as libuv's own try-write does.
 *
 * write(fd: number, chunk: Uint8Array): number
 *   the bytes the kernel took (0 to chunk.length), or -errno (as libuv reports errors on Unix);
 *   -EAGAIN when the socket's buffer is full. MSG_NOSIGNAL: a closed peer is an EPIPE result,
 *   never a SIGPIPE; MSG_DONTWAIT: never blocks, whatever the descriptor's flags.
 *
 * Built by scripts/build-native.mjs with the C compiler and the headers node ships; the hub works
 * without it (direct-write.ts falls back to the handle).
 */
#include <errno.h>
#include <node_api.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL 0 /* macOS: node ignores SIGPIPE for the whole process */
#endif

static napi_value write_chunk(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  int32_t fd = -1;
  napi_typedarray_type type;
  size_t length = 0;
  void *data = NULL;
  napi_value result;

  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2 ||
      napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0 ||
      /* fails (napi_invalid_arg) for anything but a typed array: no separate check per write */
      napi_get_typedarray_info(env, argv[1], &type, &length, &data, NULL, NULL) != napi_ok ||
      type != napi_uint8_array) {
    napi_throw_type_error(env, NULL, "write(fd, chunk): fd must be a descriptor, chunk a Uint8Array");
    return NULL;
  }
  ssize_t written;
  do {
    written = send(fd, data, length, MSG_NOSIGNAL | MSG_DONTWAIT);
  } while (written < 0 && errno == EINTR);
  napi_create_int32(env, written < 0 ? -errno : (int32_t)written, &result);
  return result;
}

/* The most distinct chunks one writeEach call takes (a publication's frame, with a ping, ...). */
#define MAX_CHUNKS 8

static napi_status typed_array(napi_env env, napi_value value, napi_typedarray_type want, void **data,
                               size_t *length) {
  napi_typedarray_type type;
  napi_status status = napi_get_typedarray_info(env, value, &type, length, data, NULL, NULL);
  return status == napi_ok && type != want ? napi_invalid_arg : status;
}

/*
 * writeEach(fds: Int32Array, which: Uint8Array, chunks: Uint8Array[], count: number, results: Int32Array): number
 *   for i < count, sends chunks[which[i]] to fds[i] (skipped where fds[i] < 0: results[i] is then
 *   the chunk's length, nothing to do), results[i] as write() returns; returns how many were not
 *   written whole (a partial write or an error), so that the caller looks at results only then.
 *
 * Why: one call for a whole fan-out's writes instead of one per subscriber. The calls' own cost
 * is small; what a tight loop of send(2) saves is the kernel's, whose socket and TCP state stay
 * in the cache from one write to the next, where the JavaScript of each delivery between two
 * writes (sessions, subscriptions, frames) evicted part of it (scripts/lone-publication.mjs).
 */
static napi_value write_each(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  int32_t *fds = NULL, *results = NULL;
  uint8_t *which = NULL;
  size_t fd_count = 0, which_count = 0, result_count = 0;
  uint32_t chunk_count = 0, count = 0;
  const uint8_t *chunk_data[MAX_CHUNKS];
  size_t chunk_length[MAX_CHUNKS];
  napi_value result;
  int ok = napi_get_cb_info(env, info, &argc, argv, NULL, NULL) == napi_ok && argc >= 5 &&
           typed_array(env, argv[0], napi_int32_array, (void **)&fds, &fd_count) == napi_ok &&
           typed_array(env, argv[1], napi_uint8_array, (void **)&which, &which_count) == napi_ok &&
           napi_get_array_length(env, argv[2], &chunk_count) == napi_ok && chunk_count <= MAX_CHUNKS &&
           napi_get_value_uint32(env, argv[3], &count) == napi_ok &&
           typed_array(env, argv[4], napi_int32_array, (void **)&results, &result_count) == napi_ok &&
           count <= fd_count && count <= which_count && count <= result_count;
  for (uint32_t c = 0; ok && c < chunk_count; c++) {
    napi_value chunk;
    ok = napi_get_element(env, argv[2], c, &chunk) == napi_ok &&
         typed_array(env, chunk, napi_uint8_array, (void **)&chunk_data[c], &chunk_length[c]) == napi_ok &&
         chunk_length[c] <= INT32_MAX;
  }
  for (uint32_t i = 0; ok && i < count; i++) ok = which[i] < chunk_count;
  if (!ok) {
    napi_throw_type_error(env, NULL,
                          "writeEach(fds, which, chunks, count, results): Int32Array, Uint8Array of indexes into "
                          "at most 8 Uint8Array chunks, a count within them, Int32Array");
    return NULL;
  }
  int32_t incomplete = 0;
  for (uint32_t i = 0; i < count; i++) {
    const size_t length = chunk_length[which[i]];
    if (fds[i] < 0) {
      results[i] = (int32_t)length;
      continue;
    }
    ssize_t written;
    do {
      written = send(fds[i], chunk_data[which[i]], length, MSG_NOSIGNAL | MSG_DONTWAIT);
    } while (written < 0 && errno == EINTR);
    results[i] = written < 0 ? -errno : (int32_t)written;
    if ((size_t)written != length) incomplete++;
  }
  napi_create_int32(env, incomplete, &result);
  return result;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_value fn;
  if (napi_create_function(env, "write", NAPI_AUTO_LENGTH, write_chunk, NULL, &fn) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "write", fn) != napi_ok) return NULL;
  if (napi_create_function(env, "writeEach", NAPI_AUTO_LENGTH, write_each, NULL, &fn) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "writeEach", fn) != napi_ok) return NULL;
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
