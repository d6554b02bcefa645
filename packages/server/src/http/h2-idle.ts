/**
 * Ends HTTP/2 connections that carry nothing. Node's HTTP/2 server has no idle timeout of its own
 * (`timeout` is 0) and none of HTTP/1.1's head or keep-alive timeouts apply to it, so a client
 * that finishes the TLS handshake, picks `h2` and then sends nothing, or only the preface, would
 * hold its socket for ever. A session with an open stream (an SSE stream, a long-poll) is never
 * ended here: its own transport decides.
 */
import type { Http2SecureServer, ServerHttp2Session } from 'node:http2';

/** Time for a GOAWAY to reach the client before the socket is cut. */
const GOAWAY_GRACE_MS = 1_000;

export function closeIdleHttp2Sessions(server: Http2SecureServer, idleMs: number): void {
  server.on('session', (session: ServerHttp2Session) => {
    let openStreams = 0;
    session.on('stream', (stream) => {
      openStreams++;
      stream.once('close', () => openStreams--);
    });
    // Fires after `idleMs` without a frame either way; any later frame arms it again.
    session.setTimeout(idleMs, () => {
      if (openStreams > 0 || session.destroyed) return;
      // GOAWAY first. A client that left a header block half sent has a stream that nghttp2 waits
      // for and JavaScript never saw, which keeps a closed session open: cut it soon after.
      session.close();
      setTimeout(() => session.destroy(), GOAWAY_GRACE_MS).unref();
    });
  });
}
