/** The few parts of socket.io-client 2.x (installed as `socket.io-client-v2`) that the tests use; it ships no types. */
declare module 'socket.io-client-v2' {
  interface LegacySocket {
    readonly connected: boolean;
    on(event: string, listener: (...args: any[]) => void): this;
    close(): void;
  }
  export default function io(url: string, options?: Record<string, unknown>): LegacySocket;
}
