// Save and restore a Generator's exact position (training layer), for checkpoints that resume bit-exactly.
// lib/rng.ts keeps the xoshiro128** words and the Box-Muller spare private; this reads them through the
// Generator's own getState/setState when it has them, else through the fields directly, checking their shape so a
// change in rng.ts fails loudly instead of silently resuming a different stream.
import { Generator } from "../rng";

/** A Generator's position: the four 32-bit state words and the cached normal sample (or null). */
export interface GeneratorState {
  words: [number, number, number, number];
  spare: number | null;
}

type Internals = { s0: number; s1: number; s2: number; s3: number; spare: number | null };
type WithState = { getState?: () => GeneratorState; setState?: (s: GeneratorState) => void };

function internals(g: Generator): Internals {
  const r = g as unknown as Internals;
  for (const k of ["s0", "s1", "s2", "s3"] as const)
    if (typeof r[k] !== "number") throw new Error(`generatorState: Generator has no numeric field ${k}; lib/rng.ts changed, update lib/train/rng-state.ts`);
  return r;
}

/** The generator's current position (a plain, JSON-serialisable object). */
export function getGeneratorState(g: Generator): GeneratorState {
  const own = (g as unknown as WithState).getState;
  if (typeof own === "function") return own.call(g);
  const r = internals(g);
  return { words: [r.s0 >>> 0, r.s1 >>> 0, r.s2 >>> 0, r.s3 >>> 0], spare: r.spare };
}

/**
 * Move the generator to a saved position.
 * @throws RangeError for a malformed state
 */
export function setGeneratorState(g: Generator, s: GeneratorState): void {
  if (!s || !Array.isArray(s.words) || s.words.length !== 4 || !s.words.every((w) => Number.isInteger(w) && w >= 0 && w < 2 ** 32) || !(s.spare === null || typeof s.spare === "number"))
    throw new RangeError(`setGeneratorState: expected { words: [4 uint32], spare: number | null }, got ${JSON.stringify(s)}`);
  const own = (g as unknown as WithState).setState;
  if (typeof own === "function") return own.call(g, s);
  const r = internals(g);
  [r.s0, r.s1, r.s2, r.s3] = s.words;
  r.spare = s.spare;
}
