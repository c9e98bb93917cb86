import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

// The dev server (`npm run dev`, http://127.0.0.1:5173) proxies the API to a running
// `gpuyard serve` (GPUYARD_API, default http://127.0.0.1:8080), so the session cookies
// stay same-origin as in production.
const api = process.env.GPUYARD_API ?? 'http://127.0.0.1:8080';

export default defineConfig({
  plugins: [react()],
  server: {
    host: '127.0.0.1',
    port: 5173,
    proxy: {
      '/api': { target: api, ws: true, changeOrigin: false },
      '/healthz': api,
      '/readyz': api,
    },
  },
  build: {
    // Package data of the Python wheel (pyproject: tool.setuptools.package-data).
    outDir: '../src/gpuyard/web_dist',
    emptyOutDir: true,
    // No inline scripts or data: URLs for scripts; the CSP forbids them.
    assetsInlineLimit: 0,
    chunkSizeWarningLimit: 1500,
  },
});
