/**
 * One step of a run's log path (src/launcher/supervisor/log-pipeline.ts): the phase-marker parser and the
 * secret maskers. A stage may keep the end of its input back while it cannot decide it yet (a marker or a
 * secret cut by a read boundary); how much, and when it lets go, is the stage's own business. The
 * pipeline composes stages only through this interface, so no stage needs to know another's sizes:
 * `end()` hands over everything a stage kept, and `heldBack()` says how much that is.
 */
export interface LogStage<Out = Uint8Array> {
  /** Takes the next read; returns what is final now, in order (possibly nothing). */
  write(chunk: Uint8Array): Out[];
  /** The input ended (or a phase did): returns everything kept back; the stage is then as new. */
  end(): Out[];
  /** Input bytes taken but not yet returned, at most `maxHeldBack`. */
  heldBack(): number;
  /** The most bytes this stage ever keeps back between reads. */
  readonly maxHeldBack: number;
}
