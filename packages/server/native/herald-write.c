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

static napi_value init(napi_env env, napi_value exports) {
  napi_value fn;
  if (napi_create_function(env, "write", NAPI_AUTO_LENGTH, write_chunk, NULL, &fn) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "write", fn) != napi_ok) return NULL;
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
