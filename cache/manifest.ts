/**
 * The manifest stored as objects/<key>/manifest.json: what a node produced, from what, and how to verify it.
 * Its schema is checked on every read, so a hand-edited or truncated manifest is reported instead of trusted.
 */
/** 64 lowercase hex digits: the form of every node key (a sha256 chosen by the engine). */
export const KEY_PATTERN = /^[0-9a-f]{64}$/;

export const isKey = (key: string): boolean => KEY_PATTERN.test(key);

export function assertKey(key: string): void {
  if (!isKey(key)) throw new Error(`invalid cache key ${JSON.stringify(key)}: expected 64 lowercase hex digits`);
}

/**
 * An artifact file name inside an object directory: one plain path segment (no directories), and not manifest.json.
 * Keeping objects flat keeps verification and fsync simple.
 */
export function artifactFileProblem(file: string): string | undefined {
  if (file === "manifest.json") return "manifest.json is reserved";
  if (!/^[A-Za-z0-9_][A-Za-z0-9._-]*$/.test(file) || file.length > 200) {
    return `artifact file name ${JSON.stringify(file)} must be a single segment of [A-Za-z0-9._-], not starting with '.' or '-'`;
  }
  return undefined;
}

export interface ArtifactEntry {
  /** File name inside the object directory. */
  readonly file: string;
  readonly bytes: number;
  readonly sha256: string;
  readonly kind: "table" | "file";
  /** Row count of a table artifact, as reported by the producer. */
  readonly rows?: number;
  /** Column schema of a table artifact, as reported by the producer (opaque to the store). */
  readonly schema?: unknown;
}

export interface InputRef {
  readonly key: string;
  readonly nodeId: string;
  /** Artifact name -> sha256 of the input artifacts this node read. */
  readonly artifacts: Readonly<Record<string, string>>;
}

export interface Manifest {
  readonly formatVersion: 1;
  readonly key: string;
  readonly nodeId: string;
  readonly stage: string;
  readonly version: string;
  readonly params: unknown;
  /** Input name -> the upstream node and artifacts it was bound to. */
  readonly inputs: Readonly<Record<string, InputRef>>;
  /** Artifact name -> entry. */
  readonly artifacts: Readonly<Record<string, ArtifactEntry>>;
  readonly startedAt: string;
  readonly finishedAt: string;
  readonly durationMs: number;
  readonly tool: { readonly name: string; readonly version: string };
  readonly runtime: Readonly<Record<string, unknown>>;
}

/** What the caller supplies at commit time: everything but the artifact entries, which the store computes. */
export type ManifestInfo = Omit<Manifest, "artifacts">;

const SHA256_PATTERN = /^[0-9a-f]{64}$/;

/**
 * Checks a parsed manifest.json field by field; returns undefined when valid, else "<field path>: <problem>".
 * Hand-written rather than an Effect Schema so the store (and the child processes of its tests) load fast.
 */
function manifestProblem(value: unknown): string | undefined {
  const isRecord = (x: unknown): x is Record<string, unknown> =>
    typeof x === "object" && x !== null && !Array.isArray(x);
  const isString = (x: unknown): x is string => typeof x === "string";
  const isCount = (x: unknown): boolean => Number.isSafeInteger(x) && (x as number) >= 0;
  if (!isRecord(value)) return "not an object";
  if (value.formatVersion !== 1) return `formatVersion: expected 1, found ${JSON.stringify(value.formatVersion)}`;
  if (!isString(value.key) || !KEY_PATTERN.test(value.key)) return "key: expected 64 hex digits";
  for (const field of ["nodeId", "stage", "version", "startedAt", "finishedAt"] as const) {
    if (!isString(value[field])) return `${field}: expected a string`;
  }
  if (!("params" in value)) return "params: missing";
  if (typeof value.durationMs !== "number" || !Number.isFinite(value.durationMs))
    return "durationMs: expected a number";
  if (!isRecord(value.tool) || !isString(value.tool.name) || !isString(value.tool.version))
    return "tool: expected { name, version }";
  if (!isRecord(value.runtime)) return "runtime: expected an object";
  if (!isRecord(value.inputs)) return "inputs: expected an object";
  for (const [name, input] of Object.entries(value.inputs)) {
    const at = `inputs.${name}`;
    if (!isRecord(input)) return `${at}: expected an object`;
    if (!isString(input.key) || !KEY_PATTERN.test(input.key)) return `${at}.key: expected 64 hex digits`;
    if (!isString(input.nodeId)) return `${at}.nodeId: expected a string`;
    if (!isRecord(input.artifacts)) return `${at}.artifacts: expected an object`;
    for (const [artifact, sha] of Object.entries(input.artifacts)) {
      if (!isString(sha) || !SHA256_PATTERN.test(sha)) return `${at}.artifacts.${artifact}: expected a sha256`;
    }
  }
  if (!isRecord(value.artifacts)) return "artifacts: expected an object";
  for (const [name, entry] of Object.entries(value.artifacts)) {
    const at = `artifacts.${name}`;
    if (!isRecord(entry)) return `${at}: expected an object`;
    if (!isString(entry.file)) return `${at}.file: expected a string`;
    const fileProblem = artifactFileProblem(entry.file);
    if (fileProblem !== undefined) return `${at}.file: ${fileProblem}`;
    if (!isCount(entry.bytes)) return `${at}.bytes: expected a non-negative integer`;
    if (!isString(entry.sha256) || !SHA256_PATTERN.test(entry.sha256)) return `${at}.sha256: expected 64 hex digits`;
    if (entry.kind !== "table" && entry.kind !== "file") return `${at}.kind: expected "table" or "file"`;
    if ("rows" in entry && !isCount(entry.rows)) return `${at}.rows: expected a non-negative integer`;
  }
  return undefined;
}

/** Parses manifest.json text; the error is a one-line reason. */
export function parseManifest(text: string): { readonly manifest: Manifest } | { readonly error: string } {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    return { error: `manifest.json is not JSON (${(error as Error).message})` };
  }
  const problem = manifestProblem(json);
  return problem === undefined ? { manifest: json as Manifest } : { error: `manifest.json is invalid: ${problem}` };
}
