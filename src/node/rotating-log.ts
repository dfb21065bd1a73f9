import { createWriteStream, renameSync, statSync, type WriteStream } from 'node:fs';

/**
 * Appends a child's output to a file, rotating to `<file>.1` past `maxBytes`. Writes never wait
 * on the disk being fast: the caller keeps draining the child's pipes whatever happens here,
 * because a tailscaled blocked on a full pipe freezes.
 */
export class RotatingLog {
  private stream: WriteStream;
  private size: number;

  constructor(
    private readonly file: string,
    private readonly maxBytes = 10 * 1024 * 1024,
  ) {
    this.size = sizeOf(file);
    this.stream = this.openStream();
  }

  write(chunk: Buffer): void {
    if (this.size + chunk.length > this.maxBytes && this.size > 0) this.rotate();
    this.size += chunk.length;
    this.stream.write(chunk);
  }

  close(): Promise<void> {
    return new Promise((r) => this.stream.end(r));
  }

  private rotate(): void {
    this.stream.end();
    try {
      renameSync(this.file, `${this.file}.1`);
    } catch {
      /* a missing file just starts fresh */
    }
    this.size = 0;
    this.stream = this.openStream();
  }

  private openStream(): WriteStream {
    const s = createWriteStream(this.file, { flags: 'a', mode: 0o600 });
    s.on('error', () => {
      /* a full disk must not take down the plugin; output is dropped until it recovers */
    });
    return s;
  }
}

function sizeOf(file: string): number {
  try {
    return statSync(file).size;
  } catch {
    return 0;
  }
}
