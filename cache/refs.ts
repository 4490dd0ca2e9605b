/**
 * refs/<stage>/<refDigest>.json: the last key committed for a node (its digest names the node), so that a later miss
 * can say what changed. A lost or unreadable ref only costs that explanation.
 */
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { writeFileAtomic } from "./fsutil.ts";
import type { StoreLayout } from "./layout.ts";
import { isKey } from "./manifest.ts";

export interface Ref {
  readonly nodeId: string;
  readonly key: string;
  readonly updatedAt: string;
}

/** A stage name or params digest as one file name: percent-encoded, and never "", "." or "..". */
const pathSegment = (what: string, value: string): string => {
  const segment = encodeURIComponent(value);
  if (segment === "" || segment === "." || segment === ".." || segment.length > 200) {
    throw new Error(`invalid ${what} ${JSON.stringify(value)} for a cache path`);
  }
  return segment;
};

const refPath = (layout: StoreLayout, stage: string, refDigest: string): string =>
  path.join(layout.paths.refs, pathSegment("stage", stage), `${pathSegment("ref digest", refDigest)}.json`);

export const writeRef = async (layout: StoreLayout, stage: string, refDigest: string, ref: Ref): Promise<void> => {
  const file = refPath(layout, stage, refDigest);
  await fs.mkdir(path.dirname(file), { recursive: true });
  await writeFileAtomic(file, JSON.stringify(ref) + "\n", { tempDir: layout.paths.tmp });
};

/** The ref in `file`, or undefined when it is missing, unreadable or not a valid ref (a ref is only a hint). */
export const readRefFile = async (file: string): Promise<Ref | undefined> => {
  try {
    const { nodeId, key, updatedAt } = JSON.parse(await fs.readFile(file, "utf8")) as Record<string, unknown>;
    return typeof nodeId === "string" && typeof key === "string" && isKey(key) && typeof updatedAt === "string"
      ? { nodeId, key, updatedAt }
      : undefined;
  } catch {
    return undefined;
  }
};

/** The last key committed for this stage + ref digest, or undefined. */
export const readRef = (layout: StoreLayout, stage: string, refDigest: string): Promise<Ref | undefined> =>
  readRefFile(refPath(layout, stage, refDigest));
