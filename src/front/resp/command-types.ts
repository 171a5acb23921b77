/** The shape of Redis 7's command descriptions (COMMAND INFO, COMMAND DOCS): command-table.ts, command-specs.ts. */

/** Where the keys of a command start (COMMAND INFO key specs, `begin_search`). */
export type BeginSearch =
  | { readonly type: 'index'; readonly index: number }
  | { readonly type: 'keyword'; readonly keyword: string; readonly startFrom: number }
  | { readonly type: 'unknown' };

/** How many keys follow (COMMAND INFO key specs, `find_keys`). */
export type FindKeys =
  | { readonly type: 'range'; readonly lastKey: number; readonly keyStep: number; readonly limit: number }
  | { readonly type: 'keynum'; readonly keyNumIndex: number; readonly firstKey: number; readonly keyStep: number }
  | { readonly type: 'unknown' };

export interface KeySpec {
  readonly notes?: string;
  /** RO RW OW RM, access update insert delete, ... */
  readonly flags: readonly string[];
  readonly beginSearch: BeginSearch;
  readonly findKeys: FindKeys;
}

/** One argument of COMMAND DOCS. */
export interface CommandArg {
  readonly name: string;
  /** string integer double key pattern unix-time pure-token oneof block */
  readonly type: string;
  readonly keySpecIndex?: number;
  readonly token?: string;
  readonly summary?: string;
  readonly since?: string;
  readonly deprecatedSince?: string;
  /** optional multiple multiple_token */
  readonly flags?: readonly string[];
  /** For oneof and block. */
  readonly arguments?: readonly CommandArg[];
}

/** COMMAND DOCS of one command, fields in Redis's order. */
export interface CommandDocs {
  readonly summary?: string;
  readonly since?: string;
  readonly group: string;
  readonly complexity?: string;
  readonly docFlags?: readonly string[];
  readonly deprecatedSince?: string;
  readonly replacedBy?: string;
  /** [version, what changed] */
  readonly history?: readonly (readonly [string, string])[];
  readonly arguments?: readonly CommandArg[];
}

/** One command or subcommand, as Redis 7 describes it. */
export interface CommandSpec {
  /** Lower case; a subcommand's is `container|sub` (`client|id`). */
  readonly name: string;
  /** n > 0: exactly n arguments, the name included; n < 0: at least -n. */
  readonly arity: number;
  /** write readonly denyoom admin pubsub noscript blocking loading stale fast ... */
  readonly flags: readonly string[];
  /** The legacy key positions: first, last (negative: from the end), step; 0 0 0 = none. */
  readonly firstKey: number;
  readonly lastKey: number;
  readonly step: number;
  /** `@read`, `@string`, ... */
  readonly aclCategories: readonly string[];
  /** `request_policy:all_shards`, `nondeterministic_output`, ... */
  readonly tips: readonly string[];
  readonly keySpecs: readonly KeySpec[];
  readonly docs: CommandDocs;
  /** The subcommands jincache answers (containers only). */
  readonly subcommands: readonly CommandSpec[];
}
