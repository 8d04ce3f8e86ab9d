/** Vite build of the dashboard: served by the hub from apps/web/dist at '/', assets under /assets/. */
import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

export default defineConfig({
  base: '/',
  plugins: [react()],
  build: { outDir: 'dist', assetsDir: 'assets', emptyOutDir: true },
  // `npm run dev -w apps/web`: the API of a hub on :3001 through the dev server (same origin, cookies and SSE).
  server: { proxy: { '/v1': 'http://127.0.0.1:3001', '/login': 'http://127.0.0.1:3001', '/auth': 'http://127.0.0.1:3001' } },
});
