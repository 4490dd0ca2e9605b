/** Progress display for a run: a live block of running nodes on a terminal, plain timestamped lines otherwise. */
import type { ExecEvent, NodeResult } from "./executor/executor.ts";

export interface Reporter {
  readonly onEvent: (event: ExecEvent) => void;
  readonly close: () => void;
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;

const bar = (fraction: number, width = 20) => {
  const f = Math.min(1, Math.max(0, fraction));
  const full = Math.round(f * width);
  return `[${"#".repeat(full)}${"-".repeat(width - full)}] ${(f * 100).toFixed(0).padStart(3)}%`;
};

/** Measured progress of a node at one moment: the fraction done and the clock in ms. */
export interface ProgressPoint {
  readonly fraction: number;
  readonly at: number;
}

/** Below this much measured progress or time an extrapolation is mostly noise (warm-up, first-step compilation). */
const MIN_ETA_FRACTION = 0.005;
const MIN_ETA_MS = 2_000;

/**
 * Time left in ms, extrapolating the rate measured from `since` (the node's first progress with a fraction above
 * zero, so loading before the first step and epochs resumed from a checkpoint do not count) to `current`;
 * undefined while there is too little progress or time to measure.
 */
export const remainingMs = (since: ProgressPoint, current: ProgressPoint): number | undefined => {
  const gained = current.fraction - since.fraction;
  const elapsed = current.at - since.at;
  if (gained < MIN_ETA_FRACTION || elapsed < MIN_ETA_MS) return undefined;
  return (elapsed * Math.max(0, 1 - current.fraction)) / gained;
};

/** A duration for a person: `45s`, `3m 20s`, `2h 05m`. */
export const humanDuration = (ms: number): string => {
  const total = Math.round(ms / 1000);
  const [h, m, s] = [Math.floor(total / 3600), Math.floor(total / 60) % 60, total % 60];
  if (h > 0) return `${h}h ${String(m).padStart(2, "0")}m`;
  return m > 0 ? `${m}m ${String(s).padStart(2, "0")}s` : `${s}s`;
};

/** `ETA 3m 20s` for a running node, or "" before its progress can be measured. */
export const etaText = (since: ProgressPoint | undefined, current: ProgressPoint): string => {
  const left = since === undefined ? undefined : remainingMs(since, current);
  return left === undefined ? "" : `ETA ${humanDuration(left)}`;
};

/** `; Slurm job 12 COMPLETED, queued 1.20 s` for a node computed by a batch job, else "". */
const jobNote = (r: NodeResult): string => {
  if (r.job === undefined) return "";
  const queued = r.job.queuedMs === undefined ? "" : `, queued ${seconds(r.job.queuedMs)}`;
  return `; ${r.job.scheduler} job ${r.job.id} ${r.job.state}${queued}`;
};

export const finishLine = (r: NodeResult): string => {
  switch (r.status) {
    case "ran":
      return `done     ${r.id} (${seconds(r.durationMs)}${jobNote(r)})`;
    case "cached": {
      const why = [r.reason, jobNote(r).slice(2)].filter((part) => part !== undefined && part !== "").join("; ");
      return `cached   ${r.id}${why === "" ? "" : ` (${why})`}`;
    }
    case "failed":
      return `FAILED   ${r.id}: ${r.error}${r.logFile ? ` (trace in ${r.logFile})` : ""}`;
    case "skipped":
      return `skipped  ${r.id}: ${r.reason}`;
  }
};

/**
 * On a TTY: finished nodes scroll above a redrawn block showing each running node's bar and message.
 * Elsewhere (CI, pipes): one line per start/finish and at most one progress line per node every 10 s.
 */
export const makeReporter = (
  stream: NodeJS.WriteStream,
  options: {
    readonly quiet?: boolean;
    /** The clock in ms (tests drive it); default Date.now. */ readonly now?: () => number;
  } = {},
): Reporter => {
  const now = options.now ?? Date.now;
  const running = new Map<
    string,
    { started: number; fraction?: number; message?: string; lastLine: number; firstProgress?: ProgressPoint }
  >();
  /** Records a progress event's fraction and message; the first fraction above zero anchors the ETA. */
  const update = (e: Extract<ExecEvent, { type: "progress" }>) => {
    const s = running.get(e.id);
    if (s === undefined) return undefined;
    if (e.fraction !== undefined) s.fraction = e.fraction;
    if (e.message !== undefined) s.message = e.message;
    if (s.firstProgress === undefined && s.fraction !== undefined && s.fraction > 0) {
      s.firstProgress = { fraction: s.fraction, at: now() };
    }
    return s;
  };
  const eta = (s: { fraction?: number; firstProgress?: ProgressPoint }) =>
    etaText(s.firstProgress, { fraction: s.fraction ?? 0, at: now() });
  const write = (line: string) => {
    if (!options.quiet) stream.write(`${line}\n`);
  };
  if (!stream.isTTY || options.quiet) {
    return {
      onEvent: (e) => {
        switch (e.type) {
          case "start":
            running.set(e.id, { started: now(), lastLine: now() });
            write(`run      ${e.id}: ${e.reason}`);
            break;
          case "progress": {
            const s = update(e);
            if (s === undefined) break;
            if (now() - s.lastLine >= 10_000) {
              s.lastLine = now();
              const pct = s.fraction === undefined ? "" : ` ${(s.fraction * 100).toFixed(0)}%`;
              const left = eta(s);
              write(`  ...    ${e.id}${pct} ${s.message ?? ""} (${seconds(now() - s.started)}${left && `, ${left}`})`);
            }
            break;
          }
          case "waiting":
            write(`waiting  ${e.id}: another run (pid ${e.holderPid}) is computing it`);
            break;
          case "log":
            write(`note     ${e.id}: ${e.message}`);
            break;
          case "corrupt":
            write(`corrupt  ${e.id}: ${e.reason}; recomputing`);
            break;
          case "finish":
            running.delete(e.result.id);
            if (e.result.status !== "cached" || e.result.reason) write(finishLine(e.result));
            break;
        }
      },
      close: () => {},
    };
  }
  let drawn = 0;
  const clear = () => {
    if (drawn > 0) stream.write(`\x1b[${drawn}A\x1b[0J`);
    drawn = 0;
  };
  const draw = () => {
    clear();
    const width = stream.columns ?? 100;
    for (const [id, s] of running) {
      const line =
        `  ${bar(s.fraction ?? 0)} ${id} ${s.message ?? ""} ${seconds(now() - s.started)} ${eta(s)}`.trimEnd();
      stream.write(`${line.slice(0, width - 1)}\n`);
      drawn++;
    }
  };
  const timer = setInterval(draw, 250);
  timer.unref();
  return {
    onEvent: (e) => {
      switch (e.type) {
        case "start":
          running.set(e.id, { started: now(), lastLine: 0 });
          clear();
          write(`run      ${e.id}: ${e.reason}`);
          draw();
          break;
        case "progress":
          update(e);
          break;
        case "waiting":
          clear();
          write(`waiting  ${e.id}: another run (pid ${e.holderPid}) is computing it`);
          draw();
          break;
        case "log":
          clear();
          write(`note     ${e.id}: ${e.message}`);
          draw();
          break;
        case "corrupt":
          clear();
          write(`corrupt  ${e.id}: ${e.reason}; recomputing`);
          draw();
          break;
        case "finish":
          running.delete(e.result.id);
          clear();
          if (e.result.status !== "cached" || e.result.reason) write(finishLine(e.result));
          draw();
          break;
      }
    },
    close: () => {
      clearInterval(timer);
      clear();
    },
  };
};
