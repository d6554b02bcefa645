// A small Durable Streams reader for the browser (fetch + Server-Sent Events): it reads a
// stream from its start, follows it live, and reconnects from the last offset it was given, so
// no token is shown twice or skipped, whatever the connection does.

/**
 * Follows `/ds/<path>`: `onData` gets each data event's payload (JSON-parsed for JSON streams),
 * in order. Resolves 'closed' when the stream ends, 'missing' when there is none (yet).
 */
export async function follow(path, token, onData, { json = false, signal } = {}) {
  let offset = '-1';
  let failures = 0;
  while (!signal?.aborted) {
    let response;
    try {
      response = await fetch(`/ds/${path}?offset=${encodeURIComponent(offset)}&live=sse`, {
        headers: { Authorization: `Bearer ${token}` },
        signal,
      });
    } catch {
      if (signal?.aborted) return 'aborted';
      await wait(Math.min(5000, 250 * 2 ** failures++));
      continue;
    }
    if (response.status === 404) return 'missing';
    if (!response.ok) throw new Error(`reading ${path}: ${response.status}`);
    failures = 0;
    try {
      for await (const event of events(response.body)) {
        if (event.type === 'data') onData(json ? JSON.parse(event.data) : event.data);
        else if (event.type === 'control') {
          const control = JSON.parse(event.data);
          offset = control.streamNextOffset ?? offset;
          if (control.streamClosed) return 'closed';
        }
      }
    } catch {
      if (signal?.aborted) return 'aborted';
    }
    // The server ends SSE responses now and then (about once a minute): carry on from `offset`.
    await wait(100);
  }
  return 'aborted';
}

/** Creates a JSON stream (or confirms it exists with the same settings); its status. */
export async function create(path, token, ttlSeconds) {
  const response = await fetch(`/ds/${path}`, {
    method: 'PUT',
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json', 'Stream-TTL': String(ttlSeconds) },
  });
  return response.status;
}

/** Appends JSON `value` to a JSON stream. */
export async function append(path, token, value) {
  const response = await fetch(`/ds/${path}`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
    body: JSON.stringify([value]),
  });
  return response.status;
}

async function* events(body) {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      buffer += decoder.decode(value, { stream: true });
      let end;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        let type = 'message';
        const data = [];
        for (const line of block.split('\n')) {
          if (line.startsWith('event:')) type = line.slice(6).trim();
          else if (line.startsWith('data:')) data.push(line.slice(line.startsWith('data: ') ? 6 : 5));
        }
        if (data.length > 0) yield { type, data: data.join('\n') };
      }
    }
  } finally {
    reader.cancel().catch(() => undefined);
  }
}

const wait = (ms) => new Promise((r) => setTimeout(r, ms));
