/**
 * The architectures' names, apart from their definitions (model.ts): the
 * storage and serving code checks a stored name without loading tfjs-layers.
 */
export const ARCHS = ['mlp', 'cnn'] as const;
export type Arch = (typeof ARCHS)[number];

export function isArch(value: unknown): value is Arch {
  return typeof value === 'string' && (ARCHS as readonly string[]).includes(value);
}
