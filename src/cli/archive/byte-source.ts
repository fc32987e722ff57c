/**
 * Pull-style reading of an async stream of Buffers (a file or stdin): exact reads for header blocks,
 * streamed reads for member data. Holds at most the stream's current chunk, so memory stays flat.
 * `offset` counts the bytes consumed, for messages and progress.
 */

const EMPTY = Buffer.alloc(0);

export class ByteSource {
  offset = 0;
  private chunk: Buffer = EMPTY;
  private pos = 0;
  private ended = false;

  constructor(
    private readonly chunks: AsyncIterator<Buffer>,
    private readonly onProgress: (consumed: number) => void = () => undefined,
  ) {}

  /**
   * Exactly `n` bytes (n ≤ a small header size), or null when the input ends first. `got` says how
   * many bytes there were before the end, so the caller can tell a clean end (0) from a cut one.
   */
  async readExact(n: number): Promise<{ bytes: Buffer | null; got: number }> {
    if (!(await this.fill())) return { bytes: null, got: 0 };
    if (this.chunk.length - this.pos >= n) {
      // The common case: the whole block is in the current chunk, no copy.
      const bytes = this.chunk.subarray(this.pos, this.pos + n);
      this.advance(n);
      return { bytes, got: n };
    }
    const out = Buffer.allocUnsafe(n);
    let got = 0;
    while (got < n) {
      if (!(await this.fill())) return { bytes: null, got };
      const take = Math.min(n - got, this.chunk.length - this.pos);
      this.chunk.copy(out, got, this.pos, this.pos + take);
      this.advance(take);
      got += take;
    }
    return { bytes: out, got };
  }

  /**
   * Passes the next `n` bytes to `sink` as they arrive (views of the stream's chunks, valid only
   * during the call); returns how many there were before the input ended (n unless cut short).
   */
  async stream(n: number, sink: (bytes: Buffer) => void): Promise<number> {
    let done = 0;
    while (done < n) {
      if (!(await this.fill())) break;
      const take = Math.min(n - done, this.chunk.length - this.pos);
      sink(this.chunk.subarray(this.pos, this.pos + take));
      this.advance(take);
      done += take;
    }
    return done;
  }

  /** Reads to the end of the input, discarding it; returns the bytes skipped. */
  async drain(): Promise<number> {
    let bytes = 0;
    while (await this.fill()) {
      const rest = this.chunk.length - this.pos;
      bytes += rest;
      this.advance(rest);
    }
    return bytes;
  }

  private advance(n: number): void {
    this.pos += n;
    this.offset += n;
    this.onProgress(this.offset);
  }

  /** Makes sure some unread bytes are at hand; false at the end of the input. */
  private async fill(): Promise<boolean> {
    while (this.pos >= this.chunk.length) {
      if (this.ended) return false;
      const r = await this.chunks.next();
      if (r.done) {
        this.ended = true;
        this.chunk = EMPTY;
        this.pos = 0;
        return false;
      }
      this.chunk = r.value;
      this.pos = 0;
    }
    return true;
  }
}
