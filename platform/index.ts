// platform/: what a MilkyWayLinux machine is, as data both the agent and the image builder
// read: the disk layout table and MilkyWay's partition type GUIDs. Imports only common/ and
// formats/. Re-exports only; see doc/internal-apis.md.
export * from './partition-types.ts';
export * from './disk-layout.ts';
export * from './layout-derived.ts';
