/**
 * An incremental `text/event-stream` parser (the subset the hub writes): feed decoded text as it
 * arrives, get one callback per dispatched event. `id:` and `retry:` are ignored on purpose: the
 * SDK builds its own cursor from the positions it delivered, and owns its reconnect timing.
 * Lines end with LF or CRLF.
 */
export type SseDispatch = (event: string, data: string) => void;

export function sseParser(dispatch: SseDispatch): (chunk: string) => void {
  let rest = '';
  let event = '';
  let data: string | undefined;
  return (chunk) => {
    const lines = (rest + chunk).split('\n');
    rest = lines.pop() as string;
    for (let line of lines) {
      if (line.endsWith('\r')) line = line.slice(0, -1);
      if (line === '') {
        if (data !== undefined) dispatch(event || 'message', data);
        event = '';
        data = undefined;
        continue;
      }
      const colon = line.indexOf(':');
      if (colon === 0) continue; // a comment: the hub's keep-alive
      const field = colon === -1 ? line : line.slice(0, colon);
      let value = colon === -1 ? '' : line.slice(colon + 1);
      if (value.startsWith(' ')) value = value.slice(1);
      if (field === 'event') event = value;
      else if (field === 'data') data = data === undefined ? value : `${data}\n${value}`;
    }
  };
}
