// The few Node.js APIs the unit tests use, declared here so that type-checking needs no package
// beyond `typescript` (the tests run under Node 20's built-in runner).

declare module "node:test" {
  type Fn = (t: unknown) => void | Promise<void>;
  export function test(name: string, fn: Fn): Promise<void>;
  export function describe(name: string, fn: () => void): void;
  export function after(fn: () => void | Promise<void>): void;
}

declare module "node:assert/strict" {
  interface Assert {
    (value: unknown, message?: string): asserts value;
    equal(actual: unknown, expected: unknown, message?: string): void;
    notEqual(actual: unknown, expected: unknown, message?: string): void;
    deepEqual(actual: unknown, expected: unknown, message?: string): void;
    ok(value: unknown, message?: string): asserts value;
    throws(fn: () => unknown, expected?: RegExp, message?: string): void;
    match(value: string, pattern: RegExp, message?: string): void;
  }
  const assert: Assert;
  export default assert;
}

declare module "node:http" {
  interface IncomingMessage {
    method?: string;
    url?: string;
    headers: Record<string, string | string[] | undefined>;
    on(event: "data", f: (chunk: Uint8Array) => void): void;
    on(event: "end", f: () => void): void;
  }
  interface ServerResponse {
    writeHead(status: number, headers?: Record<string, string>): void;
    end(body?: string): void;
    destroy(): void;
    socket: { destroy(): void } | null;
  }
  interface Server {
    listen(port: number, host: string, f: () => void): void;
    address(): { port: number } | string | null;
    close(f?: () => void): void;
    closeAllConnections(): void;
  }
  export function createServer(f: (req: IncomingMessage, res: ServerResponse) => void): Server;
}

declare module "node:fs" {
  export function readFileSync(path: string, encoding: "utf8"): string;
  export function readdirSync(path: string): string[];
}

declare module "node:path" {
  export function join(...parts: string[]): string;
  export function dirname(path: string): string;
}

declare module "node:url" {
  export function fileURLToPath(url: string): string;
}

declare const process: { env: Record<string, string | undefined>; cwd(): string };
