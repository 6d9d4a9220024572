/** Where a value came from: the config file line, or a default. */
export interface Origin {
  /** 1-based line number in the config file; undefined for a default. */
  line?: number;
  /** The value as written, before '!' evaluation and path resolution. */
  raw?: string;
}

/** One assignment as read from the file, before any evaluation. */
export interface Assignment {
  variable: string;
  value: string;
  line: number;
}

/** The variables overlay-boot knows (SPEC Part 1 and issue 5's additions). */
export const KNOWN_VARIABLES = [
  'NAME', 'BASE', 'CABLES', 'LIVE', 'UPPER', 'WORK', 'LOWER', 'START', 'RAM_SIZE',
  'LOG', 'PREMOUNT', 'POSTMOUNT', 'INIT', 'SHARE', 'RUN', 'STOP_TIMEOUT',
  'MEMORY_MAX', 'CPU_MAX', 'PIDS_MAX', 'LAYERS', 'PRIVILEGED', 'LOG_MAX_SIZE', 'LOG_KEEP',
] as const;
export type KnownVariable = (typeof KNOWN_VARIABLES)[number];

/** A veth pair: host end NAME<i>, subhost end eth<i>. */
export interface VethCable {
  kind: 'veth';
  /** Index i among non-VLAN cables. */
  index: number;
  hostIf: string;
  subhostIf: string;
  bridge?: string;
  mac?: string;
  /** The specifier as written. */
  spec: string;
}

/** A VLAN over the nearest previous veth cable: NAME<i>.N / eth<i>.N. */
export interface VlanCable {
  kind: 'vlan';
  /** Index of the carrier veth cable. */
  index: number;
  vlan: number;
  hostIf: string;
  subhostIf: string;
  /** Carrier interface names. */
  hostCarrier: string;
  subhostCarrier: string;
  bridge?: string;
  spec: string;
}

export type Cable = VethCable | VlanCable;

export interface Share {
  /** Host path, resolved to its real path. */
  hostPath: string;
  /** Absolute path inside the subhost. */
  subhostPath: string;
  isDirectory: boolean;
  line: number;
  raw: string;
}

/** Which root filesystem layout the subhost uses (SPEC "Root filesystem variants"). */
export type RootVariant = 'premounted' | 'bind' | 'overlay';

export interface Warning {
  message: string;
  line?: number;
  variable?: string;
}

/** A fully read, evaluated and checked subhost configuration. */
export interface SubhostConfig {
  /** Absolute path of the config file. */
  file: string;
  name: string;
  base: string;
  cables: Cable[];
  live: string;
  /** The upper directory; when `upperProgram` is set this is undefined until boot runs it. */
  upper?: string;
  /** Set when UPPER names an executable rather than a directory. */
  upperProgram?: string;
  work: string;
  lower: string;
  /**
   * LAYERS: read-only lower layers between UPPER and LOWER, top first, each the real
   * path of an existing directory; empty when unset. Used only by the overlay variant.
   */
  layers: string[];
  /**
   * Set when one layer lies inside LOWER's tree on its filesystem (overlayfs refuses that
   * as a lower): it is mounted as the read-only upper of an inner overlay over LOWER.
   */
  innerLayer?: InnerLayer;
  /** START entries; empty when START is `none`. */
  start: string[];
  /** RAM_SIZE, or undefined for `none`. */
  ramSize?: string;
  log: string;
  premount?: string;
  postmount?: string;
  init?: string;
  shares: Share[];
  /** Foreground services the reaper keeps alive (RUN=, repeatable). */
  run: string[];
  /** Grace period in seconds for stopping (STOP_TIMEOUT, default 10). */
  stopTimeout: number;
  rootVariant: RootVariant;
  /** MEMORY_MAX in bytes; undefined when unlimited. */
  memoryMax?: number;
  /** CPU_MAX in percent of one CPU; undefined when unlimited. */
  cpuMax?: number;
  /** PIDS_MAX; undefined when unlimited. */
  pidsMax?: number;
  /** PRIVILEGED (default yes); false: the subhost runs in a user namespace of its own (issue 16). */
  privileged: boolean;
  /** LOG_MAX_SIZE in bytes: LOG is rotated before it would pass it; undefined: never rotated. */
  logMaxSize?: number;
  /** LOG_KEEP: how many rotated logs (LOG.1.gz ...) are kept; set when logMaxSize is. */
  logKeep?: number;
  /** Where each variable's value came from. */
  origins: Partial<Record<KnownVariable, Origin>>;
  warnings: Warning[];
}

/** A LAYERS entry inside LOWER's tree, mounted as the upper of an inner overlay over LOWER. */
export interface InnerLayer {
  /** The layer (a real path), taken out of the lower layers. */
  layer: string;
  /** The inner overlay's workdir, on the layer's filesystem. */
  workdir: string;
}
