/**
 * Loading a config: YAML file → migration to the current version → `-o` overrides → validation.
 * Any problem is one IMAP_E_CONFIG error naming the key, raised before anything is mounted.
 */
import * as fs from 'node:fs';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import { ImapError } from '../protocol/errors';
import { migrateConfig } from './migrate';
import { type Config, ConfigSchema } from './schema';

type Tree = Record<string, unknown>;

/** Mount options that are plain FUSE flags map onto config keys, as users of fuse2fs expect. */
const FLAG_OPTIONS: Record<string, [string, unknown]> = {
  ro: ['fuse.read_only', true],
  rw: ['fuse.read_only', false],
  allow_other: ['fuse.allow_other', true],
  default_permissions: ['fuse.default_permissions', true],
  writeback_cache: ['fuse.writeback_cache', true],
  acl: ['fuse.acl', true],
  nogrow: ['map.grow', false],
};

export function readConfigFile(path: string): Tree {
  let text: string;
  try {
    text = fs.readFileSync(path, 'utf8');
  } catch (err) {
    throw new ImapError('IMAP_E_CONFIG', `cannot read config file ${path}: ${(err as Error).message}`);
  }
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    const where = err instanceof YAMLParseError ? ` at line ${err.linePos?.[0]?.line ?? '?'}` : '';
    throw new ImapError('IMAP_E_CONFIG', `${path}${where}: not valid YAML: ${(err as Error).message}`);
  }
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== 'object' || Array.isArray(doc)) {
    throw new ImapError('IMAP_E_CONFIG', `${path}: the top level must be a mapping of keys`);
  }
  return doc as Tree;
}

/** Values in `-o key=value` are YAML scalars, so `-o cache.l1_bytes=16M -o map.grow=false` work. */
function parseScalar(value: string): unknown {
  try {
    return parseYaml(value) as unknown;
  } catch {
    return value; // not YAML (e.g. a path with a colon): keep the literal string
  }
}

function setPath(tree: Tree, dotted: string, value: unknown): void {
  const keys = dotted.split('.');
  let node = tree;
  for (const key of keys.slice(0, -1)) {
    const next = node[key];
    if (next === undefined) node[key] = {};
    else if (typeof next !== 'object' || next === null || Array.isArray(next)) {
      throw new ImapError('IMAP_E_CONFIG', `-o ${dotted}: '${key}' is not a section`);
    }
    node = node[key] as Tree;
  }
  node[keys[keys.length - 1]!] = value;
}

/** Splits "-o a,b=c" lists; FUSE's own syntax. */
export function parseMountOptions(options: string[]): Array<[string, unknown]> {
  const out: Array<[string, unknown]> = [];
  for (const item of options.flatMap((o) => o.split(',')).map((s) => s.trim())) {
    if (!item) continue;
    const eq = item.indexOf('=');
    if (eq < 0) {
      const flag = FLAG_OPTIONS[item];
      if (!flag) {
        throw new ImapError(
          'IMAP_E_CONFIG',
          `-o ${item}: unknown mount option (flags: ${Object.keys(FLAG_OPTIONS).join(', ')}; or key=value)`,
        );
      }
      out.push(flag);
    } else {
      out.push([item.slice(0, eq), parseScalar(item.slice(eq + 1))]);
    }
  }
  return out;
}

export function validateConfig(raw: Tree, source: string): Config {
  const migrated = migrateConfig(raw, source);
  const result = ConfigSchema.safeParse(migrated);
  if (!result.success) {
    const lines = result.error.issues.map((i) => `${i.path.join('.') || '(top level)'}: ${i.message}`);
    throw new ImapError('IMAP_E_CONFIG', `${source}: ${lines.join('; ')}`);
  }
  return result.data;
}

export function loadConfig(opts: { file?: string; options?: string[] } = {}): Config {
  const raw = opts.file ? readConfigFile(opts.file) : {};
  for (const [key, value] of parseMountOptions(opts.options ?? [])) setPath(raw, key, value);
  return validateConfig(raw, opts.file ?? 'mount options');
}
