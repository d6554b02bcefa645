/** Server rendering: importing @herald/react and rendering the provider and every hook in Node.js works. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { HeraldProvider, useChannel, useConnectionState, usePresence, usePublish } from '@herald/react';
import { createElement as h } from 'react';
import { renderToString } from 'react-dom/server';

test('renders on a server with the initial values and no connection', () => {
  assert.equal(typeof (globalThis as { window?: unknown }).window, 'undefined');
  function Room(): ReturnType<typeof h> {
    const view = useChannel('room');
    const presence = usePresence('room');
    const connection = useConnectionState();
    usePublish();
    return h('p', null, `${connection.state}/${view.state}/${view.publications.length}/${String(presence)}`);
  }
  const html = renderToString(h(HeraldProvider, { url: 'http://127.0.0.1:1' }, h(Room)));
  assert.equal(html, '<p>connecting/subscribing/0/undefined</p>');
});
