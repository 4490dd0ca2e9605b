/**
 * A remote cache: the same action cache and CAS as the local store, kept somewhere else (an S3 bucket, a shared
 * folder), under one prefix:
 *   <prefix>/ac/<key>.json                      action-cache entries (the manifest text, as stored locally)
 *   <prefix>/cas/sha256/<first two hex>/<sha256> blobs
 * The store and the engine see only this interface; s3.ts and file.ts implement it. Every write is idempotent by name
 * (a blob's name is its hash, an entry's its key), so nothing depends on conditional puts.
 */
import { fileRemote } from "./file.ts";

/** Bytes moved so far of one blob transfer (for big blobs' progress). */
export type OnBytes = (done: number, total: number) => void;

export interface Remote {
  /** The URL as given, for messages (it never holds credentials: they come from the environment). */
  readonly url: string;
  /** Checks that the remote can be used (the bucket exists, the credentials are accepted, the folder is there). */
  readonly check: () => Promise<void>;
  /** The entry's text, or undefined when the remote has none. */
  readonly getEntry: (key: string) => Promise<string | undefined>;
  readonly putEntry: (key: string, text: string) => Promise<void>;
  readonly hasBlob: (sha256: string) => Promise<boolean>;
  /** Streams the blob into `file` (created or truncated); false when the remote has no such blob. */
  readonly getBlob: (sha256: string, file: string, onBytes?: OnBytes) => Promise<boolean>;
  /** Streams `file` (of `bytes` bytes) up as the blob. */
  readonly putBlob: (sha256: string, file: string, bytes: number, onBytes?: OnBytes) => Promise<void>;
}

/**
 * A remote failed. `configuration`: the remote cannot work as given (a missing bucket or folder, refused
 * credentials), which ends the command with exit code 2; `transient`: it may work on a retry (a timeout, a refused
 * connection, a 5xx), which is retried with backoff and then becomes a warning.
 */
export class RemoteError extends Error {
  constructor(
    message: string,
    readonly kind: "configuration" | "transient",
  ) {
    super(message);
    this.name = "RemoteError";
  }
}

/** Where remote paths go below the prefix (shared by every implementation). */
export const entryName = (key: string): string => `ac/${key}.json`;
export const blobName = (sha256: string): string => `cas/sha256/${sha256.slice(0, 2)}/${sha256}`;

/** Environment variables whose values are secrets: never shown in any message this tool writes. */
const SECRET_VARIABLES = ["AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID", "AWS_SESSION_TOKEN"];

/** `text` with every credential from the environment replaced by "***" (messages of SDKs may quote them). */
export const redact = (text: string): string => {
  let out = text;
  for (const name of SECRET_VARIABLES) {
    const value = process.env[name];
    if (value !== undefined && value.length >= 4) out = out.split(value).join("***");
  }
  return out;
};

/**
 * The remote a `--remote` URL names: `s3://bucket/prefix` (optionally `?endpoint=URL&region=R` for S3-compatible
 * servers) or `file:///path`. Fails with a configuration RemoteError for anything else, or for a URL carrying
 * credentials. The AWS SDK is loaded only for an s3:// URL (it is large: the CLI bundle keeps it in a lazy chunk).
 */
export const openRemote = async (raw: string): Promise<Remote> => {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new RemoteError(
      `--remote: "${raw}" is not a URL (expected s3://bucket/prefix or file:///path)`,
      "configuration",
    );
  }
  if (url.username !== "" || url.password !== "") {
    throw new RemoteError(
      "--remote: the URL must not hold credentials; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or an AWS profile)",
      "configuration",
    );
  }
  const shown = url.toString();
  if (url.protocol === "file:") {
    if (url.hostname !== "") {
      throw new RemoteError(`--remote: ${shown} names a host; write file:///absolute/path`, "configuration");
    }
    return fileRemote(shown, decodeURIComponent(url.pathname));
  }
  if (url.protocol === "s3:") {
    if (url.hostname === "") throw new RemoteError(`--remote: ${shown} names no bucket`, "configuration");
    const { s3Remote } = await import("./s3.ts");
    return s3Remote(shown, {
      bucket: url.hostname,
      prefix: decodeURIComponent(url.pathname).replace(/^\/+|\/+$/g, ""),
      endpoint: url.searchParams.get("endpoint") ?? undefined,
      region: url.searchParams.get("region") ?? undefined,
    });
  }
  throw new RemoteError(
    `--remote: unknown URL scheme "${url.protocol.replace(/:$/, "")}" (expected s3:// or file://)`,
    "configuration",
  );
};
