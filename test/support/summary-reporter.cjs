// Mocha reporter: the usual spec output, then one last line "N passed, N failed[, N skipped]" that CI reads.
const Mocha = require("mocha");
const { EVENT_RUN_END } = Mocha.Runner.constants;

class SummaryReporter extends Mocha.reporters.Spec {
  constructor(runner, options) {
    super(runner, options);
    runner.once(EVENT_RUN_END, () => {
      const s = runner.stats || {};
      // Spec registered its epilogue first, so this line comes last.
      const skipped = s.pending || 0;
      process.stdout.write(`${s.passes || 0} passed, ${s.failures || 0} failed${skipped ? `, ${skipped} skipped` : ""}\n`);
    });
  }
}
module.exports = SummaryReporter;
