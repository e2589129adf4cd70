// Progress on stderr for anything that takes longer than a moment; silent when stderr is not a
// terminal or the output is for machines, so pipes and -o json stay clean.
const FRAMES = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

export async function withProgress<T>(
  label: string,
  work: Promise<T>,
  opts: { quiet?: boolean; delayMs?: number } = {},
): Promise<T> {
  if (opts.quiet || !process.stderr.isTTY) return work;
  const started = Date.now();
  let i = 0;
  let timer: NodeJS.Timeout | undefined;
  // Nothing is drawn for quick work: the spinner appears only after delayMs.
  const delay = setTimeout(() => {
    timer = setInterval(() => {
      const secs = ((Date.now() - started) / 1000).toFixed(1);
      process.stderr.write(`\r${FRAMES[i++ % FRAMES.length]} ${label} (${secs}s)`);
    }, 80);
  }, opts.delayMs ?? 250);
  try {
    return await work;
  } finally {
    clearTimeout(delay);
    if (timer) {
      clearInterval(timer);
      process.stderr.write('\r\x1b[2K');
    }
  }
}
