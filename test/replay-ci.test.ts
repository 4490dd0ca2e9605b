/**
 * CI's deterministic-replay check: recomputes the tiny real-MNIST configuration in configs/ci-replay.json from scratch
 * and compares every artifact's sha256 with the committed pipeline.lock.json. After an intended change of results
 * (a stage version bump), regenerate the lock with `npm run lock:ci`.
 */
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { main } from "../pipeline/cli.ts";
import { paperPipeline } from "../stages/index.ts";
import { capture } from "./fixtures/capture.ts";

const repoRoot = resolve(import.meta.dirname, "..");
const dataDir = resolve(repoRoot, "../shared/datasets");
const haveData = existsSync(join(dataDir, "MNIST/raw/train-images-idx3-ubyte.gz"));

describe.skipIf(!haveData)(`replay of the committed lock file (needs ${dataDir})`, () => {
  it("recomputes configs/ci-replay.json bit for bit", async () => {
    const out = capture();
    const err = capture();
    const code = await main(
      paperPipeline,
      [
        "replay",
        "--check",
        "--lock",
        join(repoRoot, "pipeline.lock.json"),
        "--data-dir",
        dataDir,
        "--backend",
        "tensorflow",
        "--offline",
        "--json",
      ],
      { out: out.stream, err: err.stream },
    );
    const result = JSON.parse(out.text()) as { ok: boolean; nodes: Array<{ id: string; status: string }> };
    const mismatches = result.nodes.filter((n) => n.status !== "match").map((n) => `${n.id}: ${n.status}`);
    expect(mismatches, `${err.text()}\nregenerate with npm run lock:ci if the change is intended`).toEqual([]);
    expect(result.nodes.map((n) => n.id)).toContain("report[mnist,eps=0.1]");
    expect(code).toBe(0);
  }, 300_000);
});
