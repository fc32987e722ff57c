let dataOnStdout = false;

/**
 * For a command whose stdout carries data (`export -o -` writes the archive there): from now on the
 * result and error documents go to stderr, so they cannot end up inside the data.
 */
export function stdoutCarriesData(): void {
  dataOnStdout = true;
}

/** Where result and error documents go: stdout, unless it carries data. */
export function resultStream(): NodeJS.WriteStream {
  return dataOnStdout ? process.stderr : process.stdout;
}

/** Success output: one JSON document with --json, otherwise lines for people. */
export function printResult(json: boolean, data: Record<string, unknown>, human: () => string[]): void {
  const out = resultStream();
  if (json) {
    out.write(`${JSON.stringify({ ok: true, ...data }, jsonSafe)}\n`);
  } else {
    for (const line of human()) out.write(`${line}\n`);
  }
}

/** BigInt (generations) becomes a number when exact, a string otherwise. */
function jsonSafe(_key: string, value: unknown): unknown {
  if (typeof value === 'bigint')
    return value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value.toString();
  return value;
}
