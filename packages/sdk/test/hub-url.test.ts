/** Hub URLs: plain http/ws only to a loopback hub (INSECURE_HUB otherwise, unless allowed), endpoint and API URLs. */

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ConnectError } from '@private-connect/protocol';
import { ApiClient, agentEndpointUrl, apiBaseUrl, assertSecureHub, isLoopbackHost, parseHubUrl } from '../src/index.js';

const isCode = (code: string) => (err: unknown) => err instanceof ConnectError && err.code === code;

describe('isLoopbackHost', () => {
  test('loopback names and addresses', () => {
    for (const host of ['localhost', 'LOCALHOST', 'hub.localhost', '127.0.0.1', '127.1.2.3', '::1', '[::1]']) assert.equal(isLoopbackHost(host), true, host);
  });
  test('everything else, including look-alikes', () => {
    for (const host of ['hub.example.com', '10.0.0.1', '192.168.1.10', '0.0.0.0', 'localhost.evil.com', 'evil-localhost', '127.0.0.1.nip.io', '128.0.0.1', '::2', '']) {
      assert.equal(isLoopbackHost(host), false, host);
    }
  });
});

describe('assertSecureHub and the URLs built on it', () => {
  test('plain http:// and ws:// to a non-loopback hub are refused with INSECURE_HUB', () => {
    for (const url of ['http://hub.example.com', 'ws://hub.example.com:3001', 'http://10.0.0.5:3001', 'http://127.0.0.1.nip.io', 'http://localhost.evil.com']) {
      assert.throws(() => assertSecureHub(new URL(url), false), isCode('INSECURE_HUB'), url);
      assert.throws(() => agentEndpointUrl(url, false), isCode('INSECURE_HUB'), url);
      assert.throws(() => apiBaseUrl(url, false), isCode('INSECURE_HUB'), url);
      assert.throws(() => new ApiClient({ hubUrl: url, credential: 'x' }), isCode('INSECURE_HUB'), url);
    }
  });

  test('the refusal says how to fix it', () => {
    assert.throws(() => assertSecureHub(new URL('http://hub.example.com'), false), (err: unknown) => {
      assert.ok(err instanceof ConnectError);
      assert.match(err.message, /refusing plain http:\/\/ to hub\.example\.com: use https:\/\/, or set CONNECT_ALLOW_INSECURE=true/);
      return true;
    });
  });

  test('plain text is allowed to loopback hubs', () => {
    for (const url of ['http://localhost:3001', 'http://127.0.0.1:3001', 'ws://127.0.0.1', 'http://[::1]:3001', 'http://hub.localhost']) {
      assert.doesNotThrow(() => assertSecureHub(new URL(url), false), url);
    }
  });

  test('plain text to any hub is allowed with allowInsecure', () => {
    assert.doesNotThrow(() => assertSecureHub(new URL('http://hub.example.com'), true));
    assert.equal(agentEndpointUrl('http://hub.example.com:3001', true), 'ws://hub.example.com:3001/v1/agent');
  });

  test('https:// and wss:// are always fine', () => {
    for (const url of ['https://hub.example.com', 'wss://hub.example.com']) assert.doesNotThrow(() => assertSecureHub(new URL(url), false));
  });

  test('endpoint and API URLs keep host, port and base path', () => {
    assert.equal(agentEndpointUrl('https://hub.example.com', false), 'wss://hub.example.com/v1/agent');
    assert.equal(agentEndpointUrl('https://hub.example.com/base/', false), 'wss://hub.example.com/base/v1/agent');
    assert.equal(agentEndpointUrl('http://127.0.0.1:3001', false), 'ws://127.0.0.1:3001/v1/agent');
    assert.equal(agentEndpointUrl('wss://hub.example.com:8443', false), 'wss://hub.example.com:8443/v1/agent');
    assert.equal(apiBaseUrl('wss://hub.example.com/base//', false), 'https://hub.example.com/base');
    assert.equal(apiBaseUrl('http://localhost:3001/', false), 'http://localhost:3001');
  });

  test('not a URL, or another scheme: BAD_REQUEST', () => {
    for (const url of ['hub.example.com', 'not a url', '', 'ftp://hub.example.com', 'file:///etc/passwd']) {
      assert.throws(() => parseHubUrl(url), isCode('BAD_REQUEST'), url);
    }
  });
});
