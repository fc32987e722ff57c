/**
 * src/map public API: the PNG container and the few geometry facts callers need.
 * Format: docs/format.md.
 */
export { MapContainer, type CreateOptions, type OpenOptions } from './container';
export type { ContainerProblem, ContainerReport, ProgressFn, RepairReport } from './integrity';
export type { MetadataCopy } from './metadata-chunk';
export type { MapState, Superblock } from './superblock';
export { BLOCK_PAYLOAD, CLUSTER_SIZE, FORMAT_VERSION, MAX_SIDE, MIN_SIDE } from './layout';
export { curveXY, tilePlacement, type TilePlacement } from './hilbert';
