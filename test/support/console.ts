/**
 * tiny-linux's console protocol (TINY-LINUX-BOOTED, INSTANCE-ID:, USER-DATA-BEGIN … END, NET:,
 * BLOCK:, SSH:) without the kernel's own lines: `[   5.78] eth0: link becomes ready` and the
 * like are printed whenever the kernel pleases, also between two protocol lines.
 */
export function consoleProtocol(text: string): string {
  return text
    .replace(/\r/g, '')
    .split('\n')
    .filter((l) => !/^\[\s*\d+\.\d+\]/.test(l))
    .join('\n');
}
