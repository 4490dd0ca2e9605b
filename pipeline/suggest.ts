/**
 * "Did you mean" for a mistyped name (a command, an option, a target, a preset): the closest known name by edit
 * distance, when it is close enough to be a typo rather than a different word.
 */

/**
 * The optimal-string-alignment distance: insertions, deletions, substitutions and swaps of two neighbouring
 * characters each cost 1, so `rnu` is 1 away from `run` (plain Levenshtein would say 2).
 */
export const editDistance = (a: string, b: string): number => {
  // rows[i][j]: the distance between a's first i characters and b's first j.
  const rows: number[][] = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min(rows[i - 1]![j]! + 1, rows[i]![j - 1]! + 1, rows[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d = Math.min(d, rows[i - 2]![j - 2]! + 1);
      rows[i]![j] = d;
    }
  }
  return rows[a.length]![b.length]!;
};

/**
 * The candidate nearest to `input`, if at most max(1, a third of input's length) edits away (cargo's rule: one typo
 * in a short word, more in a long one, never a different short word); the first of equally near ones.
 */
export const closest = (input: string, candidates: Iterable<string>): string | undefined => {
  const limit = Math.max(1, Math.floor(input.length / 3));
  let best: { name: string; distance: number } | undefined;
  for (const name of candidates) {
    const distance = editDistance(input, name);
    if (distance <= limit && (best === undefined || distance < best.distance)) best = { name, distance };
  }
  return best?.name;
};

/**
 * `; did you mean "x"?` to append to an error line, or "" when no candidate is near; `show` writes the suggestion
 * when it is more than the candidate (a stage name with the label the user typed).
 */
export const didYouMean = (
  input: string,
  candidates: Iterable<string>,
  show: (candidate: string) => string = (candidate) => candidate,
): string => {
  const near = closest(input, candidates);
  return near === undefined ? "" : `; did you mean "${show(near)}"?`;
};
