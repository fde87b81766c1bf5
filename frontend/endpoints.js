// Where the front-end connects: WebSocket /chat with fallback 13100 -> 13101 -> 13102,
// and the REST API base. Ports follow config/ports.toml.
export const endpoints = [
  'ws://localhost:13100/chat', // Primary Node.js API
  'ws://localhost:13101/chat', // WebSocket server
  'ws://localhost:13102/chat', // Fallback
];

// REST API base URL
export const API_BASE = 'http://localhost:13100';
