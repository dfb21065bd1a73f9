import { createWriteStream, mkdirSync, renameSync, statSync, type WriteStream } from 'node:fs';
import { dirname } from 'node:path';

/** How soon a log whose file failed (a full disk, its directory removed) tries to open it again. */
const REOPEN_AFTER_MS = 1_000;

/**
 * Appends a child's output to a file, rotating to `<file>.1` past `maxBytes`. Writes never wait
 * on the disk being fast: the caller keeps draining the child's pipes whatever happens here,
 * because a tailscaled blocked on a full pipe freezes.
 */
export class RotatingLog {
  private stream: WriteStream;
  private size: number;
  private reopenAt = 0;

  constructor(
    private readonly file: string,
    private readonly maxBytes = 10 * 1024 * 1024,
  ) {
    this.size = sizeOf(file);
    this.stream = this.openStream();
  }

  write(chunk: Buffer): void {
    if (this.size + chunk.length > this.maxBytes && this.size > 0) this.rotate();
    // A stream that failed is finished for good: output is dropped until a new one opens.
    else if (this.stream.destroyed && Date.now() >= this.reopenAt) this.stream = this.openStream();
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

  /**
   * The directory is made here, at once: the stream opens on the thread pool, and a directory
   * made by the caller afterwards (as the first node of a new data directory once had it) lost
   * that node's whole log to an ENOENT nobody saw.
   */
  private openStream(): WriteStream {
    try {
      mkdirSync(dirname(this.file), { recursive: true, mode: 0o700 });
    } catch {
      /* the open below fails and says nothing; the next write after REOPEN_AFTER_MS tries again */
    }
    const s = createWriteStream(this.file, { flags: 'a', mode: 0o600 });
    s.on('error', () => {
      // A full disk must not take down the plugin.
      this.reopenAt = Date.now() + REOPEN_AFTER_MS;
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
