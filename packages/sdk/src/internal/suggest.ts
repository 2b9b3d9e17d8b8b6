/** Suggestions for misspelt names: `did you mean "…"?`. */

/** `emial` -> `email`: the candidate within a small edit distance (case, `_` and `-` ignored), if any. */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  return closestOf([{ word, candidates }]);
}

export function closestOf(groups: readonly { word: string; candidates: readonly string[] }[]): string | undefined {
  let best: { candidate: string; distance: number } | undefined;
  for (const { word, candidates } of groups) {
    const w = simplify(word);
    // Two edits for long words, fewer for short ones (`x` is not a typo of `id`).
    const limit = Math.min(2, Math.floor((w.length - 1) / 2));
    for (const candidate of candidates) {
      if (candidate === word) continue;
      const distance = editDistance(w, simplify(candidate));
      if (distance <= limit && (best === undefined || distance < best.distance)) best = { candidate, distance };
    }
  }
  return best?.candidate;
}

function simplify(word: string): string {
  return word.toLowerCase().replace(/[_-]/g, '');
}

/** Levenshtein distance where swapping two adjacent characters counts as one edit. */
function editDistance(a: string, b: string): number {
  let before: number[] = [];
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, (previous[j - 1] ?? 0) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d = Math.min(d, (before[j - 2] ?? 0) + 1);
      current.push(d);
    }
    before = previous;
    previous = current;
  }
  return previous[b.length] ?? 0;
}
