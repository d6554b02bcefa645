/**
 * Socket.IO lets a client attach binary data (Buffers, ArrayBuffers, typed arrays) anywhere in an
 * event's arguments. Herald's publications are JSON on every transport, and JSON would turn a
 * Buffer into `{"type":"Buffer","data":[...]}` without a word: the hub refuses such a command
 * instead (the client should send base64 text).
 */

/** Objects visited at most; past it the value is refused anyway by the hub's own size limits. */
const MAX_VISITS = 100_000;

export function holdsBinary(value: unknown): boolean {
  const pending: unknown[] = [value];
  for (let visits = 0; pending.length > 0 && visits < MAX_VISITS; visits++) {
    const item = pending.pop();
    if (typeof item !== 'object' || item === null) continue;
    if (item instanceof ArrayBuffer || ArrayBuffer.isView(item)) return true;
    // Iterative, not recursive: a deeply nested value cannot overflow the stack here.
    for (const child of Array.isArray(item) ? item : Object.values(item)) pending.push(child);
  }
  return false;
}
