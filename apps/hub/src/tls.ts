/**
 * The hub's own TLS (TLS_CERT / TLS_KEY): reads and checks the PEM files, and creates the HTTP or HTTPS server
 * that both ports use. TLS 1.2 is the oldest version offered; certificates can be reloaded without a restart.
 */

import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerOptions, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import { createSecureContext, type SecureContextOptions } from 'node:tls';
import { ConfigError } from './config.js';

/** The oldest TLS version the hub accepts. */
export const TLS_MIN_VERSION = 'TLSv1.2';

export interface TlsFiles {
  certFile: string;
  keyFile: string;
}

/** Reads the certificate chain and key and checks that they belong together; throws ConfigError naming the variable. */
export function readTls(files: TlsFiles): SecureContextOptions {
  const cert = readPem(files.certFile, 'TLS_CERT');
  const key = readPem(files.keyFile, 'TLS_KEY');
  if (!/-----BEGIN [A-Z ]*CERTIFICATE-----/.test(cert.toString('latin1'))) {
    throw new ConfigError('TLS_CERT', `${files.certFile} holds no PEM certificate`);
  }
  if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(key.toString('latin1'))) {
    throw new ConfigError('TLS_KEY', `${files.keyFile} holds no PEM private key`);
  }
  tryContext({ cert }, 'TLS_CERT', `${files.certFile} holds no valid certificate`);
  tryContext({ key }, 'TLS_KEY', `${files.keyFile} holds no valid private key (or it is encrypted)`);
  const options = { cert, key, minVersion: TLS_MIN_VERSION } as const;
  tryContext(options, 'TLS_KEY', `${files.keyFile} does not go with the certificate in ${files.certFile}`);
  return options;
}

function tryContext(options: SecureContextOptions, variable: string, problem: string): void {
  try {
    createSecureContext(options);
  } catch (err) {
    throw new ConfigError(variable, `${problem} (${(err as { code?: string }).code ?? (err as Error).message})`);
  }
}

function readPem(file: string, variable: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new ConfigError(variable, `cannot read ${file} (${(err as { code?: string }).code ?? (err as Error).message})`);
  }
}

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

/** A plain HTTP server, or an HTTPS server (TLS 1.2+) when `tls` is given; `options` are Node's (the timeouts). */
export function createHubServer(tls: SecureContextOptions | undefined, handler?: Handler, options: ServerOptions = {}): Server {
  if (!tls) return createHttpServer(options, handler);
  // An https.Server is an http.Server to everything that handles requests and upgrades on it.
  return createHttpsServer({ ...options, ...tls, minVersion: TLS_MIN_VERSION }, handler) as unknown as Server;
}

/** Swaps the certificate of running servers; connections already open keep theirs. */
export function reloadTls(servers: Server[], files: TlsFiles): void {
  const options = readTls(files);
  for (const server of servers) (server as unknown as HttpsServer).setSecureContext(options);
}
