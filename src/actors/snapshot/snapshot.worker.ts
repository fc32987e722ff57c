/**
 * The snapshot actor: reads the snapshot table through its own read-only connection to the sidecar
 * (SQLite WAL lets readers run beside the journal's writer).
 *
 *   lifecycle: see runtime/lifecycle.ts
 *
 * Ownership: its read-only MetadataStore. Creating, rolling back and exporting snapshots are the
 * snapshot issue's; they will go through the journal, which owns every write.
 */
import { MetadataStore } from '../../fs/store';
import type { SnapshotOps } from '../../protocol/minor-actors';
import { runActor } from '../runtime/host';

export interface SnapshotOptions {
  sidecarPath: string;
}

runActor<SnapshotOps, { store: MetadataStore }>({
  name: 'snapshot',
  init({ options }) {
    return { store: MetadataStore.open((options as SnapshotOptions).sidecarPath, { readOnly: true }) };
  },
  handlers: {
    list: (_p, { state }) => state.store.snapshots(),
  },
  drain(state) {
    state.store.close();
  },
});
