import { describe, expect, it } from "vitest";
import { etaText, humanDuration, makeReporter, remainingMs } from "../pipeline/progress.ts";
import { capture } from "./fixtures/capture.ts";

/** A reporter on a fake stream whose clock the test moves by hand. */
const fakeRun = (isTTY: boolean) => {
  const err = capture();
  Object.assign(err.stream, { isTTY });
  let clock = 1_000_000;
  const reporter = makeReporter(err.stream, { now: () => clock });
  const id = "train[mnist,L=1,seed=0]";
  return {
    err,
    reporter,
    id,
    advance: (ms: number) => (clock += ms),
    progress: (fraction?: number, message = "epoch 1/10") =>
      reporter.onEvent({ type: "progress", id, ...(fraction === undefined ? {} : { fraction }), message }),
    log: (message: string) => reporter.onEvent({ type: "log", id, message }),
  };
};

describe("ETA", () => {
  it("extrapolates the measured rate: 10% more in 20 s leaves 40% in 80 s", () => {
    expect(remainingMs({ fraction: 0.5, at: 0 }, { fraction: 0.6, at: 20_000 })).toBeCloseTo(80_000, 6);
    expect(remainingMs({ fraction: 0.01, at: 5_000 }, { fraction: 1, at: 10_000 })).toBe(0);
  });

  it("is absent before enough progress or time to measure", () => {
    expect(remainingMs({ fraction: 0.001, at: 0 }, { fraction: 0.004, at: 60_000 })).toBeUndefined();
    expect(remainingMs({ fraction: 0.001, at: 0 }, { fraction: 0.5, at: 1_999 })).toBeUndefined();
    expect(etaText(undefined, { fraction: 0.5, at: 10_000 })).toBe("");
  });

  it("reads as seconds, minutes or hours", () => {
    expect(humanDuration(45_200)).toBe("45s");
    expect(humanDuration(200_000)).toBe("3m 20s");
    expect(humanDuration(7_500_000)).toBe("2h 05m");
    expect(etaText({ fraction: 0.1, at: 0 }, { fraction: 0.2, at: 25_000 })).toBe("ETA 3m 20s");
  });
});

describe("progress renderer", () => {
  it("off a terminal: the ETA of a linear progress, measured from the first fraction, not the loading", () => {
    const run = fakeRun(false);
    run.reporter.onEvent({ type: "start", id: run.id, reason: "never run" });
    run.progress(undefined, "loading data");
    run.advance(30_000); // loading: no fraction, so it does not count towards the rate
    run.progress(0.01);
    for (let i = 2; i <= 4; i++) {
      run.advance(10_000);
      run.progress(i / 100); // 1% per 10 s: 96% left at 4% is 960 s
    }
    expect(run.err.text().split("\n").slice(1, -1)).toEqual([
      `  ...    ${run.id} 1% epoch 1/10 (30.0 s)`,
      `  ...    ${run.id} 2% epoch 1/10 (40.0 s, ETA 16m 20s)`,
      `  ...    ${run.id} 3% epoch 1/10 (50.0 s, ETA 16m 10s)`,
      `  ...    ${run.id} 4% epoch 1/10 (60.0 s, ETA 16m 00s)`,
    ]);
    run.reporter.close();
  });

  it("off a terminal: every epoch's note is printed, whatever the 10 s throttle of progress lines", () => {
    const run = fakeRun(false);
    run.reporter.onEvent({ type: "start", id: run.id, reason: "never run" });
    run.log("resumed from epoch 2 (test error 3.10%), 1 epoch left");
    run.progress(0.7);
    run.advance(1_000);
    run.progress(1, "epoch 3/3 step 8/8");
    run.log("epoch 3/3: test error 2.50%, 812 img/s");
    expect(run.err.text().split("\n").slice(1, -1)).toEqual([
      `note     ${run.id}: resumed from epoch 2 (test error 3.10%), 1 epoch left`,
      `note     ${run.id}: epoch 3/3: test error 2.50%, 812 img/s`,
    ]);
    run.reporter.close();
  });

  it("on a terminal: the redrawn block shows the bar and ETA, notes scroll above it", () => {
    const run = fakeRun(true);
    run.reporter.onEvent({ type: "start", id: run.id, reason: "never run" });
    run.progress(0.1, "epoch 1/10 step 5/50");
    expect(run.err.text()).not.toContain("ETA");
    run.advance(1_000);
    run.progress(0.2, "epoch 2/10 step 50/50");
    run.log("epoch 2/10: test error 4.00%, 900 img/s"); // too early (1 s) for an ETA
    expect(run.err.text()).not.toContain("ETA");
    run.advance(9_000);
    run.progress(0.3, "epoch 3/10 step 50/50");
    run.log("epoch 3/10: test error 3.00%, 900 img/s"); // 10% per 5 s: 70% left is 35 s
    const block = run.err.text().split("\x1b[0J").at(-1)!;
    expect(block.split("\n")).toEqual([
      `note     ${run.id}: epoch 3/10: test error 3.00%, 900 img/s`,
      `  [######--------------]  30% ${run.id} epoch 3/10 step 50/50 10.0 s ETA 35s`,
      "",
    ]);
    run.reporter.close();
  });
});
