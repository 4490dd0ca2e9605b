/**
 * A remote cache in an S3 bucket: `s3://bucket/prefix`, through the AWS SDK v3. Credentials and region come from the
 * standard AWS chain (environment, shared config and credentials files, SSO, instance roles); `?endpoint=URL` (or
 * AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL) points it at an S3-compatible server (MinIO, rclone serve s3) with path-style
 * addressing. Bodies are streamed both ways; request checksums are computed only when an operation requires them,
 * because S3-compatible servers do not all take aws-chunked uploads.
 */
import { createReadStream, createWriteStream } from "node:fs";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { GetObjectCommand, HeadBucketCommand, HeadObjectCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { countingStream } from "./file.ts";
import { blobName, entryName, redact, RemoteError, type Remote } from "./remote.ts";

export interface S3Location {
  readonly bucket: string;
  /** Key prefix without leading or trailing slashes ("" for the bucket's root). */
  readonly prefix: string;
  readonly endpoint?: string | undefined;
  readonly region?: string | undefined;
}

const NETWORK_CODES = new Set(["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EPIPE", "ENOTFOUND", "EAI_AGAIN"]);

/** What the SDK's error means here: a missing object, or a RemoteError saying what to fix or that it may pass. */
const classify = (url: string, bucket: string, error: unknown): "missing" | RemoteError => {
  const e = error as { name?: string; code?: string; message?: string; $metadata?: { httpStatusCode?: number } };
  const name = e.name ?? "Error";
  const status = e.$metadata?.httpStatusCode;
  const say = (what: string, kind: "configuration" | "transient") => new RemoteError(`remote ${url}: ${what}`, kind);
  if (name === "NoSuchBucket") return say(`the bucket ${bucket} does not exist`, "configuration");
  if (name === "NotFound" || name === "NoSuchKey" || status === 404) return "missing";
  if (status === 403 || ["InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied"].includes(name)) {
    const why = name === "Unknown" ? `HTTP ${status}` : name; // a HEAD's error has no body to name it
    return say(`the server refused the credentials (${why}); check the AWS credentials in use`, "configuration");
  }
  if (name === "CredentialsProviderError") {
    return say(
      "no AWS credentials found; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY or AWS_PROFILE",
      "configuration",
    );
  }
  if (/region is missing/i.test(e.message ?? "")) {
    return say("no AWS region; set AWS_REGION or add ?region=R to the URL", "configuration");
  }
  const code = e.code ?? (e as { cause?: { code?: string } }).cause?.code;
  const why = code !== undefined && NETWORK_CODES.has(code) ? `cannot reach the server (${code})` : name;
  const detail = (e.message ?? "").split("\n")[0]!.trim(); // SDK messages may add lines of advice for developers
  return say(redact(`${why}${detail !== "" && detail !== name ? `: ${detail}` : ""}`), "transient");
};

export const s3Remote = (url: string, location: S3Location): Remote => {
  // The SDK warns on every start that its releases after early 2027 need Node 22; the version in package.json is
  // pinned to one that supports Node 20, so the warning says nothing to this tool's users.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";
  const endpoint = location.endpoint ?? process.env.AWS_ENDPOINT_URL_S3 ?? process.env.AWS_ENDPOINT_URL;
  const region =
    location.region ??
    process.env.AWS_REGION ??
    process.env.AWS_DEFAULT_REGION ??
    (endpoint === undefined ? undefined : "us-east-1");
  const client = new S3Client({
    ...(region === undefined ? {} : { region }),
    ...(endpoint === undefined ? {} : { endpoint, forcePathStyle: true }),
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
    maxAttempts: 1, // retries, with backoff, are the caller's (transfer.ts), which also turns a failure into a warning
    requestHandler: { connectionTimeout: 5_000, requestTimeout: 60_000 },
  });
  const { bucket } = location;
  const objectKey = (name: string) => (location.prefix === "" ? name : `${location.prefix}/${name}`);
  /** Runs one request; a missing object is `onMissing`, any other failure a RemoteError. */
  const send = async <A>(request: () => Promise<A>, onMissing: () => A): Promise<A> => {
    try {
      return await request();
    } catch (error) {
      const classified = classify(url, bucket, error);
      if (classified === "missing") return onMissing();
      throw classified;
    }
  };
  const missingIsError = (): never => {
    throw new RemoteError(`remote ${url}: the bucket ${bucket} does not exist`, "configuration");
  };
  return {
    url,
    check: () => send(async () => void (await client.send(new HeadBucketCommand({ Bucket: bucket }))), missingIsError),
    getEntry: (key) =>
      send(
        async () => {
          const response = await client.send(new GetObjectCommand({ Bucket: bucket, Key: objectKey(entryName(key)) }));
          return response.Body === undefined ? "" : await response.Body.transformToString("utf8");
        },
        () => undefined,
      ),
    putEntry: (key, text) =>
      send(
        async () =>
          void (await client.send(
            new PutObjectCommand({
              Bucket: bucket,
              Key: objectKey(entryName(key)),
              Body: text,
              ContentType: "application/json",
            }),
          )),
        () => missingIsError(),
      ),
    hasBlob: (sha256) =>
      send(
        async () => {
          await client.send(new HeadObjectCommand({ Bucket: bucket, Key: objectKey(blobName(sha256)) }));
          return true;
        },
        () => false,
      ),
    getBlob: (sha256, file, onBytes) =>
      send(
        async () => {
          const response = await client.send(
            new GetObjectCommand({ Bucket: bucket, Key: objectKey(blobName(sha256)) }),
          );
          const total = response.ContentLength ?? 0;
          await pipeline(response.Body as Readable, countingStream(total, onBytes), createWriteStream(file));
          return true;
        },
        () => false,
      ),
    putBlob: (sha256, file, bytes, onBytes) =>
      send(
        async () => {
          const body = createReadStream(file).pipe(countingStream(bytes, onBytes));
          await client.send(
            new PutObjectCommand({
              Bucket: bucket,
              Key: objectKey(blobName(sha256)),
              Body: body,
              ContentLength: bytes,
              ContentType: "application/octet-stream",
            }),
          );
        },
        () => missingIsError(),
      ),
  };
};
