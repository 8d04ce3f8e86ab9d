// The part of noise-handshake (Holepunch, CommonJS, untyped) that sessions.ts uses.
declare module 'noise-handshake' {
  interface KeyPair {
    publicKey: Uint8Array;
    secretKey: Uint8Array;
  }
  interface Curve {
    DHLEN: number;
    PKLEN: number;
    SKLEN: number;
    ALG: string;
    generateKeyPair(secretKey?: Uint8Array): KeyPair;
    dh(publicKey: Uint8Array, local: KeyPair): Uint8Array;
  }
  class NoiseState {
    constructor(pattern: 'IK' | 'XX', initiator: boolean, staticKeyPair: KeyPair, options?: { curve?: Curve });
    initialise(prologue: Uint8Array, remoteStatic?: Uint8Array): void;
    send(payload?: Uint8Array): Uint8Array;
    recv(message: Uint8Array): Uint8Array;
    readonly complete: boolean;
    /** The remote party's static key, once the handshake carried it. */
    readonly rs: Uint8Array | null;
    tx: Uint8Array | null;
    rx: Uint8Array | null;
    hash: Uint8Array | null;
    /** Test vectors set the ephemeral key pair before the first message. */
    e: KeyPair | null;
  }
  export = NoiseState;
}
