// Learning-rate schedules (optimizers layer). A schedule maps the index of an optimizer update (0, 1, 2, ...)
// to its learning rate; LRScheduler applies it to every parameter group before each update, as the reference's
// training loop does with torch.optim.lr_scheduler (XLSTM_SPEC §7.5, experiments/lr_scheduler.py).
import { Optimizer } from "./optimizer";

/** Learning rate of the update with 0-based index `step`. */
export type LRSchedule = (step: number) => number;

/** The same learning rate at every step. */
export function constantSchedule(lr: number): LRSchedule {
  if (!(lr >= 0 && Number.isFinite(lr))) throw new RangeError(`constantSchedule: lr must be a finite number >= 0, got ${lr}`);
  return () => lr;
}

export interface WarmupCosineOptions {
  /** Peak learning rate (the reference's max_lr). */
  lr: number;
  /** Linear warm-up from 0 over this many steps. */
  warmup_steps: number;
  /** The cosine reaches min_lr here; from then on the rate stays min_lr. */
  decay_until_step: number;
  /** Final learning rate (the reference uses 1e-3 * lr). Default 0. */
  min_lr?: number;
}

/**
 * The reference's LinearWarmupCosineAnnealing: `lr * step / warmup_steps` for step < warmup_steps, then a cosine
 * from lr to min_lr, reaching min_lr at decay_until_step, and min_lr from there on. Step 0 has learning rate 0
 * when warmup_steps > 0 (as in the reference, whose scheduler starts at step 0).
 * @throws RangeError for negative sizes, decay_until_step < warmup_steps, or min_lr > lr
 * @example const s = warmupCosineSchedule({ lr: 1e-3, warmup_steps: 100, decay_until_step: 1000, min_lr: 1e-6 });
 */
export function warmupCosineSchedule(options: WarmupCosineOptions): LRSchedule {
  const { lr, warmup_steps: warm, decay_until_step: until } = options;
  const minLr = options.min_lr ?? 0;
  const what = "warmupCosineSchedule";
  if (!(lr >= 0 && Number.isFinite(lr))) throw new RangeError(`${what}: lr must be a finite number >= 0, got ${lr}`);
  if (!(Number.isInteger(warm) && warm >= 0)) throw new RangeError(`${what}: warmup_steps must be an integer >= 0, got ${warm}`);
  if (!(Number.isInteger(until) && until >= warm)) throw new RangeError(`${what}: decay_until_step must be an integer >= warmup_steps (${warm}), got ${until}`);
  if (!(minLr >= 0 && minLr <= lr)) throw new RangeError(`${what}: min_lr must be in [0, lr] = [0, ${lr}], got ${minLr}`);
  return (step: number) => {
    if (step < warm) return (lr * step) / warm;
    if (step >= until) return minLr;
    const ratio = (step - warm) / (until - warm);
    return minLr + 0.5 * (1 + Math.cos(Math.PI * ratio)) * (lr - minLr);
  };
}

/** Sets the optimizer's learning rate from a schedule; `step` counts the updates done. */
export class LRScheduler {
  /** Number of optimizer updates so far (the index of the next one). */
  lastStep = 0;

  constructor(
    readonly optimizer: Optimizer<{ lr: number }>,
    readonly schedule: LRSchedule,
  ) {}

  /** Set the learning rate of the next update (call before optimizer.step()); returns it. */
  apply(): number {
    const lr = this.schedule(this.lastStep);
    this.optimizer.lr = lr;
    return lr;
  }

  /** Count one update (call after optimizer.step()). */
  step(): void {
    this.lastStep++;
  }

  stateDict(): { last_step: number } {
    return { last_step: this.lastStep };
  }

  loadStateDict(sd: { last_step: number }): void {
    if (!Number.isInteger(sd?.last_step) || sd.last_step < 0) throw new RangeError(`LRScheduler.loadStateDict: last_step must be an integer >= 0, got ${sd?.last_step}`);
    this.lastStep = sd.last_step;
  }
}
