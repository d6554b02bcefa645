/**
 * The live dashboard, a React app: `<HeraldProvider>` owns the connection, `useChannel` follows
 * `dashboard:hub` and opens with the samples its history holds. Bundled by ../build.mjs into
 * public/app.js (`npm run build`).
 */
import { HeraldProvider } from '@herald/react';
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { demoToken } from 'demo-lib/demo.js';
import { Dashboard } from './dashboard.js';

const options = {
  // The SDK's default transport order (WebSocket, then SSE, then long-polling): whatever the
  // network between the page and the hub lets through. A real app asks its own backend.
  token: async () => (await demoToken('dashboard')).token,
};

createRoot(document.getElementById('root') as HTMLElement).render(
  <StrictMode>
    <HeraldProvider url={location.origin} options={options}>
      <Dashboard />
    </HeraldProvider>
  </StrictMode>,
);
