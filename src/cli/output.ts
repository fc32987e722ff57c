/** Success output: one JSON document with --json, otherwise lines for people. */
export function printResult(json: boolean, data: Record<string, unknown>, human: () => string[]): void {
  if (json) {
    process.stdout.write(`${JSON.stringify({ ok: true, ...data }, jsonSafe)}\n`);
  } else {
    for (const line of human()) process.stdout.write(`${line}\n`);
  }
}

/** BigInt (generations) becomes a number when exact, a string otherwise. */
function jsonSafe(_key: string, value: unknown): unknown {
  if (typeof value === 'bigint')
    return value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value.toString();
  return value;
}
