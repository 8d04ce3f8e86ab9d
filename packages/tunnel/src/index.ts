/** @module @private-connect/tunnel: one stream of a hub connection bridged to a local socket, and an in-memory socket pair. */
export { RECORD_BYTES, TunnelStream, type StreamSocket, type StreamTransport } from './tunnel-stream.js';
export { duplexPair, type PairedDuplex } from './duplex-pair.js';
