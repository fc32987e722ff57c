/**
 * Config migrations: a file written for an older config version keeps working. Each step rewrites
 * the keys of one version into the next; the loader runs them in order and the schema validates
 * the result. A file without `version` is version 1 (the first published one).
 */
import { ImapError } from '../protocol/errors';
import { CONFIG_VERSION } from './schema';

type Tree = Record<string, unknown>;

/** Version 0 was the prototype's flat layout (cache_size, dirty_limit, grow); kept so old files load. */
function from0to1(raw: Tree): Tree {
  const out: Tree = { ...raw, version: 1 };
  const moves: Array<[string, string, string]> = [
    ['cache_size', 'cache', 'l1_bytes'],
    ['dirty_limit', 'io', 'max_dirty_bytes'],
    ['grow', 'map', 'grow'],
  ];
  for (const [oldKey, section, key] of moves) {
    if (oldKey in out) {
      const sec = (out[section] as Tree | undefined) ?? {};
      out[section] = { ...sec, [key]: out[oldKey] };
      delete out[oldKey];
    }
  }
  return out;
}

const STEPS: Record<number, (raw: Tree) => Tree> = { 0: from0to1 };

export function migrateConfig(raw: Tree, source: string): Tree {
  let version = raw.version === undefined ? CONFIG_VERSION : raw.version;
  if (typeof version !== 'number' || !Number.isInteger(version) || version < 0) {
    throw new ImapError('IMAP_E_CONFIG', `${source}: version: must be a whole number`);
  }
  if (version > CONFIG_VERSION) {
    throw new ImapError(
      'IMAP_E_CONFIG',
      `${source}: version ${version} is newer than this imapfs understands (${CONFIG_VERSION}); upgrade imapfs`,
    );
  }
  let tree = raw;
  while (version < CONFIG_VERSION) {
    const step = STEPS[version];
    if (!step) throw new ImapError('IMAP_E_CONFIG', `${source}: no migration from config version ${version}`);
    tree = step(tree);
    version++;
  }
  return tree;
}
