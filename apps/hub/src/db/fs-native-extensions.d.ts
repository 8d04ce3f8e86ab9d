/** Types of the part of `fs-native-extensions` the hub uses (the package ships none). */
declare module 'fs-native-extensions' {
  /**
   * Takes an OS lock on the open file `fd` without waiting (Linux: an open file description lock, F_OFD_SETLK;
   * macOS: flock): true when taken, false when another open of the file holds it. The lock ends when the last
   * descriptor of that open closes, the process's exit and `kill -9` included.
   */
  export function tryLock(fd: number, offset?: number, length?: number, opts?: { shared?: boolean }): boolean;
  export function tryLock(fd: number, opts?: { shared?: boolean }): boolean;
  /** Releases a lock taken with tryLock on `fd`. */
  export function unlock(fd: number, offset?: number, length?: number): void;
}
