// Shared checks of the CUDA kernel tests (test/20, test/21).
import { strict as assert } from "assert";

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
