/**
 * A remote cache in a folder (a shared or network disk): `file:///path`. Writes go to a temp file beside their
 * target and are renamed into place, so a reader sees a whole blob or entry, or none.
 */
import { createReadStream, createWriteStream } from "node:fs";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { errnoCode, ifExists, makeDirs, tempName } from "../fsutil.ts";
import { blobName, entryName, RemoteError, type OnBytes, type Remote } from "./remote.ts";

/** A pass-through stream that reports the bytes seen so far. */
export const countingStream = (total: number, onBytes: OnBytes | undefined): Transform => {
  let done = 0;
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      done += chunk.length;
      onBytes?.(done, total);
      callback(null, chunk);
    },
  });
};

/** An fs failure as a RemoteError: permissions are the user's to fix, anything else may pass. */
const asRemoteError = (url: string, error: unknown): RemoteError => {
  const code = errnoCode(error);
  const kind = code === "EACCES" || code === "EPERM" || code === "EROFS" ? "configuration" : "transient";
  return new RemoteError(`remote ${url}: ${(error as Error).message}`, kind);
};

export const fileRemote = (url: string, root: string): Remote => {
  const at = (name: string) => path.join(root, ...name.split("/"));
  const guard = async <A>(f: () => Promise<A>): Promise<A> => {
    try {
      return await f();
    } catch (error) {
      throw error instanceof RemoteError ? error : asRemoteError(url, error);
    }
  };
  /** Writes through a temp file beside `target`, renamed over it (an equal blob or entry may be replaced). */
  const writeAtomically = async (target: string, write: (temp: string) => Promise<void>) => {
    await makeDirs(path.dirname(target));
    const temp = path.join(path.dirname(target), `.${tempName()}.tmp`);
    try {
      await write(temp);
      await fs.rename(temp, target);
    } finally {
      await fs.rm(temp, { force: true });
    }
  };
  return {
    url,
    check: () =>
      guard(async () => {
        const stats = await ifExists(() => fs.stat(root));
        if (stats?.isDirectory() !== true) {
          throw new RemoteError(`remote ${url}: the folder ${root} does not exist`, "configuration");
        }
      }),
    getEntry: (key) => guard(() => ifExists(() => fs.readFile(at(entryName(key)), "utf8"))),
    putEntry: (key, text) => guard(() => writeAtomically(at(entryName(key)), (temp) => fs.writeFile(temp, text))),
    hasBlob: (sha256) => guard(async () => (await ifExists(() => fs.stat(at(blobName(sha256))))) !== undefined),
    getBlob: (sha256, file, onBytes) =>
      guard(async () => {
        const source = at(blobName(sha256));
        const stats = await ifExists(() => fs.stat(source));
        if (stats === undefined) return false;
        await pipeline(createReadStream(source), countingStream(stats.size, onBytes), createWriteStream(file));
        return true;
      }),
    putBlob: (sha256, file, bytes, onBytes) =>
      guard(() =>
        writeAtomically(at(blobName(sha256)), (temp) =>
          pipeline(createReadStream(file), countingStream(bytes, onBytes), createWriteStream(temp)),
        ),
      ),
  };
};
