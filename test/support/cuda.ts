// Shared checks of the CUDA kernel tests (test/20, test/21) and device memory readings (test/23, test/57).
import { strict as assert } from "assert";
import { cuda } from "../../lib";

/**
 * Collects garbage (mocha runs with --expose-gc, .mocharc.json) for a few turns of the event loop, so that CUDA
 * tensors dropped earlier without dispose() have been freed by their finalizers: device memory readings taken after
 * it do not move with the collector's timing.
 */
export async function settleGarbage(): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc;
  for (let i = 0; i < 5; ++i) {
    gc?.();
    await new Promise((r) => setImmediate(r));
  }
}

/** Device memory in tensors and other live allocations once earlier garbage is collected (settleGarbage). */
export async function settledDeviceBytes(): Promise<number> {
  await settleGarbage();
  cuda.synchronize();
  return cuda.memoryStats().allocatedBytes;
}

/**
 * Every call throws a plain Error (not a TypeError/RangeError: the arguments were fine) whose message starts with
 * "<name>: CUDA is not available: " and carries the reason backends().cuda gives.
 */
export function assertRefusedWithoutCuda(calls: readonly (readonly [string, () => unknown])[], reason: string): void {
  for (const [name, call] of calls)
    assert.throws(call, (e: Error) => {
      assert.ok(!(e instanceof TypeError) && !(e instanceof RangeError) && e instanceof Error, `${name}: ${e.constructor.name}`);
      assert.ok(e.message.startsWith(`${name}: CUDA is not available: `), e.message);
      assert.ok(e.message.includes(reason), `${name}: "${e.message}" should include the reason "${reason}"`);
      return true;
    });
}
