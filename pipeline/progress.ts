/** Progress display for a run: a live block of running nodes on a terminal, plain timestamped lines otherwise. */
import type { ExecEvent, NodeResult } from "./executor.ts";

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

export const finishLine = (r: NodeResult): string => {
  switch (r.status) {
    case "ran":
      return `done     ${r.id} (${seconds(r.durationMs)})`;
    case "cached":
      return `cached   ${r.id}${r.reason ? ` (${r.reason})` : ""}`;
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
  const running = new Map<string, { started: number; fraction?: number; message?: string; lastLine: number }>();
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
            const s = running.get(e.id);
            if (s === undefined) break;
            if (e.fraction !== undefined) s.fraction = e.fraction;
            if (e.message !== undefined) s.message = e.message;
            if (now() - s.lastLine >= 10_000) {
              s.lastLine = now();
              const pct = s.fraction === undefined ? "" : ` ${(s.fraction * 100).toFixed(0)}%`;
              write(`  ...    ${e.id}${pct} ${s.message ?? ""} (${seconds(now() - s.started)})`);
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
      const line = `  ${bar(s.fraction ?? 0)} ${id} ${s.message ?? ""} ${seconds(now() - s.started)}`;
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
        case "progress": {
          const s = running.get(e.id);
          if (s === undefined) break;
          if (e.fraction !== undefined) s.fraction = e.fraction;
          if (e.message !== undefined) s.message = e.message;
          break;
        }
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
