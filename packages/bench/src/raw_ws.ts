// A minimal WebSocket client on a plain TCP socket: upgrade, then frames through FrameParser. No extensions.
//
// The `ws` package costs several times more CPU per received message; on a 2-core machine the load generator
// must stay cheaper than what it measures, so it speaks the framing itself.
import net from 'node:net';
import { closeCode, encodeClientClose, encodeClientFrame, encodeClientText, FrameParser, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG } from './ws_frames';

export interface RawWsHandlers {
  /** A text or binary message (`opcode` OP_TEXT or OP_BINARY); `data` is valid only during the call. */
  message(data: Buffer, opcode: number): void;
  /** The socket closed: the close frame's code, or 1006 without one. Called once. */
  close(code: number, reason: string): void;
}

const KEY = 'dGhlIHNhbXBsZSBub25jZQ=='; // 16 bytes in base64 (the RFC's sample nonce); the accept header is not checked
const HEADER_END = Buffer.from('\r\n\r\n', 'latin1');
const MAX_HEADER = 16 * 1024;

export interface OpenOptions {
  timeoutMs?: number;
  /** Sent as Sec-WebSocket-Protocol; the upgrade fails unless the server's 101 names it back. */
  subprotocol?: string;
}

/**
 * Every socket of the process reads into this one buffer (net's `onread`): no allocation and no 'data' event per
 * read. Safe because a read is handled synchronously and whatever outlives it (a partial frame) is copied.
 */
const READ_BUFFER = Buffer.allocUnsafe(256 * 1024);

export class RawWebSocket {
  private upgraded = false;
  private header: Buffer | undefined;
  private closed = false;
  private parser: FrameParser;

  private constructor(
    private readonly socket: net.Socket,
    private readonly handlers: RawWsHandlers,
  ) {
    this.parser = new FrameParser({
      message: (opcode, data) => handlers.message(data, opcode),
      control: (opcode, data) => this.control(opcode, data),
    });
  }

  /** Connects and upgrades; resolves once the 101 arrived (frames that came with it are already parsed). */
  static open(host: string, port: number, path: string, handlers: RawWsHandlers, { timeoutMs = 10000, subprotocol }: OpenOptions = {}): Promise<RawWebSocket> {
    return new Promise((resolve, reject) => {
      let onChunk: (chunk: Buffer) => void = () => undefined;
      const socket = net.connect({
        host,
        port,
        onread: {
          buffer: READ_BUFFER,
          callback: (n: number, buf: Uint8Array) => {
            onChunk(Buffer.from(buf.buffer, buf.byteOffset, n));
            return true;
          },
        },
      });
      socket.setNoDelay(true);
      const ws = new RawWebSocket(socket, handlers);
      let settled = false;
      const timer = setTimeout(() => fail(new Error(`no WebSocket upgrade from ${host}:${port} within ${timeoutMs} ms`)), timeoutMs);
      const fail = (err: Error): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        ws.closed = true;
        ws.reported = true; // the caller hears of it through the rejection
        socket.destroy();
        reject(err);
      };
      socket.once('connect', () => {
        socket.write(
          `GET ${path} HTTP/1.1\r\nHost: ${host}:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
            `Sec-WebSocket-Key: ${KEY}\r\nSec-WebSocket-Version: 13\r\n` +
            (subprotocol ? `Sec-WebSocket-Protocol: ${subprotocol}\r\n` : '') +
            '\r\n',
        );
      });
      onChunk = (chunk: Buffer) => {
        if (ws.upgraded) {
          ws.receive(chunk);
          return;
        }
        const buf: Buffer = ws.header ? Buffer.concat([ws.header, chunk]) : chunk;
        const end = buf.indexOf(HEADER_END);
        if (end === -1) {
          if (buf.length > MAX_HEADER) fail(new Error('upgrade response header too long'));
          else ws.header = Buffer.from(buf);
          return;
        }
        ws.header = undefined;
        const status = buf.toString('latin1', 0, Math.min(end, 64));
        if (!status.startsWith('HTTP/1.1 101')) {
          fail(new Error(`upgrade refused: ${status.split('\r\n')[0]}`));
          return;
        }
        // Without the subprotocol named back, the server would speak its default protocol to us.
        if (subprotocol && !acceptsSubprotocol(buf.toString('latin1', 0, end), subprotocol)) {
          fail(new Error(`upgrade answered without the subprotocol ${subprotocol}`));
          return;
        }
        ws.upgraded = true;
        settled = true;
        clearTimeout(timer);
        resolve(ws);
        if (end + 4 < buf.length) ws.receive(buf.subarray(end + 4));
      };
      socket.on('error', (err) => {
        if (!settled) fail(err);
      });
      socket.on('close', () => {
        if (!settled) fail(new Error(`connection to ${host}:${port} closed before the upgrade`));
        else ws.finish(1006, 'connection lost');
      });
    });
  }

  send(text: string): void {
    if (!this.closed) this.socket.write(encodeClientText(text));
  }

  /** A binary message. */
  sendBinary(data: Buffer): void {
    if (!this.closed) this.socket.write(encodeClientFrame(OP_BINARY, data));
  }

  /** Sends a close frame and ends the socket. */
  close(code = 1000): void {
    if (this.closed) return;
    this.socket.write(encodeClientClose(code));
    this.socket.end();
    this.finish(code, 'closed by client');
  }

  /** Drops the TCP connection without a close frame. */
  destroy(): void {
    this.socket.destroy();
    this.finish(1006, 'destroyed by client');
  }

  get isOpen(): boolean {
    return !this.closed;
  }

  private receive(chunk: Buffer): void {
    try {
      this.parser.push(chunk);
    } catch (err) {
      this.socket.destroy();
      this.finish(1002, (err as Error).message);
    }
  }

  private control(opcode: number, data: Buffer): void {
    if (opcode === OP_PING) {
      if (!this.closed) this.socket.write(encodeClientFrame(OP_PONG, Buffer.from(data)));
    } else if (opcode === OP_CLOSE) {
      const code = closeCode(data);
      const reason = data.length > 2 ? data.toString('utf8', 2) : '';
      if (!this.closed) {
        this.socket.write(encodeClientClose(code === 1005 ? 1000 : code));
        this.socket.end();
      }
      this.finish(code, reason);
    }
  }

  private finish(code: number, reason: string): void {
    if (this.closed && this.reported) return;
    this.closed = true;
    this.reported = true;
    this.handlers.close(code, reason);
  }

  private reported = false;
}

/** Whether the 101's header block holds `Sec-WebSocket-Protocol: <subprotocol>` (header names are case-insensitive). */
function acceptsSubprotocol(header: string, subprotocol: string): boolean {
  for (const line of header.split('\r\n')) {
    const colon = line.indexOf(':');
    if (colon > 0 && line.slice(0, colon).trim().toLowerCase() === 'sec-websocket-protocol' && line.slice(colon + 1).trim() === subprotocol) return true;
  }
  return false;
}
